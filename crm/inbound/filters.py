"""The filters that apply to one import, loaded and compiled once per batch.

    filters = load_filter_set(session, account)   # global + this account's filters
    if filters.ignored(mail): ...                   # header-only mail first, full mail after
    folder_id = filters.account_folder(mail)        # group accounts: "Move to group folder"
    placement = filters.inbox_placement(user_id, mail)   # per receiving user (cached per user)

The module functions at the end do the same for a single call (they load the filters each time).
`inbox_placement(session, user_id, mail)` is also the entry point for mail that reaches a user
without an import, e.g. a colleague sending them a mail through the CRM: call it per receiving
user with the outgoing mail as a ParsedMail and apply the Placement to their state row the way
crm/inbound/delivery.py does (folder, Trash, read, and no notification when it says so).
Matching itself is pure and lives in crm/mail/filters.py.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm.mail.filters import (
    IGNORE,
    MOVE,
    NO_FILTER,
    CompiledFilter,
    MailView,
    Placement,
    first_match,
    ordered,
)
from crm.mail.parse import ParsedMail
from crm.models import EmailFilter, Folder


def _active(session: Session, *conditions) -> list[CompiledFilter]:
    stmt = select(EmailFilter).where(EmailFilter.is_active.is_(True), or_(*conditions))
    return ordered(CompiledFilter.of(row) for row in session.scalars(stmt))


class FilterSet:
    """The filters that apply to one account's mail, compiled once; inbox filters per user, lazily."""

    def __init__(self, session: Session, account=None):
        self.session = session
        self.account = account
        self._inbox: dict[int, list[CompiledFilter]] = {}
        self._skipping_folders: set[int] | None = None

    @cached_property
    def ignore(self) -> list[CompiledFilter]:
        return [f for f in self._account_and_global if f.action == IGNORE]

    @cached_property
    def account_move(self) -> list[CompiledFilter]:
        if self.account is None or not self.account.is_group:
            return []
        return [f for f in self._account_and_global if f.action == MOVE and f.folder_id]

    @cached_property
    def _account_and_global(self) -> list[CompiledFilter]:
        conditions = [EmailFilter.scope == "global"]
        if self.account is not None:
            conditions.append(
                (EmailFilter.scope == "account") & (EmailFilter.mail_account_id == self.account.id)
            )
        return _active(self.session, *conditions)

    def ignored(self, mail: ParsedMail) -> bool:
        """True when a global or account Ignore filter matches: the mail is not imported."""
        return first_match(self.ignore, MailView(mail)) is not None

    def account_folder(self, mail: ParsedMail) -> int | None:
        """The group folder a group account's "Move to group folder" filter files the mail in."""
        found = first_match(self.account_move, MailView(mail))
        return found.folder_id if found else None

    def inbox_placement(self, user_id: int, mail: ParsedMail) -> Placement:
        """The user's inbox filters applied to one incoming mail."""
        found = first_match(self.inbox_filters(user_id), MailView(mail))
        if found is None:
            return NO_FILTER
        if found.action == IGNORE:
            # Trash is out of sight: nobody wants to be told about mail that went straight there.
            return Placement(in_trash=True, mark_read=found.mark_read, skip_notification=True)
        skip = found.skip_notification or found.folder_id in self.skipping_folders()
        return Placement(found.folder_id, False, found.mark_read, skip)

    def inbox_filters(self, user_id: int) -> list[CompiledFilter]:
        if user_id not in self._inbox:
            rows = _active(
                self.session, (EmailFilter.scope == "inbox") & (EmailFilter.user_id == user_id)
            )
            self._inbox[user_id] = [f for f in rows if f.action == IGNORE or f.folder_id]
        return self._inbox[user_id]

    def skipping_folders(self) -> set[int]:
        """Folders flagged "skip notifications" (mail filed there notifies nobody)."""
        if self._skipping_folders is None:
            stmt = select(Folder.id).where(Folder.skip_notifications.is_(True))
            self._skipping_folders = set(self.session.scalars(stmt))
        return self._skipping_folders


def load_filter_set(session: Session, account=None) -> FilterSet:
    """Global and account filters, compiled once; reuse it for every mail of a batch."""
    return FilterSet(session, account)


def account_folder(session: Session, account, mail: ParsedMail) -> int | None:
    """The group folder a group account's Move filter files the mail in, or None."""
    return load_filter_set(session, account).account_folder(mail)


def inbox_placement(session: Session, user_id: int, mail: ParsedMail) -> Placement:
    """The user's inbox filters applied to one incoming mail (also for mail sent in the CRM)."""
    return FilterSet(session).inbox_placement(user_id, mail)
