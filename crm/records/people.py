"""The people behind e-mail addresses: which User, Contact, Lead or Account holds each one.

Precedence is User, Contact, Lead, Account: an address shared by a person and their company
shows the person. Records the viewer may not read are left out (the address then shows as
unknown to them, as it would in a CRM without that record). Unknown addresses carry their
header name split into first and last name, to prefill Create Contact / Create Lead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address, split_name
from crm.models import RECORD_TYPES, Email, User
from crm.records import addressbook
from crm.records.access import visible

PRECEDENCE = ("User", "Contact", "Lead", "Account")


@dataclass(frozen=True)
class Person:
    address: str
    name: str  # the display name from the header
    kind: str | None = None  # User, Contact, Lead, Account; None when unknown
    record_id: int | None = None
    record_name: str = ""
    role: str = ""

    @property
    def is_known(self) -> bool:
        return self.kind is not None

    @property
    def first_last(self) -> tuple[str, str]:
        """First and last name for a new record; the address's local part when there is no name."""
        first, last = split_name(self.name)
        return (first, last) if (first or last) else ("", self.address.partition("@")[0])


def people_for(
    session: Session, entries: list[tuple[str, str]], viewer: User | None = None, roles=None
) -> list[Person]:
    """A Person for each (display name, address); `roles` optionally gives each entry's role."""
    lowers = [(normalise_address(addr) or addr).lower() for _, addr in entries]
    best = _best_holders(session, lowers, viewer)
    people = []
    for i, (name, addr) in enumerate(entries):
        kind, record_id, record_name = best.get(lowers[i], (None, None, ""))
        role = roles[i] if roles else ""
        people.append(Person(addr, name, kind, record_id, record_name, role))
    return people


def people_on_mail(
    session: Session, email: Email, viewer: User | None = None, roles=("from", "to", "cc")
) -> list[Person]:
    """The people behind a mail's addresses, in header order, for the given roles."""
    recipients = [r for r in email.recipients if r.role in roles]
    names = [r.name or (email.from_name if r.role == "from" else "") for r in recipients]
    entries = [(name, r.address.address) for name, r in zip(names, recipients)]
    return people_for(session, entries, viewer, [r.role for r in recipients])


def _best_holders(session: Session, lowers: list[str], viewer: User | None) -> dict[str, tuple]:
    """{address: (kind, id, name)} for the holder of highest precedence the viewer may read."""
    held = addressbook.holders(session, lowers)  # one query over all addresses
    ids_by_type: dict[str, set[int]] = {}
    for _, kind, record_id in held:
        ids_by_type.setdefault(kind, set()).add(record_id)
    names = {kind: _readable_names(session, kind, ids, viewer) for kind, ids in ids_by_type.items()}
    best: dict[str, tuple] = {}
    for lower, kind, record_id in sorted(
        held, key=lambda h: (PRECEDENCE.index(h[1]) if h[1] in PRECEDENCE else 9, h[2])
    ):
        if lower not in best and record_id in names.get(kind, {}):
            best[lower] = (kind, record_id, names[kind][record_id])
    return best


def _readable_names(
    session: Session, kind: str, ids: set[int], viewer: User | None
) -> dict[int, str]:
    model = User if kind == "User" else RECORD_TYPES.get(kind)
    if model is None:
        return {}
    stmt = select(model).where(model.id.in_(ids))
    if viewer is not None and model is not User:
        stmt = visible(stmt, model, viewer)
    return {row.id: row.display_name for row in session.scalars(stmt)}
