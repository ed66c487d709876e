"""Bounces on the mail that bounced, against a real Dovecot: a sent mail and its bounce show each
other, a hard bounce marks the address invalid, a delay warning is only a warning, plain-text
bounces count too, and machine mail carries one badge in the list and on its page.

crm.inbound.bounces.link_bounces is the import's hook for its new mail; the tests also call it
after the fetch on everything stored, which must change nothing (it is idempotent)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select

from crm.inbound import bounces, importing
from crm.models import Case, Email, EmailAddress, OutboxRecipient, Team
from crm.models.bounces import DeliveryReport
from tests.support.mailboxes import fetch, make_account, raw_message

ORIGINAL_ID = "<quote-1@crm.example>"
NOBODY = "nobody@nowhere.example"


def _crlf(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode()


def _report(
    original_id=ORIGINAL_ID,
    recipient=NOBODY,
    *,
    action="failed",
    status="5.1.1",
    diagnostic="smtp; 550 5.1.1 User unknown",
    subject="Undelivered Mail Returned to Sender",
    report_id="<report-1@mx.crm.example>",
    when=None,
) -> bytes:
    """A Postfix-style RFC 3464 report with the failed mail's headers attached."""
    when = when or datetime.now(UTC)
    return _crlf(f"""
Return-Path: <>
Message-ID: {report_id}
Date: {format_datetime(when)}
From: Mail Delivery System <MAILER-DAEMON@mx.crm.example>
To: rep@example.com
Subject: {subject}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.crm.example.

<{recipient}>: host mx.nowhere.example said: {diagnostic.split("; ", 1)[-1]}

--R
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.crm.example

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: {diagnostic}

--R
Content-Description: Undelivered Message
Content-Type: message/rfc822

Message-ID: {original_id}
From: Renata <rep@example.com>
To: {recipient}
Subject: Your quote

Here is your quote.

--R--
""")


QMAIL = _crlf("""
Return-Path: <>
From: MAILER-DAEMON@mail.nowhere.example
To: rep@example.com
Subject: failure notice
Message-ID: <qmail-1@mail.nowhere.example>

Hi. This is the qmail-send program at mail.nowhere.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@nowhere.example>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <rep@example.com>
Message-ID: <quote-1@crm.example>
From: rep@example.com
To: nobody@nowhere.example
Subject: Your quote

Here is your quote.
""")


def _original(**kwargs) -> bytes:
    return raw_message(
        subject="Your quote",
        from_="Renata <rep@example.com>",
        to=f"Nobody <{NOBODY}>",
        message_id=ORIGINAL_ID,
        date=datetime.now(UTC) - timedelta(minutes=5),
        **kwargs,
    )


def _link_after_fetch(services) -> None:
    """What the import's hook does for its new mail, for all mail stored so far."""
    with services.session() as session:
        emails = list(session.scalars(select(Email).order_by(Email.id)))
        bounces.link_bounces(session, services.blobs, emails)
        session.commit()


def _mail_id(db, message_id: str) -> int:
    db.rollback()
    return db.scalar(select(Email.id).where(Email.message_id == message_id.strip("<>")))


def _invalid(db, address: str) -> bool:
    db.rollback()
    return db.scalar(select(EmailAddress.invalid).where(EmailAddress.lower == address.lower()))


@pytest.fixture
def rep(client, make_user, services, imap_server):
    """rep, signed in, with a mail account over INBOX and Sent of a fresh mailbox."""
    uid = make_user("rep", ["rep@example.com"], name="Renáta Šťastná")
    box = imap_server.new_user()
    account = make_account(
        services, uid, imap_server, box, email="rep@example.com", folders=("INBOX", "Sent")
    )
    client.login("rep")
    return box, account


