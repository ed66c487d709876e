"""Full-text search over a user's mail: words, quoted phrases, operators and refinements.

The search box takes words and the operators people know from Gmail (`parse_text`): from:,
to:, subject:, has:attachment, is:unread / is:read / is:starred / is:important, before: and
after: (YYYY-MM-DD), in:<folder> and "quoted phrases". Anything else, an unknown operator
too, is words. The refinements beside the box (folder, sender, dates, parent) narrow further;
without a folder a search covers all the user's mail but Trash.

SQLite answers through the FTS5 table `emails_fts`, PostgreSQL through each reader's
`email_user_states.search_vector` (migrations 0002, 0003, 0005). Case and accents do not count
on either ("dekuji" finds "Děkuji"): the query is folded by crm.folding as the databases fold
what they index. Every word must match, as a prefix, so "invo" finds "invoice"; a word shorter
than MIN_PREFIX must match whole ("in" is not every word starting with "in", which would cost a
scan of most of the index while one types). CJK words match by character pairs, so "会議"
finds "東京会議". No Flask here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, false, func, or_, select, text, true
from sqlalchemy.orm import Session

from crm import folding
from crm.mailbox import listing
from crm.models import RECORD_TYPES, Email, EmailAddress, EmailRecipient, EmailUserState, User

MAX_TERMS = 12
MIN_PREFIX = 3

# One piece of the search box: op:"quoted value", op:value, a "quoted phrase" or a word.
_PIECE = re.compile(
    r'(?P<op>[A-Za-z]+):(?:"(?P<quoted>[^"]*)"?|(?P<value>[^\s"]+))'
    r'|"(?P<phrase>[^"]*)"?'
    r'|(?P<word>[^\s"]+)'
)
IS_FLAGS = {"unread", "read", "starred", "important"}
RECIPIENT_ROLES = ("to", "cc", "bcc")


@dataclass(frozen=True)
class Terms:
    """What the search box says, operators taken out (values as typed, not yet folded)."""

    words: tuple[str, ...] = ()  # each matched anywhere
    phrases: tuple[str, ...] = ()  # each matched as words in this order
    subject: tuple[str, ...] = ()  # words or phrases matched in the subject
    sender: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    has_attachment: bool = False
    flags: frozenset[str] = frozenset()  # of IS_FLAGS
    before: date | None = None
    after: date | None = None
    folder: str | None = None  # in:<folder>, as typed

    @property
    def is_empty(self) -> bool:
        return not (
            any(folding.query_words(w) for w in self.words + self.phrases + self.subject)
            or self.sender
            or self.to
            or self.has_attachment
            or self.flags
            or self.before
            or self.after
            or self.folder
        )


def parse_text(raw: str) -> Terms:
    """The search box's text as Terms: operators Gmail users know, quoted phrases, words."""
    words, phrases, subject, sender, to = [], [], [], [], []
    found: dict = {"flags": set()}
    for piece in _PIECE.finditer(raw):
        if piece["phrase"] is not None:
            phrases.append(piece["phrase"])
            continue
        if piece["word"] is not None:
            words.append(piece["word"])
            continue
        op, value = (
            piece["op"].lower(),
            piece["quoted"] if piece["quoted"] is not None else piece["value"],
        )
        value = value.strip()
        if not value:
            words.append(piece["op"])
        elif op == "from":
            sender.append(value)
        elif op == "to":
            to.append(value)
        elif op == "subject":
            subject.append(value)
        elif op == "has" and value.lower() in ("attachment", "attachments"):
            found["has_attachment"] = True
        elif op == "is" and value.lower() in IS_FLAGS:
            found["flags"].add(value.lower())
        elif op in ("before", "after") and _date(value) is not None:
            found[op] = _date(value)
        elif op == "in":
            found["folder"] = value
        else:  # an unknown operator is words
            words.append(piece.group())
    return Terms(
        words=tuple(words),
        phrases=tuple(phrases),
        subject=tuple(subject),
        sender=tuple(sender),
        to=tuple(to),
        has_attachment=found.get("has_attachment", False),
        flags=frozenset(found["flags"]),
        before=found.get("before"),
        after=found.get("after"),
        folder=found.get("folder"),
    )


