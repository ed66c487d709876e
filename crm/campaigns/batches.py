"""Queuing a running mass mail, one batch at a time, into the outbox.

A batch is the next `batch_size` pending recipients (by id, so nothing but the batch is ever
loaded). Opted-out and invalid addresses are marked and skipped before anything is rendered;
every other recipient's mail is rendered for them (the record is the Person and the parent).
Only when the whole batch rendered is it stored: an Email and an outbox row per recipient,
like the auto-replies (crm.outbound.autoreply): machine mail from the mass mail's account,
without the user-sender rules. The mails of a batch are due 3600 / per_hour seconds apart, so
the rate holds however the job is scheduled. A template error pauses the mass mail with the
error for its author, before anything of the batch is queued. The caller commits each batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.campaigns import mass_mail, opt_out, outbox_rows, senders
from crm.db import utcnow
from crm.mail import threadtoken
from crm.mail.address import normalise_address
from crm.mail.compose import (
    HeaderInjection,
    Mailbox,
    OutgoingAttachment,
    OutgoingMessage,
    check_headers,
    html_to_text,
    to_bytes,
)
from crm.mail.parse import normalise_message_id
from crm.models import (
    Attachment,
    Email,
    EmailAddress,
    EmailRecipient,
    MailAccount,
    MassMail,
    MassMailRecipient,
    OutboxEntry,
    OutboxRecipient,
    User,
)
from crm.models.campaigns import (
    FAILED,
    INVALID,
    OPTED_OUT,
    PENDING,
    PURPOSE_OPT_IN,
    QUEUED,
    RUNNING,
)
from crm.models.mail import STATUS_SENDING
from crm.models.templates import TemplateAttachment
from crm.outbound.message import random_message_id
from crm.records import addressbook
from crm.records.kinds import KIND_OF_TYPE
from crm.records.linking import session_key
from crm.templating import handlebars, rendering

OPT_OUT_TOKENS = ("optOutUrl", "optOutLink")
OPT_IN_TOKENS = ("optInUrl", "optInLink")


@dataclass
class Batch:
    """What one batch did: outbox rows to queue jobs for (id, due), skips, whether more come."""

    queued: list[tuple[int, datetime]] = field(default_factory=list)
    skipped: int = 0
    more: bool = False


@dataclass(frozen=True)
class _Prepared:
    recipient: MassMailRecipient
    address: EmailAddress
    record: object
    outgoing: OutgoingMessage
    files: tuple[_File, ...] = ()


@dataclass(frozen=True)
class _File:
    """A template's file: the blob it is stored as, and the part every mail carries."""

    sha256: str
    part: OutgoingAttachment


def due(session: Session, now: datetime) -> list[int]:
    """Running mass mails whose next batch is due."""
    stmt = select(MassMail.id).where(MassMail.status == RUNNING, MassMail.next_batch_at <= now)
    return list(session.scalars(stmt.order_by(MassMail.next_batch_at, MassMail.id)))


def queue_batch(
    session: Session, blobs, found: MassMail, now: datetime | None = None, ahead=timedelta(0)
) -> Batch:
    """Queue the next batch of a running mass mail whose batch is due (within `ahead`: the job
    runs every so often, and a batch due before its next run is queued now, for its time)."""
    now = now or utcnow()
    result = Batch()
    if found.status != RUNNING or (found.next_batch_at and found.next_batch_at > now + ahead):
        return result
    account = senders.allowed_account(session, found.mail_account_id)
    creator = session.get(User, found.created_by_id) if found.created_by_id else None
    if account is None or creator is None or not creator.is_active:
        mass_mail.pause(session, found, _why_not(account, creator))
        return result
    rows = _next_recipients(session, found)
    if not rows:
        mass_mail.complete(found, now)
        return result
    try:
        prepared = _prepare(session, blobs, found, account, creator, rows, result)
    except handlebars.TemplateError as exc:
        mass_mail.pause(session, found, f"The template cannot be rendered: {exc}")
        return result
    spacing = timedelta(seconds=3600 / found.per_hour)
    slot = _first_slot(session, found, now, spacing)
    sender = addressbook.find_or_create(session, [account.email_address])
    sender_id = sender[account.email_address.lower()].id
    dues = [slot + i * spacing for i in range(len(prepared))]
    entries = _store(session, blobs, found, account, sender_id, prepared, dues)
    for item, entry, due_at in zip(prepared, entries, dues, strict=True):
        item.recipient.status, item.recipient.queued_at = QUEUED, now
        item.recipient.email_id = entry.email_id
        result.queued.append((entry.id, due_at))
    found.next_batch_at = slot + len(prepared) * spacing
    if len(rows) < found.batch_size:  # that was the last of them
        mass_mail.complete(found, now)
    result.more = found.status == RUNNING
    session.flush()
    return result


