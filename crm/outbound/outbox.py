"""The outbox: handing a draft over for sending, undo, scheduling, leases and the sweeper.

Handing over is one transaction: the mail becomes Sending, gets its Message-ID (once; a retry
sends the same bytes), its bytes are stored, and an outbox row is written. The job that
delivers it is queued by the caller only after the commit and takes the row's id, so a job
never sees a row that is not there and a crash before the commit leaves a draft, not a ghost.

A worker takes rows by moving them from queued to sending under a lease. Before it hands a
message to the server it commits phase "data"; a row found past its lease in that phase may
have been delivered (the worker died after the final dot, or before recording the reply), so
the sweeper marks it unknown and never sends it again by itself. Rows that never reached that
phase go back to the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crm import settings
from crm.db import utcnow
from crm.mail import threadtoken
from crm.mail.compose import HeaderInjection, check_headers, to_bytes
from crm.mail.parse import normalise_message_id
from crm.mailbox.notifications import notify
from crm.models import Email, EmailUserState, User
from crm.models.mail import STATUS_DRAFT, STATUS_FAILED, STATUS_SENDING, STATUS_UNKNOWN
from crm.models.outbox import (
    CANCELLED,
    FAILED,
    PHASE_CONNECT,
    PHASE_DATA,
    QUEUED,
    SENDING,
    UNKNOWN,
    OutboxEntry,
    OutboxRecipient,
)
from crm.outbound import message
from crm.outbound.senders import SendRefused, sender_for
from crm.records.linking import session_key

LEASE = timedelta(minutes=5)
# Retry a temporary failure after these waits, then give up (Failed, with the last reply).
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
# A paused mass mail holds its queued rows by making them due at a time no worker reaches
# (crm.campaigns.outbox_rows holds and releases them); that time is never shown to anyone.
HELD_UNTIL = datetime(9999, 12, 31)


def is_held(entry: OutboxEntry) -> bool:
    """A row a paused mass mail holds: still queued, due at a time no worker reaches."""
    return entry.state == QUEUED and entry.due_at >= HELD_UNTIL


def shown_due(entry: OutboxEntry) -> datetime | None:
    """When the row is due, for people; None when it has no real due time: held, or
    cancelled while held (cancelling keeps the stored HELD_UNTIL)."""
    return None if entry.due_at >= HELD_UNTIL else entry.due_at


@dataclass(frozen=True)
class Handed:
    """What the caller needs after the commit: the row to queue and when it is due."""

    entry_id: int
    email_id: int
    due_at: datetime
    message_id: str


def submit(
    session: Session,
    blobs,
    user: User,
    email: Email,
    *,
    send_at: datetime | None = None,
    now: datetime | None = None,
) -> Handed:
    """Hand a draft over for sending; SendRefused when a rule says no. The caller commits."""
    now = now or utcnow()
    if email.status != STATUS_DRAFT or email.created_by_id != user.id:
        raise SendRefused("Only your own draft can be sent.")
    if send_at is not None and send_at <= now:
        raise SendRefused("The scheduled time is in the past.")
    sender = sender_for(session, user, message.from_address(email))
    envelope = message.envelope(email)
    _check_limits(session, user, envelope, now)
    _give_message_id(session, email, sender.address)
    due = send_at or now + timedelta(seconds=int(settings.get(session, "undo_send_seconds")))
    email.date_sent = due
    outgoing = message.outgoing(session, blobs, email, sender)
    try:
        check_headers(outgoing)
    except HeaderInjection as exc:
        raise SendRefused(str(exc)) from exc
    raw = to_bytes(outgoing)
    email.raw_sha256, email.size = blobs.put(raw), len(raw)
    email.from_name = sender.name
    for row in email.recipients:
        if row.role == "from":
            row.name = sender.name
    email.status = STATUS_SENDING
    entry = _entry_for(session, email)
    entry.user_id, entry.mail_account_id, entry.from_address = (
        user.id,
        sender.account_id,
        sender.address,
    )
    entry.state, entry.phase, entry.due_at, entry.scheduled = (
        QUEUED,
        PHASE_CONNECT,
        due,
        bool(send_at),
    )
    entry.attempts, entry.last_code, entry.last_reply, entry.finished_at = 0, None, "", None
    entry.recipients = [OutboxRecipient(position=i, address=a) for i, a in enumerate(envelope)]
    _file_as_sent(session, email, user, due)
    session.flush()
    return Handed(entry.id, email.id, due, email.message_id)


def _entry_for(session: Session, email: Email) -> OutboxEntry:
    entry = session.scalar(select(OutboxEntry).where(OutboxEntry.email_id == email.id))
    if entry is None:
        entry = OutboxEntry(email_id=email.id)
        session.add(entry)
    return entry


def _check_limits(session: Session, user: User, envelope: list[str], now: datetime) -> None:
    if not envelope:
        raise SendRefused("Add at least one recipient (To, Cc or Bcc).")
    cap = int(settings.get(session, "max_recipients_per_mail"))
    if cap and len(envelope) > cap:
        raise SendRefused(
            f"A mail may have at most {cap} recipients; this one has {len(envelope)}."
        )
    per_hour = int(settings.get(session, "max_sends_per_hour"))
    if per_hour:
        recent = session.scalar(
            select(func.count(OutboxEntry.id)).where(
                OutboxEntry.user_id == user.id,
                OutboxEntry.created_at > now - timedelta(hours=1),
                OutboxEntry.state != CANCELLED,
            )
        )
        if recent >= per_hour:
            raise SendRefused(
                f"You have sent {recent} mails in the last hour, the most allowed is {per_hour}. "
                "Try again later."
            )


def _give_message_id(session: Session, email: Email, sender_address: str) -> None:
    """A Message-ID once per mail; a thread token when the mail has a parent."""
    domain = sender_address.rpartition("@")[2] or "localhost"
    key = session_key(session)
    current = email.message_id
    token = threadtoken.parse_token(key, current) if current else None
    wanted = (email.parent_type, email.parent_id) if email.parent_type else None
    if current and (token == wanted or (token is None and wanted is None)):
        return
    if wanted and wanted[0] in threadtoken.TYPE_CODES and key:
        raw_id = threadtoken.make_message_id(key, wanted[0], wanted[1], domain)
    else:
        raw_id = message.random_message_id(domain)
    email.message_id = normalise_message_id(raw_id)
    email.identity = email.message_id


def _file_as_sent(session: Session, email: Email, user: User, when: datetime) -> None:
    state = session.scalar(
        select(EmailUserState).where(
            EmailUserState.email_id == email.id, EmailUserState.user_id == user.id
        )
    )
    if state is None:
        state = EmailUserState(email_id=email.id, user_id=user.id)
        session.add(state)
    state.is_outgoing, state.is_read, state.in_trash, state.sort_date = True, True, False, when


def cancel(session: Session, user: User, email: Email) -> bool:
    """Undo or unschedule: a row not yet taken by a worker goes back to being a draft."""
    entry = session.scalar(
        select(OutboxEntry).where(OutboxEntry.email_id == email.id).with_for_update()
    )
    if entry is None or entry.state != QUEUED or email.created_by_id != user.id:
        return False
    now = utcnow()
    entry.state, entry.finished_at = CANCELLED, now
    email.status, email.date_sent = STATUS_DRAFT, now
    state = session.scalar(
        select(EmailUserState).where(
            EmailUserState.email_id == email.id, EmailUserState.user_id == user.id
        )
    )
    if state is not None:
        state.is_outgoing, state.sort_date = False, now
    return True


def take_due(
    session: Session, now: datetime, limit: int = 100, ids=None, claim: str | None = None
) -> list[int]:
    """Move due queued rows to sending under a lease and this batch's claim; the ids taken."""
    stmt = (
        select(OutboxEntry.id)
        .where(OutboxEntry.state == QUEUED, OutboxEntry.due_at <= now)
        .order_by(OutboxEntry.due_at, OutboxEntry.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        stmt = stmt.where(OutboxEntry.id.in_(list(ids)))
    taken = list(session.scalars(stmt))
    if not taken:
        return []
    # The state in the WHERE makes the move safe on SQLite too (no row locks there).
    result = session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_(taken), OutboxEntry.state == QUEUED)
        .values(state=SENDING, phase=PHASE_CONNECT, lease_until=now + LEASE, claim=claim)
        .returning(OutboxEntry.id)
    )
    return sorted(row[0] for row in result)