@dataclass(frozen=True)
class Query:
    text: str = ""
    folder: str = "all"
    sender: str = ""
    has_attachment: bool = False
    date_from: date | None = None
    date_to: date | None = None
    parent: str = ""  # "Type:id"
    terms: Terms = field(default=Terms(), compare=False)

    @property
    def is_empty(self) -> bool:
        return self.terms.is_empty and not (
            self.sender or self.has_attachment or self.date_from or self.date_to or self.parent
        )

    @property
    def is_refined(self) -> bool:
        """Whether a refinement beside the box is set (its panel then shows open)."""
        return bool(
            self.folder != "all"
            or self.sender
            or self.has_attachment
            or self.date_from
            or self.date_to
            or self.parent
        )


def parse(args) -> Query:
    """A Query from request arguments (any mapping); unusable values are ignored."""
    raw = (args.get("q") or "").strip()[:500]
    return Query(
        text=raw,
        folder=args.get("folder") or "all",
        sender=(args.get("from") or "").strip()[:320],
        has_attachment=args.get("attachment") in ("1", "on", "true"),
        date_from=_date(args.get("since")),
        date_to=_date(args.get("until")),
        parent=(args.get("parent") or "").strip(),
        terms=parse_text(raw),
    )


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def terms(text_: str) -> list[str]:
    """The folded words of a text (CJK as its character pairs)."""
    return [token for word in folding.query_words(text_) for token in word][:MAX_TERMS]


def search(
    session: Session,
    user: User,
    query: Query,
    cursor: str | None = None,
    limit: int = listing.PAGE_SIZE,
) -> listing.ListPage | None:
    """One page of the user's matching mail, newest first; None when the folder is not theirs.

    An in:<folder> in the box names a folder the user sees (or a special one), else the search
    finds nothing; the folder refinement applies when the box names none.
    """
    where = [true()]
    key = query.folder
    if query.terms.folder is not None:
        key = folder_key(session, user, query.terms.folder)
        if key is None:
            key, where = "all", [false()]
    view = listing.View("all", "All mail") if key == "all" else listing.resolve(session, user, key)
    if view is None:
        return None
    where += filters(session, query)
    return listing.list_page(session, user, view, cursor, where=and_(*where), limit=limit)


def folder_key(session: Session, user: User, name: str) -> str | None:
    """The view key an in:<name> means: a special folder, "all"/"anywhere", or a folder's name."""
    wanted = name.strip().casefold()
    if wanted in ("all", "anywhere", "allmail", "all mail"):
        return "all"
    for key, label in listing.SPECIAL:
        if wanted in (key, label.casefold()):
            return key
    for folder in listing.visible_folders(session, user):
        if folder.name.casefold() == wanted or folding.fold(folder.name) == folding.fold(name):
            return str(folder.id)
    return None


def filters(session: Session, query: Query) -> list:
    """The WHERE conditions (over Email and EmailUserState) a query stands for."""
    conditions = []
    found = query.terms
    text_match = match(session, found)
    if text_match is not None:
        conditions.append(text_match)
    for sender in (query.sender, *found.sender):
        if sender:
            conditions.append(_from(session, sender))
    for recipient in found.to:
        conditions.append(_to(session, recipient))
    if query.has_attachment or found.has_attachment:
        conditions.append(Email.has_attachments == true())
    flags = found.flags
    if "unread" in flags:
        conditions.append(EmailUserState.is_read == false())
    if "read" in flags:
        conditions.append(EmailUserState.is_read == true())
    if flags & {"starred", "important"}:
        conditions.append(EmailUserState.is_important == true())
    for start in (query.date_from, found.after):
        if start:
            conditions.append(EmailUserState.sort_date >= datetime.combine(start, time()))
    if query.date_to:
        end = datetime.combine(query.date_to + timedelta(days=1), time())
        conditions.append(EmailUserState.sort_date < end)
    if found.before:  # Gmail's before: leaves the day itself out
        conditions.append(EmailUserState.sort_date < datetime.combine(found.before, time()))
    if query.parent:
        conditions.append(_parent(query.parent))
    return conditions


@dataclass(frozen=True)
class _Clause:
    tokens: tuple[str, ...]  # folded, one after the other
    prefix: bool  # the last token matches as a prefix
    column: str | None = None  # "subject" or "address_text"; None: anywhere


