"""Drafts: what a user writes, stored as an Email with status Draft until it is handed over.

Outgoing mail is its own value (crm.mail.compose.OutgoingMessage); a draft is the row it is
made from, so a draft survives a closed tab, shows in Drafts and can be reopened. Address
fields are parsed strictly: an entry that is not an address is an error naming it, never
silently dropped (a recipient the user typed must not vanish).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db import utcnow
from crm.mail import sanitize
from crm.mail.address import normalise_address, parse_address_list
from crm.mail.compose import html_to_text
from crm.mail.parse import snippet
from crm.models import (
    RECORD_TYPES,
    Attachment,
    Email,
    EmailRecipient,
    EmailUserState,
    User,
)
from crm.models.mail import STATUS_DRAFT
from crm.records import addressbook
from crm.records.access import get_visible
from crm.records.history import readable_mail
from crm.templating import library

ROLES = ("to", "cc", "bcc")
_SPLIT = re.compile(r"[,;\n]")


class DraftError(ValueError):
    """Input a draft cannot hold; `errors` maps a field to a message for the user."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class DraftInput:
    """The compose form, as plain values."""

    from_address: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    is_html: bool = True
    parent_type: str | None = None
    parent_id: int | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    # Attachments already on the draft (or carried over from a forwarded mail) to keep.
    keep_attachment_ids: list[int] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    # The template chosen in compose, the record it was rendered for ("Type:id"), and its
    # attachments to add to the mail (issue 13).
    template_id: int | None = None
    template_parent: str = ""
    template_attachment_ids: list[int] = field(default_factory=list)


def keep_cid(content_id: str) -> str:
    """Inline images of a forwarded mail stay `cid:` references to the parts carried along."""
    return f"cid:{content_id}"


def parse_recipients(text: str) -> list[tuple[str, str]]:
    """[(name, address)] from a typed field; DraftError-ready message for what is not one."""
    found, bad = [], []
    for entry in _entries(text):
        pairs = parse_address_list(entry)
        if len(pairs) == 1 and normalise_address(pairs[0][1]):
            found.append((pairs[0][0], normalise_address(pairs[0][1])))
        else:
            bad.append(entry)
    if bad:
        raise ValueError("not an e-mail address: " + ", ".join(bad))
    seen, unique = set(), []
    for name, addr in found:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            unique.append((name, addr))
    return unique


def split_entries(text: str) -> list[str]:
    """The entries of an address field, as typed."""
    return _entries(text)


def _entries(text: str) -> list[str]:
    """Split on commas and semicolons, but not inside a quoted display name."""
    entries, current, quoted = [], [], False
    for ch in text or "":
        if ch == '"':
            quoted = not quoted
        if not quoted and _SPLIT.match(ch):
            entries.append("".join(current))
            current = []
        else:
            current.append(ch)
    entries.append("".join(current))
    return [e.strip() for e in entries if e.strip()]


def save(
    session: Session, blobs, user: User, draft: DraftInput, email: Email | None = None
) -> Email:
    """Create or update the user's draft from the form; the caller commits."""
    recipients, errors = {}, {}
    for role in ROLES:
        try:
            recipients[role] = parse_recipients(getattr(draft, role))
        except ValueError as exc:
            errors[role] = str(exc)
    parent_problem = _parent_problem(session, user, draft)
    if parent_problem:
        errors["parent"] = parent_problem
    if any(ch in draft.subject for ch in "\r\n\0"):
        errors["subject"] = "the subject may not contain line breaks"
    if errors:
        raise DraftError(errors)
    if email is None:
        email = Email(identity=f"draft:{uuid.uuid4().hex}", status=STATUS_DRAFT)
        email.created_by_id = user.id
        session.add(email)
    _fill(session, email, draft, recipients)
    _attach(session, blobs, user, email, draft)
    session.flush()
    _own_state(session, email, user)
    return email


def _parent_problem(session: Session, user: User, draft: DraftInput) -> str | None:
    """Why the mail cannot be linked to the draft's record, or None.

    A record the writer may not read can stay only when it came with mail they may read (a
    reply to or forward of a mail linked to it, or their draft): a form naming any other id
    must not put mail into a stranger's History.
    """
    if not draft.parent_type:
        return None
    model = RECORD_TYPES.get(draft.parent_type)
    if model is None or session.get(model, draft.parent_id or 0) is None:
        return "the chosen record does not exist"
    if get_visible(session, model, draft.parent_id, user) is not None:
        return None
    linked_mail = select(Email.id).where(
        Email.parent_type == draft.parent_type,
        Email.parent_id == draft.parent_id,
        readable_mail(user),
    )
    if session.scalar(linked_mail.limit(1)) is not None:
        return None
    return "that record is not one you may open: choose another or remove it"


