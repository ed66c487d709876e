"""A hard bounce of a mass mail, fetched by its group account from Dovecot: the import marks
the address invalid (crm.inbound.bounces), the mass mail's log shows the recipient as bounced,
and the next mass mail skips the address before rendering."""

from __future__ import annotations

from email.utils import format_datetime

from sqlalchemy import select

from crm.campaigns import progress
from crm.db import utcnow
from crm.models import Email, EmailAddress, MassMailRecipient
from crm.outbound.sending import deliver_due
from tests.campaigns.conftest import queued_an_hour_ago
from tests.support.mailboxes import fetch


def _dsn(original_id: str, recipient: str) -> bytes:
    """A Postfix-style RFC 3464 report: 5.1.1, action failed, the original's headers."""
    text = f"""Return-Path: <>
Message-ID: <report-mass-1@mx.example.com>
Date: {format_datetime(utcnow().replace(tzinfo=None), usegmt=False)}
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: news@example.com
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Type: text/plain; charset=us-ascii

<{recipient}>: host mx.customer.example said: 550 5.1.1 User unknown

--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--R
Content-Type: text/rfc822-headers

Message-ID: <{original_id}>
From: ACME News <news@example.com>
To: {recipient}
Subject: News

--R--
"""
    return text.replace("\n", "\r\n").encode()


def _send(db, services, campaign, name):
    found = queued_an_hour_ago(db, services, campaign, name)
    deliver_due(services)
    return found


def test_a_hard_bounce_shows_as_bounced_and_the_address_is_skipped_next_time(
    db, services, campaign, imap_server, smtp_server
):
    first = _send(db, services, campaign, "November news")
    ann = db.scalar(select(EmailAddress).where(EmailAddress.lower == "ann@customer.example"))
    email_id = db.scalar(select(MassMailRecipient.email_id).where(
        MassMailRecipient.mass_mail_id == first.id, MassMailRecipient.address_id == ann.id))  # fmt: skip
    original = db.get(Email, email_id)
    imap_server.append(campaign.imap_user, _dsn(original.message_id, "ann@customer.example"))
    assert fetch(services, campaign.account_id).error is None
    db.expire_all()
    assert db.get(EmailAddress, ann.id).invalid
    counts = progress.counts(db, first)
    assert counts["bounced"] == 1 and counts["sent"] == 2
    [line] = progress.recipients_page(db, first, "bounced").items
    assert line.address == "ann@customer.example" and line.label == "Bounced"
    smtp_server.messages.clear()
    second = _send(db, services, campaign, "December news")
    assert sorted(m["rcpt_tos"][0] for m in smtp_server.messages) == [
        "bob@customer.example", "cyd@customer.example"]  # fmt: skip
    assert progress.counts(db, second)["invalid"] == 1
