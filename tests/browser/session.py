"""Signing in from the browser tests."""

import re

from playwright.sync_api import expect


def sign_in(page, live_server, username="rep"):
    """Sign in through the form and wait until the inbox's scripts (htmx, mail.js) have run:
    keys or input sent before that would find no handler."""
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    page.wait_for_load_state("load")
