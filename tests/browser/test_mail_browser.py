"""The mail client in Chromium: reading, bulk move, drag and drop, search and the keyboard."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.mailbox.folders import create_folder
from crm.models import Attachment, EmailUserState
from tests.browser.session import sign_in
from tests.factories import make_email

pytestmark = pytest.mark.browser
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cf00000301010018dd8db40000000049454e44ae426082"
)


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"])


def test_read_a_mail_with_an_inline_image(live_server, browser, db, services, rep):
    mail = make_email(
        db,
        users=[rep],
        subject="Welcome aboard",
        from_name="Olga Owner",
        html='<h2>Hello</h2><p>Logo: <img alt="logo" src="cid:logo@x"></p>',
    )
    db.add(
        Attachment(
            email_id=mail.id,
            filename="logo.png",
            content_type="image/png",
            size=len(PNG),
            sha256=services.blobs.put(PNG),
            content_id="logo@x",
            is_inline=True,
        )
    )
    db.commit()
    page = browser
    sign_in(page, live_server)
    row = page.locator("#rows tr.mailrow", has_text="Welcome aboard")
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Welcome aboard")).to_be_visible()
    expect(page.locator(".mailhead")).to_contain_text("Olga Owner")
    body = page.frame_locator("iframe.mailbody")
    expect(body.get_by_role("heading", name="Hello")).to_be_visible()
    # The image decoded: its signed URL worked although the sandboxed frame sends no cookie.
    expect(body.locator("img")).to_have_js_property("naturalWidth", 1)
    page.get_by_role("link", name="Back").click()
    expect(page.locator("#rows tr.mailrow", has_text="Welcome aboard")).not_to_have_class(
        re.compile(r"\bunread\b")
    )


def test_bulk_move_and_drag_to_a_folder(live_server, browser, db, rep):
    folder = create_folder(db, rep, "Projects")
    ids = [make_email(db, users=[rep], subject=f"Deal {n}").id for n in range(3)]
    db.commit()
    page = browser
    sign_in(page, live_server)
    for n in (0, 1):
        page.locator("#rows tr.mailrow", has_text=f"Deal {n}").locator("input[name=ids]").check()
    page.locator(".bulkbar select[name=target]").select_option(label="Projects")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#rows tr.mailrow")).to_have_count(1)
    expect(page.locator("#pane a", has_text="Projects")).to_contain_text("2")
    page.locator("#rows tr.mailrow", has_text="Deal 2").drag_to(
        page.locator("#pane a", has_text="Projects")
    )
    expect(page.locator("#rows tr.mailrow")).to_have_count(0)
    expect(page.locator("#pane a", has_text="Projects")).to_contain_text("3")
    db.rollback()
    folders = db.scalars(
        select(EmailUserState.folder_id).where(EmailUserState.email_id.in_(ids))
    ).all()
    assert folders == [folder.id] * 3


def test_active_search(live_server, browser, db, rep):
    make_email(db, users=[rep], subject="Invoice 2291 overdue")
    make_email(db, users=[rep], subject="Team lunch")
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.get_by_role("searchbox", name="Search mail").fill("invoi")
    expect(page.locator("#rows tr.mailrow")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("Invoice 2291 overdue")
    expect(page).to_have_url(re.compile(r"/inbox/search\?.*q=invoi"))
    page.get_by_role("searchbox", name="Search mail").fill("")
    expect(page.locator("#rows tr.mailrow")).to_have_count(2)


def test_keyboard_navigation(live_server, browser, db, rep):
    for n, day in enumerate((3, 2, 1)):
        make_email(db, users=[rep], subject=f"Message {n}", date=datetime(2026, 1, day))
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.wait_for_load_state("load")
    rows = page.locator("#rows tr.mailrow")
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile(r"\bcursor\b"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcursor\b"))
    page.keyboard.press("s")  # important
    expect(page.locator("#rows tr.mailrow", has_text="Message 1").locator(".star")).to_contain_text(
        "★"
    )
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcursor\b"))  # kept across the swap
    page.keyboard.press("j")
    page.keyboard.press("#")  # trash the third
    expect(rows).to_have_count(2)
    expect(page.locator("#rows")).not_to_contain_text("Message 2")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bcursor\b"))
    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("/")
    expect(page.get_by_role("searchbox", name="Search mail")).to_be_focused()
    page.get_by_role("searchbox", name="Search mail").blur()
    page.keyboard.press("k")  # the cursor stayed on the row after the trashed one
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Message 0")).to_be_visible()
    page.wait_for_load_state("load")  # the shortcuts live in mail.js: let it run first
    page.keyboard.press("u")  # on the mail page, mark unread again
    expect(page.get_by_role("button", name="Mark read")).to_be_visible()
