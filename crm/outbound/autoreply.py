"""Auto-replies of group accounts to mail that opens a new case.

RFC 3834 says when not to answer: never automatic mail (Auto-Submitted other than "no"),
bounces, mailing lists (List-* headers, Precedence bulk/list/junk) or our own mail, and not
again and again to one sender. The reply is stamped `Auto-Submitted: auto-replied` and
`X-Auto-Response-Suppress: All` (the header Exchange honours), names the case number in the
subject so the sender's answer joins the case, and goes out through the outbox like any mail.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import settings
from crm.db import utcnow
from crm.mail import replying, threadtoken
from crm.mail.compose import Mailbox, OutgoingMessage, check_headers, to_bytes
from crm.mail.errors import MailError
from crm.mail.parse import ParsedMail, normalise_message_id
from crm.models import (
    Case,
    Email,
    EmailAddress,
    EmailAddressLink,
    EmailRecipient,
    MailAccount,
    OutboxEntry,
    OutboxRecipient,
)
from crm.models.mail import STATUS_SENDING
from crm.outbound.message import random_message_id
from crm.records import addressbook
from crm.records.linking import session_key

HEADERS = (("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"))
DEFAULT_TEXT = (
    "Thank you for your message. We have opened case [#{number}] for it and will answer "
    "as soon as we can. Please keep the case number in the subject when you reply."
)


def reason_not_to_answer(mail: ParsedMail, ours: set[str]) -> str | None:
    """Why this mail gets no auto-reply, or None when it may get one (pure)."""
    if mail.is_bounce:
        return "bounce"
    submitted = (mail.header("Auto-Submitted") or "no").strip().lower()
    if mail.is_auto_reply or not submitted.startswith("no"):
        return "automatic"
    if any(name.lower().startswith("list-") for name, _ in mail.headers):
        return "mailing list"
    if (mail.header("Precedence") or "").strip().lower() in ("bulk", "list", "junk"):
        return "bulk"
    if not mail.from_ or mail.from_[1].lower() in ours:
        return "our own"
    return None


def our_addresses(session: Session) -> set[str]:
    """Users' and accounts' addresses: mail from them is never answered automatically."""
    users = (
        select(EmailAddress.lower)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == "User")
    )
    accounts = select(func.lower(MailAccount.email_address))
    return set(session.scalars(users)) | set(session.scalars(accounts))


def queue_auto_reply(
    session: Session, blobs, account: MailAccount, email: Email, mail: ParsedMail, case: Case
) -> OutboxEntry | None:
    """An auto-reply to the mail that opened `case`, queued for sending; None when the rules
    say no (the caller commits; the outbox sweeper picks it up)."""
    if not (account.auto_reply and account.smtp_host):
        return None
    if reason_not_to_answer(mail, our_addresses(session)) is not None:
        return None
    to = (mail.reply_to or (mail.from_,))[0]
    if _answered_lately(session, account, to[1]):
        return None
    message_id = _message_id(session, account, case)
    subject = account.auto_reply_subject or replying.reply_subject(mail.subject)
    if f"[#{case.number}]" not in subject:
        subject = f"{subject} [#{case.number}]"
    text = (account.auto_reply_text or DEFAULT_TEXT).replace("{number}", str(case.number))
    outgoing = OutgoingMessage(
        sender=Mailbox(account.name, account.email_address),
        to=(Mailbox(to[0], to[1]),),
        subject=subject,
        text=text,
        message_id=f"<{message_id}>",
        in_reply_to=f"<{mail.message_id}>" if mail.message_id else None,
        references=(f"<{mail.message_id}>",) if mail.message_id else (),
        date=utcnow(),
        extra_headers=HEADERS,
    )
    try:
        check_headers(outgoing)
    except MailError:
        return None  # an address we cannot write back to safely gets no answer
    return _store(session, blobs, account, case, outgoing, message_id, to)


def _answered_lately(session: Session, account: MailAccount, address: str) -> bool:
    hours = int(settings.get(session, "auto_reply_period_hours"))
    cap = int(settings.get(session, "auto_reply_max_per_sender"))
    since = utcnow() - timedelta(hours=hours)
    sent = session.scalar(
        select(func.count(OutboxEntry.id))
        .join(Email, Email.id == OutboxEntry.email_id)
        .join(OutboxRecipient, OutboxRecipient.entry_id == OutboxEntry.id)
        .where(
            OutboxEntry.mail_account_id == account.id,
            Email.is_auto_reply.is_(True),
            OutboxEntry.created_at > since,
            func.lower(OutboxRecipient.address) == address.lower(),
        )
    )
    return sent >= cap


def _message_id(session: Session, account: MailAccount, case: Case) -> str:
    domain = account.email_address.rpartition("@")[2] or "localhost"
    key = session_key(session)
    raw = (
        threadtoken.make_message_id(key, "Case", case.id, domain)
        if key
        else random_message_id(domain)
    )
    return normalise_message_id(raw)


def _store(session, blobs, account, case, outgoing: OutgoingMessage, message_id, to):
    raw = to_bytes(outgoing)
    rows = addressbook.find_or_create(session, [account.email_address, to[1]])
    now = utcnow()
    email = Email(
        identity=message_id,
        message_id=message_id,
        in_reply_to=(outgoing.in_reply_to or "").strip("<>") or None,
        references=[r.strip("<>") for r in outgoing.references],
        subject=outgoing.subject,
        from_name=account.name,
        from_address_id=rows[account.email_address.lower()].id,
        date_sent=now,
        body_text=outgoing.text,
        snippet=outgoing.text[:200],
        address_text=f"{to[0]} {to[1]}",
        status=STATUS_SENDING,
        is_auto_reply=True,
        raw_sha256=blobs.put(raw),
        size=len(raw),
        parent_type="Case",
        parent_id=case.id,
        link_rule="auto-reply",
    )
    email.recipients = [
        EmailRecipient(
            position=0, role="from", address_id=rows[account.email_address.lower()].id,
            name=account.name,
        ),
        EmailRecipient(position=1, role="to", address_id=rows[to[1].lower()].id, name=to[0]),
    ]  # fmt: skip
    session.add(email)
    session.flush()
    entry = OutboxEntry(
        email_id=email.id,
        mail_account_id=account.id,
        from_address=account.email_address,
        due_at=now,
        attempts=0,
        last_reply="",
        recipients=[OutboxRecipient(position=0, address=to[1], state="pending", reply="")],
    )
    session.add(entry)
    session.flush()
    return entry
