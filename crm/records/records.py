"""CRM records: create/update/delete, lead conversion, list and detail queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from crm import folding
from crm.models import (
    Account,
    Case,
    Contact,
    Email,
    EmailAddress,
    EmailAddressLink,
    Lead,
    Opportunity,
    Task,
    Team,
    User,
)
from crm.models.records import name_key
from crm.pagination import PER_PAGE, Page, paginate
from crm.records import addressbook
from crm.records.access import get_visible, visible
from crm.records.forms import PARENT_TYPES, RecordError, clean, form_data, options, split_addresses
from crm.records.kinds import KIND_OF_TYPE, KINDS, Kind

__all__ = ["KINDS", "Kind", "RecordError", "clean", "form_data", "options", "split_addresses"]


def account_named(session: Session, name: str, actor: User) -> Account | None:
    """The oldest account the actor sees whose name is `name`, ignoring case (any script)."""
    stmt = visible(select(Account), Account, actor).where(Account.name_key == name_key(name))
    return session.scalars(stmt.order_by(Account.id)).first()


# --- writing -----------------------------------------------------------------------------


def create_record(session: Session, kind: Kind, values: dict, actor: User):
    """A new record owned by the actor (admins may assign it to someone else)."""
    record = kind.model(created_by_id=actor.id, assigned_user_id=actor.id)
    if kind.model is Case:
        record.number = next_case_number(session)
    session.add(record)
    _apply(session, kind, record, values)
    return record


def update_record(session: Session, kind: Kind, record, values: dict) -> None:
    _apply(session, kind, record, values)


def _apply(session: Session, kind: Kind, record, values: dict) -> None:
    for name, value in values.items():
        if name == "emails":
            continue
        if name == "contact_ids":
            record.contacts = [session.get(Contact, i) for i in dict.fromkeys(value)]
        elif name == "parent":
            record.parent_type, record.parent_id = value or (None, None)
        else:
            setattr(record, name, value)
    session.flush()
    if "emails" in values:
        addressbook.set_addresses(session, kind.entity_type, record.id, values["emails"])


def delete_record(session: Session, kind: Kind, record) -> None:
    """Delete a record; its addresses stay, mail and tasks that pointed at it lose the link."""
    entity = (kind.entity_type, record.id)
    addressbook.delete_links_of(session, *entity)
    for model in (Task, Email):
        session.execute(
            update(model)
            .where(model.parent_type == entity[0], model.parent_id == entity[1])
            .values(parent_type=None, parent_id=None)
            .execution_options(synchronize_session=False)
        )
    session.delete(record)
    session.flush()


def set_address_flags(
    session: Session, kind: Kind, record, address_id: int, *, opted_out: bool, invalid: bool
) -> EmailAddress | None:
    """Mark one of the record's addresses opted out or invalid; None if the record lacks it.

    The flags belong to the address row, so every record holding the address sees them.
    Opting out and in here means what the unsubscribe page's buttons mean (EmailAddress.opt_out
    and subscribe_again); leaving a flag as it is changes no date.
    """
    link = session.scalars(
        select(EmailAddressLink).where(
            EmailAddressLink.entity_type == kind.entity_type,
            EmailAddressLink.entity_id == record.id,
            EmailAddressLink.address_id == address_id,
        )
    ).first()
    if link is None:
        return None
    address = link.address
    if opted_out:
        address.opt_out()
    else:
        address.subscribe_again()
    address.invalid = invalid
    session.flush()
    return address


def next_case_number(session: Session) -> int:
    """Highest number plus one; the unique constraint makes a concurrent clash fail, not repeat."""
    return (session.scalar(select(func.max(Case.number))) or 0) + 1


def convert_lead(session: Session, lead: Lead, actor: User) -> Contact:
    """Turn a lead into a Contact (with its addresses) and, when it names a company, an Account."""
    if lead.is_converted:
        raise RecordError({"status": "this lead is already converted"})
    owner = {
        "assigned_user_id": lead.assigned_user_id or actor.id,
        "created_by_id": actor.id,
        "team_id": lead.team_id,
    }
    account = None
    if lead.account_name:
        account = account_named(session, lead.account_name, actor) or Account(
            name=lead.account_name, **owner
        )
    contact = Contact(
        first_name=lead.first_name,
        last_name=lead.last_name,
        phone=lead.phone,
        description=lead.description,
        account=account,
        **owner,
    )
    session.add(contact)
    session.flush()
    links = addressbook.addresses_of(session, "Lead", lead.id)
    addressbook.set_addresses(session, "Contact", contact.id, [ln.address.address for ln in links])
    lead.status = "Converted"
    lead.converted_contact_id = contact.id
    lead.converted_account_id = account.id if account else None
    session.flush()
    return contact


# --- reading -----------------------------------------------------------------------------


def search_records(
    session: Session,
    kind: Kind,
    actor: User,
    query: str = "",
    number: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the records the actor may see, matching `query` in names, phones, addresses."""
    model = kind.model
    stmt = visible(select(model), model, actor)
    if query.strip():
        stmt = stmt.where(or_(*_matches(kind, query.strip())))
    return paginate(session, stmt.order_by(*_ordering(kind)), number, per_page)


