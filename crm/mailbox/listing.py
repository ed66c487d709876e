"""A user's mailbox: folder definitions, unread counts, keyset-paged lists, visibility, actions.

Everything a user sees of a mail comes from their EmailUserState row; an Email without one is
invisible to them (admins excepted). No Flask here; the caller commits.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, false, func, or_, select, true, tuple_
from sqlalchemy.orm import Session

from crm.mailbox import folders
from crm.models import (
    RECORD_TYPES,
    Email,
    EmailAddress,
    EmailRecipient,
    EmailUserState,
    Folder,
    User,
)
from crm.models.bounces import KIND_DELAY, KIND_OTHER, DeliveryReport
from crm.models.mail import STATUS_DRAFT, STATUS_SENT

PAGE_SIZE = 50
SPECIAL = (
    ("inbox", "Inbox"),
    ("important", "Important"),
    ("sent", "Sent"),
    ("drafts", "Drafts"),
    ("trash", "Trash"),
)

S, E = EmailUserState, Email


@dataclass(frozen=True)
class View:
    """One folder as seen by one user: a key for URLs, a label and the row condition."""

    key: str
    label: str
    folder: Folder | None = None

    @property
    def is_sent(self) -> bool:
        return self.key in ("sent", "drafts")


@dataclass(frozen=True)
class Row:
    id: int
    sender: str
    recipients: str
    subject: str
    snippet: str
    date: datetime | None
    parent: tuple[str, int, str] | None
    has_attachments: bool
    is_read: bool
    is_important: bool
    thread: str = ""  # the thread key (crm.mailbox.conversations.thread_key)
    # Machine mail, one badge at most: a bounce is not also an auto-reply (it carries
    # Auto-Submitted), and a delay warning is neither (crm.inbound.bounces).
    is_auto_reply: bool = False
    is_bounce: bool = False
    is_delay: bool = False
    # A conversation row (crm.mailbox.conversations): its latest mail's fields, these over all its mail.
    count: int = 1
    conversation: bool = False


@dataclass(frozen=True)
class ListPage:
    rows: list[Row]
    next_cursor: str | None


def condition(view: View, user_id: int, S=S, E=E):
    """The WHERE clause over (EmailUserState, Email) that defines a folder for a user.

    S and E may be aliases of the two models (a subquery over the same folder).
    """
    mine = S.user_id == user_id
    by_me = E.created_by_id == user_id
    if view.key == "inbox":
        return and_(
            mine,
            S.in_trash == false(),
            S.folder_id.is_(None),
            S.is_outgoing == false(),
            E.status != STATUS_DRAFT,
        )
    if view.key == "important":
        return and_(mine, S.in_trash == false(), S.is_important == true())
    if view.key == "sent":
        return and_(
            mine,
            S.in_trash == false(),
            or_(S.is_outgoing == true(), and_(E.status == STATUS_SENT, by_me)),
        )
    if view.key == "drafts":
        return and_(mine, S.in_trash == false(), E.status == STATUS_DRAFT, by_me)
    if view.key == "trash":
        return and_(mine, S.in_trash == true())
    if view.key == "all":  # search without a folder: everything but Trash
        return and_(mine, S.in_trash == false())
    return and_(mine, S.in_trash == false(), S.folder_id == view.folder.id)


def visible_folders(session: Session, user: User) -> list[Folder]:
    """The user's own folders, then the group folders of their teams (admins: all of them)."""
    return folders.personal_folders(session, user.id) + folders.visible_group_folders(session, user)


def resolve(session: Session, user: User, key: str) -> View | None:
    """The view for a URL key (a special name or a folder id the user may see), else None."""
    for special, label in SPECIAL:
        if key == special:
            return View(special, label)
    if not key.isdigit():
        return None
    folder = next((f for f in visible_folders(session, user) if f.id == int(key)), None)
    return View(key, folder.name, folder) if folder else None


def pane(session: Session, user: User) -> list[tuple[View, int]]:
    """The left pane: special folders, then user and group folders, each with its unread count."""
    views = [View(k, label) for k, label in SPECIAL]
    views += [View(str(f.id), f.name, f) for f in visible_folders(session, user)]
    counts = unread_counts(session, user.id)
    return [(v, counts.get(v.key, 0)) for v in views]


def unread_counts(session: Session, user_id: int) -> dict[str, int]:
    """Unread mail per folder key, in one query over the partial index of unread state rows.

    Sent and Drafts get no count (one's own mail), and Inbox counts by state alone: a draft
    is the user's own and never unread, so the list's Draft condition changes nothing here.
    """
    stmt = (
        select(S.folder_id, S.in_trash, S.is_outgoing, S.is_important, func.count())
        .where(S.user_id == user_id, S.is_read == false())
        .group_by(S.folder_id, S.in_trash, S.is_outgoing, S.is_important)
    )
    counts: dict[str, int] = {}
    for folder_id, in_trash, outgoing, important, n in session.execute(stmt):
        keys = ["trash"] if in_trash else [str(folder_id) if folder_id else "inbox"]
        if not in_trash and important:
            keys.append("important")
        if folder_id is None and not in_trash and outgoing:
            keys.remove("inbox")
        for key in keys:
            counts[key] = counts.get(key, 0) + n
    return counts


# --- keyset paging ------------------------------------------------------------------------


