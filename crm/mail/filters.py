"""Mail filters: matching and folder placement (contract; the folders/filters work fills it in).

Called by the import pipeline:
  - `ignored_by_account_or_global(session, account, mail)` before storing (header-only mail
    first, full mail after the body is fetched): True -> the message is not imported.
  - `inbox_placement(session, user_id, mail)` for each user who receives the mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crm.mail.parse import ParsedMail


@dataclass(frozen=True)
class Placement:
    """Where a user's copy of a mail goes, decided by their inbox filters."""

    folder_id: int | None = None
    in_trash: bool = False
    mark_read: bool = False
    skip_notification: bool = False


NO_FILTER = Placement()


def ignored_by_account_or_global(session: Session, account, mail: ParsedMail) -> bool:
    """True when a global or account Ignore filter matches (the mail is not imported)."""
    return False


def inbox_placement(session: Session, user_id: int, mail: ParsedMail) -> Placement:
    """The user's inbox filters applied to one incoming mail."""
    return NO_FILTER
