"""The import pipeline for one batch of one folder: dedupe -> filters -> store -> link -> deliver.

Nothing here commits: the sync loop (crm/mail/sync.py) commits a batch's rows, their per-user
state and the folder cursor in one transaction. Blobs (raw mail, attachments) are written and
made durable before that commit (once per batch: `write_blobs`, or the helper process in
`prepare`) and are content-addressed, so a crash at any point leaves nothing half-done, no
committed row names bytes a power cut could take, and a rerun of the batch converges to the
same rows (identity and location are unique).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from crm import bulk, folding
from crm.db import make_engine, utcnow
from crm.inbound import bounces, delivery, filters
from crm.inbound.claims import users_receiving
from crm.mail.imap import HeaderItem
from crm.mail.parse import (
    ParsedMail,
    identity_for,
    message_id_of,
    parse,
    parse_headers,
    snippet,
)
from crm.models import (
    Attachment,
    Case,
    DeletedMessage,
    Email,
    EmailAddress,
    EmailAddressLink,
    EmailLocation,
    EmailRecipient,
    MailAccount,
)
from crm.models.mail import STATUS_ARCHIVED
from crm.outbound import autoreply
from crm.records import addressbook, cases, linking
from crm.storage import DATABASE, FILES, Blobs, BlobStore, DatabaseBlobStore


@dataclass
class ImportContext:
    """What a sync loads once and every batch reuses."""

    account: MailAccount
    blobs: Blobs
    max_bytes: int
    receivers: set[int]  # users who get every mail of the account
    user_by_address: dict[str, int]  # lower-cased address -> user id
    filters: filters.FilterSet  # compiled once per sync, inbox filters loaded per user lazily
    # Lower-cased address of each of our mail accounts (group, personal, the system SMTP one)
    # -> the users who receive that account's mail: mail From it is that account's sent mail.
    account_addresses: dict[str, set[int]] = field(default_factory=dict)
    # The account's Sent folders (the server's \\Sent special use, the one named on the account):
    # mail fetched from them is the account's sent mail, whatever its From.
    sent_folders: frozenset[str] = frozenset()
    now: datetime = field(default_factory=utcnow)

    def is_ours(self, mail: ParsedMail) -> bool:
        """From one of our addresses: a user's, or one of our mail accounts'."""
        sender = mail.from_[1].lower() if mail.from_ else ""
        return sender in self.user_by_address or sender in self.account_addresses


def load_context(
    session: Session,
    account: MailAccount,
    blobs: Blobs,
    max_bytes: int,
    receivers: set[int],
    sent_folders=(),
) -> ImportContext:
    rows = session.execute(
        select(EmailAddress.lower, EmailAddressLink.entity_id)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == "User")
    )
    user_by_address = dict(rows.all())
    return ImportContext(
        account,
        blobs,
        max_bytes,
        receivers,
        user_by_address,
        filters.load_filter_set(session, account),
        _account_addresses(session, account, receivers),
        frozenset(sent_folders),
    )


def _account_addresses(
    session: Session, account: MailAccount, receivers: set[int]
) -> dict[str, set[int]]:
    """Every mail account's address with the users who get its mail (none for the owner-less
    system SMTP account: its address is ours all the same)."""
    out: dict[str, set[int]] = defaultdict(set)
    for other in session.scalars(select(MailAccount)):
        if other.email_address:
            users = receivers if other.id == account.id else users_receiving(session, other)
            out[other.email_address.strip().lower()] |= users
    return dict(out)


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
    identity: str  # without a Message-ID: the header block's hash until the body is here
    message_id: str | None
    email_id: int | None = None  # set when the message is already stored
    raw: bytes | None = None
    mail: ParsedMail | None = None
    raw_sha256: str | None = None
    attachment_sha256: list[str] = field(default_factory=list)
    attachment_sizes: list[int] = field(default_factory=list)
    group_folder_id: int | None = None  # where a group account's Move filter files new mail
    search_extra: str | None = None  # computed while parsing (else when its row is built)
    address_roles: list[tuple[str, str]] = field(default_factory=list)  # as stored, in order

    @cached_property
    def headers_only(self) -> ParsedMail:
        """The header block parsed, when something reads it (filters, mail without a body):
        a batch of new mail without filters needs only the Message-IDs."""
        return parse_headers(self.header.header)

    @property
    def identity_waits_for_body(self) -> bool:
        """Without a Message-ID only byte-identical copies are the same mail: the identity is
        the whole message's hash, known once the body is downloaded."""
        return self.message_id is None and self.email_id is None


