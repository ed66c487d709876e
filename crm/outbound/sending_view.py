"""What the mail page shows about a mail sent from the CRM (plain data for the template)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from crm.models import Email, MailAccount, User
from crm.models.outbox import QUEUED
from crm.outbound import outbox


@dataclass(frozen=True)
class SendingView:
    state: str
    due_at: datetime | None  # None while held: the stored time is no real one
    held: bool  # queued, but held by a paused mass mail
    finished_at: datetime | None
    scheduled: bool
    attempts: int
    last_reply: str
    from_address: str
    account_name: str
    may_cancel: bool
    refused: list = field(default_factory=list)


def of(session: Session, user: User, email: Email) -> SendingView | None:
    entry = outbox.entry_of(session, email.id)
    if entry is None or entry.state == "cancelled":
        return None
    account = session.get(MailAccount, entry.mail_account_id) if entry.mail_account_id else None
    return SendingView(
        state=entry.state,
        due_at=outbox.shown_due(entry),
        held=outbox.is_held(entry),
        finished_at=entry.finished_at,
        scheduled=entry.scheduled,
        attempts=entry.attempts,
        last_reply=entry.last_reply,
        from_address=entry.from_address,
        account_name=account.name if account else "",
        may_cancel=entry.state == QUEUED and entry.user_id == user.id,
        refused=[r for r in entry.recipients if r.state == "refused"],
    )
