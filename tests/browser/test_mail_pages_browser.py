"""The mail pages in Chromium: the body frame's height, the list's star, undo and Back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.session import sign_in
from tests.factories import make_email

pytestmark = pytest.mark.browser
LONG = "".join(
    f"<p>Paragraph {n}: the terms of our agreement, point by point.</p>" for n in range(80)
)


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"])


def frame_fit(page) -> dict:
    """The body frame's height, the height of what it shows, and whether its document is in."""
    body = page.frame_locator("iframe.mailbody").locator("body")
    expect(body).not_to_be_empty()
    inner = body.evaluate(
        "b => ({content: b.ownerDocument.documentElement.scrollHeight, view: window.innerHeight})"
    )
    return inner | {"frame": page.locator("iframe.mailbody").bounding_box()["height"]}


def wait_for_fit(page):
    # The frame is sized by the page once its document has loaded.
    page.wait_for_function(
        """() => { const f = document.querySelector('iframe.mailbody');
                   return f && f.style.height !== ''; }"""
    )


def test_the_body_frame_grows_to_a_long_mail_and_stays_small_for_a_short_one(
    live_server, browser, db, rep
):
    long = make_email(db, users=[rep], subject="Contract terms", html=LONG).id
    short = make_email(db, users=[rep], subject="Thanks", html="<p>Thank you!</p>").id
    db.commit()
    page = browser
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{long}")
    wait_for_fit(page)
    fit = frame_fit(page)
    assert fit["content"] > 1500  # the mail really is long
    assert fit["view"] >= fit["content"]  # the frame shows all of it: no scrollbar inside
    page.goto(f"{live_server}/mail/{short}")
    wait_for_fit(page)
    fit = frame_fit(page)
    assert fit["view"] >= fit["content"]
    assert fit["frame"] < 150


def test_the_body_frame_is_sandboxed_without_scripts(live_server, browser, db, rep):
    """allow-same-origin lets the page read the frame's height; with no allow-scripts beside it,
    nothing in the mail can run, so it cannot use that origin either."""
    mail = make_email(db, users=[rep], html="<p>Hello</p>").id
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{mail}")
    frame = page.locator("iframe.mailbody")
    expect(frame).to_have_attribute(
        "sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    )
    expect(page.frame_locator("iframe.mailbody").locator("body")).to_contain_text("Hello")
    # Even a script put into the frame's document from outside does not run there.
    ran = page.evaluate(
        """() => { const doc = document.querySelector('iframe.mailbody').contentDocument;
                   const s = doc.createElement('script');
                   s.textContent = 'window.parent.ranInFrame = true';
                   doc.body.appendChild(s);
                   return window.ranInFrame === true; }"""
    )
    assert ran is False


def test_back_returns_to_the_search_the_mail_was_opened_from(live_server, browser, db, rep):
    from crm.mailbox.folders import create_folder

    folder = create_folder(db, rep, "Projects")
    make_email(db, users=[rep], subject="Invoice 2291 overdue")
    make_email(db, users=[rep], subject="Team lunch", folder_id=folder.id)
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.get_by_role("searchbox", name="Search mail").fill("invoice")
    page.get_by_role("searchbox", name="Search mail").press("Enter")
    expect(page).to_have_url(re.compile(r"/inbox/search\?.*q=invoice"))
    searched = page.url
    page.locator("#rows tr.mailrow", has_text="Invoice 2291").get_by_role("link").click()
    expect(page.get_by_role("heading", name="Invoice 2291 overdue")).to_be_visible()
    page.get_by_role("button", name="☆ Important").click()  # an action on the way
    expect(page.get_by_role("button", name="★ Not important")).to_be_visible()
    page.get_by_role("link", name="Back").click()
    expect(page).to_have_url(searched)
    expect(page.locator("#rows tr.mailrow")).to_have_count(1)
    page.goto(f"{live_server}/inbox/{folder.id}")
    page.locator("#rows tr.mailrow").first.get_by_role("link").click()
    page.get_by_role("link", name="Back").click()
    expect(page).to_have_url(f"{live_server}/inbox/{folder.id}")


def test_the_list_fits_a_1280_pixel_window(live_server, browser, db, rep):
    from crm.models import Account

    account = Account(
        name="Électricité du Rhône et des Alpes SA, division Nord", assigned_user_id=rep
    )
    db.add(account)
    db.flush()
    for n in range(3):
        make_email(
            db,
            users=[rep],
            subject=f"Order confirmation {n} for the spring campaign, with a rather long subject line",
            from_name="Customer Service Department of a Large Retailer",
            text="Dear customer, thank you for your order. " * 10,
            parent=account,
        )
    db.commit()
    page = browser
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server)
    expect(page.locator("#rows tr.mailrow")).to_have_count(3)
    sizes = page.evaluate(
        """() => ({page: document.documentElement.scrollWidth, window: window.innerWidth,
                   list: document.getElementById('list').getBoundingClientRect().right,
                   date: document.querySelector('#rows td.when').getBoundingClientRect().right,
                   table: document.querySelector('table.mail').getBoundingClientRect().right})"""
    )
    assert sizes["page"] <= sizes["window"]
    assert sizes["table"] <= sizes["list"] + 1
    assert sizes["date"] <= sizes["window"]
    expect(page.locator("#rows td.when").first).to_be_visible()


