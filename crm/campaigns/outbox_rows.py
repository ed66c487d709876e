"""A mass mail's rows in the outbox: how many are unfinished, holding them, cancelling them.

A batch hands its mails to the outbox at once, due over the following minutes or hours (at
10 an hour a batch of 100 takes ten hours), so pausing or cancelling must reach the rows
already there, or it would change nothing for hours. Only rows still "queued" are touched,
each by a conditional UPDATE on that state: a row a worker has taken ("sending") or finished
is never changed, whoever gets there first. A held row stays queued with a due time no
worker reaches (HELD_UNTIL); resuming spaces the held rows from then at the mass mail's rate.
The caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm.models import Email, MassMail, MassMailRecipient, OutboxEntry
from crm.models import outbox as outbox_states
from crm.models.campaigns import QUEUED
from crm.models.mail import STATUS_FAILED
from crm.outbound.outbox import HELD_UNTIL  # what a held row is belongs to the outbox

CANCELLED_REPLY = "Cancelled with the mass mail before it was sent."
HELD_LABEL = "held (mass mail paused)"


@dataclass(frozen=True)
class Unfinished:
    queued: int = 0  # waiting in the outbox (held ones included)
    sending: int = 0  # taken by a worker: will end sent, failed or unknown

    @property
    def total(self) -> int:
        return self.queued + self.sending


def _emails_of(mass_mail_id: int):
    R = MassMailRecipient
    return select(R.email_id).where(
        R.mass_mail_id == mass_mail_id, R.status == QUEUED, R.email_id.is_not(None)
    )


def unfinished(session: Session, mass_mail_ids: list[int]) -> dict[int, Unfinished]:
    """Outbox rows not yet final, per mass mail (absent: none), in one query."""
    if not mass_mail_ids:
        return {}
    R, entry = MassMailRecipient, OutboxEntry
    stmt = (
        select(R.mass_mail_id, entry.state, func.count())
        .join(entry, entry.email_id == R.email_id)
        .where(R.mass_mail_id.in_(mass_mail_ids), R.status == QUEUED)
        .where(entry.state.in_((outbox_states.QUEUED, outbox_states.SENDING)))
        .group_by(R.mass_mail_id, entry.state)
    )
    found: dict[int, dict[str, int]] = {}
    for mass_mail_id, state, number in session.execute(stmt):
        found.setdefault(mass_mail_id, {})[state] = number
    return {
        i: Unfinished(s.get(outbox_states.QUEUED, 0), s.get(outbox_states.SENDING, 0))
        for i, s in found.items()
    }


def _still_queued(mass_mail_id: int):
    return update(OutboxEntry).where(
        OutboxEntry.state == outbox_states.QUEUED,
        OutboxEntry.email_id.in_(_emails_of(mass_mail_id)),
    )


def hold(session: Session, found: MassMail) -> int:
    """Keep the queued rows from being sent until released; answers how many."""
    stmt = _still_queued(found.id).values(due_at=HELD_UNTIL)
    return session.execute(stmt, execution_options={"synchronize_session": False}).rowcount


def release(session: Session, found: MassMail, now: datetime) -> int:
    """Make the held rows due again, spaced at the rate from now; answers how many. The next
    batch is spaced after them (crm.campaigns.batches asks last_due)."""
    held = session.scalars(
        select(OutboxEntry.id)
        .where(OutboxEntry.state == outbox_states.QUEUED, OutboxEntry.due_at == HELD_UNTIL)
        .where(OutboxEntry.email_id.in_(_emails_of(found.id)))
        .order_by(OutboxEntry.id)
    ).all()
    spacing = timedelta(seconds=3600 / found.per_hour)
    for position, entry_id in enumerate(held):  # a batch or two: a few hundred rows at most
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == entry_id, OutboxEntry.state == outbox_states.QUEUED)
            .values(due_at=now + position * spacing),
            execution_options={"synchronize_session": False},
        )
    return len(held)


def last_due(session: Session, found: MassMail) -> datetime | None:
    """When the last of the mass mail's waiting (not held) rows is due, if any waits."""
    return session.scalar(
        select(func.max(OutboxEntry.due_at))
        .where(OutboxEntry.state == outbox_states.QUEUED, OutboxEntry.due_at < HELD_UNTIL)
        .where(OutboxEntry.email_id.in_(_emails_of(found.id)))
    )


def cancel(session: Session, found: MassMail, now: datetime) -> int:
    """Cancel the rows still queued (held or not); answers how many. Their mails were never
    sent: they become Failed, the final state for mail that did not go, so the records'
    histories stop showing them as Sending."""
    stmt = (
        _still_queued(found.id)
        .values(state=outbox_states.CANCELLED, finished_at=now, last_reply=CANCELLED_REPLY)
        .returning(OutboxEntry.email_id)
    )
    email_ids = list(session.scalars(stmt, execution_options={"synchronize_session": False}))
    if email_ids:
        session.execute(
            update(Email).where(Email.id.in_(email_ids)).values(status=STATUS_FAILED),
            execution_options={"synchronize_session": False},
        )
    return len(email_ids)
