"""What a template may read: plain-dict views of records, built from a whitelist of fields.

Never an ORM object: Handlebars falls back to attribute lookup, and a placeholder path must
not reach a column we did not choose (password hashes, tokens) or a lazy load. A record the
user may not read (crm.records.access) gives no view at all. Resolution order: see
crm.templating.placeholders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address, split_name
from crm.models import RECORD_TYPES, Contact, EmailAddress, EmailAddressLink, Lead, User
from crm.records import addressbook, people, preferences
from crm.records.access import get_visible
from crm.templating import handlebars

PERSON_TYPES = ("User", "Contact", "Lead", "Account")
USER_VIEWS = "crm.templating.user_views"  # session.info key

Getter = Callable[[object], object]
COMMON: dict[str, Getter] = {
    "id": lambda r: r.id,
    "name": lambda r: r.display_name,
    "description": lambda r: r.description,
    "createdAt": lambda r: r.created_at,
    "modifiedAt": lambda r: r.updated_at,
}
PERSON: dict[str, Getter] = {
    "firstName": lambda r: r.first_name,
    "lastName": lambda r: r.last_name,
    "phoneNumber": lambda r: r.phone,
}
FIELDS: dict[str, dict[str, Getter]] = {
    "Account": {"website": lambda r: r.website, "phoneNumber": lambda r: r.phone},
    "Contact": {**PERSON, "title": lambda r: r.title},
    "Lead": {**PERSON, "status": lambda r: r.status, "accountName": lambda r: r.account_name},
    "Opportunity": {
        "stage": lambda r: r.stage,
        "amount": lambda r: r.amount,
        "closeDate": lambda r: r.close_date,
    },
    "Case": {
        "name": lambda r: r.name,
        "number": lambda r: r.number,
        "status": lambda r: r.status,
        "priority": lambda r: r.priority,
    },
    "Task": {"status": lambda r: r.status, "dueAt": lambda r: r.due_at},
}
USER_FIELDS: dict[str, Getter] = {
    "id": lambda u: u.id,
    "name": lambda u: u.display_name,
    "userName": lambda u: u.username,
    "firstName": lambda u: split_name(u.name or "")[0],
    "lastName": lambda u: split_name(u.name or "")[1],
}


@dataclass(frozen=True)
class Sources:
    """Views by placeholder name (User, Person, Parent, and each type) and what was refused."""

    views: dict[str, dict]
    parent: dict | None
    warnings: tuple[str, ...]


def record_of(session: Session, kind: str | None, record_id: int | None):
    """The record a mail belongs to, by type and id, visible or not: rendering warns about one
    the user may not read (compose and the command line find the parent through here)."""
    model = RECORD_TYPES.get(kind or "")
    return session.get(model, record_id) if model is not None and record_id else None


def primary_address(session: Session, entity_type: str, entity_id: int) -> str:
    """The record's primary address (else its oldest), in one plain query."""
    stmt = (
        select(EmailAddress.address)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == entity_type, EmailAddressLink.entity_id == entity_id)
        .order_by(EmailAddressLink.is_primary.desc(), EmailAddressLink.id)
        .limit(1)
    )
    return session.scalar(stmt) or ""


def user_view(session: Session, user: User) -> dict:
    """The whitelisted fields of a user (never the password hash or session data); kept for
    the session's life, as a mass mail renders the same sender thousands of times."""
    cache = session.info.setdefault(USER_VIEWS, {})
    if user.id not in cache:
        view = {name: get(user) for name, get in USER_FIELDS.items()}
        view["emailAddress"] = primary_address(session, "User", user.id)
        cache[user.id] = view
    return dict(cache[user.id])


def record_view(
    session: Session, record, viewer: User, with_links: bool = True, own_address: bool = True
) -> dict:
    """A record's whitelisted fields, with its links' views when the viewer may read them."""
    kind = record.entity_type
    view = {name: get(record) for name, get in {**COMMON, **FIELDS.get(kind, {})}.items()}
    if kind in PERSON_TYPES and own_address:
        view["emailAddress"] = primary_address(session, kind, record.id)
    if not with_links:
        return view
    for link, linked in _links(session, record, viewer).items():
        if linked is not None:
            view[link] = (
                user_view(session, linked)
                if isinstance(linked, User)
                else record_view(session, linked, viewer, with_links=False)
            )
    return view


