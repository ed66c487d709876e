"""Managing mail filters: who may edit which, saving them from a form, preview and apply.

Who edits what: global filters are the admins'; account filters belong to the owner of a
personal account, and to the admins for group accounts (which admins manage); inbox filters
belong to their user.

Preview and "apply to existing mail" look at the mail a filter would have seen:
  - inbox filter: the user's mail that is not in Trash, not their own outgoing mail and not in a
    group folder (group folders are sorted by their members together, not by one user's filter);
  - account filter: the mail imported from that account;
  - global filter: all mail.
Applying an Ignore filter moves the matched mail to Trash (inbox filters: the user's copy;
account and global filters: every user's copy, since the mail would not have been imported);
applying a Move filter files the mail in the filter's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, selectinload

from crm import folders
from crm.mail.filters import IGNORE, MOVE, CompiledFilter, MailView
from crm.mail.parse import ParsedMail
from crm.models import (
    Email,
    EmailAddress,
    EmailFilter,
    EmailLocation,
    EmailRecipient,
    EmailUserState,
    Folder,
    MailAccount,
    User,
)

SCOPES = ("inbox", "account", "global")
CHUNK = 500
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


# --- preview and apply ---------------------------------------------------------------------------


def _like(pattern: str) -> str | None:
    """A LIKE pattern for a prefilter; None when SQL case folding may differ from Python's."""
    pattern = pattern.strip()
    if not pattern.isascii():
        return None
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _address_like(pattern: str):
    return select(EmailAddress.id).where(EmailAddress.lower.like(pattern.lower(), escape="\\"))


def _prefilter(stmt, row: EmailFilter):
    """Narrow candidates in SQL on header criteria; matching itself stays in Python."""
    if like := _like(row.from_pattern or ""):
        stmt = stmt.where(
            or_(
                Email.from_address_id.in_(_address_like(like)),
                Email.from_name.ilike(like, escape="\\"),
            )
        )
    if like := _like(row.to_pattern or ""):
        roles = ("to", "cc") if row.include_cc else ("to",)
        stmt = stmt.where(
            exists().where(
                EmailRecipient.email_id == Email.id,
                EmailRecipient.role.in_(roles),
                or_(
                    EmailRecipient.address_id.in_(_address_like(like)),
                    EmailRecipient.name.ilike(like, escape="\\"),
                ),
            )
        )
    if like := _like(row.subject_pattern or ""):
        stmt = stmt.where(Email.subject.ilike(like, escape="\\"))
    return stmt


def _candidates(session: Session, row: EmailFilter):
    """Ids of the mail the filter looks at, newest first."""
    if row.scope == "inbox":
        group = select(Folder.id).where(Folder.is_group.is_(True))
        stmt = (
            select(Email.id)
            .join(EmailUserState, EmailUserState.email_id == Email.id)
            .where(
                EmailUserState.user_id == row.user_id,
                EmailUserState.in_trash.is_(False),
                EmailUserState.is_outgoing.is_(False),
                or_(EmailUserState.folder_id.is_(None), EmailUserState.folder_id.not_in(group)),
            )
        )
    elif row.scope == "account":
        located = select(EmailLocation.email_id).where(
            EmailLocation.mail_account_id == row.mail_account_id
        )
        stmt = select(Email.id).where(Email.id.in_(located))
    else:
        stmt = select(Email.id)
    stmt = _prefilter(stmt, row).order_by(Email.date_sent.desc(), Email.id.desc())
    return session.scalars(stmt).all()


def as_parsed(email: Email) -> ParsedMail:
    """A stored mail in the shape filters match against."""

    def pairs(role):
        return tuple((r.name or "", r.address.address) for r in email.recipients if r.role == role)

    senders = pairs("from")
    return ParsedMail(
        identity=email.identity,
        subject=email.subject or "",
        from_=(email.from_name or senders[0][0], senders[0][1]) if senders else None,
        to=pairs("to"),
        cc=pairs("cc"),
        text=email.body_text or "",
        html=email.body_html or "",
    )


def matching_mail(session: Session, row: EmailFilter) -> Iterator[Email]:
    """The existing mail the filter matches, newest first, loaded in chunks."""
    compiled = CompiledFilter.of(row)
    if compiled.is_empty:
        return
    ids = _candidates(session, row)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        stmt = (
            select(Email)
            .where(Email.id.in_(chunk))
            .options(selectinload(Email.recipients).selectinload(EmailRecipient.address))
        )
        loaded = {e.id: e for e in session.scalars(stmt)}
        for email_id in chunk:
            if compiled.matches(MailView(as_parsed(loaded[email_id]))):
                yield loaded[email_id]


def preview(session: Session, row: EmailFilter, limit: int = 50) -> tuple[list[Email], bool]:
    """Up to `limit` matched mails, and whether there are more."""
    found = []
    for email in matching_mail(session, row):
        if len(found) == limit:
            return found, True
        found.append(email)
    return found, False


def apply_to_existing(session: Session, user: User, row: EmailFilter) -> int:
    """Do to existing mail what the filter does at import; returns how many mails matched."""
    ids = [email.id for email in matching_mail(session, row)]
    for start in range(0, len(ids), CHUNK):
        _apply(session, user, row, ids[start : start + CHUNK])
    session.flush()
    return len(ids)


def _apply(session: Session, user: User, row: EmailFilter, ids: list[int]) -> None:
    if row.scope == "inbox":
        _apply_inbox(session, user, row, ids)
    elif row.action == MOVE and row.folder_id:
        folders.file_in_group_folder(session, session.get(Folder, row.folder_id), ids)
    else:
        session.execute(
            update(EmailUserState).where(EmailUserState.email_id.in_(ids)).values(in_trash=True)
        )


def _apply_inbox(session: Session, user: User, row: EmailFilter, ids: list[int]) -> None:
    if row.action == IGNORE:
        folders.set_trash(session, user, ids, True)
    elif row.folder_id:
        folders.move_mail(session, user, ids, session.get(Folder, row.folder_id))
    if row.mark_read:
        session.execute(
            update(EmailUserState)
            .where(EmailUserState.user_id == user.id, EmailUserState.email_id.in_(ids))
            .values(is_read=True)
        )
