"""A mass mail's progress and log: each recipient's status, counted in SQL.

A recipient's row says pending, queued, opted out, invalid or failed; a queued one is refined
from its mail: sent, failed or cancelled from the outbox row, bounced when a delivery report
for the mail names a hard failure (5.x.x) for the address (crm.inbound.bounces, which also
marks the address invalid, so later mass mail skips it). A pending one of a cancelled mass
mail shows as cancelled: it will never be mailed.

The mass mail's own status says whether batches are still to be queued; what it is doing is
read together with its outbox rows (crm.campaigns.outbox_rows): a complete one whose last
batch still waits in the outbox is still sending, and may still be paused or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from crm.campaigns import mass_mail, outbox_rows
from crm.db import utcnow
from crm.models import (
    DeliveryReport,
    DeliveryReportRecipient,
    EmailAddress,
    MassMail,
    MassMailRecipient,
    OutboxEntry,
)
from crm.models import outbox as outbox_states
from crm.models.campaigns import CANCELLED, COMPLETE, DRAFT, PAUSED, PENDING, QUEUED, RUNNING
from crm.pagination import Page
from crm.records.kinds import KIND_OF_TYPE

SENT = "sent"
BOUNCED = "bounced"
# Every status a recipient can show, in the order the page lists them, and their labels.
LABELS = {
    "pending": "Waiting",
    "queued": "Queued",
    "sent": "Sent",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "opted_out": "Opted out",
    "invalid": "Invalid address",
    "bounced": "Bounced",
}
DONE = ("sent", "failed", "cancelled", "opted_out", "invalid", "bounced")
# What a mass mail is doing, as its badge says it.
STATE_LABELS = {
    "draft": "Not started",
    "scheduled": "Scheduled",
    "sending": "Sending",
    "paused": "Paused",
    "complete": "Complete",
    "cancelled": "Cancelled",
}


def _hard_bounce():
    R = MassMailRecipient
    return exists(
        select(literal(1))
        .select_from(DeliveryReport)
        .join(DeliveryReportRecipient, DeliveryReportRecipient.report_id == DeliveryReport.email_id)
        .join(EmailAddress, EmailAddress.id == R.address_id)
        .where(
            DeliveryReport.original_email_id == R.email_id,
            DeliveryReportRecipient.action == "failed",
            DeliveryReportRecipient.status.like("5.%"),
            or_(
                func.lower(DeliveryReportRecipient.address) == EmailAddress.lower,
                func.lower(DeliveryReportRecipient.original_recipient) == EmailAddress.lower,
            ),
        )
    )


def _status_column(found: MassMail):
    R = MassMailRecipient
    failed = (outbox_states.FAILED, outbox_states.UNKNOWN)
    never = literal("cancelled") if found.status == CANCELLED else R.status
    return case(
        (R.status == PENDING, never),
        (R.status != QUEUED, R.status),
        (_hard_bounce(), literal(BOUNCED)),
        (OutboxEntry.state == outbox_states.SENT, literal(SENT)),
        (OutboxEntry.state == outbox_states.CANCELLED, literal("cancelled")),
        (OutboxEntry.state.in_(failed), literal("failed")),
        else_=literal(QUEUED),
    ).label("shown")


def _shown(found: MassMail):
    """(recipient id, shown status) for every recipient of the mass mail."""
    R = MassMailRecipient
    return (
        select(R.id.label("id"), _status_column(found))
        .outerjoin(OutboxEntry, OutboxEntry.email_id == R.email_id)
        .where(R.mass_mail_id == found.id)
    )


def counts(session: Session, found: MassMail) -> dict[str, int]:
    """Recipients per shown status (every status present, zero when none)."""
    sub = _shown(found).subquery()
    rows = session.execute(select(sub.c.shown, func.count()).group_by(sub.c.shown)).all()
    found_counts = dict.fromkeys(LABELS, 0)
    for status, number in rows:
        found_counts[status] = number
    return found_counts


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    counts: dict[str, int]
    finished: bool  # nothing left to queue or send: the bar stops polling
    state: str  # a key of STATE_LABELS
    actions: tuple[str, ...]  # what may be done now: start, pause, resume, cancel
    expected: int | None = None  # a draft: how many its lists would give if started now

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]


def progress(session: Session, found: MassMail, now: datetime | None = None) -> Progress:
    numbers = counts(session, found)
    total = sum(numbers.values())
    done = sum(numbers[s] for s in DONE)
    unfinished = outbox_rows.unfinished(session, [found.id]).get(found.id, outbox_rows.Unfinished())
    # The bar polls while batches may still come or mail may still go (held mail does not).
    busy = (
        found.status == RUNNING
        or unfinished.sending > 0
        or (found.status != PAUSED and unfinished.queued > 0)
    )
    expected = mass_mail.expected_recipients(session, found) if found.status == DRAFT else None
    return Progress(total, done, numbers, not busy, state_of(found, unfinished, now),
                    actions_of(found, unfinished), expected)  # fmt: skip


def state_of(
    found: MassMail, unfinished: outbox_rows.Unfinished, now: datetime | None = None
) -> str:
    if found.status == RUNNING:
        now = now or utcnow()
        return "scheduled" if found.start_at and found.start_at > now else "sending"
    if found.status == COMPLETE and unfinished.total:
        return "sending"  # every recipient is queued; the last of them wait in the outbox
    return found.status


def actions_of(found: MassMail, unfinished: outbox_rows.Unfinished) -> tuple[str, ...]:
    if found.status == COMPLETE:
        # Only what waits can be held or cancelled; what a worker sends goes anyway.
        return ("pause", "cancel") if unfinished.queued else ()
    return {DRAFT: ("start", "cancel"), RUNNING: ("pause", "cancel"),
            PAUSED: ("resume", "cancel")}.get(found.status, ())  # fmt: skip


def states(session: Session, mass_mails: list[MassMail]) -> dict[int, str]:
    """Each mass mail's state for a list of them, in one query."""
    unfinished = outbox_rows.unfinished(session, [m.id for m in mass_mails])
    return {m.id: state_of(m, unfinished.get(m.id, outbox_rows.Unfinished())) for m in mass_mails}


