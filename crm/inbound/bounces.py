"""Bounces on the mail that bounced: delivery reports linked to their originals at import.

The import hands `link_bounces` the mail it has just stored. A delivery report among it
(crm.mail.dsn) gets a DeliveryReport row with one row per recipient, and is linked to the
stored mail whose Message-ID it names; mail that arrives after its report (a Sent folder
fetched later) is linked when it comes. A hard bounce (5.x.x, action failed) marks the address
invalid, but only an address the linked original was sent to: a forged or misdirected report
about mail we do not have marks nothing. A delay warning is recorded and marks nothing.

`page` gives a mail page what it shows: the report of a bounce, the bounces of an original,
each linked only when the reader may open the other mail. No Flask here; the caller commits.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm.mail import dsn
from crm.models import Email, EmailAddress, EmailRecipient, EmailUserState, User
from crm.models.bounces import (
    KIND_BOUNCE,
    KIND_DELAY,
    DeliveryReport,
    DeliveryReportRecipient,
)

log = logging.getLogger(__name__)

# Parts of a report that the page shows as the delivery report itself, not as attachments
# (they stay in the original source, "View original").
REPORT_PARTS = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/global-headers",
    }
)
SENT_TO = ("to", "cc", "bcc")


def link_bounces(session: Session, blobs, emails: list[Email]) -> list[DeliveryReport]:
    """Reports among newly stored mail, linked to their originals; originals among it linked
    to the reports that came first; hard-bounced addresses marked invalid. Returns the reports
    linked or stored now. Safe to call twice for the same mail."""
    if not emails:
        return []
    candidates = [e for e in emails if _worth_reading(e)]
    known = _reports_of(session, [e.id for e in candidates])
    new: list[DeliveryReport] = []
    for email in candidates:
        if email.id in known:
            continue
        report = dsn.read_report(_raw(blobs, email))
        if report is not None:
            new.append(_store(session, email, report))
    _link_originals(session, new)
    late = _waiting_for(session, emails, {r.email_id for r in new})
    linked = [r for r in new if r.original_email_id is not None] + late
    _mark_invalid(session, linked)
    return new + late


def _worth_reading(email: Email) -> bool:
    parsed = getattr(email, "_parsed", None)
    if parsed is not None:
        return dsn.might_be_report(parsed)
    return email.raw_sha256 is not None  # mail stored before: read it to know


def _raw(blobs, email: Email) -> bytes:
    """The raw mail: in memory while it is being imported, else from the blob store."""
    in_memory = getattr(email, "_raw", None)
    if in_memory is not None:
        return in_memory
    if not email.raw_sha256:
        return b""
    try:
        return blobs.get(email.raw_sha256)
    except OSError:  # a lost blob: the mail stays what the parse made of it
        log.warning("raw mail of email %s is missing", email.id)
        return b""


def _store(session: Session, email: Email, report: dsn.DeliveryReport) -> DeliveryReport:
    row = DeliveryReport(
        email_id=email.id,
        kind=report.kind,
        original_message_id=report.original_message_id,
        original_subject=report.original_subject,
        reporting_mta=report.reporting_mta[:255],
        recipients=[
            DeliveryReportRecipient(
                position=i,
                address=r.address[:320],
                original_recipient=r.original[:320],
                action=r.action[:20],
                status=r.status[:20],
                diagnostic=r.diagnostic,
                remote_mta=r.remote_mta[:255],
            )
            for i, r in enumerate(report.recipients)
        ],
    )
    session.add(row)
    if not email.is_bounce:  # a plain-text bounce the header rules did not recognise
        email.is_bounce = True
        parsed = getattr(email, "_parsed", None)
        if parsed is not None:  # case routing and auto-replies read the parsed mail
            email._parsed = dataclasses.replace(parsed, is_bounce=True)
    return row


def _link_originals(session: Session, reports: list[DeliveryReport]) -> None:
    wanted = {r.original_message_id for r in reports if r.original_message_id}
    if not wanted:
        return
    found = _emails_by_identity(session, wanted)
    for report in reports:
        original = found.get(report.original_message_id or "")
        if original is not None and original != report.email_id:
            report.original_email_id = original


def _waiting_for(session: Session, emails: list[Email], skip: set[int]) -> list[DeliveryReport]:
    """Reports stored before the mail they name: linked now that it is here."""
    by_message_id = {e.message_id: e.id for e in emails if e.message_id}
    if not by_message_id:
        return []
    stmt = select(DeliveryReport).where(
        DeliveryReport.original_message_id.in_(list(by_message_id)),
        DeliveryReport.original_email_id.is_(None),
    )
    late = [r for r in session.scalars(stmt) if r.email_id not in skip]
    for report in late:
        report.original_email_id = by_message_id[report.original_message_id]
    return late


def _mark_invalid(session: Session, reports: list[DeliveryReport]) -> None:
    """Hard bounces mark the address invalid when the original was sent to it."""
    for report in reports:
        hard = {
            a.lower()
            for r in report.recipients
            if r.is_hard
            for a in (r.address, r.original_recipient)
            if a
        }
        if not hard or report.original_email_id is None:
            continue
        on_original = (
            select(EmailRecipient.address_id)
            .join(EmailAddress, EmailAddress.id == EmailRecipient.address_id)
            .where(
                EmailRecipient.email_id == report.original_email_id,
                EmailRecipient.role.in_(SENT_TO),
                EmailAddress.lower.in_(hard),
            )
        )
        ids = list(session.scalars(on_original))
        if ids:
            session.execute(
                update(EmailAddress).where(EmailAddress.id.in_(ids)).values(invalid=True),
                execution_options={"synchronize_session": "fetch"},
            )


def _reports_of(session: Session, email_ids: list[int]) -> set[int]:
    if not email_ids:
        return set()
    stmt = select(DeliveryReport.email_id).where(DeliveryReport.email_id.in_(email_ids))
    return set(session.scalars(stmt))


def _emails_by_identity(session: Session, identities: set[str]) -> dict[str, int]:
    keys = {i[:500]: i for i in identities}
    stmt = select(Email.identity, Email.id).where(Email.identity.in_(list(keys)))
    return {keys[identity]: id_ for identity, id_ in session.execute(stmt)}


# --- the mail page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BounceLine:
    """On an original: "Bounced: 5.1.1 <recipient> (date)", linking to the report."""

    kind: str  # "bounce" or "delay"
    status: str
    address: str
    date: datetime | None
    report_id: int | None  # None when the reader may not open the report

    @property
    def label(self) -> str:
        return "Delivery delayed" if self.kind == KIND_DELAY else "Bounced"


@dataclass(frozen=True)
class ReportView:
    """On a report: what it says per recipient, and the mail it is about."""

    kind: str
    recipients: list  # DeliveryReportRecipient rows, or dsn.RecipientStatus for unstored ones
    original_id: int | None  # the stored original the reader may open
    original_stored: bool  # stored, though perhaps not for this reader
    original_subject: str
    original_message_id: str | None
    reporting_mta: str

    @property
    def label(self) -> str:
        return {KIND_BOUNCE: "Bounce", KIND_DELAY: "Delivery delayed"}.get(
            self.kind, "Delivery report"
        )


def page(session: Session, user: User, email: Email, blobs) -> dict:
    """What the mail page shows about delivery: `delivery` (this mail is a report),
    `bounces` (reports about this mail) and `attachments` (a report's own parts left out)."""
    report = _report_view(session, user, email, blobs)
    attachments = email.attachments
    if report is not None:
        attachments = [a for a in attachments if a.content_type not in REPORT_PARTS]
    return {
        "delivery": report,
        "bounces": _bounce_lines(session, user, email),
        "attachments": attachments,
    }


def _report_view(session: Session, user: User, email: Email, blobs) -> ReportView | None:
    row = session.get(DeliveryReport, email.id)
    if row is not None:
        original = row.original_email_id
        recipients = list(row.recipients)
        kind, subject, message_id, mta = (
            row.kind,
            row.original_subject,
            row.original_message_id,
            row.reporting_mta,
        )
    elif email.is_bounce:  # imported before reports were stored: read it now
        parsed = dsn.read_report(_raw(blobs, email))
        if parsed is None:
            return None
        message_id = parsed.original_message_id
        original = (
            _emails_by_identity(session, {message_id}).get(message_id) if message_id else None
        )
        recipients = list(parsed.recipients)
        kind, subject, mta = parsed.kind, parsed.original_subject, parsed.reporting_mta
    else:
        return None
    shown = (
        original if original in _readable(session, user, [original] if original else []) else None
    )
    if shown is not None:  # the stored mail's subject, rather than the returned copy's
        subject = session.get(Email, shown).subject or subject
    return ReportView(
        kind=kind,
        recipients=recipients,
        original_id=shown,
        original_stored=original is not None,
        original_subject=subject,
        original_message_id=message_id,
        reporting_mta=mta,
    )


def _bounce_lines(session: Session, user: User, email: Email) -> list[BounceLine]:
    stmt = (
        select(DeliveryReport.email_id, Email.date_sent, Email.created_at, DeliveryReportRecipient)
        .join(Email, Email.id == DeliveryReport.email_id)
        .join(DeliveryReportRecipient, DeliveryReportRecipient.report_id == DeliveryReport.email_id)
        .where(DeliveryReport.original_email_id == email.id)
        .where(DeliveryReportRecipient.action.in_(("failed", "delayed")))
        .order_by(Email.date_sent, DeliveryReport.email_id, DeliveryReportRecipient.position)
    )
    found = session.execute(stmt).all()
    readable = _readable(session, user, list({report_id for report_id, *_ in found}))
    return [
        BounceLine(
            kind=KIND_DELAY if r.is_delay else KIND_BOUNCE,
            status=r.status,
            address=r.address,
            date=sent or created,
            report_id=report_id if report_id in readable else None,
        )
        for report_id, sent, created, r in found
    ]


def _readable(session: Session, user: User, email_ids: list[int]) -> set[int]:
    """The mail among these the user may open (a state row of theirs, or an admin)."""
    if not email_ids:
        return set()
    if user.is_admin:
        return set(email_ids)
    stmt = select(EmailUserState.email_id).where(
        EmailUserState.user_id == user.id, EmailUserState.email_id.in_(email_ids)
    )
    return set(session.scalars(stmt))
