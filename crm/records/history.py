"""A record's History (its archived and sent mail) and Activities (open tasks, drafts).

Who may read a mail (the rule every list here applies): an admin; a user who has the mail
(an EmailUserState row: it is in their mailbox); or a user who may read the mail's parent
record, since in a shared CRM mail linked to a customer is part of that customer's file.
Drafts are private work: only their author (or a user with a state row) sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from crm.models import (
    RECORD_TYPES,
    Case,
    Contact,
    Email,
    EmailAddressLink,
    EmailRecipient,
    EmailUserState,
    Opportunity,
    Task,
    User,
)
from crm.models.mail import STATUS_ARCHIVED, STATUS_DRAFT, STATUS_SENT
from crm.pagination import Page, paginate
from crm.records.access import visible

HISTORY_PER_PAGE = 20
_ADDRESS_ROLES = ("from", "to", "cc")
_PEOPLE_TYPES = ("Contact", "Lead", "Account")


def readable_mail(viewer: User) -> ColumnElement[bool]:
    """SQL condition: the viewer may read the Email (see the module docstring)."""
    if viewer.is_admin:
        return Email.id.is_not(None)
    has_state = exists().where(
        EmailUserState.email_id == Email.id, EmailUserState.user_id == viewer.id
    )
    parents = [
        and_(
            Email.parent_type == name, Email.parent_id.in_(visible(select(model.id), model, viewer))
        )
        for name, model in RECORD_TYPES.items()
    ]
    return or_(has_state, *parents)


def can_read_email(session: Session, email_id: int, viewer: User) -> Email | None:
    """The Email if the viewer may read it, else None."""
    stmt = select(Email).where(Email.id == email_id, readable_mail(viewer))
    return session.scalars(stmt).first()


def belongs_to(parent_type: str, parent_id: int) -> ColumnElement[bool]:
    """SQL condition: the mail belongs in this record's History."""
    conditions = [and_(Email.parent_type == parent_type, Email.parent_id == parent_id)]
    if parent_type == "Account":
        conditions.append(Email.account_id == parent_id)
        for child, column in (("Contact", Contact), ("Opportunity", Opportunity), ("Case", Case)):
            children = select(column.id).where(column.account_id == parent_id)
            conditions.append(and_(Email.parent_type == child, Email.parent_id.in_(children)))
    if parent_type in _PEOPLE_TYPES:
        conditions.append(Email.id.in_(_mail_with_addresses_of(parent_type, parent_id)))
    return or_(*conditions)


def _mail_with_addresses_of(entity_type: str, entity_id: int):
    held = select(EmailAddressLink.address_id).where(
        EmailAddressLink.entity_type == entity_type, EmailAddressLink.entity_id == entity_id
    )
    return select(EmailRecipient.email_id).where(
        EmailRecipient.role.in_(_ADDRESS_ROLES), EmailRecipient.address_id.in_(held)
    )


def history(
    session: Session, viewer: User, parent_type: str, parent_id: int, page: int = 1
) -> Page:
    """One page of the record's mail the viewer may read, newest first."""
    if parent_type not in RECORD_TYPES:
        return Page(items=[], number=1, per_page=HISTORY_PER_PAGE, total=0)
    sort = func.coalesce(Email.date_sent, Email.created_at)
    stmt = (
        select(Email)
        .where(
            Email.status.in_((STATUS_ARCHIVED, STATUS_SENT)),
            belongs_to(parent_type, parent_id),
            readable_mail(viewer),
        )
        .order_by(sort.desc(), Email.id.desc())
        .options(selectinload(Email.recipients).selectinload(EmailRecipient.address))
    )
    return paginate(session, stmt, page, HISTORY_PER_PAGE)


@dataclass(frozen=True)
class Activities:
    tasks: list[Task]
    drafts: list[Email]


def activities(session: Session, viewer: User, parent_type: str, parent_id: int) -> Activities:
    """Open tasks of the record the viewer may read, and the viewer's drafts for it."""
    tasks = select(Task).where(
        Task.parent_type == parent_type,
        Task.parent_id == parent_id,
        Task.status.not_in(("Completed", "Canceled")),
    )
    tasks = visible(tasks, Task, viewer).order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    mine = exists().where(EmailUserState.email_id == Email.id, EmailUserState.user_id == viewer.id)
    drafts = (
        select(Email)
        .where(
            Email.status == STATUS_DRAFT,
            Email.parent_type == parent_type,
            Email.parent_id == parent_id,
            or_(Email.created_by_id == viewer.id, mine) if parent_type in RECORD_TYPES else false(),
        )
        .order_by(Email.created_at.desc(), Email.id.desc())
    )
    return Activities(list(session.scalars(tasks)), list(session.scalars(drafts)))
