"""Conversations: a folder listed one row per thread, and the mail of a thread in a folder.

A thread's key is its root's Message-ID, as the import keeps it: `thread_root` (the first of
References, else In-Reply-To) on a reply, the mail's own identity on a root. Both columns are
indexed, so the mail of a thread is two index lookups (never an OR across the two columns).

A conversation row stands where its newest mail in the folder stands. The list walks the
folder newest first through the same index as the single-mail list and keeps each mail that no
newer mail of its thread in the folder outranks; the cursor is that mail's (sort date, id), so
page N seeks like page 1. One grouped query then sums up the page's threads. No Flask here.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import and_, case, false, func, literal, or_, select, true, tuple_
from sqlalchemy.orm import Session, aliased

from crm.mailbox.listing import PAGE_SIZE, ListPage, Row, View, condition, list_page, resolve
from crm.models import Email, EmailAddress, EmailUserState, User

S, E = EmailUserState, Email
MAX_PARTICIPANTS = 3


def thread_key(e=E):
    """The thread a mail belongs to: its root's Message-ID."""
    return func.coalesce(e.thread_root, e.identity)


def in_threads(keys, e=E):
    """Mail of any of these threads."""
    keys = list(keys)
    # "thread_root IS NULL" would lead SQLite to walk every root through the thread_root index.
    return or_(e.thread_root.in_(keys), and_(e.identity.in_(keys), thread_key(e) == e.identity))


def _outranked(view: View, user_id: int, by_root: bool):
    """A newer mail of the same thread in the folder (replies by thread_root, else the root)."""
    s2, e2 = aliased(S), aliased(E)
    if by_root:
        same = e2.thread_root == thread_key()
    else:
        same = and_(e2.identity == E.thread_root, thread_key(e2) == e2.identity)
    newer = tuple_(s2.sort_date, s2.email_id) > tuple_(S.sort_date, S.email_id)
    stmt = select(literal(1)).select_from(s2).join(e2, e2.id == s2.email_id)
    return stmt.where(same, newer, condition(view, user_id, s2, e2)).exists()


def conversation_page(
    session: Session, user: User, view: View, cursor: str | None = None, limit: int = PAGE_SIZE
) -> ListPage:
    """One page of a folder as conversations, newest first, each as its newest mail's row."""
    newest = and_(~_outranked(view, user.id, True), ~_outranked(view, user.id, False))
    page = list_page(session, user, view, cursor, where=newest, limit=limit)
    summaries = _summaries(session, user, view, {row.thread for row in page.rows})
    rows = [_as_conversation(row, summaries.get(row.thread)) for row in page.rows]
    return ListPage(rows, page.next_cursor)


def _summaries(session: Session, user: User, view: View, keys: set[str]) -> dict[str, list]:
    """Per thread: [(sender, mails, unread, important, with attachments), ...], first sender first."""
    if not keys:
        return {}
    sender = func.coalesce(func.nullif(E.from_name, ""), EmailAddress.address, "")
    stmt = (
        select(
            thread_key(),
            sender,
            func.count(),
            func.sum(case((S.is_read == false(), 1), else_=0)),
            func.sum(case((S.is_important == true(), 1), else_=0)),
            func.sum(case((E.has_attachments == true(), 1), else_=0)),
        )
        .select_from(S)
        .join(E, E.id == S.email_id)
        .outerjoin(EmailAddress, EmailAddress.id == E.from_address_id)
        .where(condition(view, user.id), in_threads(keys))
        .group_by(thread_key(), sender)
        .order_by(func.min(S.sort_date))
    )
    found: dict[str, list] = {}
    for key, *rest in session.execute(stmt):
        found.setdefault(key, []).append(rest)
    return found


def _as_conversation(row: Row, senders: list | None) -> Row:
    senders = senders or [(row.sender, 1, int(not row.is_read), int(row.is_important), 0)]
    names = [name for name, *_ in senders if name]
    who = ", ".join(names[:MAX_PARTICIPANTS]) + (", …" if len(names) > MAX_PARTICIPANTS else "")
    return replace(
        row,
        sender=who or row.sender,
        count=sum(s[1] for s in senders),
        is_read=not any(s[2] for s in senders),
        is_important=any(s[3] for s in senders),
        has_attachments=row.has_attachments or any(s[4] for s in senders),
        conversation=True,
    )


def thread_mail_ids(session: Session, user: User, view: View, email_ids: list[int]) -> list[int]:
    """The mail in the folder of the threads these mails belong to (a conversation row's mail)."""
    if not email_ids:
        return []
    keys = set(session.scalars(select(thread_key()).where(E.id.in_(email_ids))))
    stmt = (
        select(S.email_id)
        .join(E, E.id == S.email_id)
        .where(condition(view, user.id), in_threads(keys))
    )
    return sorted(set(session.scalars(stmt)) | set(email_ids))


def selected_ids(session: Session, user: User, values: list[str], back: str) -> list[int]:
    """The mail a list form names: mail ids, and "thread:<id>" for a conversation row, which
    stands for all of that mail's thread in the folder `back` the row was listed in."""
    ids = {int(v) for v in values if v.isdigit()}
    heads = [int(v[7:]) for v in values if v.startswith("thread:") and v[7:].isdigit()]
    view = resolve(session, user, back) if heads else None
    if view is not None:
        ids.update(thread_mail_ids(session, user, view, heads))
    else:
        ids.update(heads)
    return sorted(ids)