def clauses(found: Terms) -> list[_Clause]:
    """The text conditions of Terms: a clause per word, CJK word, phrase; at most MAX_TERMS."""
    out: list[_Clause] = []

    def add(raw: str, phrase: bool, column: str | None = None, open_end: bool = False) -> None:
        words = folding.query_words(raw)
        if phrase and words:
            tokens = tuple(t for word in words for t in word)
            prefix = (open_end or len(tokens) == 1) and _is_prefix(tokens[-1])
            out.append(_Clause(tokens, prefix, column))
            return
        for word in words:
            out.append(_Clause(word, len(word) == 1 and _is_prefix(word[0]), column))

    for raw in found.words:
        add(raw, False)
    for raw in found.phrases:
        add(raw, True)
    for raw in found.subject:
        add(raw, " " in raw.strip(), "subject")
    # from: and to: also need their words among the mail's people: the index finds those
    # (folded, and cheaply), the conditions of `filters` then check who sent or received it.
    for raw in (*found.sender, *found.to):
        add(raw, True, "address_text", open_end=True)
    return out[:MAX_TERMS]


def match(session: Session, found: Terms):
    """Full-text condition: every clause (word, phrase, subject word), or None if none."""
    parts = clauses(found)
    if not parts:
        return None
    if session.get_bind().dialect.name != "postgresql":
        # FTS5 reads only its own doclists (no table rows), so its matches make a cheap list.
        fts = " ".join(_fts5(c) for c in parts)
        return text(
            "emails.id IN (SELECT rowid FROM emails_fts WHERE emails_fts MATCH :q)"
        ).bindparams(q=fts)
    # The vector sits on the reader's own state row: the planner either reads the user's
    # matches from the (user_id, search_vector) index, or, for a common word, checks the
    # vector while reading the user's list newest first; neither visits a mail row. The
    # subject's words carry weight A, the people's B (migration 0002).
    tsquery = " & ".join(_tsquery(c) for c in parts)
    return text("email_user_states.search_vector @@ to_tsquery('crm_unaccent', :q)").bindparams(
        q=tsquery
    )


def _fts5(clause: _Clause) -> str:
    phrase = '"' + " ".join(clause.tokens) + '"' + ("*" if clause.prefix else "")
    return f"{clause.column} : {phrase}" if clause.column else phrase


WEIGHTS = {"subject": "A", "address_text": "B", None: ""}  # as migration 0005 sets them


def _tsquery(clause: _Clause) -> str:
    weight = WEIGHTS[clause.column]
    marks = [":" + weight if weight else ""] * len(clause.tokens)
    if clause.prefix:
        marks[-1] = ":*" + weight
    return "(" + " <-> ".join(t + m for t, m in zip(clause.tokens, marks, strict=True)) + ")"


def _is_prefix(token: str) -> bool:
    # One CJK character is a word of its own, and the index holds it only inside pairs.
    return len(token) >= MIN_PREFIX or (len(token) == 1 and folding.is_cjk(token))


def _from(session: Session, sender: str):
    """Mail whose sender's address or name contains `sender` (case and accents folded)."""
    needle = sender.lower()
    addresses = select(EmailAddress.id).where(EmailAddress.lower.contains(needle, autoescape=True))
    return or_(
        Email.from_address_id.in_(addresses),
        _folded(session, Email.from_name).contains(folding.fold(sender), autoescape=True),
    )


def _to(session: Session, recipient: str):
    """Mail with a To, Cc or Bcc recipient whose address or name contains `recipient`."""
    needle = recipient.lower()
    addresses = select(EmailAddress.id).where(EmailAddress.lower.contains(needle, autoescape=True))
    name = _folded(session, EmailRecipient.name)
    holders = select(EmailRecipient.email_id).where(
        EmailRecipient.role.in_(RECIPIENT_ROLES),
        or_(
            EmailRecipient.address_id.in_(addresses),
            name.contains(folding.fold(recipient), autoescape=True),
        ),
    )
    return Email.id.in_(holders)


def _folded(session: Session, column):
    """`column` folded in SQL as folding.fold folds in Python: the databases' lower() would not
    take accents off, and SQLite's folds ASCII only ("Müller" stayed "Müller")."""
    if session.get_bind().dialect.name == "postgresql":
        return func.unaccent(func.lower(column))
    return func.crm_fold(column)  # crm.db registers folding.fold on every SQLite connection


def _parent(raw: str):
    kind, _, record_id = raw.partition(":")
    if kind not in RECORD_TYPES or not record_id.isdigit():
        return Email.id.is_(None)  # an unknown parent matches nothing
    return (Email.parent_type == kind) & (Email.parent_id == int(record_id))
