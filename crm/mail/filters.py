"""Mail filters: matching one mail against filters, and what a match means for its placement.

Criteria (all filled ones must match; a filter with none never matches):
  - from: the sender's address or display name;
  - to: any To address (and Cc addresses when `include_cc`), or its display name;
  - subject;
  - body contains any of / all of the phrases (plain text and the text of the HTML part).
Patterns match the whole value, `*` stands for any run of characters (also none), and every
comparison is case-insensitive (Unicode case folding), subject included.

Order: Ignore filters before Move filters; within a kind by `priority` (lower first), then by
id; the first match wins.

This module is the pure half: compiled filters and matching, no database. The filter set loaded
for an import (and for mail that reaches a user without one) is crm/inbound/filters.py.
A header-only mail (`mail.header_only`) never matches a filter that needs the body: that filter
cannot decide yet and is checked again with the full mail.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from crm.mail.parse import ParsedMail

IGNORE = "ignore"
MOVE = "move"


@dataclass(frozen=True)
class Placement:
    """Where a user's copy of a mail goes, decided by their inbox filters."""

    folder_id: int | None = None
    in_trash: bool = False
    mark_read: bool = False
    skip_notification: bool = False


NO_FILTER = Placement()


@lru_cache(maxsize=4096)
def wildcard(pattern: str) -> re.Pattern[str] | None:
    """A whole-value, case-folded regex for a `*` pattern; None for an empty pattern."""
    pattern = pattern.strip().casefold()
    if not pattern:
        return None
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def phrases(values) -> tuple[str, ...]:
    """Non-empty, case-folded phrases."""
    return tuple(p.strip().casefold() for p in values or () if p and p.strip())


_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


class MailView:
    """The case-folded values of one mail that filters look at, each computed once."""

    def __init__(self, mail: ParsedMail):
        self.mail = mail

    @cached_property
    def senders(self) -> tuple[str, ...]:
        if self.mail.from_ is None:
            return ()
        return tuple(v.casefold() for v in self.mail.from_ if v)

    @cached_property
    def to(self) -> tuple[str, ...]:
        return tuple(v.casefold() for pair in self.mail.to for v in pair if v)

    @cached_property
    def cc(self) -> tuple[str, ...]:
        return tuple(v.casefold() for pair in self.mail.cc for v in pair if v)

    @cached_property
    def subject(self) -> str:
        return (self.mail.subject or "").casefold()

    @cached_property
    def body(self) -> str:
        text = self.mail.text or ""
        if self.mail.html:
            text += "\n" + html_lib.unescape(_TAG_RE.sub(" ", self.mail.html))
        return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class CompiledFilter:
    id: int
    action: str
    priority: int
    folder_id: int | None
    mark_read: bool
    skip_notification: bool
    from_re: re.Pattern[str] | None
    to_re: re.Pattern[str] | None
    include_cc: bool
    subject_re: re.Pattern[str] | None
    body_any: tuple[str, ...]
    body_all: tuple[str, ...]

    @classmethod
    def of(cls, row) -> CompiledFilter:
        """From a stored filter (an EmailFilter row, or anything with its attributes)."""
        return cls(
            id=row.id or 0,
            action=row.action,
            priority=row.priority or 0,
            folder_id=row.folder_id,
            mark_read=bool(row.mark_read),
            skip_notification=bool(row.skip_notification),
            from_re=wildcard(row.from_pattern or ""),
            to_re=wildcard(row.to_pattern or ""),
            include_cc=bool(row.include_cc),
            subject_re=wildcard(row.subject_pattern or ""),
            body_any=phrases(row.body_any),
            body_all=phrases(row.body_all),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.from_re or self.to_re or self.subject_re or self.body_any or self.body_all)

    @property
    def needs_body(self) -> bool:
        return bool(self.body_any or self.body_all)

    def matches(self, view: MailView) -> bool:
        if self.is_empty or (self.needs_body and view.mail.header_only):
            return False
        if self.from_re and not any(self.from_re.fullmatch(v) for v in view.senders):
            return False
        if self.to_re:
            recipients = view.to + view.cc if self.include_cc else view.to
            if not any(self.to_re.fullmatch(v) for v in recipients):
                return False
        if self.subject_re and not self.subject_re.fullmatch(view.subject):
            return False
        if self.body_any and not any(p in view.body for p in self.body_any):
            return False
        return all(p in view.body for p in self.body_all)


def matches(row, mail: ParsedMail) -> bool:
    """True when every filled criterion of the filter matches the mail."""
    return CompiledFilter.of(row).matches(MailView(mail))


def ordered(filters) -> list[CompiledFilter]:
    """Ignore filters first, then Move; each kind by priority, then id."""
    return sorted(filters, key=lambda f: (f.action != IGNORE, f.priority, f.id))


def first_match(filters: list[CompiledFilter], view: MailView) -> CompiledFilter | None:
    return next((f for f in filters if f.matches(view)), None)