def plan(
    session: Session,
    ctx: ImportContext,
    folder: str,
    uidvalidity: int,
    headers: dict[int, HeaderItem],
) -> tuple[list[Candidate], BatchResult]:
    """Sort a batch by its headers: already here, deleted for everyone (skipped), to be
    ignored, or to be downloaded."""
    result = BatchResult(seen=len(headers))
    located = _located_uids(session, ctx.account.id, folder, uidvalidity, list(headers))
    candidates = []
    for uid, item in sorted(headers.items()):
        if uid in located:
            result.duplicates += 1
            continue
        message_id = message_id_of(item.header)
        candidates.append(Candidate(uid, item, identity_for(message_id, item.header), message_id))
    final = {c.identity for c in candidates if not c.identity_waits_for_body}
    deleted = _deleted_identities(session, ctx.account.id, final)
    if deleted:
        result.skipped += sum(c.identity in deleted for c in candidates)
        candidates = [c for c in candidates if c.identity not in deleted]
    known = _emails_by_identity(session, final)
    kept = []
    for cand in candidates:
        cand.email_id = known.get(cand.identity) if cand.identity in final else None
        # Also for mail already stored (from another account): Ignore keeps it out of this one.
        if ctx.filters.ignore and ctx.filters.ignored(cand.headers_only):
            result.skipped += 1
            continue
        kept.append(cand)
    return kept, result


def uids_to_download(ctx: ImportContext, candidates: list[Candidate]) -> list[int]:
    """Bodies are fetched only for new messages under the size cap."""
    return [c.uid for c in candidates if c.email_id is None and c.header.size <= ctx.max_bytes]


@dataclass(frozen=True)
class Prepared:
    """A downloaded message after parsing (and, when asked, after its blobs were written)."""

    mail: ParsedMail
    raw_sha256: str | None
    attachment_sha256: tuple[str, ...]
    attachment_sizes: tuple[int, ...]
    search_extra: str = ""  # the mail's `emails.search_extra`, work taken off the storing process


def prepare(
    items: list[tuple[int, bytes]], blob_target: tuple[str, str] | None, max_bytes: int
) -> dict[int, Prepared]:
    """Parse downloaded messages; with `blob_target`, also store their blobs and drop the payloads.

    Runs in a helper process while the previous batch is stored, so it takes and returns plain
    values; the blobs it writes are durable before it returns. Parsing never raises; a failing
    disk or database write does, and stops the sync.
    """
    blobs = helper_store(blob_target) if blob_target else None
    out = {}
    for uid, raw in items:
        mail = parse(raw, max_bytes)
        sizes = tuple(len(a.payload) for a in mail.attachments)
        extra = folding.search_extra(mail.subject, mail.text, _address_text(mail))
        out[uid] = Prepared(mail, None, (), sizes, extra)
    if blobs is not None:
        out = _stored_blobs(blobs, items, out)
    return out


def _stored_blobs(blobs: Blobs, items, parsed: dict[int, Prepared]) -> dict[int, Prepared]:
    """The batch's raw mail and attachments stored at once and made durable, their payloads
    dropped from the parsed mail (they need not travel back from the helper process)."""
    raws = dict(items)
    data = [
        b
        for uid, p in parsed.items()
        for b in (raws[uid], *(a.payload for a in p.mail.attachments))
    ]
    digests = iter(blobs.put_many(data))
    out = {}
    for uid, p in parsed.items():
        raw_sha = next(digests)
        shas = tuple(next(digests) for _ in p.mail.attachments)
        bare = tuple(dataclasses.replace(a, payload=b"") for a in p.mail.attachments)
        mail = dataclasses.replace(p.mail, attachments=bare)
        out[uid] = dataclasses.replace(p, mail=mail, raw_sha256=raw_sha, attachment_sha256=shas)
    blobs.sync()
    return out


# The helper process's own store, opened on its first batch: a database store gets an engine
# (and connection) of its own, never one inherited across the fork.
_HELPER_STORES: dict[tuple[str, str], Blobs] = {}


def helper_store(target: tuple[str, str]) -> Blobs:
    store = _HELPER_STORES.get(target)
    if store is None:
        kind, where = target
        if kind == FILES:
            store = BlobStore(where)
        else:
            store = DatabaseBlobStore(make_engine(where, pool_size=1))
        _HELPER_STORES[target] = store
    return store


