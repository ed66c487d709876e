"""Connect with Google in Chromium against the local OAuth2 provider: the consent page, the
way back, the account page; then Reconnect on an account that needs it, and a forged answer."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crm.accounts import oauth
from crm.models import MailAccount
from tests.browser.session import sign_in
from tests.support.oauth_provider import configure

pytestmark = pytest.mark.browser


@pytest.fixture
def google(services, oauth_provider, oauth_imap_server):
    with services.session() as session:
        configure(session, services.secret_box, oauth_provider, oauth_imap_server)
    return oauth_provider


def _consent(page, google, email: str | None = None) -> None:
    expect(page).to_have_url(re.compile(re.escape(google.url) + r"/authorize\?"))
    expect(page.get_by_role("heading", name="Test provider")).to_be_visible()
    if email is not None:
        page.get_by_label("Mailbox").fill(email)
    page.get_by_role("button", name="Allow").click()


def test_connect_and_reconnect_a_gmail_account(live_server, browser, make_user, services, google):
    make_user("rep", ["rep@example.com"])
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/accounts/new")
    page.get_by_role("button", name="Connect with Google").click()
    _consent(page, google, "rep.gmail@example.com")
    expect(page).to_have_url(re.compile(r"/accounts/\d+$"))
    expect(page.get_by_text("rep.gmail@example.com is connected with Google.")).to_be_visible()
    expect(page.locator(".sign-in")).to_contain_text("Connected with Google (OAuth2)")
    page.screenshot(path="/tmp/h5/oauth-connected.png", full_page=True)
    account_id = int(page.url.rsplit("/", 1)[1])

    with services.session() as session:
        account = session.get(MailAccount, account_id)
        oauth.mark_needs_reauthorisation(session, account, "Google refused (invalid_grant)")
    page.reload()
    panel = page.locator("#reconnect")
    expect(panel).to_contain_text("Fetching and sending have stopped for this account")
    page.screenshot(path="/tmp/h5/oauth-needs-reconnect.png", full_page=True)
    panel.get_by_role("button", name="Reconnect with Google").click()
    _consent(page, google)  # the provider was told which mailbox (login_hint)
    expect(page.get_by_text("rep.gmail@example.com is connected with Google.")).to_be_visible()
    expect(page.locator("#reconnect")).to_have_count(0)
    with services.Session() as session:
        assert not oauth.needs_reauthorisation(session.get(MailAccount, account_id))


def test_a_forged_answer_is_refused_in_the_browser(live_server, browser, make_user, google):
    make_user("rep", ["rep@example.com"])
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/accounts/new")
    page.get_by_role("button", name="Connect with Google").click()
    expect(page).to_have_url(re.compile(re.escape(google.url) + r"/authorize\?"))
    page.goto(f"{live_server}/accounts/oauth/callback?code=stolen&state=forged")
    expect(page).to_have_url(re.compile(r"/accounts/new$"))
    expect(page.get_by_text("does not belong to this session")).to_be_visible()
