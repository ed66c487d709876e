"""Parent finder (contract; the linking work fills it in).

`find_parent(session, email, mail, account)` is called by the import pipeline for each newly
stored Email (flushed, recipients stored) and returns a Link or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Link:
    parent_type: str
    parent_id: int
    account_id: int | None
    rule: str  # e.g. "thread-token", "replied-mail", "case-number", "sender-address"


def find_parent(session: Session, email, mail, account) -> Link | None:
    """The record an incoming mail belongs to, by the first rule that finds one."""
    return None