def helper_blob_target(ctx: ImportContext) -> tuple[str, str] | None:
    """Where `prepare` stores blobs in the helper process, if it may: the file store's folder or
    the database store's URL (unless an Ignore filter must read the body first)."""
    if not blobs_before_filters(ctx):
        return None
    if ctx.blobs.kind == FILES:
        return (FILES, str(ctx.blobs.root))
    return (DATABASE, ctx.blobs.engine.url.render_as_string(hide_password=False))


def blobs_before_filters(ctx: ImportContext) -> bool:
    """Blobs may be written while parsing unless an Ignore filter must first read the body
    (ignored mail must leave nothing behind)."""
    return not any(f.needs_body for f in ctx.filters.ignore)


def apply_prepared(
    ctx: ImportContext,
    candidates: list[Candidate],
    bodies: dict[int, bytes],
    prepared: dict[int, Prepared],
) -> None:
    """Give each new candidate its parsed mail; a missing body leaves headers and a note."""
    for cand in candidates:
        if cand.email_id is not None:
            continue
        done = prepared.get(cand.uid)
        if done is None:
            note = (
                f"Message is larger than {ctx.max_bytes // (1024 * 1024)} MB: only its "
                "headers were imported"
                if cand.header.size > ctx.max_bytes
                else "The server did not return this message's body: only its headers were imported"
            )
            cand.raw = cand.header.header
            cand.mail = dataclasses.replace(
                cand.headers_only, problems=(*cand.headers_only.problems, note)
            )
            continue
        cand.raw, cand.mail = bodies[cand.uid], done.mail
        if cand.identity_waits_for_body:
            cand.identity = done.mail.identity
        cand.raw_sha256, cand.attachment_sizes = done.raw_sha256, list(done.attachment_sizes)
        cand.attachment_sha256 = list(done.attachment_sha256)
        cand.search_extra = done.search_extra


def ignored_after_download(
    session: Session, ctx: ImportContext, candidates: list[Candidate]
) -> list[Candidate]:
    """Body criteria of Ignore filters can only be checked once the body is here (for mail
    already stored from another account: its stored body). Mail without a Message-ID, whose
    identity is known only now, is dropped here too when it was deleted for everyone."""
    candidates = _without_deleted_hashed(session, ctx, candidates)
    if not ctx.filters.ignore:
        return candidates
    stored = {} if blobs_before_filters(ctx) else _stored_mail(session, candidates)
    kept = []
    for cand in candidates:
        mail = cand.mail if cand.email_id is None else stored.get(cand.email_id)
        if mail is None or not ctx.filters.ignored(mail):
            kept.append(cand)
    return kept


def _without_deleted_hashed(
    session: Session, ctx: ImportContext, candidates: list[Candidate]
) -> list[Candidate]:
    """Mail without a Message-ID: now that its identity is the whole message's hash, the
    copies already stored are found and those deleted for everyone left out."""
    hashed = {c.identity for c in candidates if c.identity_waits_for_body}
    if not hashed:
        return candidates
    known = _emails_by_identity(session, hashed)
    for cand in candidates:
        if cand.identity_waits_for_body and cand.identity in known:
            cand.email_id = known[cand.identity]
    deleted = _deleted_identities(session, ctx.account.id, hashed)
    return [c for c in candidates if c.identity not in deleted]


def _stored_mail(session: Session, candidates: list[Candidate]) -> dict[int, ParsedMail]:
    """Known mail as filters see it: the server's headers with the stored body."""
    by_id = {c.email_id: c for c in candidates if c.email_id is not None}
    if not by_id:
        return {}
    rows = session.execute(
        select(Email.id, Email.body_text, Email.body_html).where(Email.id.in_(list(by_id)))
    )
    return {
        email_id: dataclasses.replace(
            by_id[email_id].headers_only, text=text or "", html=html or "", header_only=False
        )
        for email_id, text, html in rows
    }


def write_blobs(ctx: ImportContext, candidates: list[Candidate]) -> None:
    """Raw mail and attachments are stored (if not done yet) and made durable, all of the
    batch at once, before any row refers to them."""
    todo = [
        c for c in candidates if c.email_id is None and c.raw is not None and c.raw_sha256 is None
    ]
    blobs = [data for c in todo for data in (c.raw, *(a.payload for a in c.mail.attachments))]
    digests = iter(ctx.blobs.put_many(blobs))
    for cand in todo:
        cand.raw_sha256 = next(digests)
        cand.attachment_sha256 = [next(digests) for _ in cand.mail.attachments]
        cand.attachment_sizes = [len(a.payload) for a in cand.mail.attachments]
    ctx.blobs.sync()