def _first_slot(session: Session, found: MassMail, now: datetime, spacing: timedelta) -> datetime:
    """When the batch's first mail is due: at its turn, and after what already waits in the
    outbox (mail held by a pause is due again from the resume, ahead of the next batch)."""
    slot = max(now, found.next_batch_at or now)
    waiting = outbox_rows.last_due(session, found)
    return max(slot, waiting + spacing) if waiting else slot


def _why_not(account: MailAccount | None, creator: User | None) -> str:
    if account is None:
        return "Paused: the account is no longer allowed for mass mail. Choose another and resume."
    return "Paused: the user who created this mass mail can no longer sign in."


def _next_recipients(session: Session, found: MassMail) -> list[MassMailRecipient]:
    stmt = (
        select(MassMailRecipient)
        .where(MassMailRecipient.mass_mail_id == found.id, MassMailRecipient.status == PENDING)
        .order_by(MassMailRecipient.id)
        .limit(found.batch_size)
    )
    return list(session.scalars(stmt))


def _prepare(session, blobs, found, account, creator, rows, result: Batch) -> list[_Prepared]:
    """Skip what must be skipped, render the rest (raises TemplateError)."""
    files = _attachments(session, blobs, found)
    addresses = _by_id(session, EmailAddress, [r.address_id for r in rows])
    records = _records(session, rows)
    # Keyed by a hash of the text (version_key ""): ids of a database emptied and refilled
    # come again, the text of a started mass mail never changes.
    text = rendering.TemplateText(found.subject, found.body, found.is_html)
    prepared = []
    for row in rows:
        address = addresses.get(row.address_id)
        record = records.get((row.entity_type, row.entity_id))
        skip = _skip_reason(address, record)
        if skip is not None:
            row.status, row.reason = skip
            result.skipped += 1
            continue
        outgoing = _message(session, found, account, creator, text, row, address, record)
        outgoing = dataclasses.replace(outgoing, attachments=tuple(f.part for f in files))
        try:
            check_headers(outgoing)
        except HeaderInjection as exc:
            row.status, row.reason = INVALID, str(exc)
            result.skipped += 1
            continue
        prepared.append(_Prepared(row, address, record, outgoing, files))
    return prepared


def _attachments(session: Session, blobs, found: MassMail) -> tuple[_File, ...]:
    """The template's files, read once per batch (every mail of it carries the same bytes)."""
    if not found.template_id:
        return ()
    stmt = (
        select(TemplateAttachment)
        .where(TemplateAttachment.template_id == found.template_id)
        .order_by(TemplateAttachment.position, TemplateAttachment.id)
    )
    return tuple(
        _File(a.sha256, OutgoingAttachment(a.filename, a.content_type, blobs.get(a.sha256)))
        for a in session.scalars(stmt)
    )


def _skip_reason(address: EmailAddress | None, record) -> tuple[str, str] | None:
    if address is None or record is None:
        return FAILED, "The record or its address was deleted."
    if address.opted_out:
        return OPTED_OUT, "The address is opted out."
    if address.invalid or normalise_address(address.address) is None:
        return INVALID, "The address is marked invalid (it bounced)."
    return None


def _by_id(session: Session, model, ids: list[int]) -> dict:
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def _records(session: Session, rows: list[MassMailRecipient]) -> dict:
    by_type: dict[str, list[int]] = {}
    for row in rows:
        by_type.setdefault(row.entity_type, []).append(row.entity_id)
    found = {}
    for entity_type, ids in by_type.items():
        for record in _by_id(session, KIND_OF_TYPE[entity_type].model, ids).values():
            found[(entity_type, record.id)] = record
    return found


