"""Managing mail filters: who may edit which, and saving them from a form.

Who edits what: global filters are the admins'; account filters belong to the owner of a
personal account, and to the admins for group accounts (which admins manage); inbox filters
belong to their user. Preview and "apply to existing mail" live in crm/filter_preview.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm.mail.filters import IGNORE, MOVE, CompiledFilter
from crm.mailbox import folders
from crm.models import EmailFilter, Folder, MailAccount, User

SCOPES = ("inbox", "account", "global")
EMPTY_FILTER = "Fill in at least one criterion: an empty filter never matches."


class FilterError(ValueError):
    pass


# --- access ------------------------------------------------------------------------------------


def editable_accounts(session: Session, user: User) -> list[MailAccount]:
    """Accounts whose filters the user may edit: their personal ones; group ones for admins."""
    mine = (MailAccount.user_id == user.id) & MailAccount.is_group.is_(False)
    stmt = select(MailAccount).where(
        or_(mine, MailAccount.is_group.is_(True)) if user.is_admin else mine
    )
    return list(session.scalars(stmt.order_by(MailAccount.name, MailAccount.id)))


def _editable(session: Session, user: User):
    conditions = [(EmailFilter.scope == "inbox") & (EmailFilter.user_id == user.id)]
    account_ids = [a.id for a in editable_accounts(session, user)]
    if account_ids:
        conditions.append(
            (EmailFilter.scope == "account") & EmailFilter.mail_account_id.in_(account_ids)
        )
    if user.is_admin:
        conditions.append(EmailFilter.scope == "global")
    return or_(*conditions)


def editable_filters(session: Session, user: User) -> dict[str, list[EmailFilter]]:
    """The user's filters by scope, each in the order they are checked."""
    stmt = select(EmailFilter).where(_editable(session, user))
    rows = session.scalars(stmt.order_by(EmailFilter.priority, EmailFilter.id))
    grouped: dict[str, list[EmailFilter]] = {scope: [] for scope in SCOPES}
    for row in rows:
        grouped[row.scope].append(row)
    for rows_of_scope in grouped.values():
        rows_of_scope.sort(key=lambda f: (f.action != IGNORE, f.priority, f.id))
    return grouped


def get_editable(session: Session, user: User, filter_id: int) -> EmailFilter | None:
    stmt = select(EmailFilter).where(EmailFilter.id == filter_id, _editable(session, user))
    return session.scalars(stmt).first()


# --- saving ------------------------------------------------------------------------------------


def _lines(value: str | None) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class FilterForm:
    """A filter as entered in the form (phrases one per line)."""

    scope: str = "inbox"
    name: str = ""
    mail_account_id: int | None = None
    from_pattern: str = ""
    to_pattern: str = ""
    include_cc: bool = False
    subject_pattern: str = ""
    body_any: list[str] = field(default_factory=list)
    body_all: list[str] = field(default_factory=list)
    action: str = IGNORE
    folder_id: int | None = None
    mark_read: bool = False
    skip_notification: bool = False
    priority: int = 0
    is_active: bool = True

    @classmethod
    def parse(cls, data) -> FilterForm:
        """From a form mapping (`get` by name; checkboxes are present when ticked)."""
        text = {k: (data.get(k) or "").strip() for k in ("name", "from_pattern", "to_pattern")}
        return cls(
            scope=data.get("scope") or "inbox",
            mail_account_id=_int(data.get("mail_account_id")),
            subject_pattern=(data.get("subject_pattern") or "").strip(),
            include_cc=bool(data.get("include_cc")),
            body_any=_lines(data.get("body_any")),
            body_all=_lines(data.get("body_all")),
            action=data.get("action") or IGNORE,
            folder_id=_int(data.get("folder_id")),
            mark_read=bool(data.get("mark_read")),
            skip_notification=bool(data.get("skip_notification")),
            priority=_int(data.get("priority")) or 0,
            is_active=bool(data.get("is_active")),
            **text,
        )

    @classmethod
    def of(cls, row: EmailFilter) -> FilterForm:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def check_form(session: Session, user: User, form: FilterForm) -> list[str]:
    """What is wrong with the form, in words for the user; empty when it can be saved."""
    errors = []
    if form.scope not in SCOPES or (form.scope == "global" and not user.is_admin):
        errors.append("Choose where the filter applies.")
    account = _account(session, user, form)
    if form.scope == "account" and account is None:
        errors.append("Choose one of your mail accounts.")
    if form.action not in (IGNORE, MOVE) or (form.action == MOVE and form.scope == "global"):
        errors.append("Choose what the filter does.")
    elif form.action == MOVE and _folder(session, user, form, account) is None:
        errors.append("Choose the folder to move the mail to.")
    if CompiledFilter.of(EmailFilter(**_row_values(form))).is_empty:
        errors.append(EMPTY_FILTER)
    return errors


def _account(session, user, form) -> MailAccount | None:
    if form.scope != "account" or form.mail_account_id is None:
        return None
    found = [a for a in editable_accounts(session, user) if a.id == form.mail_account_id]
    return found[0] if found else None


def _folder(session, user, form, account) -> Folder | None:
    """Inbox filters move to the user's own folders; group accounts to group folders."""
    if form.folder_id is None:
        return None
    if form.scope == "inbox":
        return folders.own_folder(session, user, form.folder_id)
    if account is not None and account.is_group:
        return folders.group_folder(session, form.folder_id)
    return None


def _row_values(form: FilterForm) -> dict:
    values = {name: getattr(form, name) for name in FilterForm.__dataclass_fields__}
    if form.action != MOVE:
        values["folder_id"] = None
    if form.scope != "account":
        values["mail_account_id"] = None
    if form.scope != "inbox":
        values.update(mark_read=False, skip_notification=False)
    return values


def save_filter(session: Session, user: User, form: FilterForm, row: EmailFilter | None = None):
    """Create (row None) or update a filter; raises FilterError with the form's problems."""
    errors = check_form(session, user, form)
    if errors:
        raise FilterError(" ".join(errors))
    if row is None:
        row = EmailFilter()
        session.add(row)
    for name, value in _row_values(form).items():
        setattr(row, name, value)
    row.user_id = user.id if form.scope == "inbox" else None
    session.flush()
    return row


def draft_filter(session: Session, user: User, form: FilterForm) -> EmailFilter:
    """An unsaved filter for a preview of the form being edited (never added to the session)."""
    row = EmailFilter(**_row_values(form))
    row.user_id = user.id if form.scope == "inbox" else None
    return row