@dataclass(frozen=True)
class Line:
    id: int
    address: str
    entity_type: str
    entity_id: int
    status: str
    reason: str
    opted_out_at: datetime | None  # when this mail's unsubscribe link was used
    opted_out_now: bool  # the address as it is now (subscribing again clears it)
    subscribed_again_at: datetime | None  # the address's last subscribing again, if known
    name: str
    slug: str  # the record's kind in URLs

    @property
    def label(self) -> str:
        return LABELS.get(self.status, self.status)

    @property
    def subscription(self) -> str:
        """What became of the address's subscription since, when the status alone misleads:
        unsubscribed (with this mail), subscribed again, or unsubscribed through another."""
        if self.opted_out_at is not None:
            return "unsubscribed" if self.opted_out_now else "resubscribed"
        if self.status == "opted_out" and not self.opted_out_now:
            return "subscribed_again_since"
        if self.opted_out_now and self.status != "opted_out":
            return "unsubscribed_since"
        return ""

    @property
    def subscribed_again_on(self) -> datetime | None:
        """When the address subscribed again, for a line that says so; None when no date was
        kept (subscribed again before migration 0016 stored the date) or the one kept is
        older than this mail's opt-out."""
        if self.subscription not in ("resubscribed", "subscribed_again_since"):
            return None
        after = self.opted_out_at
        kept = self.subscribed_again_at
        return kept if kept is not None and (after is None or kept >= after) else None


def recipients_page(
    session: Session, found: MassMail, status: str | None = None, number: int = 1
) -> Page:
    """One page of the log: address, record, shown status, why (skips and refusals)."""
    sub = _shown(found).subquery()
    R = MassMailRecipient
    stmt = (
        select(R.id, EmailAddress.address, R.entity_type, R.entity_id, sub.c.shown, R.reason,
               R.opted_out_at, EmailAddress.opted_out, EmailAddress.subscribed_again_at,
               OutboxEntry.last_reply)
        .join(sub, sub.c.id == R.id)
        .join(EmailAddress, EmailAddress.id == R.address_id)
        .outerjoin(OutboxEntry, and_(OutboxEntry.email_id == R.email_id))
        .order_by(R.id)
    )  # fmt: skip
    if status in LABELS:
        stmt = stmt.where(sub.c.shown == status)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    per_page = 50
    pages = max(1, -(-total // per_page))
    number = min(max(1, number), pages)
    rows = session.execute(stmt.limit(per_page).offset((number - 1) * per_page)).all()
    names = _names(session, [(r.entity_type, r.entity_id) for r in rows])
    lines = [
        Line(r.id, r.address, r.entity_type, r.entity_id, r.shown,
             r.reason or (r.last_reply if r.shown in ("failed", "cancelled") else "") or "",
             r.opted_out_at, bool(r.opted_out), r.subscribed_again_at,
             names.get((r.entity_type, r.entity_id), "(deleted)"), KIND_OF_TYPE[r.entity_type].slug)
        for r in rows
    ]  # fmt: skip
    return Page(items=lines, number=number, per_page=per_page, total=total)


def _names(session: Session, keys: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Display names of a page's records, one query per type."""
    by_type: dict[str, list[int]] = {}
    for entity_type, entity_id in keys:
        by_type.setdefault(entity_type, []).append(entity_id)
    names = {}
    for entity_type, ids in by_type.items():
        model = KIND_OF_TYPE[entity_type].model
        for record in session.scalars(select(model).where(model.id.in_(ids))):
            names[(entity_type, record.id)] = record.display_name
    return names