def _page(client, email_id: int) -> str:
    response = client.get(f"/mail/{email_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_sent_mail_and_its_bounce_show_each_other(services, db, client, imap_server, rep):
    box, account = rep
    imap_server.append(box, _original(), folder="Sent")
    imap_server.append(box, _report())
    assert fetch(services, account).imported == 2
    _link_after_fetch(services)
    original, report = _mail_id(db, ORIGINAL_ID), _mail_id(db, "<report-1@mx.crm.example>")

    row = db.get(DeliveryReport, report)
    assert (row.kind, row.original_email_id) == ("bounce", original)
    assert [(r.address, r.action, r.status) for r in row.recipients] == [
        (NOBODY, "failed", "5.1.1")
    ]
    assert _invalid(db, NOBODY)

    on_original = _page(client, original)
    assert re.search(rf'<a href="/mail/{report}[?"]', on_original)
    assert re.search(
        r"Bounced: 5\.1\.1 nobody@nowhere\.example</a> <span class=\"muted\">\(<time", on_original
    )

    on_report = _page(client, report)
    text = _text(on_report)
    assert re.search(
        rf'Original message: <a href="/mail/{original}[?"][^>]*>Your quote</a>', on_report
    )
    assert f"{NOBODY} 5.1.1 Failed 550 5.1.1 User unknown" in text  # the report's table row
    assert "Reported by mx.crm.example" in text
    # One badge: a bounce, not also an auto-reply (it carries Auto-Submitted)
    assert 'class="badge warn machine bounce">Bounce<' in on_report
    assert "Auto-reply" not in on_report
    # The report's parts are the report, not attachments; they stay in the original source
    assert "part1.txt" not in on_report and ".eml" not in on_report
    assert "/attachments/" not in on_report
    assert client.get(f"/mail/{report}/original").status_code == 200


def test_bounce_fetched_before_its_original_is_linked_when_it_comes(
    services, db, client, imap_server, rep
):
    box, account = rep
    imap_server.append(box, _report())
    fetch(services, account)
    _link_after_fetch(services)
    report = _mail_id(db, "<report-1@mx.crm.example>")
    assert db.get(DeliveryReport, report).original_email_id is None
    assert not _invalid(db, NOBODY)  # nothing is known to have been sent to it
    assert "is not in the CRM" in _text(_page(client, report))

    imap_server.append(box, _original(), folder="Sent")
    fetch(services, account)
    with services.session() as session:  # the hook sees only the mail stored now
        new = list(session.scalars(select(Email).where(Email.message_id == "quote-1@crm.example")))
        bounces.link_bounces(session, services.blobs, new)
        session.commit()
    original = _mail_id(db, ORIGINAL_ID)
    db.rollback()
    assert db.get(DeliveryReport, report).original_email_id == original
    assert _invalid(db, NOBODY)
    assert "Bounced: 5.1.1 nobody@nowhere.example" in _text(_page(client, original))


def test_delay_warning_is_shown_as_such_and_marks_nothing(services, db, client, imap_server, rep):
    box, account = rep
    imap_server.append(box, _original(), folder="Sent")
    imap_server.append(
        box,
        _report(
            action="delayed",
            status="4.4.1",
            diagnostic="smtp; 451 4.4.1 Connection timed out",
            subject="Delayed Mail (still being retried)",
        ),
    )
    fetch(services, account)
    _link_after_fetch(services)
    original, report = _mail_id(db, ORIGINAL_ID), _mail_id(db, "<report-1@mx.crm.example>")
    assert db.get(DeliveryReport, report).kind == "delay"
    assert not _invalid(db, NOBODY)

    on_original = _text(_page(client, original))
    assert "Delivery delayed: 4.4.1 nobody@nowhere.example" in on_original
    assert "Bounced" not in on_original
    on_report = _page(client, report)
    assert ">Delivery delayed<" in on_report
    assert ">Bounce<" not in on_report and "Auto-reply" not in on_report
    assert f"{NOBODY} 4.4.1 Delayed 451 4.4.1 Connection timed out" in _text(on_report)


def test_plain_text_bounce_counts_as_a_bounce(services, db, client, imap_server, rep):
    box, account = rep
    imap_server.append(box, _original(), folder="Sent")
    imap_server.append(box, QMAIL)
    fetch(services, account)
    report = _mail_id(db, "<qmail-1@mail.nowhere.example>")
    # The header rules do not know qmail's text; the import's bounce hook read it.
    assert db.get(Email, report).is_bounce
    _link_after_fetch(services)  # a second run changes nothing
    original = _mail_id(db, ORIGINAL_ID)
    db.rollback()
    assert db.get(Email, report).is_bounce
    assert db.get(DeliveryReport, report).original_email_id == original
    assert _invalid(db, NOBODY)
    assert "Bounced: 5.1.1 nobody@nowhere.example" in _text(_page(client, original))
    on_report = _page(client, report)
    assert re.search(rf'Original message: <a href="/mail/{original}[?"]', on_report)
    assert ">Bounce<" in on_report


def test_only_addresses_the_original_was_sent_to_are_marked(services, db, imap_server, rep):
    box, account = rep
    imap_server.append(box, _original(), folder="Sent")
    # A report about the stored mail naming someone it never went to, and one about a mail
    # that is not stored at all (backscatter): neither marks anything.
    imap_server.append(box, _report(recipient="stranger@else.example"))
    imap_server.append(
        box,
        _report(original_id="<forged@spam.example>", report_id="<report-2@mx.crm.example>"),
    )
    with services.session() as session:  # both addresses are known, valid, before
        from crm.records import addressbook

        addressbook.find_or_create(session, ["stranger@else.example", NOBODY])
        session.commit()
    fetch(services, account)
    _link_after_fetch(services)
    assert not _invalid(db, "stranger@else.example")
    assert not _invalid(db, NOBODY)


def test_linking_twice_changes_nothing(services, db, imap_server, rep):
    box, account = rep
    imap_server.append(box, _original(), folder="Sent")
    imap_server.append(box, _report())
    fetch(services, account)
    _link_after_fetch(services)
    _link_after_fetch(services)
    db.rollback()
    assert len(db.scalars(select(DeliveryReport)).all()) == 1


def test_mail_list_shows_one_badge_per_machine_mail(services, db, client, imap_server, rep):
    box, account = rep
    imap_server.append(box, _original(), folder="Sent")
    imap_server.append(box, _report())
    imap_server.append(
        box,
        _report(
            action="delayed",
            status="4.4.1",
            report_id="<report-2@mx.crm.example>",
            subject="Delayed Mail (still being retried)",
        ),
    )
    imap_server.append(
        box,
        raw_message(
            subject="Out of office",
            message_id="<ooo-1@customer.example>",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    imap_server.append(box, raw_message(subject="A person", message_id="<person@x.example>"))
    fetch(services, account)
    _link_after_fetch(services)
    html = client.get("/inbox/").get_data(as_text=True)
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<tr class="mailrow[^"]*" id="mail-(\d+)"(.*?)</tr>', html, re.DOTALL)
    }
    badges = {
        email_id: re.findall(r'class="badge machine [^"]+">([^<]+)<', row)
        for email_id, row in rows.items()
    }
    assert badges == {
        str(_mail_id(db, "<report-1@mx.crm.example>")): ["Bounce"],
        str(_mail_id(db, "<report-2@mx.crm.example>")): ["Delivery delayed"],
        str(_mail_id(db, "<ooo-1@customer.example>")): ["Auto-reply"],
        str(_mail_id(db, "<person@x.example>")): [],
    }
    # the report's parts are no attachments in the list either
    assert "Has attachments" not in rows[str(_mail_id(db, "<report-1@mx.crm.example>"))]


def test_the_import_hook_links_and_keeps_bounces_out_of_cases(
    services, db, client, make_user, imap_server, monkeypatch
):
    """link_bounces placed first in importing._link: reports are linked as they are imported,
    and a plain-text bounce is a bounce before email-to-case looks at it (no case, no auto-reply)."""
    inner = importing._link

    def _link(session, ctx, emails, *args, **kwargs):
        bounces.link_bounces(session, ctx.blobs, emails)
        return inner(session, ctx, emails, *args, **kwargs)

    monkeypatch.setattr(importing, "_link", _link)
    uid = make_user("rep", ["rep@example.com"], teams=["Support"])
    team_id = db.scalar(select(Team.id).where(Team.name == "Support"))
    personal, group = imap_server.new_user(), imap_server.new_user()
    mine = make_account(
        services, uid, imap_server, personal, email="rep@example.com", folders=("INBOX", "Sent")
    )
    support = make_account(
        services,
        None,
        imap_server,
        group,
        email="support@example.com",
        is_group=True,
        team_ids=[team_id],
        add_all_team_users=True,
        create_case=True,
        case_distribution="round-robin",
        case_team_id=team_id,
        auto_reply=True,
        smtp_host="127.0.0.1",
    )
    imap_server.append(personal, _original(), folder="Sent")
    imap_server.append(group, QMAIL)
    imap_server.append(group, raw_message(to="support@example.com", message_id="<ask@c.example>"))
    assert fetch(services, mine).failed == 0
    assert fetch(services, support).failed == 0
    report, original = _mail_id(db, "<qmail-1@mail.nowhere.example>"), _mail_id(db, ORIGINAL_ID)
    db.rollback()
    assert db.get(Email, report).is_bounce
    assert db.get(Email, report).parent_type is None  # no case for the bounce
    assert db.get(DeliveryReport, report).original_email_id == original
    assert _invalid(db, NOBODY)
    # the person's mail did open a case: email-to-case itself is on
    assert len(db.scalars(select(Case)).all()) == 1
    answered = [r.address.lower() for r in db.scalars(select(OutboxRecipient))]
    assert not any("mailer-daemon" in a for a in answered)  # no auto-reply to the bounce