def _fill(session: Session, email: Email, draft: DraftInput, recipients: dict) -> None:
    body = draft.body or ""
    html = sanitize.clean(body, cid_url=keep_cid).html if draft.is_html else ""
    text = html_to_text(html) if draft.is_html else body
    sender = normalise_address(draft.from_address)
    addresses = addressbook.find_or_create(
        session, [a for group in recipients.values() for _, a in group] + [sender or ""]
    )
    email.subject = draft.subject.strip()
    email.body_html, email.body_text, email.snippet = html, text, snippet(text)
    email.from_address_id = addresses[sender.lower()].id if sender else None
    email.in_reply_to = draft.in_reply_to
    email.references = list(draft.references)
    email.parent_type = draft.parent_type or None
    email.parent_id = draft.parent_id if draft.parent_type else None
    email.link_rule = "composed" if draft.parent_type else None
    email.date_sent = utcnow()
    # The sender is a recipient row too ("from"), as on imported mail: the page shows it.
    sender_row = [("from", "", sender)] if sender else []
    email.recipients = [
        EmailRecipient(position=i, role=role, address_id=addresses[addr.lower()].id, name=name)
        for i, (role, name, addr) in enumerate(
            [*sender_row, *((role, n, a) for role in ROLES for n, a in recipients[role])]
        )
    ]
    everyone = [(n, a) for group in recipients.values() for n, a in group]
    email.address_text = " ".join(f"{n} {a}".strip() for n, a in everyone)[:20000]


def _attach(session: Session, blobs, user: User, email: Email, draft: DraftInput) -> None:
    keep = set(draft.keep_attachment_ids)
    kept = [a for a in email.attachments if a.id in keep]
    # Attachments of other mail (a forward) only from mail this user can read: an id typed
    # into the form must not fetch somebody else's file.
    readable = select(EmailUserState.email_id).where(EmailUserState.user_id == user.id)
    carried = [
        a
        for a in session.scalars(
            select(Attachment).where(Attachment.id.in_(keep), Attachment.email_id.in_(readable))
        )
        if a.email_id != email.id and a not in kept
    ]
    fresh = [
        Attachment(
            filename=up.filename,
            content_type=up.content_type,
            size=len(up.data),
            sha256=blobs.put(up.data),
        )
        for up in draft.uploads
    ]
    copies = [
        Attachment(
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            content_id=a.content_id,
            is_inline=a.is_inline,
        )
        for a in carried
    ]
    email.attachments = kept + copies + fresh
    email.attachments += _from_template(session, user, draft, email.attachments)
    for i, att in enumerate(email.attachments):
        att.position = i
    email.has_attachments = any(not a.is_inline for a in email.attachments)


def _from_template(
    session: Session, user: User, draft: DraftInput, present: list[Attachment]
) -> list[Attachment]:
    """The chosen template's attachments, when the user may use that template; once only (the
    form keeps offering them, and every autosave posts it again)."""
    template = library.get_usable(session, user, draft.template_id or 0)
    if template is None:
        return []
    wanted = set(draft.template_attachment_ids)
    have = {(a.sha256, a.filename) for a in present}
    return [
        Attachment(filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256)
        for a in template.attachments
        if a.id in wanted and (a.sha256, a.filename) not in have
    ]


def _own_state(session: Session, email: Email, user: User) -> None:
    state = session.query(EmailUserState).filter_by(email_id=email.id, user_id=user.id).first()
    if state is None:
        session.add(
            EmailUserState(email_id=email.id, user_id=user.id, is_read=True, sort_date=utcnow())
        )
    else:
        state.sort_date, state.in_trash = utcnow(), False


def editable(session: Session, user: User, email_id: int) -> Email | None:
    """The user's own draft, or None (someone else's mail is never edited)."""
    email = session.get(Email, email_id)
    if email is None or email.status != STATUS_DRAFT or email.created_by_id != user.id:
        return None
    return email


def discard(session: Session, email: Email) -> None:
    """Delete a draft for good (its uploads' blobs stay until the blob sweep)."""
    session.delete(email)
