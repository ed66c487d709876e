"""A mass mail's progress and log: each recipient's status, counted in SQL.

A recipient's row says pending, queued, opted out, invalid or failed; a queued one is refined
from its mail: sent or failed from the outbox row, bounced when a delivery report for the mail
names a hard failure (5.x.x) for the address (crm.inbound.bounces, which also marks the
address invalid, so later mass mail skips it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from crm.models import (
    DeliveryReport,
    DeliveryReportRecipient,
    EmailAddress,
    MassMail,
    MassMailRecipient,
    OutboxEntry,
)
from crm.models import outbox as outbox_states
from crm.models.campaigns import QUEUED, RUNNING
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
    "opted_out": "Opted out",
    "invalid": "Invalid address",
    "bounced": "Bounced",
}
DONE = ("sent", "failed", "opted_out", "invalid", "bounced")


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


def _status_column():
    R = MassMailRecipient
    failed = (outbox_states.FAILED, outbox_states.UNKNOWN, outbox_states.CANCELLED)
    return case(
        (R.status != QUEUED, R.status),
        (_hard_bounce(), literal(BOUNCED)),
        (OutboxEntry.state == outbox_states.SENT, literal(SENT)),
        (OutboxEntry.state.in_(failed), literal("failed")),
        else_=literal(QUEUED),
    ).label("shown")


def _shown(mass_mail_id: int):
    """(recipient id, shown status) for every recipient of the mass mail."""
    R = MassMailRecipient
    return (
        select(R.id.label("id"), _status_column())
        .outerjoin(OutboxEntry, OutboxEntry.email_id == R.email_id)
        .where(R.mass_mail_id == mass_mail_id)
    )


def counts(session: Session, found: MassMail) -> dict[str, int]:
    """Recipients per shown status (every status present, zero when none)."""
    sub = _shown(found.id).subquery()
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

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * self.done / self.total)


def progress(session: Session, found: MassMail) -> Progress:
    numbers = counts(session, found)
    total = sum(numbers.values())
    done = sum(numbers[s] for s in DONE)
    # The bar polls while batches may still come or queued mail may still go.
    busy = found.status == RUNNING or numbers["queued"] > 0
    return Progress(total, done, numbers, not busy)


@dataclass(frozen=True)
class Line:
    id: int
    address: str
    entity_type: str
    entity_id: int
    status: str
    reason: str
    opted_out_after: bool
    name: str
    slug: str  # the record's kind in URLs

    @property
    def label(self) -> str:
        return LABELS.get(self.status, self.status)


def recipients_page(
    session: Session, found: MassMail, status: str | None = None, number: int = 1
) -> Page:
    """One page of the log: address, record, shown status, why (skips and refusals)."""
    sub = _shown(found.id).subquery()
    R = MassMailRecipient
    stmt = (
        select(R.id, EmailAddress.address, R.entity_type, R.entity_id, sub.c.shown, R.reason,
               R.opted_out_at, OutboxEntry.last_reply)
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
             r.reason or (r.last_reply if r.shown == "failed" else "") or "",
             r.opted_out_at is not None, names.get((r.entity_type, r.entity_id), "(deleted)"),
             KIND_OF_TYPE[r.entity_type].slug)
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