# Prebuilt (a constant statement's compiled form and cache key are computed once, not per
# mail: building the UPDATE cost more than the SMTP conversation).
_outbox = OutboxEntry.__table__
# IS NOT DISTINCT FROM: the claim matches, NULL included (a row handed over outside a batch).
_TO_DATA_PHASE = (
    update(_outbox)
    .where(
        _outbox.c.id == bindparam("b_id"),
        _outbox.c.state == SENDING,
        _outbox.c.phase == PHASE_CONNECT,
        _outbox.c.claim.is_not_distinct_from(bindparam("b_claim")),
    )
    .values(phase=PHASE_DATA, attempts=_outbox.c.attempts + 1, lease_until=bindparam("b_lease"))
)


def mark_data_phase(
    session: Session, entry: OutboxEntry, claim: str | None = None, now: datetime | None = None
) -> bool:
    """Claim the right to hand this row to the server (the caller commits before sending).

    False when the row is no longer this batch's: its lease ran out while the batch worked
    through earlier mail and the sweeper gave it back, or another worker holds it now.
    """
    lease = (now or utcnow()) + LEASE
    params = {"b_id": entry.id, "b_lease": lease, "b_claim": claim}
    result = session.connection().execute(_TO_DATA_PHASE, params)
    if result.rowcount != 1:
        session.expire(entry)  # somebody else's now: read it afresh if it is looked at
        return False
    # The row as written, without reading it back (one mail, one round trip fewer).
    for name, value in (("phase", PHASE_DATA), ("attempts", (entry.attempts or 0) + 1),
                        ("lease_until", lease)):  # fmt: skip
        set_committed_value(entry, name, value)
    return True