def _links(session: Session, record, viewer: User) -> dict[str, object]:
    """The records one step away that placeholders may follow, visible ones only."""

    def visible(model, record_id):
        return get_visible(session, model, record_id, viewer) if record_id else None

    found: dict[str, object] = {}
    kind = record.entity_type
    if kind in ("Contact", "Opportunity", "Case"):
        found["account"] = visible(RECORD_TYPES["Account"], record.account_id)
    if kind == "Opportunity":
        ids = sorted(c.id for c in record.contacts)
        found["contact"] = visible(Contact, ids[0]) if ids else None
    if kind == "Case":
        found["contact"] = visible(Contact, record.contact_id)
        found["lead"] = visible(Lead, record.lead_id)
    if record.assigned_user_id:
        found["assignedUser"] = session.get(User, record.assigned_user_id)
    return found


def person_view(
    session: Session, address: str, viewer: User, parent=None, parent_view: dict | None = None
) -> tuple[str | None, dict]:
    """(type, view) of who holds the recipient's address, by crm.records.people's precedence
    (User, Contact, Lead, Account) among holders the viewer may read; an unknown holder gives
    the address alone. Its `emailAddress` is the address written to. A person who is the
    parent (a mass mail's recipient) reuses the parent's view."""
    address = normalise_address(address) or address
    record = _holder(session, address.lower(), viewer)
    if record is None:
        return None, {"emailAddress": address}
    if isinstance(record, User):
        view = user_view(session, record)
    elif record is parent and parent_view is not None:
        view = dict(parent_view)
    else:
        view = record_view(session, record, viewer, own_address=False)
    view["emailAddress"] = address
    return record.entity_type if not isinstance(record, User) else "User", view


def _holder(session: Session, lower: str, viewer: User):
    held = sorted(
        (people.PRECEDENCE.index(kind), record_id, kind)
        for _, kind, record_id in addressbook.holders(session, [lower])
        if kind in people.PRECEDENCE
    )
    for _, record_id, kind in held:
        if kind == "User":
            return session.get(User, record_id)
        record = get_visible(session, RECORD_TYPES[kind], record_id, viewer)
        if record is not None:
            return record
    return None


def sources(session: Session, user: User, parent=None, to_address: str | None = None) -> Sources:
    """Every view a template may read, in the documented order of precedence."""
    with session.no_autoflush:  # only reads: pending changes need not be flushed for them
        return _sources(session, user, parent, to_address)


def _sources(session: Session, user: User, parent, to_address: str | None) -> Sources:
    warnings: list[str] = []
    parent_view = None
    if parent is not None:
        if get_visible(session, type(parent), parent.id, user) is None:
            warnings.append(
                f"You may not read the {parent.entity_type} this mail belongs to: "
                "its placeholders stay empty."
            )
        else:
            parent_view = record_view(session, parent, user)
    person_kind, person = (None, {})
    if to_address:
        person_kind, person = person_view(session, to_address, user, parent, parent_view)
    views: dict[str, dict] = {"User": user_view(session, user)}
    if parent_view is not None:
        views["Parent"] = parent_view
        views[parent.entity_type] = parent_view
    if person:
        views["Person"] = person
        if person_kind and person_kind != "User":
            views.setdefault(person_kind, person)
    # The parent's linked records, then the person's (a Contact's Account), below the parent's.
    for linked_from in (parent_view or {}, person if person_kind != "User" else {}):
        for link, linked in linked_from.items():
            if isinstance(linked, dict) and link != "assignedUser":
                views.setdefault(link[0].upper() + link[1:], linked)
    return Sources(views, parent_view, tuple(warnings))


def handlebars_context(found: Sources, user: User) -> dict:
    """The parent's fields at the top (`{{name}}`, `{{account.name}}`) and every view by name."""
    context = dict(found.parent or {})
    context.update(found.views)
    return handlebars.plain_data(_local_times(context, user.time_zone))


def _local_times(value, time_zone: str | None):
    """Stored (UTC) times as the reader's wall-clock time, for `{{dateFormat}}`."""
    if isinstance(value, dict):
        return {k: _local_times(v, time_zone) for k, v in value.items()}
    if isinstance(value, datetime):
        return preferences.to_local(value, time_zone)
    return value
