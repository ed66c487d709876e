"""A stored draft as the outgoing message value (crm.mail.compose), and its envelope."""

from __future__ import annotations

import secrets
from datetime import UTC

from sqlalchemy.orm import Session, object_session

from crm.mail.compose import Mailbox, OutgoingAttachment, OutgoingMessage
from crm.models import Email, EmailAddress


def random_message_id(domain: str) -> str:
    return f"<crm.{secrets.token_hex(12)}@{domain.strip().lower()}>"


def from_address(email: Email) -> str:
    row = email_address(email)
    return row.address if row is not None else ""


def email_address(email: Email) -> EmailAddress | None:
    session = object_session(email)
    if session is None or email.from_address_id is None:
        return None
    return session.get(EmailAddress, email.from_address_id)


def mailboxes(email: Email, role: str) -> tuple[Mailbox, ...]:
    return tuple(Mailbox(r.name, r.address.address) for r in email.recipients if r.role == role)


def envelope(email: Email) -> list[str]:
    """Every To, Cc and Bcc address once, in order (what RCPT TO gets)."""
    seen, out = set(), []
    for r in email.recipients:
        if r.role in ("to", "cc", "bcc") and r.address.lower not in seen:
            seen.add(r.address.lower)
            out.append(r.address.address)
    return out


def outgoing(session: Session, blobs, email: Email, sender) -> OutgoingMessage:
    attachments = tuple(
        OutgoingAttachment(
            filename=a.filename,
            content_type=a.content_type,
            data=blobs.get(a.sha256),
            content_id=a.content_id,
            inline=a.is_inline,
        )
        for a in email.attachments
    )
    return OutgoingMessage(
        sender=Mailbox(sender.name, sender.address),
        to=mailboxes(email, "to"),
        cc=mailboxes(email, "cc"),
        bcc=mailboxes(email, "bcc"),
        subject=email.subject,
        text=email.body_text,
        html=email.body_html,
        attachments=attachments,
        message_id=f"<{email.message_id}>",
        in_reply_to=f"<{email.in_reply_to}>" if email.in_reply_to else None,
        references=tuple(f"<{r}>" for r in email.references or ()),
        date=email.date_sent.replace(tzinfo=UTC) if email.date_sent else None,
    )
