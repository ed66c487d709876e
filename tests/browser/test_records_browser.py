import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_sign_in_and_create_a_contact(live_server, browser, make_user):
    make_user("rep", ["rep@example.com"])
    page = browser
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill("rep")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Contacts").click()
    expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    page.get_by_role("link", name="New contact").click()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("E-mail addresses").fill("grace@navy.example")
    page.get_by_role("button", name="Create contact").click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/records/contacts/\d+$"))
    # The address's flags are set in place (a boosted form; the page comes back with the badge).
    page.get_by_text("Flags", exact=True).click()
    page.get_by_label("Opted out of mass mail").check()
    page.get_by_role("button", name="Save flags").click()
    expect(page.locator(".address .badge.warn")).to_have_text("opted out")
    page.get_by_role("link", name="Contacts", exact=True).first.click()
    expect(page.locator("#rows")).to_contain_text("Grace Hopper")
    expect(page.locator("#rows")).to_contain_text("grace@navy.example")
    # Active search narrows the list without a page load. Typed key by key, as a person would:
    # a single fill() right after the boosted swap can land before htmx has wired the box.
    search = page.get_by_role("searchbox")
    search.press_sequentially("nobody-matches", delay=30)
    expect(page.locator("#rows")).to_contain_text("No contacts match")
    search.fill("")
    search.press_sequentially("hopper", delay=30)
    expect(page.locator("#rows")).to_contain_text("Grace Hopper")