def store(
    session: Session,
    ctx: ImportContext,
    folder: str,
    uidvalidity: int,
    candidates: list[Candidate],
    result: BatchResult,
    historical: bool = False,
) -> None:
    """Insert new Emails, locations and per-user states of a planned batch (no commit).

    Mail of one of the account's Sent folders is its sent mail; `historical` mail (a folder
    read again after a reset) notifies nobody. Rows go in as multi-row INSERTs rather than
    through the unit of work: building and flushing a dozen ORM objects per message cost more
    than parsing it.
    """
    sent = folder in ctx.sent_folders
    _known_since_planned(session, candidates)
    new = [c for c in candidates if c.email_id is None]
    first: dict[str, Candidate] = {}
    for cand in new:
        first.setdefault(cand.identity, cand)
    addresses = addressbook.find_or_create(session, _all_addresses(c.mail for c in first.values()))
    ids = _insert_emails(session, list(first.values()), addresses)
    for cand in new:
        cand.email_id = ids[cand.identity]
    result.imported += len(first)
    result.duplicates += len(candidates) - len(first)
    bulk.insert_rows(
        session.connection(),
        EmailLocation.__table__,
        [
            {
                "mail_account_id": ctx.account.id,
                "folder": folder,
                "uidvalidity": uidvalidity,
                "uid": c.uid,
                "email_id": c.email_id,
            }
            for c in candidates
        ],
    )
    emails = _load_new(session, list(ids.values()), first)
    _link(session, ctx, emails, sent)
    if ctx.account.is_group:
        for cand in new:  # matched once, read by delivery twice
            cand.group_folder_id = ctx.filters.account_folder(cand.mail)
    delivery.deliver(
        session, ctx, folder, candidates, {e.id: e for e in emails}, sent=sent, quiet=historical
    )
    if ctx.account.is_group:
        delivery.file_in_group_folders(session, ctx, new)
    result.email_ids.extend(ids.values())


def _insert_emails(session: Session, cands: list[Candidate], addresses) -> dict[str, int]:
    """Insert Emails with their recipients and attachments; identity -> new id."""
    if not cands:
        return {}
    rows = [_email_row(c, addresses) for c in cands]
    connection = session.connection()
    new_ids = bulk.insert_rows_returning_ids(connection, Email.__table__, rows)
    ids = {row["identity"]: id_ for row, id_ in zip(rows, new_ids)}
    recipients, attachments = [], []
    lower_by_id = {row.id: row.lower for row in addresses.values()}
    for cand in cands:
        email_id = ids[cand.identity]
        rows_of_mail = _recipient_rows(cand.mail, addresses)
        cand.address_roles = [(r["role"], lower_by_id[r["address_id"]]) for r in rows_of_mail]
        recipients += [{"email_id": email_id, **r} for r in rows_of_mail]
        attachments += [{"email_id": email_id, **a} for a in _attachment_rows(cand)]
    bulk.insert_rows(connection, EmailRecipient.__table__, recipients)
    bulk.insert_rows(connection, Attachment.__table__, attachments)
    return ids


def _address_text(mail: ParsedMail) -> str:
    return " ".join(f"{n} {a}" for _, group in _people(mail) for n, a in group)[:20000]


def _people(mail: ParsedMail):
    return [
        ("from", [mail.from_] if mail.from_ else []),
        ("to", mail.to),
        ("cc", mail.cc),
        ("bcc", mail.bcc),
        ("reply_to", mail.reply_to),
    ]


def _recipient_rows(mail: ParsedMail, addresses) -> list[dict]:
    entries = [
        (role, name, addr)
        for role, group in _people(mail)
        for name, addr in group
        if addr.lower() in addresses
    ]
    return [
        {"position": i, "role": role, "name": name[:320], "address_id": addresses[addr.lower()].id}
        for i, (role, name, addr) in enumerate(entries)
    ]


def _labelled(a) -> str:
    """The content type as stored: a text file keeps its charset, so that it is served and
    forwarded readable (its bytes are stored as they came)."""
    return f"{a.content_type}; charset={a.charset}" if a.charset else a.content_type


def _attachment_rows(cand: Candidate) -> list[dict]:
    return [
        {
            "position": i,
            "filename": a.filename[:500],
            "content_type": _labelled(a)[:200],
            "size": cand.attachment_sizes[i],
            "sha256": cand.attachment_sha256[i],
            "content_id": (a.content_id or None) and a.content_id[:500],
            "is_inline": a.is_inline,
            "parent_type": None,
            "parent_id": None,
        }
        for i, a in enumerate(cand.mail.attachments)
    ]


