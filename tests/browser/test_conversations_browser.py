"""Conversations in Chromium: switch the preference, see a thread as one row, open it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from crm.db import utcnow
from tests.browser.session import sign_in
from tests.factories import make_email

pytestmark = pytest.mark.browser


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"])


def test_switch_to_conversations_and_open_one(live_server, browser, db, rep):
    start = utcnow() - timedelta(days=1)
    root = make_email(db, users=[rep], subject="Pump order", from_name="Anna Alpha", date=start)
    for n, name in enumerate(("Bob Beta", "Cleo Gamma"), start=1):
        make_email(
            db,
            users=[rep],
            subject="Re: Pump order",
            from_name=name,
            text=f"Reply {n}",
            in_reply_to=root.message_id,
            references=[root.message_id],
            date=start + timedelta(hours=n),
        )
    make_email(db, users=[rep], subject="Team lunch", date=start - timedelta(days=1))
    db.commit()
    page = browser
    sign_in(page, live_server)
    expect(page.locator("#rows tr.mailrow")).to_have_count(4)  # single mails by default
    page.goto(f"{live_server}/preferences/")
    page.get_by_label("Conversations").check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Preferences saved")).to_be_visible()
    page.goto(f"{live_server}/inbox/")
    rows = page.locator("#rows tr.mailrow")
    expect(rows).to_have_count(2)
    row = rows.first
    expect(row).to_have_class(re.compile(r"\bunread\b.*\bconversation\b"))
    expect(row.locator(".who")).to_contain_text("Anna Alpha, Bob Beta, Cleo Gamma")
    expect(row.locator(".count")).to_have_text("3")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Re: Pump order", exact=True)).to_be_visible()
    conversation = page.locator("#conversation")
    expect(conversation).to_contain_text("3 mails")
    expect(conversation.locator("details")).to_have_count(2)
    conversation.locator("summary", has_text="Anna Alpha").click()
    expect(conversation.get_by_role("link", name="Open").first).to_be_visible()
    page.get_by_role("link", name="Back").click()
    expect(page.locator("#rows tr.mailrow").first).not_to_have_class(re.compile(r"\bunread\b"))
