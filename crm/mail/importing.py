"""The import pipeline for one batch of one folder: dedupe -> filters -> store -> link -> deliver.

Nothing here commits: the sync loop (crm/mail/sync.py) commits a batch's rows, their per-user
state and the folder cursor in one transaction. Blobs (raw mail, attachments) are written
before that commit and are content-addressed, so a crash at any point leaves nothing
half-done and a rerun of the batch converges to the same rows (identity and location are unique).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import addressbook, folders
from crm.db import utcnow
from crm.mail import cases, filters, linking
from crm.mail.imap import HeaderItem
from crm.mail.parse import ParsedMail, identity_for, parse, parse_headers, snippet
from crm.models import (
    Attachment,
    Email,
    EmailAddress,
    EmailAddressLink,
    EmailLocation,
    EmailRecipient,
    EmailUserState,
    Folder,
    MailAccount,
)
from crm.notifications import notify
from crm.storage import BlobStore

# Mail older than this is history: it never notifies anyone (issue: historical imports).
HISTORICAL_AFTER = timedelta(days=2)


@dataclass
class ImportContext:
    """What a sync loads once and every batch reuses."""

    account: MailAccount
    blobs: BlobStore
    max_bytes: int
    receivers: set[int]  # users who get every mail of the account
    user_by_address: dict[str, int]  # lower-cased address -> user id
    skip_notify_folders: set[int]
    filters: filters.FilterSet  # compiled once per sync, inbox filters loaded per user lazily
    now: datetime = field(default_factory=utcnow)


def load_context(session: Session, account: MailAccount, blobs: BlobStore, max_bytes: int,
                 receivers: set[int]) -> ImportContext:
    rows = session.execute(
        select(EmailAddress.lower, EmailAddressLink.entity_id)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == "User")
    )
    user_by_address = dict(rows.all())
    skip = set(session.scalars(select(Folder.id).where(Folder.skip_notifications.is_(True))))
    return ImportContext(account, blobs, max_bytes, receivers, user_by_address, skip,
                         filters.load_filter_set(session, account))


@dataclass
class BatchResult:
    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    failed: int = 0
    email_ids: list[int] = field(default_factory=list)


@dataclass
class Candidate:
    """One server message on its way in."""

    uid: int
    header: HeaderItem
    identity: str
    headers_only: ParsedMail
    email_id: int | None = None  # set when the message is already stored
    raw: bytes | None = None
    mail: ParsedMail | None = None
    raw_sha256: str | None = None
    attachment_sha256: list[str] = field(default_factory=list)


def plan(session: Session, ctx: ImportContext, folder: str, uidvalidity: int,
         headers: dict[int, HeaderItem]) -> tuple[list[Candidate], BatchResult]:
    """Sort a batch by its headers: already here, to be ignored, or to be downloaded."""
    result = BatchResult(seen=len(headers))
    located = _located_uids(session, ctx.account.id, folder, uidvalidity, list(headers))
    candidates = []
    for uid, item in sorted(headers.items()):
        if uid in located:
            result.duplicates += 1
            continue
        parsed = parse_headers(item.header)
        identity = identity_for(parsed.message_id, item.header)
        candidates.append(Candidate(uid, item, identity, parsed))
    known = _emails_by_identity(session, {c.identity for c in candidates})
    kept = []
    for cand in candidates:
        cand.email_id = known.get(cand.identity)
        if cand.email_id is None and ctx.filters.ignored(cand.headers_only):
            result.skipped += 1
            continue
        kept.append(cand)
    return kept, result


def uids_to_download(ctx: ImportContext, candidates: list[Candidate]) -> list[int]:
    """Bodies are fetched only for new messages under the size cap."""
    return [c.uid for c in candidates if c.email_id is None and c.header.size <= ctx.max_bytes]


def parse_bodies(ctx: ImportContext, candidates: list[Candidate], bodies: dict[int, bytes]) -> None:
    """Parse each downloaded message once; oversized ones keep their headers and a note."""
    for cand in candidates:
        if cand.email_id is not None:
            continue
        raw = bodies.get(cand.uid)
        if raw is None:
            note = (f"Message is larger than {ctx.max_bytes // (1024 * 1024)} MB: only its "
                    "headers were imported" if cand.header.size > ctx.max_bytes
                    else "The server did not return this message's body: only its headers were imported")
            cand.raw = cand.header.header
            cand.mail = dataclasses.replace(cand.headers_only,
                                            problems=(*cand.headers_only.problems, note))
        else:
            cand.raw = raw
            cand.mail = parse(raw, ctx.max_bytes)


def ignored_after_download(session: Session, ctx: ImportContext, candidates: list[Candidate]) -> list[Candidate]:
    """Body criteria of Ignore filters can only be checked once the body is here."""
    return [c for c in candidates if c.email_id is not None or not ctx.filters.ignored(c.mail)]


def write_blobs(ctx: ImportContext, candidates: list[Candidate]) -> None:
    """Raw mail and attachments go to disk before any row refers to them."""
    for cand in candidates:
        if cand.email_id is None and cand.raw is not None:
            cand.raw_sha256 = ctx.blobs.put(cand.raw)
            cand.attachment_sha256 = [ctx.blobs.put(a.payload) for a in cand.mail.attachments]


def store(session: Session, ctx: ImportContext, folder: str, uidvalidity: int,
          candidates: list[Candidate], result: BatchResult) -> None:
    """Insert new Emails, locations and per-user states of a planned batch (flushes only)."""
    new = [c for c in candidates if c.email_id is None]
    by_identity: dict[str, Email] = {}
    addresses = addressbook.find_or_create(session, _all_addresses(c.mail for c in new))
    for cand in new:
        email = by_identity.get(cand.identity)
        if email is None:
            email = by_identity[cand.identity] = _new_email(ctx, cand, addresses)
            session.add(email)
            result.imported += 1
        else:
            result.duplicates += 1  # the same message twice in one batch
    session.flush()
    for cand in new:
        cand.email_id = by_identity[cand.identity].id
    result.duplicates += len(candidates) - len(new)
    for cand in candidates:
        session.add(EmailLocation(mail_account_id=ctx.account.id, folder=folder,
                                  uidvalidity=uidvalidity, uid=cand.uid, email_id=cand.email_id))
    emails = list(by_identity.values())
    _link(session, ctx, emails)
    _deliver(session, ctx, folder, candidates, {e.id: e for e in emails})
    if ctx.account.is_group:
        _file_in_group_folders(session, ctx, new)
    result.email_ids.extend(e.id for e in emails)


def _new_email(ctx: ImportContext, cand: Candidate, addresses) -> Email:
    mail = cand.mail
    people = [("from", [mail.from_] if mail.from_ else []), ("to", mail.to), ("cc", mail.cc),
              ("bcc", mail.bcc), ("reply_to", mail.reply_to)]
    position = itertools.count()
    recipients = [
        EmailRecipient(position=next(position), role=role, name=name[:320],
                       address_id=addresses[addr.lower()].id)
        for role, entries in people for name, addr in entries if addr.lower() in addresses
    ]
    from_row = addresses.get(mail.from_[1].lower()) if mail.from_ else None
    attachments = [
        Attachment(position=i, filename=a.filename[:500], content_type=a.content_type[:200],
                   size=len(a.payload), sha256=cand.attachment_sha256[i],
                   content_id=(a.content_id or None) and a.content_id[:500], is_inline=a.is_inline)
        for i, a in enumerate(mail.attachments)
    ]
    email = Email(
        identity=cand.identity, message_id=mail.message_id, in_reply_to=mail.in_reply_to,
        references=list(mail.references), subject=mail.subject, from_name=(mail.from_ or ("", ""))[0][:320],
        from_address_id=from_row.id if from_row else None, date_sent=mail.date,
        body_text=mail.text, body_html=mail.html, snippet=snippet(mail.text),
        address_text=" ".join(f"{n} {a}" for _, entries in people for n, a in entries)[:20000],
        has_attachments=any(not a.is_inline for a in mail.attachments),
        is_auto_reply=mail.is_auto_reply, is_bounce=mail.is_bounce, size=cand.header.size,
        raw_sha256=cand.raw_sha256, problems=list(mail.problems),
    )
    email.recipients = recipients
    email.attachments = attachments
    email._parsed = mail  # the linking step reads the parsed headers  # noqa: SLF001
    return email


def _link(session: Session, ctx: ImportContext, emails: list[Email]) -> None:
    """Parents for the new mail, handed on to replies that came first; then email-to-case."""
    links = linking.find_parents(session, emails, ctx.account)
    for email in emails:
        if links.get(email.id) is not None:
            linking.apply_link_columns(email, links[email.id])
    linking.propagate_to_orphan_replies_of(session, emails)
    if ctx.account.is_group and ctx.account.create_case:
        for email in emails:
            receivers = cases.route_to_case(session, email, email._parsed, ctx.account)  # noqa: SLF001
            email._extra_receivers = set(receivers)  # noqa: SLF001


def _deliver(session: Session, ctx: ImportContext, folder: str, candidates: list[Candidate],
             new_emails: dict[int, Email]) -> None:
    """One state row per user who has the mail; notify each user once per batch."""
    email_ids = {c.email_id for c in candidates}
    have = _existing_states(session, email_ids)
    fresh: dict[int, list[int]] = defaultdict(list)
    done: set[tuple[int, int]] = set()
    for cand in candidates:
        mail = cand.mail or cand.headers_only
        email = new_emails.get(cand.email_id)
        extra = getattr(email, "_extra_receivers", set()) if email is not None else set()
        for user_id, outgoing in _recipients(ctx, mail, extra).items():
            key = (cand.email_id, user_id)
            if key in have or key in done:
                continue
            done.add(key)
            state, skip_notification = _state_for(session, ctx, folder, cand, mail, user_id, outgoing)
            session.add(state)
            if not skip_notification and _notifies(ctx, mail, state, outgoing):
                fresh[user_id].append(cand.email_id)
    for user_id, ids in fresh.items():
        text = "1 new mail" if len(ids) == 1 else f"{len(ids)} new mails"
        notify(session, user_id, "new_mail", text, email_ids=ids[:50], count=len(ids))


def _file_in_group_folders(session: Session, ctx: ImportContext, new: list[Candidate]) -> None:
    """A group account's "Move to group folder" filters share the mail with the folder's teams."""
    by_folder: dict[int, set[int]] = defaultdict(set)
    for cand in new:
        folder_id = ctx.filters.account_folder(cand.mail)
        if folder_id:
            by_folder[folder_id].add(cand.email_id)
    for folder_id, email_ids in by_folder.items():
        folder = session.get(Folder, folder_id)
        if folder is not None:
            folders.file_in_group_folder(session, folder, email_ids)


def _recipients(ctx: ImportContext, mail: ParsedMail, extra: set[int]) -> dict[int, bool]:
    """user id -> is the mail outgoing for them (sent from one of their addresses)."""
    sender = ctx.user_by_address.get(mail.from_[1].lower()) if mail.from_ else None
    users = {u: False for u in ctx.receivers | extra}
    for _name, addr in (*mail.to, *mail.cc, *mail.bcc):
        user_id = ctx.user_by_address.get(addr.lower())
        if user_id is not None:
            users.setdefault(user_id, False)
    if sender is not None:
        users[sender] = True
    return users


def _state_for(session, ctx, folder, cand, mail, user_id, outgoing) -> tuple[EmailUserState, bool]:
    folder_id = None
    if user_id in ctx.receivers and not outgoing:
        folder_id = (ctx.account.folder_map or {}).get(folder) or ctx.account.target_folder_id
    placement = ctx.filters.inbox_placement(user_id, mail) if not outgoing else filters.NO_FILTER
    seen = "\\Seen" in cand.header.flags
    return EmailUserState(
        email_id=cand.email_id, user_id=user_id,
        folder_id=placement.folder_id or folder_id, in_trash=placement.in_trash,
        is_read=outgoing or seen or placement.mark_read or _historical(ctx, mail),
        is_outgoing=outgoing, sort_date=mail.date or ctx.now,
    ), placement.skip_notification


def _notifies(ctx, mail, state, outgoing) -> bool:
    placement_skip = state.in_trash or state.is_read
    return not (outgoing or placement_skip or _historical(ctx, mail)
                or state.folder_id in ctx.skip_notify_folders)


def _historical(ctx: ImportContext, mail: ParsedMail) -> bool:
    return mail.date is not None and mail.date < ctx.now - HISTORICAL_AFTER


# --- lookups ---------------------------------------------------------------------------

def _located_uids(session, account_id, folder, uidvalidity, uids) -> set[int]:
    if not uids:
        return set()
    stmt = select(EmailLocation.uid).where(
        EmailLocation.mail_account_id == account_id, EmailLocation.folder == folder,
        EmailLocation.uidvalidity == uidvalidity, EmailLocation.uid.in_(uids))
    return set(session.scalars(stmt))


def _emails_by_identity(session, identities) -> dict[str, int]:
    if not identities:
        return {}
    stmt = select(Email.identity, Email.id).where(Email.identity.in_(identities))
    return dict(session.execute(stmt).all())


def _existing_states(session, email_ids) -> set[tuple[int, int]]:
    if not email_ids:
        return set()
    stmt = select(EmailUserState.email_id, EmailUserState.user_id).where(
        EmailUserState.email_id.in_(email_ids))
    return set(session.execute(stmt).all())


def _all_addresses(mails) -> list[str]:
    out = []
    for mail in mails:
        if mail.from_:
            out.append(mail.from_[1])
        for _name, addr in (*mail.to, *mail.cc, *mail.bcc, *mail.reply_to):
            out.append(addr)
    return out