def _matches(kind: Kind, query: str) -> list:
    """Records whose names (or phone, website) contain the query, case and accents folded
    on both databases through `search_key` ("elec" finds "Électricité du Rhône SA",
    "волга" and "volga" find "АО «Волга-Пром»"), or whose address contains it."""
    model = kind.model
    like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    conditions = [model.search_key.like(_folded_like(query), escape="\\")]
    if kind.has_addresses:
        holders = (
            select(EmailAddressLink.entity_id)
            .join(EmailAddress, EmailAddress.id == EmailAddressLink.address_id)
            .where(EmailAddressLink.entity_type == kind.entity_type)
            .where(EmailAddress.lower.like(like.lower(), escape="\\"))
        )
        conditions.append(model.id.in_(holders))
    if model is Case and query.lstrip("#").isdigit():
        conditions.append(Case.number == int(query.lstrip("#")))
    return conditions


def _folded_like(query: str) -> str:
    needle = " ".join(folding.fold(query).split())
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _ordering(kind: Kind) -> list:
    columns = [
        getattr(kind.model, key.lstrip("-")).desc()
        if key.startswith("-")
        else getattr(kind.model, key)
        for key in kind.order
    ]
    return columns + [kind.model.id]


def primary_addresses(session: Session, entity_type: str, ids: list[int]) -> dict[int, str]:
    """Primary address of each record, for list pages (one query per page)."""
    if not ids:
        return {}
    stmt = (
        select(EmailAddressLink.entity_id, EmailAddress.address)
        .join(EmailAddress, EmailAddress.id == EmailAddressLink.address_id)
        .where(EmailAddressLink.entity_type == entity_type, EmailAddressLink.entity_id.in_(ids))
        .where(EmailAddressLink.is_primary.is_(True))
    )
    return dict(session.execute(stmt).all())


def find_visible(session: Session, kind: Kind, record_id: int, actor: User):
    return get_visible(session, kind.model, record_id, actor)


def find_parent(session: Session, task: Task, actor: User):
    """The record a task is about, if any and visible."""
    if task.parent_type not in PARENT_TYPES or task.parent_id is None:
        return None
    return get_visible(session, KIND_OF_TYPE[task.parent_type].model, task.parent_id, actor)


@dataclass
class Detail:
    """What a record's page shows besides its own columns."""

    addresses: list = field(default_factory=list)
    parent: object = None
    assigned_user: User | None = None
    team: Team | None = None
    related: list[tuple[Kind, list]] = field(default_factory=list)


def detail(session: Session, kind: Kind, record, actor: User) -> Detail:
    """Addresses, owner, team, the task's parent and related records the actor may see."""
    shown = Detail(
        addresses=addressbook.addresses_of(session, kind.entity_type, record.id),
        assigned_user=session.get(User, record.assigned_user_id)
        if record.assigned_user_id
        else None,
        team=session.get(Team, record.team_id) if record.team_id else None,
    )
    if kind.model is Task:
        shown.parent = find_parent(session, record, actor)
    for slug, stmt in _related_queries(kind, record):
        rows = session.scalars(visible(stmt, KINDS[slug].model, actor).limit(50)).all()
        shown.related.append((KINDS[slug], rows))
    return shown


def _related_queries(kind: Kind, record) -> list[tuple[str, object]]:
    queries = []
    if kind.model is Account:
        queries += [
            ("contacts", select(Contact).where(Contact.account_id == record.id)),
            ("opportunities", select(Opportunity).where(Opportunity.account_id == record.id)),
            ("cases", select(Case).where(Case.account_id == record.id)),
        ]
    elif kind.model is Contact:
        queries += [
            ("opportunities", select(Opportunity).where(Opportunity.contacts.contains(record))),
            ("cases", select(Case).where(Case.contact_id == record.id)),
        ]
    if kind.model is not Task:
        queries.append(
            (
                "tasks",
                select(Task).where(
                    Task.parent_type == kind.entity_type, Task.parent_id == record.id
                ),
            )
        )
    return queries


def parents_of(session: Session, tasks: list, actor: User) -> dict[tuple[str, int], object]:
    """The visible records a page of tasks points at, keyed by (type, id); one query per type."""
    wanted: dict[str, set[int]] = {}
    for task in tasks:
        if task.parent_type in PARENT_TYPES and task.parent_id is not None:
            wanted.setdefault(task.parent_type, set()).add(task.parent_id)
    found = {}
    for entity_type, ids in wanted.items():
        model = KIND_OF_TYPE[entity_type].model
        for record in session.scalars(
            visible(select(model).where(model.id.in_(ids)), model, actor)
        ):
            found[(entity_type, record.id)] = record
    return found
