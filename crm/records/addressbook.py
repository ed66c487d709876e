"""E-mail addresses of records: find or create address rows, link them, look them up."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address
from crm.models import EmailAddress, EmailAddressLink


def find_or_create(session: Session, addresses: Iterable[str]) -> dict[str, EmailAddress]:
    """Address rows for the given addresses, keyed by lower-case form; creates missing ones."""
    wanted: dict[str, str] = {}
    for raw in addresses:
        addr = normalise_address(raw)
        if addr:
            wanted.setdefault(addr.lower(), addr)
    if not wanted:
        return {}
    found = {
        row.lower: row
        for row in session.scalars(select(EmailAddress).where(EmailAddress.lower.in_(wanted)))
    }
    for lower, spelled in wanted.items():
        if lower not in found:
            row = EmailAddress(address=spelled, lower=lower)
            session.add(row)
            found[lower] = row
    session.flush()
    return found


def addresses_of(session: Session, entity_type: str, entity_id: int) -> list[EmailAddressLink]:
    """Links of one record, primary first."""
    stmt = (
        select(EmailAddressLink)
        .where(EmailAddressLink.entity_type == entity_type, EmailAddressLink.entity_id == entity_id)
        .order_by(EmailAddressLink.is_primary.desc(), EmailAddressLink.id)
    )
    return list(session.scalars(stmt))


def set_addresses(session: Session, entity_type: str, entity_id: int, addresses: list[str]) -> None:
    """Make the record hold exactly these addresses; the first one is primary."""
    rows = find_or_create(session, addresses)
    ordered = []
    for raw in addresses:
        addr = normalise_address(raw)
        if addr and rows[addr.lower()] not in ordered:
            ordered.append(rows[addr.lower()])
    existing = {link.address_id: link for link in addresses_of(session, entity_type, entity_id)}
    keep = {row.id for row in ordered}
    for address_id, link in existing.items():
        if address_id not in keep:
            session.delete(link)
    for i, row in enumerate(ordered):
        link = existing.get(row.id)
        if link is None:
            link = EmailAddressLink(address_id=row.id, entity_type=entity_type, entity_id=entity_id)
            session.add(link)
        link.is_primary = i == 0
    session.flush()


def add_addresses(session: Session, entity_type: str, entity_id: int, addresses: list[str]) -> None:
    """Add addresses to a record, keeping the ones it has (and its primary, if any)."""
    current = [link.address.address for link in addresses_of(session, entity_type, entity_id)]
    set_addresses(session, entity_type, entity_id, current + list(addresses))


def holders(session: Session, address_lowers: Iterable[str]) -> list[tuple[str, str, int]]:
    """(address lower, entity_type, entity_id) for every record holding one of the addresses."""
    lowers = [a.lower() for a in address_lowers]
    if not lowers:
        return []
    stmt = (
        select(EmailAddress.lower, EmailAddressLink.entity_type, EmailAddressLink.entity_id)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddress.lower.in_(lowers))
    )
    return [tuple(r) for r in session.execute(stmt)]


def delete_links_of(session: Session, entity_type: str, entity_id: int) -> None:
    for link in addresses_of(session, entity_type, entity_id):
        session.delete(link)
