"""Full-text search over a user's mail: subject, body, addresses and names, with filters.

SQLite answers through the FTS5 table `emails_fts` (migration 0002), PostgreSQL through each
reader's `email_user_states.search_vector` and its GIN index over (user, words) (migration
0003). Every word of the query must match, as a prefix, so "invo" finds "invoice" on both
databases; a word shorter than MIN_PREFIX must match whole ("in" is not every word starting
with "in", which would cost a scan of most of the index while one types). No Flask here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, func, or_, select, text, true
from sqlalchemy.orm import Session

from crm import mailbox
from crm.models import RECORD_TYPES, Email, EmailAddress, EmailUserState, User

# Letters and digits only: what both tokenisers treat as a word, and nothing a query
# language could read as an operator.
WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 12
MIN_PREFIX = 3


@dataclass(frozen=True)
class Query:
    text: str = ""
    folder: str = "all"
    sender: str = ""
    has_attachment: bool = False
    date_from: date | None = None
    date_to: date | None = None
    parent: str = ""  # "Type:id"

    @property
    def is_empty(self) -> bool:
        return not (
            terms(self.text)
            or self.sender
            or self.has_attachment
            or self.date_from
            or self.date_to
            or self.parent
        )


def parse(args) -> Query:
    """A Query from request arguments (any mapping); unusable values are ignored."""
    return Query(
        text=(args.get("q") or "").strip()[:500],
        folder=args.get("folder") or "all",
        sender=(args.get("from") or "").strip()[:320],
        has_attachment=args.get("attachment") in ("1", "on", "true"),
        date_from=_date(args.get("since")),
        date_to=_date(args.get("until")),
        parent=(args.get("parent") or "").strip(),
    )


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def terms(text_: str) -> list[str]:
    return WORD.findall(text_.lower())[:MAX_TERMS]


def search(
    session: Session,
    user: User,
    query: Query,
    cursor: str | None = None,
    limit: int = mailbox.PAGE_SIZE,
) -> mailbox.ListPage | None:
    """One page of the user's matching mail, newest first; None when the folder is not theirs."""
    if query.folder == "all":
        view = mailbox.View("all", "All mail")
    else:
        view = mailbox.resolve(session, user, query.folder)
    if view is None:
        return None
    where = and_(true(), *filters(session, query))
    return mailbox.list_page(session, user, view, cursor, where=where, limit=limit)


def filters(session: Session, query: Query) -> list:
    """The WHERE conditions (over Email and EmailUserState) a query stands for."""
    conditions = []
    words = terms(query.text)
    if words:
        conditions.append(match(session, words))
    if query.sender:
        conditions.append(_from(query.sender))
    if query.has_attachment:
        conditions.append(Email.has_attachments == true())
    if query.date_from:
        conditions.append(EmailUserState.sort_date >= datetime.combine(query.date_from, time()))
    if query.date_to:
        end = datetime.combine(query.date_to + timedelta(days=1), time())
        conditions.append(EmailUserState.sort_date < end)
    if query.parent:
        conditions.append(_parent(query.parent))
    return conditions


def match(session: Session, words: list[str]):
    """Full-text condition: every word, as a prefix."""
    if session.get_bind().dialect.name != "postgresql":
        # FTS5 reads only its own doclists (no table rows), so its matches make a cheap list.
        fts = " ".join(f'"{w}"*' if _is_prefix(w) else f'"{w}"' for w in words)
        return text(
            "emails.id IN (SELECT rowid FROM emails_fts WHERE emails_fts MATCH :q)"
        ).bindparams(q=fts)
    # The vector sits on the reader's own state row: the planner either reads the user's
    # matches from the (user_id, search_vector) index, or, for a common word, checks the
    # vector while reading the user's list newest first; neither visits a mail row.
    tsquery = " & ".join(f"{w}:*" if _is_prefix(w) else w for w in words)
    return text("email_user_states.search_vector @@ to_tsquery('simple', :q)").bindparams(q=tsquery)


def _is_prefix(word: str) -> bool:
    return len(word) >= MIN_PREFIX


def _from(sender: str):
    needle = sender.lower()
    addresses = select(EmailAddress.id).where(EmailAddress.lower.contains(needle, autoescape=True))
    return or_(
        Email.from_address_id.in_(addresses),
        func.lower(Email.from_name).contains(needle, autoescape=True),
    )


def _parent(raw: str):
    kind, _, record_id = raw.partition(":")
    if kind not in RECORD_TYPES or not record_id.isdigit():
        return Email.id.is_(None)  # an unknown parent matches nothing
    return (Email.parent_type == kind) & (Email.parent_id == int(record_id))
