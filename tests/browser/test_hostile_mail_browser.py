"""Hostile mail in a real browser: no vector may run script or load anything from another host.

Every vector calls pwn(), which would log "PWNED" (and alert): the test listens for console
messages and dialogs, and records every request whose host is not our 127.0.0.1 server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from crm.mailbox.folders import create_folder
from crm.models import Attachment
from tests.browser.session import sign_in
from tests.factories import make_email

pytestmark = pytest.mark.browser

JS = "console.log('PWNED');alert('PWNED')"
EVIL = "http://evil.example"
HTML_VECTORS = f"""
<p>Dear customer,</p>
<script>{JS}</script>
<img src=x onerror="{JS}">
<img src="{EVIL}/track.gif" alt="tracker">
<img srcset="{EVIL}/srcset.png 1x">
<body onload="{JS}">
<a href="javascript:{JS}" id="jslink">click me</a>
<a href="data:text/html,<script>{JS}</script>">data link</a>
<svg onload="{JS}"><script>{JS}</script><image href="{EVIL}/svg.png"/></svg>
<svg><a xlink:href="javascript:{JS}"><text x="10" y="10">svg link</text></a></svg>
<style>@import url({EVIL}/import.css); body {{ background: url({EVIL}/bg.png) }}</style>
<link rel="stylesheet" href="{EVIL}/link.css">
<div style="background-image: url({EVIL}/inline.png)">styled</div>
<div style="background: u\\72l({EVIL}/escaped.png)">escaped</div>
<table background="{EVIL}/table.png"><tr><td background="{EVIL}/td.png">cell</td></tr></table>
<meta http-equiv="refresh" content="0;url={EVIL}/refresh">
<base href="{EVIL}/">
<a href="relative-after-base">relative</a>
<iframe src="{EVIL}/frame"></iframe>
<iframe srcdoc="<script>{JS}</script>"></iframe>
<object data="{EVIL}/object.swf"></object>
<embed src="{EVIL}/embed.swf">
<video poster="{EVIL}/poster.png"><source src="{EVIL}/video.mp4"></video>
<audio src="{EVIL}/audio.mp3" autoplay></audio>
<form action="{EVIL}/form"><input name="q" autofocus onfocus="{JS}"><button>go</button></form>
<details open ontoggle="{JS}"><summary>x</summary></details>
<div hx-get="/inbox/actions" hx-trigger="load">htmx attribute</div>
<img src="x" style="behavior:url(#default#time2)" onerror="{JS}">
<p>Regards</p>
<noscript><p title="</noscript><img src=x onerror={JS}>"></noscript>
<math><mtext><table><mglyph><style><img src=x onerror="{JS}">
"""
NAME_VECTOR = f'"><img src=x onerror="{JS}"><script>{JS}</script>'


@pytest.fixture
def watched(browser):
    """The page, plus what it did that it must not: script messages, dialogs, foreign requests."""
    page = browser
    seen = {"script": [], "foreign": []}
    page.on("console", lambda m: seen["script"].append(m.text) if "PWNED" in m.text else None)

    def on_dialog(dialog):
        seen["script"].append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def route(route_):
        parts = urlsplit(route_.request.url)
        if parts.scheme in ("http", "https") and parts.hostname != "127.0.0.1":
            seen["foreign"].append(route_.request.url)
            route_.abort()
        else:
            route_.continue_()

    page.context.route("**/*", route)
    page.context.on(
        "request",
        lambda r: (
            seen["foreign"].append(r.url)
            if urlsplit(r.url).scheme in ("http", "https")
            and urlsplit(r.url).hostname != "127.0.0.1"
            else None
        ),
    )
    return page, seen


def hostile_mail(db, services, user_id):
    folder = create_folder(db, user_id, f"Folder {NAME_VECTOR}"[:100])
    mail = make_email(
        db,
        users=[user_id],
        subject=f"Subject {NAME_VECTOR}",
        from_name=NAME_VECTOR,
        html=HTML_VECTORS,
        text=f"Text <script>{JS}</script> javascript:{JS}",
    )
    mail.has_attachments = True
    db.add(
        Attachment(
            email_id=mail.id,
            filename=f"{NAME_VECTOR}.html",
            content_type="text/html",
            sha256=services.blobs.put(b"<script>alert(1)</script>"),
            size=26,
        )
    )
    mail.problems = [f"Problem {NAME_VECTOR}"]
    text_only = make_email(
        db,
        users=[user_id],
        subject="plain",
        html="",
        text=f'<img src=x onerror="{JS}"> {EVIL}/a <script>{JS}</script>',
    )
    db.commit()
    return folder, mail, text_only


def test_hostile_mail_runs_nothing_and_loads_nothing_remote(
    live_server, watched, db, services, make_user
):
    page, seen = watched
    user_id = make_user("rep", ["rep@example.com"])
    folder, mail, text_only = hostile_mail(db, services, user_id)
    sign_in(page, live_server)
    expect(page.locator("#pane")).to_contain_text("Folder")
    expect(page.locator("#rows")).to_contain_text("Subject")
    page.goto(f"{live_server}/inbox/{folder.id}")
    page.goto(f"{live_server}/inbox/search?q=subject")
    expect(page.locator("#rows")).to_contain_text("Subject")
    page.goto(f"{live_server}/mail/{mail.id}")
    body = page.frame_locator("iframe.mailbody")
    expect(body.locator("body")).to_contain_text("Regards")
    # Clicking the hostile link inside the sandbox must not run it either.
    body.get_by_text("click me").click()
    page.wait_for_timeout(500)
    expect(page.locator(".mailhead")).to_contain_text("Problem")
    page.goto(f"{live_server}/mail/{text_only.id}")
    expect(page.locator("pre.mailbody")).to_contain_text("<script>")
    page.goto(f"{live_server}/mail/{mail.id}?images=1")  # even "show images" runs nothing
    expect(page.frame_locator("iframe.mailbody").locator("body")).to_contain_text("Regards")
    page.wait_for_timeout(500)
    assert seen["script"] == []
    assert page.evaluate("typeof window.pwned") == "undefined"
    # Only the one plain remote image, and only after "show images".
    assert {u for u in seen["foreign"]} <= {f"{EVIL}/track.gif"}


def test_hostile_mail_with_images_blocked_makes_no_foreign_request(
    live_server, watched, db, services, make_user
):
    page, seen = watched
    user_id = make_user("rep", ["rep@example.com"])
    _, mail, _ = hostile_mail(db, services, user_id)
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{mail.id}")
    expect(page.frame_locator("iframe.mailbody").locator("body")).to_contain_text("Regards")
    page.wait_for_timeout(500)
    assert seen["foreign"] == []
    assert seen["script"] == []
