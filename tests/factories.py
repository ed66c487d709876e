"""Build rows directly for tests that do not need a real import (the importer has its own tests)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from crm.db import utcnow
from crm.mail.parse import snippet
from crm.models import Email, EmailRecipient, EmailUserState
from crm.records import addressbook

_seq = itertools.count(1)


def make_email(
    session,
    *,
    users=(),
    subject="Hello",
    from_addr="sender@customer.example",
    from_name="Sam Sender",
    to=("rep@example.com",),
    cc=(),
    text="Body text",
    html="",
    date: datetime | None = None,
    status="Archived",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references=(),
    parent=None,
    outgoing_for=(),
    **state,
) -> Email:
    """An Email with recipients and one state row per user id in `users` (flushed)."""
    n = next(_seq)
    message_id = message_id or f"test-{n}@factory.example"
    date = date or utcnow() - timedelta(minutes=n)
    rows = addressbook.find_or_create(session, [from_addr, *to, *cc])
    email = Email(
        identity=message_id,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=list(references),
        subject=subject,
        from_name=from_name,
        from_address_id=rows[from_addr.lower()].id,
        date_sent=date,
        body_text=text,
        body_html=html,
        snippet=snippet(text),
        address_text=" ".join([from_name, from_addr, *to, *cc]),
        status=status,
        parent_type=parent.entity_type if parent is not None else None,
        parent_id=parent.id if parent is not None else None,
    )
    pos = itertools.count()
    email.recipients = [
        EmailRecipient(
            position=next(pos), role="from", address_id=rows[from_addr.lower()].id, name=from_name
        )
    ]
    for role, addrs in (("to", to), ("cc", cc)):
        for addr in addrs:
            email.recipients.append(
                EmailRecipient(position=next(pos), role=role, address_id=rows[addr.lower()].id)
            )
    session.add(email)
    session.flush()
    for user_id in users:
        session.add(
            EmailUserState(
                email_id=email.id,
                user_id=user_id,
                sort_date=date,
                is_outgoing=user_id in outgoing_for,
                **state,
            )
        )
    session.flush()
    return email
