"""Compose: new mail, reply, reply all, forward, drafts, sending, undo, refusals."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from crm import settings
from crm.models import Attachment, Email, OutboxEntry, User
from crm.outbound.sending import deliver_due
from tests.factories import make_email
from tests.support import records
from tests.support.sending import smtp_only_account


@pytest.fixture
def rep(services, user_client, smtp_server):
    """rep (rep@example.com), signed in, with an SMTP account on the test server."""
    with services.session() as session:
        user = session.scalar(select(User).where(User.username == "rep"))
        user.signature = "Rita Rep\nACME Sales"
        smtp_only_account(
            session, services, user.id, "rep@example.com", smtp_server.host, smtp_server.port
        )
        settings.put(session, "undo_send_seconds", 0)
        return user.id


def _form(client, url="/compose/"):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def _value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    return match.group(1) if match else ""


def test_compose_offers_own_addresses_and_the_signature_once(user_client, rep):
    page = _form(user_client)
    assert '<option value="rep@example.com" selected>' in page
    assert page.count("ACME Sales") == 2  # the plain textarea and the HTML editor's source
    assert "Rita Rep" in page


def test_send_delivers_once_and_the_mail_page_tells(user_client, rep, services, smtp_server, db):
    response = user_client.post(
        "/compose/",
        data={
            "action": "send",
            "from": "rep@example.com",
            "to": "Žofia Nováková <zofia@customer.example>",
            "subject": "Ponuka – Grüße",
            "body": "Dobrý deň,\nponuka v prílohe.",
            "format": "text",
        },
    )
    assert response.status_code == 303
    email_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert [o.state for o in deliver_due(services)] == ["sent"]
    [received] = smtp_server.messages
    parsed = message_from_bytes(received["data"], policy=policy.default)
    assert parsed["Subject"] == "Ponuka – Grüße"
    assert parsed["To"].addresses[0].display_name == "Žofia Nováková"
    assert "ponuka v prílohe" in parsed.get_body(("plain",)).get_content()
    page = user_client.get(f"/mail/{email_id}").get_data(as_text=True)
    assert "Sent" in page and "The server said: 250" in page


def test_a_sender_not_on_the_record_is_refused_and_the_draft_kept(user_client, rep, db):
    response = user_client.post(
        "/compose/",
        data={"action": "send", "from": "boss@example.com", "to": "a@b.example", "subject": "X"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "You may not send from boss@example.com" in page
    db.rollback()
    draft = db.scalar(select(Email).where(Email.subject == "X"))
    assert draft is not None and draft.status == "Draft"
    assert db.query(OutboxEntry).count() == 0


def test_a_line_break_in_the_subject_is_an_error_not_a_500(user_client, rep):
    response = user_client.post(
        "/compose/",
        data={"action": "send", "from": "rep@example.com", "to": "a@b.example",
              "subject": "Hi\r\nBcc: evil@x.example"},
    )  # fmt: skip
    assert response.status_code == 422
    assert "line breaks" in response.get_data(as_text=True)


def test_a_bad_address_is_named_and_nothing_is_dropped(user_client, rep):
    response = user_client.post(
        "/compose/",
        data={"action": "send", "from": "rep@example.com", "to": "ann@x.example, not-an-address"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "not an e-mail address: not-an-address" in page
    assert "ann@x.example, not-an-address" in page


def test_reply_answers_the_sender_quotes_and_threads(user_client, rep, db):
    acme = records.account(db)
    original = make_email(
        db, users=[rep], subject="AW: Offer", from_addr="ann@customer.example",
        from_name="Ann Buyer", cc=("rep@example.com", "boss@customer.example"),
        message_id="orig@customer.example", references=("first@customer.example",),
        text="Can you do 10% less?", parent=acme,
    )  # fmt: skip
    db.commit()
    page = _form(user_client, f"/compose/?reply={original.id}")
    assert _value(page, "subject") == "AW: Offer"
    assert "ann@customer.example" in _value(page, "to")
    assert _value(page, "cc") == ""
    assert _value(page, "in_reply_to") == "orig@customer.example"
    assert _value(page, "references") == "first@customer.example orig@customer.example"
    assert "Can you do 10% less?" in page and "wrote:" in page
    assert _value(page, "parent_type") == "Account"
    everyone = _form(user_client, f"/compose/?reply={original.id}&all=1")
    assert "boss@customer.example" in _value(everyone, "cc")
    assert "rep@example.com" not in _value(everyone, "cc")


def test_forward_carries_the_attachments(user_client, rep, db, services):
    original = make_email(db, users=[rep], subject="Specs")
    original.attachments.append(
        Attachment(filename="plán.pdf", sha256=services.blobs.put(b"%PDF-1"), size=6)
    )
    db.commit()
    page = _form(user_client, f"/compose/?forward={original.id}")
    assert _value(page, "subject") == "Fwd: Specs"
    assert "Forwarded message" in page and "plán.pdf" in page


def test_a_draft_is_saved_listed_edited_and_discarded(user_client, rep, db):
    response = user_client.post(
        "/compose/",
        data={"action": "save", "from": "rep@example.com", "to": "a@b.example", "subject": "Later"},
    )
    assert response.status_code == 303
    url = response.headers["Location"]
    assert "Later" in user_client.get("/inbox/drafts").get_data(as_text=True)
    assert _value(_form(user_client, url), "subject") == "Later"
    again = user_client.post(
        url, data={"action": "save", "from": "rep@example.com", "to": "", "subject": "Later 2"}
    )
    assert again.status_code == 303
    db.rollback()
    assert db.query(Email).filter(Email.subject.like("Later%")).count() == 1
    gone = user_client.post(url, data={"action": "discard"})
    assert gone.status_code == 303
    assert gone.headers["Location"].endswith("/inbox/drafts")  # back to the list it came from
    db.rollback()
    assert db.query(Email).filter(Email.subject.like("Later%")).count() == 0


def test_autosave_of_a_new_mail_keeps_one_draft(user_client, rep, db):
    first = user_client.post(
        "/compose/", htmx=True, data={"action": "save", "from": "rep@example.com", "subject": "A"}
    )
    draft_id = _value(first.get_data(as_text=True), "draft_id")
    assert draft_id
    user_client.post(
        "/compose/",
        htmx=True,
        data={"action": "save", "from": "rep@example.com", "subject": "AB", "draft_id": draft_id},
    )
    db.rollback()
    assert [e.subject for e in db.query(Email).all()] == ["AB"]


def test_undo_turns_the_mail_back_into_a_draft(user_client, rep, db, services, smtp_server):
    settings.put(db, "undo_send_seconds", 60)
    db.commit()
    response = user_client.post(
        "/compose/",
        data={"action": "send", "from": "rep@example.com", "to": "a@b.example", "subject": "Oops"},
    )
    email_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert "Undo send" in user_client.get(f"/mail/{email_id}").get_data(as_text=True)
    undone = user_client.post(f"/compose/{email_id}/undo")
    assert undone.headers["Location"].endswith(f"/compose/{email_id}")
    assert deliver_due(services) == [] and smtp_server.messages == []
    db.rollback()
    assert db.get(Email, email_id).status == "Draft"


def test_a_scheduled_mail_is_listed_by_subject_and_recipient(user_client, rep, services):
    response = user_client.post(
        "/compose/",
        data={
            "action": "schedule",
            "send_at": "2099-03-01T09:30",
            "from": "rep@example.com",
            "to": "Žofia Nováková <zofia@customer.example>, jan@customer.example",
            "subject": "Pripomienka – zmluva",
        },
    )
    assert response.status_code == 303
    assert deliver_due(services) == []  # not due before its time
    page = user_client.get("/compose/").get_data(as_text=True)
    scheduled = page[page.index("<h2>Scheduled</h2>") :]
    assert "Pripomienka – zmluva</a>" in scheduled
    assert "to zofia@customer.example and 1 more" in scheduled and "mail #" not in scheduled
    mail_page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert '<span class="badge status status-scheduled">Scheduled</span>' in mail_page


def test_external_mail_client_preference_gives_mailto_links(user_client, rep, db):
    db.get(User, rep).use_external_client = True
    db.commit()
    page = user_client.get("/inbox/").get_data(as_text=True)
    assert 'id="compose-new" href="mailto:"' in page
    acme = records.contact(db, addresses=["ann@customer.example"], assigned_user_id=rep)
    db.commit()
    detail = user_client.get(f"/records/contacts/{acme.id}").get_data(as_text=True)
    assert 'href="mailto:ann@customer.example"' in detail


def test_address_suggestions_find_contacts(user_client, rep, db):
    records.contact(
        db, first="Žofia", last="Nováková", addresses=["zofia@customer.example"],
        assigned_user_id=rep,
    )  # fmt: skip
    records.contact(db, first="Zoltán", last="Hidden", addresses=["zoltan@other.example"])
    db.commit()
    found = user_client.get("/compose/addresses?field=to&to=zo").get_data(as_text=True)
    assert "&#34;Žofia Nováková&#34; &lt;zofia@customer.example&gt;" in found
    assert "zoltan@other.example" not in found  # a record the user may not see stays hidden