def _message(session, found, account, creator, text, row, address, record) -> OutgoingMessage:
    """The recipient's mail: rendered for them, with the opt-out (or opt-in) link."""
    opt_in = found.purpose == PURPOSE_OPT_IN
    if opt_in:
        url = opt_out.confirm_url(session, address.id, row.id)
        links, purpose, tokens = {"optInUrl": url}, "opt_in", OPT_IN_TOKENS
    else:
        url = opt_out.unsubscribe_url(session, address.id, row.id)
        links, purpose, tokens = {"optOutUrl": url}, "mass_mail", OPT_OUT_TOKENS
    rendered = rendering.render_template(
        session, text, user=creator, parent=record, to_address=address.address,
        purpose=purpose, links=links,
    )  # fmt: skip
    body = rendered.body if _mentions(text, tokens) else _with_link_line(rendered, url, opt_in)
    headers = [("Precedence", "bulk"), ("Auto-Submitted", "auto-generated")]
    if not opt_in:  # RFC 2369 and RFC 8058: the list's unsubscribe, one click from the client
        headers += [("List-Unsubscribe", f"<{url}>"),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]  # fmt: skip
    return OutgoingMessage(
        sender=Mailbox(found.from_name, account.email_address),
        to=(Mailbox(record.display_name if record.display_name != "(no name)" else "",
                    address.address),),
        subject=rendered.subject,
        text=html_to_text(body) if rendered.is_html else body,
        html=body if rendered.is_html else "",
        message_id=_message_id(session, account, row),
        date=utcnow(),
        extra_headers=tuple(headers),
    )  # fmt: skip


def _mentions(text: rendering.TemplateText, tokens: tuple[str, ...]) -> bool:
    subject, body = rendering.parsed(text)
    return any(t in tokens for t in (*subject.tokens, *body.tokens))


def _with_link_line(rendered: rendering.Rendered, url: str, opt_in: bool) -> str:
    """The template has no link placeholder: the link goes on a line of its own at the end."""
    if opt_in:
        words, label = "Please confirm that you want to receive our mail:", "Confirm"
    else:
        words, label = "You receive this mail because you are on our list.", "Unsubscribe"
    if not rendered.is_html:
        return f"{rendered.body.rstrip()}\n\n--\n{words} {label}: {url}\n"
    return (f'{rendered.body}<p class="crm-opt-out"><small>{escape(words)} '
            f'<a href="{escape(url)}">{escape(label)}</a></small></p>')  # fmt: skip


def _message_id(session: Session, account: MailAccount, row: MassMailRecipient) -> str:
    """A thread token naming the recipient's record, so replies join it."""
    domain = account.email_address.rpartition("@")[2] or "localhost"
    key = session_key(session)
    if key and row.entity_type in threadtoken.TYPE_CODES:
        return threadtoken.make_message_id(key, row.entity_type, row.entity_id, domain)
    return random_message_id(domain)


def _store(session, blobs, found, account, sender_id, prepared, dues) -> list[OutboxEntry]:
    """The batch's Emails and outbox rows, written in two flushes (not two per mail)."""
    emails = [_email(blobs, found, sender_id, item, due_at) for item, due_at in
              zip(prepared, dues, strict=True)]  # fmt: skip
    session.add_all(emails)
    session.flush()
    entries = [
        OutboxEntry(
            email_id=email.id, mail_account_id=account.id, from_address=account.email_address,
            due_at=due_at, attempts=0, last_reply="",
            recipients=[OutboxRecipient(position=0, address=item.address.address,
                                        state="pending", reply="")],
        )
        for item, email, due_at in zip(prepared, emails, dues, strict=True)
    ]  # fmt: skip
    session.add_all(entries)
    session.flush()
    return entries


def _email(blobs, found, sender_id, item: _Prepared, due_at) -> Email:
    outgoing = item.outgoing
    raw = to_bytes(outgoing)
    message_id = normalise_message_id(outgoing.message_id)
    to = outgoing.to[0]
    email = Email(
        identity=message_id, message_id=message_id, references=[], subject=outgoing.subject,
        from_name=found.from_name, from_address_id=sender_id, date_sent=due_at,
        body_text=outgoing.text, body_html=outgoing.html, snippet=outgoing.text[:200],
        address_text=f"{to.name} {to.address}", status=STATUS_SENDING,
        raw_sha256=blobs.put(raw), size=len(raw), parent_type=item.recipient.entity_type,
        parent_id=item.recipient.entity_id, link_rule="mass-mail",
        created_by_id=found.created_by_id,
    )  # fmt: skip
    email.recipients = [
        EmailRecipient(position=0, role="from", address_id=sender_id, name=found.from_name),
        EmailRecipient(position=1, role="to", address_id=item.address.id, name=to.name),
    ]
    email.has_attachments = bool(outgoing.attachments)
    email.attachments = [  # the blobs the template's files are stored as: nothing is copied
        Attachment(position=i, filename=f.part.filename, content_type=f.part.content_type,
                   size=len(f.part.data), sha256=f.sha256)
        for i, f in enumerate(item.files)
    ]  # fmt: skip
    return email