def test_the_star_toggles_with_one_click_in_the_list(live_server, browser, db, rep):
    make_email(db, users=[rep], subject="Proposal")
    db.commit()
    page = browser
    sign_in(page, live_server)
    star = page.locator("#rows tr.mailrow", has_text="Proposal").locator(".star button")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#pane a", has_text="Important")).to_contain_text("1")  # the pane follows
    page.reload()
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#rows tr.mailrow input[name=ids]:checked")).to_have_count(0)
    star.click()
    expect(star).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(star).to_have_attribute("aria-pressed", "false")


def test_trash_and_move_can_be_undone_from_the_notice(live_server, browser, db, rep):
    from crm.mailbox.folders import create_folder

    create_folder(db, rep, "Projects")
    for subject in ("Alpha", "Beta"):
        make_email(db, users=[rep], subject=subject)
    db.commit()
    page = browser
    sign_in(page, live_server)
    rows = page.locator("#rows tr.mailrow")
    rows.filter(has_text="Alpha").locator("input[name=ids]").check()
    page.get_by_role("button", name="Move to Trash").click()
    expect(rows).to_have_count(1)
    notice = page.locator("#notice")
    expect(notice).to_contain_text("1 mail moved to Trash.")
    notice.get_by_role("button", name="Undo").click()
    expect(page.locator(".flash")).to_contain_text("Undone")
    expect(rows).to_have_count(2)
    rows.filter(has_text="Beta").locator("input[name=ids]").check()
    page.locator(".bulkbar select[name=target]").select_option(label="Projects")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(rows).to_have_count(1)
    expect(notice).to_contain_text("1 mail moved to Projects.")
    notice.get_by_role("button", name="Undo").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#pane a", has_text="Projects")).not_to_contain_text("1")


def test_a_link_in_a_mail_opens_in_a_new_tab(live_server, browser, db, rep):
    """Inside the sandboxed frame a link went nowhere; it opens a tab of its own, unsandboxed,
    and the mail stays open."""
    target = f"{live_server}/records/contacts/"
    mail = make_email(db, users=[rep], html=f'<p>See <a href="{target}">our price list</a></p>')
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{mail.id}")
    with page.context.expect_page() as opened:
        page.frame_locator("iframe.mailbody").get_by_role("link", name="our price list").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.startswith(target)
    assert tab.evaluate("window.origin") == live_server  # not the sandbox's opaque origin
    expect(page.locator("iframe.mailbody")).to_be_visible()
