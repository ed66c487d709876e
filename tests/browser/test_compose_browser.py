"""Writing mail in Chromium: the HTML editor, send, reply, forward, undo and a refused sender,
against the live server and a real SMTP server (what arrives there is checked byte by byte)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm import settings
from crm.db import utcnow
from crm.models import Attachment, Email, User
from crm.outbound import drafts, outbox
from crm.outbound.drafts import DraftInput
from crm.outbound.sending import deliver_due
from tests.browser.session import sign_in
from tests.factories import make_email
from tests.support.sending import smtp_only_account

pytestmark = pytest.mark.browser
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cf00000301010018dd8db40000000049454e44ae426082"
)


def _smtp_account(services, smtp_server, user_id: int, address: str) -> None:
    with services.session() as session:
        smtp_only_account(session, services, user_id, address, smtp_server.host, smtp_server.port)
        session.commit()


def _undo_seconds(services, seconds: int) -> None:
    with services.session() as session:
        settings.put(session, "undo_send_seconds", seconds)
        session.commit()


@pytest.fixture
def rep(make_user, services, smtp_server):
    """rep (Rita Rep), who sends from rep@example.com through the test SMTP server; her record
    also holds rita.private@example.com, which no SMTP account sends (offered, then refused)."""
    user_id = make_user("rep", ["rep@example.com", "rita.private@example.com"], name="Rita Rep")
    _smtp_account(services, smtp_server, user_id, "rep@example.com")
    _undo_seconds(services, 0)
    return user_id


def _received(smtp_server):
    [received] = smtp_server.messages
    return message_from_bytes(received["data"], policy=policy.default)


def _shot(page, tmp_path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def _mail_id(page) -> int:
    expect(page).to_have_url(re.compile(r"/mail/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def _editor(page):
    return page.locator("#compose .editor-area")


def test_compose_bold_send_and_the_received_bytes(
    live_server, browser, services, smtp_server, rep, tmp_path
):
    page = browser
    sign_in(page, live_server)
    page.locator("#compose-new").click()
    expect(page.get_by_role("heading", name="New mail")).to_be_visible()
    expect(page.locator("#compose-from")).to_have_value("rep@example.com")
    # With the script, the HTML editor replaces the plain textarea.
    expect(page.locator("#compose-body")).to_be_hidden()
    page.get_by_label("To", exact=True).fill("Žofia Nováková <zofia@customer.example>")
    page.get_by_label("Subject").fill("Ponuka – jarná akcia")
    editor = _editor(page)
    editor.click()
    page.keyboard.type("Dobrý deň, posielam ponuku na jar.")
    # Select a word in the middle with the keyboard and make it bold with the toolbar.
    for _ in range(4):
        page.keyboard.press("Control+ArrowLeft")
    page.keyboard.press("Control+Shift+ArrowRight")
    page.get_by_role("button", name="Bold").click()
    expect(editor.locator("b, strong")).to_have_text("ponuku")
    expect(editor).to_have_text("Dobrý deň, posielam ponuku na jar.")
    _shot(page, tmp_path, "compose")
    page.locator("#send-button").click()

    email_id = _mail_id(page)
    expect(page.locator("#sending")).to_contain_text("Sending")
    _shot(page, tmp_path, "mail-sending")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    page.reload()
    expect(page.locator("#sending")).to_contain_text("Sent")
    expect(page.locator("#sending")).to_contain_text("from rep@example.com")
    expect(page.locator(".mailhead .status")).to_have_text("Sent")
    _shot(page, tmp_path, "mail-sent")

    parsed = _received(smtp_server)
    assert parsed["Subject"] == "Ponuka – jarná akcia"
    assert parsed["From"].addresses[0].addr_spec == "rep@example.com"
    assert parsed["To"].addresses[0].display_name == "Žofia Nováková"
    html = parsed.get_body(("html",)).get_content()
    assert re.search(r"<(b|strong)>ponuku</(b|strong)>", html), html
    text = parsed.get_body(("plain",)).get_content()
    assert "Dobrý deň, posielam" in text and "na jar." in text and "<b>" not in text
    with services.session() as session:
        assert session.get(Email, email_id).status == "Sent"


def test_reply_prefills_and_sends(live_server, browser, db, services, smtp_server, rep, tmp_path):
    original = make_email(
        db, users=[rep], subject="Cenová ponuka 2024", from_addr="ann@customer.example",
        from_name="Ann Buyer", message_id="offer-1@customer.example",
        text="Môžete nám dať zľavu 10 %?",
    )  # fmt: skip
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{original.id}")
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value(re.compile("ann@customer.example"))
    expect(page.get_by_label("Subject")).to_have_value("Re: Cenová ponuka 2024")
    editor = _editor(page)
    expect(editor).to_contain_text("wrote:")
    expect(editor).to_contain_text("Môžete nám dať zľavu 10 %?")
    # The caret waits on an empty line above the quote: typing goes there, not into "wrote:".
    expect(editor).to_be_focused()
    page.keyboard.type("Áno, 5 % vieme.")
    _shot(page, tmp_path, "reply")
    page.locator("#send-button").click()

    _mail_id(page)
    expect(page.locator("#sending")).to_contain_text("Sending")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    parsed = _received(smtp_server)
    assert parsed["Subject"] == "Re: Cenová ponuka 2024"
    assert parsed["To"].addresses[0].addr_spec == "ann@customer.example"
    assert parsed["In-Reply-To"] == "<offer-1@customer.example>"
    text = parsed.get_body(("plain",)).get_content()
    assert text.index("Áno, 5 % vieme.") < text.index("zľavu 10 %")
    assert "Áno, 5 % vieme." in text.splitlines()  # a line of its own, before "On … wrote:"
    page.reload()
    _shot(page, tmp_path, "reply-sent")


def _console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _with_inline_image(db, services, rep, subject: str) -> Email:
    email = make_email(
        db, users=[rep], subject=subject, from_addr="ann@customer.example", from_name="Ann",
        text="Logo below.", html='<p>Logo below.</p><p><img alt="logo" src="cid:logo@customer"></p>',
    )  # fmt: skip
    logo = Attachment(
        filename="logo.png", content_type="image/png", size=len(PNG),
        sha256=services.blobs.put(PNG), content_id="logo@customer", is_inline=True,
    )  # fmt: skip
    email.attachments.append(logo)
    db.commit()
    return email


def test_forward_keeps_the_attachment(
    live_server, browser, db, services, smtp_server, rep, tmp_path
):
    original = make_email(db, users=[rep], subject="Technické listy", text="V prílohe.")
    pdf = b"%PDF-1.4\n% plan\n"
    original.attachments.append(
        Attachment(
            filename="plán výroby.pdf",
            content_type="application/pdf",
            sha256=services.blobs.put(pdf),
            size=len(pdf),
        )
    )
    original.has_attachments = True
    db.commit()
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{original.id}")
    page.get_by_role("link", name="Forward").click()
    expect(page.get_by_role("heading", name="Forward")).to_be_visible()
    # Nobody to send it to yet: the caret is in To.
    expect(page.get_by_label("To", exact=True)).to_be_focused()
    expect(page.get_by_label("Subject")).to_have_value("Fwd: Technické listy")
    expect(_editor(page)).to_contain_text("Forwarded message")
    kept = page.get_by_role("checkbox", name=re.compile("plán výroby.pdf"))
    expect(kept).to_be_checked()
    page.get_by_label("To", exact=True).fill("olga@partner.example")
    _shot(page, tmp_path, "forward")
    page.locator("#send-button").click()

    email_id = _mail_id(page)
    expect(page.locator(".mailhead .attachments")).to_contain_text("plán výroby.pdf")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    parsed = _received(smtp_server)
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "plán výroby.pdf"
    assert part.get_content() == pdf
    with services.session() as session:
        assert [a.filename for a in session.get(Email, email_id).attachments] == ["plán výroby.pdf"]


def test_undo_send_returns_to_the_draft(live_server, browser, services, smtp_server, rep, tmp_path):
    _undo_seconds(services, 60)
    page = browser
    sign_in(page, live_server)
    page.locator("#compose-new").click()
    page.get_by_label("To", exact=True).fill("jan@customer.example")
    page.get_by_label("Subject").fill("Omylom odoslané")
    _editor(page).click()
    page.keyboard.type("Ešte to nie je hotové.")
    page.locator("#send-button").click()

    email_id = _mail_id(page)
    expect(page.locator("#sending")).to_contain_text("Sending")
    _shot(page, tmp_path, "undo-offered")
    page.get_by_role("button", name="Undo send").click()
    expect(page).to_have_url(re.compile(rf"/compose/{email_id}$"))
    expect(page.get_by_role("heading", name="Draft")).to_be_visible()
    expect(page.get_by_text("Sending cancelled")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Omylom odoslané")
    expect(page.get_by_label("To", exact=True)).to_have_value("jan@customer.example")
    expect(_editor(page)).to_contain_text("Ešte to nie je hotové.")
    _shot(page, tmp_path, "undone")
    assert deliver_due(services) == [] and smtp_server.messages == []
    with services.session() as session:
        assert session.get(Email, email_id).status == "Draft"


def test_a_refused_from_shows_why_and_keeps_the_text(
    live_server, browser, services, smtp_server, rep, tmp_path
):
    page = browser
    sign_in(page, live_server)
    page.locator("#compose-new").click()
    sender = page.locator("#compose-from")
    expect(sender.locator("option[data-unsendable]")).to_have_text(
        re.compile("rita.private@example.com.*no SMTP account")
    )
    sender.select_option("rita.private@example.com")
    page.get_by_label("To", exact=True).fill("ann@customer.example")
    page.get_by_label("Subject").fill("Súkromne")
    _editor(page).click()
    page.keyboard.type("Text, ktorý sa nesmie stratiť.")
    page.locator("#send-button").click()

    error = page.locator("#send-error")
    expect(error).to_contain_text("No SMTP account can send from rita.private@example.com")
    expect(page.locator("#compose-from")).to_have_value("rita.private@example.com")
    expect(page.get_by_label("Subject")).to_have_value("Súkromne")
    expect(page.get_by_label("To", exact=True)).to_have_value("ann@customer.example")
    expect(_editor(page)).to_contain_text("Text, ktorý sa nesmie stratiť.")
    _shot(page, tmp_path, "refused")
    assert smtp_server.messages == []
    with services.session() as session:
        draft = session.scalar(select(Email).where(Email.subject == "Súkromne"))
        assert draft.status == "Draft"
        assert session.get(User, rep).username == "rep"


def _handed_over(services, user_id: int, subject: str, to: str = "ann@customer.example") -> int:
    """A mail written and sent the way the compose form does it (the setup of a test that is
    about what happens after the send)."""
    with services.session() as session:
        user = session.get(User, user_id)
        draft = DraftInput(
            from_address="rep@example.com", to=to, subject=subject, body="<p>Dobrý deň.</p>"
        )
        email = drafts.save(session, services.blobs, user, draft)
        session.commit()
        handed = outbox.submit(session, services.blobs, user, email)
        session.commit()
        return handed.email_id


def test_save_draft_then_send_keeps_one_mail(live_server, browser, services, smtp_server, rep):
    page = browser
    sign_in(page, live_server)
    page.locator("#compose-new").click()
    page.get_by_label("To", exact=True).fill("jan@customer.example")
    page.get_by_label("Subject").fill("Koncept")
    _editor(page).click()
    page.keyboard.type("Prvá verzia.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    # The save swapped only the status line: the editor still holds the text, and goes on.
    _editor(page).click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" Druhá.")
    page.locator("#send-button").click()
    email_id = _mail_id(page)
    assert [o.state for o in deliver_due(services)] == ["sent"]
    assert "Prvá verzia. Druhá." in _received(smtp_server).get_body(("plain",)).get_content()
    with services.session() as session:
        assert [e.id for e in session.scalars(select(Email))] == [email_id]


def test_a_failed_send_shows_the_servers_words(
    live_server, browser, services, smtp_server, rep, tmp_path
):
    email_id = _handed_over(services, rep, "Zamietnutá ponuka")
    smtp_server.script(answer_data="554 5.7.1 Message rejected as spam")
    assert [o.state for o in deliver_due(services)] == ["failed"]
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{email_id}")
    expect(page.locator(".mailhead .status")).to_have_text("Failed")
    expect(page.locator("#sending")).to_contain_text(
        "Not sent. The server said: 554 5.7.1 Message rejected as spam"
    )
    expect(page.get_by_role("link", name="Send again as a new mail")).to_be_visible()
    _shot(page, tmp_path, "mail-failed")


def test_send_again_copies_the_failed_mail(live_server, browser, services, smtp_server, rep):
    email_id = _handed_over(services, rep, "Zamietnutá ponuka", to="ann@customer.example")
    smtp_server.script(answer_data="554 5.7.1 Message rejected as spam")
    assert [o.state for o in deliver_due(services)] == ["failed"]
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{email_id}")
    page.get_by_role("link", name="Send again as a new mail").click()
    expect(page.get_by_label("Subject")).to_have_value("Zamietnutá ponuka", timeout=2000)
    expect(page.get_by_label("To", exact=True)).to_have_value("ann@customer.example")
    expect(_editor(page)).to_contain_text("Dobrý deň.")


def test_the_sent_mail_page_names_the_from_address(
    live_server, browser, services, smtp_server, rep
):
    email_id = _handed_over(services, rep, "Od koho?")
    assert [o.state for o in deliver_due(services)] == ["sent"]
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{email_id}")
    expect(page.locator(".mailhead .people")).to_contain_text("rep@example.com", timeout=2000)


def test_an_undone_send_is_not_dated_in_the_future(live_server, browser, services, rep):
    _undo_seconds(services, 60)
    email_id = _handed_over(services, rep, "Neskôr")
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{email_id}")
    page.get_by_role("button", name="Undo send").click()
    expect(page).to_have_url(re.compile(rf"/compose/{email_id}$"))
    with services.session() as session:
        assert session.get(Email, email_id).date_sent <= utcnow()


def test_a_drafts_mail_page_has_no_broken_view_original(live_server, browser, services, rep):
    with services.session() as session:
        draft = DraftInput(from_address="rep@example.com", to="ann@customer.example", subject="K")
        email_id = drafts.save(session, services.blobs, session.get(User, rep), draft).id
        session.commit()
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/mail/{email_id}")
    expect(page.get_by_role("link", name="Edit draft")).to_be_visible()
    original = page.get_by_role("link", name="View original")
    if original.count():
        href = original.get_attribute("href")
        assert page.request.get(f"{live_server}{href}").status == 200


def test_forward_carries_an_inline_image_the_editor_cannot_load(
    live_server, browser, db, services, smtp_server, rep, tmp_path
):
    original = _with_inline_image(db, services, rep, "Nové logo")
    page = browser
    errors = _console_errors(page)
    sign_in(page, live_server)
    page.goto(f"{live_server}/compose/?forward={original.id}")
    editor = _editor(page)
    expect(editor).to_contain_text("Logo below.")
    # The cid: image is a placeholder in the editor: nothing tried to load it.
    expect(editor.locator("img[data-cid-src='cid:logo@customer']")).to_have_count(1)
    page.get_by_label("To", exact=True).fill("olga@partner.example")
    page.locator("#send-button").click()
    _mail_id(page)
    assert errors == []
    assert [o.state for o in deliver_due(services)] == ["sent"]
    parsed = _received(smtp_server)
    html = parsed.get_body(("html",)).get_content()
    assert 'src="cid:logo@customer"' in html and "data-cid-src" not in html
    parts = {p["Content-ID"]: p for p in parsed.walk() if p["Content-ID"]}
    assert parts["<logo@customer>"].get_content() == PNG


def test_a_reply_quoting_an_inline_image_sends_no_dangling_cid(
    live_server, browser, db, services, smtp_server, rep
):
    original = _with_inline_image(db, services, rep, "Nové logo")
    page = browser
    sign_in(page, live_server)
    page.goto(f"{live_server}/compose/?reply={original.id}")
    expect(_editor(page)).to_contain_text("Logo below.")
    page.locator("#send-button").click()
    _mail_id(page)
    assert [o.state for o in deliver_due(services)] == ["sent"]
    parsed = _received(smtp_server)
    html = parsed.get_body(("html",)).get_content()
    cids = set(re.findall(r'src="cid:([^"]+)"', html))
    parts = {p["Content-ID"].strip("<>") for p in parsed.walk() if p["Content-ID"]}
    assert cids <= parts, f"{cids - parts} referenced but not in the mail"