def _email_row(cand: Candidate, addresses) -> dict:
    mail = cand.mail
    from_row = addresses.get(mail.from_[1].lower()) if mail.from_ else None
    row = {
        "identity": cand.identity,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": list(mail.references),
        "subject": mail.subject,
        "from_name": (mail.from_ or ("", ""))[0][:320],
        "from_address_id": from_row.id if from_row else None,
        "date_sent": mail.date,
        "body_text": mail.text,
        "body_html": mail.html,
        "snippet": snippet(mail.text),
        "address_text": _address_text(mail),
        "has_attachments": any(not a.is_inline for a in mail.attachments),
        "is_auto_reply": mail.is_auto_reply,
        "is_bounce": mail.is_bounce,
        "size": cand.header.size,
        "raw_sha256": cand.raw_sha256,
        "problems": list(mail.problems),
        "status": STATUS_ARCHIVED,
        "created_at": utcnow(),
    }
    row["search_extra"] = (
        cand.search_extra
        if cand.search_extra is not None
        else folding.search_extra(mail.subject, mail.text, row["address_text"])
    )
    return row


def _load_new(session: Session, ids: list[int], by_identity: dict[str, Candidate]) -> list[Email]:
    """The new Emails as objects, for linking (bodies stay unloaded until asked for)."""
    if not ids:
        return []
    stmt = (
        select(Email)
        .where(Email.id.in_(ids))
        .options(defer(Email.body_text), defer(Email.body_html))
    )
    emails = list(session.scalars(stmt))
    for email in emails:
        cand = by_identity[email.identity]
        email._parsed = cand.mail
        email._raw = cand.raw if cand.raw_sha256 else None  # read by bounces, not fetched again
        email._address_roles = cand.address_roles  # read by linking, no recipient rows loaded
    return emails


def _link(session: Session, ctx: ImportContext, emails: list[Email], sent: bool = False) -> None:
    """Parents for the new mail, handed on to replies that came first; then email-to-case.

    Our own mail (from a Sent folder, or From one of our addresses) joins the case it answers
    but never opens one."""
    # Before email-to-case: a plain-text bounce becomes a bounce here, and opens no case.
    bounces.link_bounces(session, ctx.blobs, emails)
    links = linking.find_parents(session, emails, ctx.account)
    for email in emails:
        if links.get(email.id) is not None:
            linking.apply_link_columns(email, links[email.id])
    linking.propagate_to_orphan_replies_of(session, emails)
    if ctx.account.is_group and ctx.account.create_case:
        for email in emails:
            ours = sent or ctx.is_ours(email._parsed)
            receivers = cases.route_to_case(session, email, email._parsed, ctx.account, ours=ours)
            email._extra_receivers = set(receivers)
            if email.link_rule == "case-created" and ctx.account.auto_reply:
                case = session.get(Case, email.parent_id)
                autoreply.queue_auto_reply(
                    session, ctx.blobs, ctx.account, email, email._parsed, case
                )


def _all_addresses(mails) -> list[str]:
    out = []
    for mail in mails:
        if mail.from_:
            out.append(mail.from_[1])
        for _name, addr in (*mail.to, *mail.cc, *mail.bcc, *mail.reply_to):
            out.append(addr)
    return out


# --- lookups ---------------------------------------------------------------------------


def _known_since_planned(session: Session, candidates: list[Candidate]) -> None:
    """Batches are planned while the one before is stored: look again for mail stored since."""
    new = {c.identity for c in candidates if c.email_id is None}
    known = _emails_by_identity(session, new)
    for cand in candidates:
        if cand.email_id is None and cand.identity in known:
            cand.email_id = known[cand.identity]


def _located_uids(session, account_id, folder, uidvalidity, uids) -> set[int]:
    if not uids:
        return set()
    stmt = select(EmailLocation.uid).where(
        EmailLocation.mail_account_id == account_id,
        EmailLocation.folder == folder,
        EmailLocation.uidvalidity == uidvalidity,
        EmailLocation.uid.in_(uids),
    )
    return set(session.scalars(stmt))


def _deleted_identities(session, account_id: int, identities) -> set[str]:
    """Those of `identities` deleted for everyone while this account had them."""
    if not identities:
        return set()
    stmt = select(DeletedMessage.identity).where(
        DeletedMessage.mail_account_id == account_id,
        DeletedMessage.identity.in_(list(identities)),
    )
    return set(session.scalars(stmt))


def _emails_by_identity(session, identities) -> dict[str, int]:
    if not identities:
        return {}
    stmt = select(Email.identity, Email.id).where(Email.identity.in_(identities))
    return dict(session.execute(stmt).all())