def encode_cursor(sort_date: datetime, email_id: int) -> str:
    raw = f"{sort_date.isoformat()}|{email_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (sort_date, email_id) a cursor stands for; anything unreadable means the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        date, _, email_id = raw.partition("|")
        return datetime.fromisoformat(date), int(email_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def list_page(
    session: Session,
    user: User,
    view: View,
    cursor: str | None = None,
    where=None,
    limit: int = PAGE_SIZE,
) -> ListPage:
    """One page of a folder, newest first, seeking past the cursor instead of offsetting."""
    stmt = (
        select(S, E, EmailAddress.address)
        .join(E, E.id == S.email_id)
        .outerjoin(EmailAddress, EmailAddress.id == E.from_address_id)
        .where(condition(view, user.id))
    )
    if where is not None:
        stmt = stmt.where(where)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(tuple_(S.sort_date, S.email_id) < tuple_(*after))
    stmt = stmt.order_by(S.sort_date.desc(), S.email_id.desc()).limit(limit + 1)
    found = session.execute(stmt).all()
    more = len(found) > limit
    found = found[:limit]
    rows = _rows(session, found, with_recipients=view.is_sent)
    last = found[-1][0] if found and more else None
    return ListPage(rows, encode_cursor(last.sort_date, last.email_id) if last else None)


def _rows(session: Session, found, with_recipients: bool) -> list[Row]:
    emails = [email for _, email, _ in found]
    parents = parent_names(session, emails)
    recipients = _to_lines(session, [e.id for e in emails]) if with_recipients else {}
    reports = _report_kinds(session, [e.id for e in emails if e.is_bounce])
    return [
        Row(
            id=email.id,
            sender=email.from_name or address or "",
            recipients=recipients.get(email.id, ""),
            subject=email.subject,
            snippet=email.snippet,
            date=email.date_sent or state.sort_date,
            parent=parents.get((email.parent_type, email.parent_id)),
            # A report's parts (delivery status, the returned mail) are the report, not files.
            has_attachments=email.has_attachments and not email.is_bounce,
            is_read=state.is_read,
            is_important=state.is_important,
            thread=email.thread_root or email.identity,
            is_auto_reply=email.is_auto_reply and not email.is_bounce,
            is_bounce=email.is_bounce and reports.get(email.id) not in (KIND_DELAY, KIND_OTHER),
            is_delay=email.is_bounce and reports.get(email.id) == KIND_DELAY,
        )
        for state, email, address in found
    ]


def _report_kinds(session: Session, email_ids: list[int]) -> dict[int, str]:
    """email id -> what its delivery report says (bounce, delay, other), for stored reports."""
    if not email_ids:
        return {}
    stmt = select(DeliveryReport.email_id, DeliveryReport.kind).where(
        DeliveryReport.email_id.in_(email_ids)
    )
    return dict(session.execute(stmt).all())


def _to_lines(session: Session, email_ids: list[int]) -> dict[int, str]:
    stmt = (
        select(EmailRecipient.email_id, EmailRecipient.name, EmailAddress.address)
        .join(EmailAddress, EmailAddress.id == EmailRecipient.address_id)
        .where(EmailRecipient.email_id.in_(email_ids), EmailRecipient.role == "to")
        .order_by(EmailRecipient.email_id, EmailRecipient.position)
    )
    lines: dict[int, list[str]] = {}
    for email_id, name, address in session.execute(stmt):
        lines.setdefault(email_id, []).append(name or address)
    return {k: ", ".join(v) for k, v in lines.items()}


def parent_names(session: Session, emails) -> dict[tuple[str, int], tuple[str, int, str]]:
    """(type, id) -> (type, id, display name) for the parents of the given mail, one query a type."""
    wanted: dict[str, set[int]] = {}
    for e in emails:
        if e.parent_type in RECORD_TYPES and e.parent_id:
            wanted.setdefault(e.parent_type, set()).add(e.parent_id)
    found = {}
    for kind, ids in wanted.items():
        model = RECORD_TYPES[kind]
        for record in session.scalars(select(model).where(model.id.in_(ids))):
            found[(kind, record.id)] = (kind, record.id, record.display_name)
    return found


# --- visibility ---------------------------------------------------------------------------


def readable(session: Session, user: User, email_id: int) -> Email | None:
    """The mail if the user has it (a state row) or is an admin, else None."""
    if user.is_admin:
        return session.get(Email, email_id)
    stmt = select(E).join(S, S.email_id == E.id).where(E.id == email_id, S.user_id == user.id)
    return session.scalars(stmt).first()


def state_of(session: Session, user_id: int, email_id: int) -> EmailUserState | None:
    stmt = select(S).where(S.user_id == user_id, S.email_id == email_id)
    return session.scalars(stmt).first()


def open_mail(session: Session, user: User, email_id: int) -> Email | None:
    """Read a mail: marks it read for this user only."""
    email = readable(session, user, email_id)
    state = state_of(session, user.id, email_id) if email else None
    if state is not None and not state.is_read:
        state.is_read = True
    return email


def thread(session: Session, user: User, email: Email) -> list[Email]:
    """The other mail of the conversation: ancestors by References/In-Reply-To, and replies."""
    keys = {k for k in [*(email.references or []), email.in_reply_to, email.identity] if k}
    root = {
        email.thread_root or email.identity
    }  # the whole thread, as the conversation list has it
    # Candidates through the identity, in_reply_to and thread_root indexes, one query each (with
    # OR, or with the visibility condition alongside, SQLite chose to scan every mail); then the
    # reader's rows.
    ids: list[int] = []
    for column, wanted in ((E.identity, keys), (E.in_reply_to, keys), (E.thread_root, root)):
        found = select(E.id).where(column.in_(wanted), E.id != email.id).limit(100)
        ids += [i for i in session.scalars(found) if i not in ids]
    if ids and not user.is_admin:
        mine = select(S.email_id).where(S.user_id == user.id, S.email_id.in_(ids))
        ids = list(session.scalars(mine))
    if not ids:
        return []
    return list(session.scalars(select(E).where(E.id.in_(ids)).order_by(E.date_sent, E.id)))