def sweep(session: Session, now: datetime | None = None) -> dict[str, list[int]]:
    """Rows stuck in sending past their lease: back to the queue, or unknown after DATA began."""
    now = now or utcnow()
    stuck = session.scalars(
        select(OutboxEntry).where(OutboxEntry.state == SENDING, OutboxEntry.lease_until < now)
    ).all()
    done: dict[str, list[int]] = {"requeued": [], "unknown": []}
    for entry in stuck:
        if entry.phase == PHASE_DATA:
            mark_unknown(
                session,
                entry,
                "The worker stopped while handing this mail to the server; it may have been "
                "delivered. It is not sent again by itself.",
            )
            _tell_owner(session, entry, "Delivery unknown")
            done["unknown"].append(entry.id)
        else:
            entry.state, entry.lease_until = QUEUED, None
            done["requeued"].append(entry.id)
    return done


def _tell_owner(session: Session, entry: OutboxEntry, what: str) -> None:
    email = session.get(Email, entry.email_id)
    if entry.user_id is not None and email is not None:
        subject = email.subject or "(no subject)"
        notify(session, entry.user_id, "send_problem", f"{what}: {subject}", email_id=email.id)


def due_queued(session: Session, now: datetime) -> list[tuple[int, datetime]]:
    """Queued rows and when they are due (the sweeper re-queues their jobs after a lost Redis)."""
    stmt = select(OutboxEntry.id, OutboxEntry.due_at).where(OutboxEntry.state == QUEUED)
    return [(row.id, row.due_at) for row in session.execute(stmt)]


def mark_unknown(session: Session, entry: OutboxEntry, reply: str) -> None:
    entry.state, entry.lease_until, entry.finished_at = UNKNOWN, None, utcnow()
    entry.last_reply = reply
    _set_email_status(session, entry, STATUS_UNKNOWN)


def mark_failed(session: Session, entry: OutboxEntry, code: int | None, reply: str) -> None:
    entry.state, entry.lease_until, entry.finished_at = FAILED, None, utcnow()
    entry.last_code, entry.last_reply = code, reply
    _set_email_status(session, entry, STATUS_FAILED)


def retry_later(session: Session, entry: OutboxEntry, code: int | None, reply: str) -> bool:
    """A temporary failure: queue again after the backoff; False when the retries ran out."""
    entry.last_code, entry.last_reply = code, reply
    if entry.attempts > len(BACKOFF):
        mark_failed(session, entry, code, f"Gave up after {entry.attempts} attempts: {reply}")
        return False
    wait = BACKOFF[max(entry.attempts - 1, 0)]
    entry.state, entry.phase, entry.lease_until = QUEUED, PHASE_CONNECT, None
    entry.due_at = utcnow() + wait
    return True


def _set_email_status(session: Session, entry: OutboxEntry, status: str) -> None:
    email = session.get(Email, entry.email_id)
    if email is not None:
        email.status = status


def entry_of(session: Session, email_id: int) -> OutboxEntry | None:
    return session.scalar(select(OutboxEntry).where(OutboxEntry.email_id == email_id))


def rows(session: Session, user_id: int | None = None, limit: int = 500) -> list[OutboxEntry]:
    """Outbox rows, newest first (every row for the CLI, a user's own for the UI)."""
    stmt = select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(limit)
    if user_id is not None:
        stmt = stmt.where(OutboxEntry.user_id == user_id)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Scheduled:
    """A mail waiting for its scheduled time, as the compose page lists it."""

    email_id: int
    due_at: datetime
    subject: str
    to: str  # the first recipient (and how many more)


def scheduled_of(session: Session, user_id: int) -> list[Scheduled]:
    stmt = (
        select(OutboxEntry.id, OutboxEntry.email_id, OutboxEntry.due_at, Email.subject)
        .join(Email, Email.id == OutboxEntry.email_id)
        .where(
            OutboxEntry.user_id == user_id,
            OutboxEntry.state == QUEUED,
            OutboxEntry.scheduled.is_(True),
        )
        .order_by(OutboxEntry.due_at)
    )
    rows_ = session.execute(stmt).all()
    envelopes: dict[int, list[str]] = {row.id: [] for row in rows_}
    if envelopes:
        recipients = select(OutboxRecipient.entry_id, OutboxRecipient.address).where(
            OutboxRecipient.entry_id.in_(list(envelopes))
        )
        for entry_id, address in session.execute(recipients.order_by(OutboxRecipient.position)):
            envelopes[entry_id].append(address)
    return [
        Scheduled(
            row.email_id, row.due_at, row.subject or "(no subject)", _to_text(envelopes[row.id])
        )
        for row in rows_
    ]


def _to_text(addresses: list[str]) -> str:
    if len(addresses) <= 1:
        return "".join(addresses)
    return f"{addresses[0]} and {len(addresses) - 1} more"


def is_pending(entry: OutboxEntry | None) -> bool:
    return entry is not None and entry.state in (QUEUED, SENDING)
