"""Target lists: contacts, leads and accounts a mass mail goes to (or is kept from).

Members are added by hand (ids picked from a search), all at once from a search, or from a CSV
file, which goes through the CSV import of records (crm.records.csv_import: created or updated
as there) and adds every record of the file that holds one of the file's addresses. Only
records the acting user may read are ever added. The caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address
from crm.models import (
    MassMailList,
    TargetList,
    TargetListMember,
    User,
)
from crm.models.campaigns import MEMBER_TYPES
from crm.pagination import Page, paginate
from crm.records import addressbook, csv_import, records
from crm.records.access import visible
from crm.records.kinds import KIND_OF_TYPE, KINDS

# The record kinds (URL slugs) a list can hold.
KIND_SLUGS = tuple(KIND_OF_TYPE[t].slug for t in MEMBER_TYPES)


class ListError(ValueError):
    """Input a target list cannot take; the message is for the user."""


@dataclass(frozen=True)
class Member:
    """A member as a list page shows it."""

    id: int
    entity_type: str
    entity_id: int
    name: str
    address: str
    slug: str


def visible_lists(session: Session, user: User) -> list[TargetList]:
    """Lists the user may use: their own; an admin's are everyone's."""
    stmt = select(TargetList).order_by(TargetList.name, TargetList.id)
    if not user.is_admin:
        stmt = stmt.where(TargetList.owner_id == user.id)
    return list(session.scalars(stmt))


def find_list(session: Session, list_id: int, user: User) -> TargetList | None:
    found = session.get(TargetList, list_id)
    if found is None or not (user.is_admin or found.owner_id == user.id):
        return None
    return found


def save_list(session: Session, user: User, values: dict, found: TargetList | None = None):
    """Create a list or change its name, description and opt-in rule."""
    name = (values.get("name") or "").strip()
    if not name:
        raise ListError("Give the list a name.")
    if len(name) > 255:
        raise ListError("The name is longer than 255 characters.")
    if found is None:
        found = TargetList(owner_id=user.id)
        session.add(found)
    found.name = name
    found.description = (values.get("description") or "").strip()
    found.requires_opt_in = bool(values.get("requires_opt_in"))
    session.flush()
    return found


def delete_list(session: Session, found: TargetList) -> None:
    session.delete(found)


def member_counts(session: Session, list_ids: list[int]) -> dict[int, int]:
    if not list_ids:
        return {}
    stmt = (
        select(TargetListMember.list_id, func.count())
        .where(TargetListMember.list_id.in_(list_ids))
        .group_by(TargetListMember.list_id)
    )
    return dict(session.execute(stmt).all())


def add_members(session: Session, found: TargetList, entity_type: str, ids, user: User) -> int:
    """Add the records of this type that the user may read; returns how many were new."""
    if entity_type not in MEMBER_TYPES:
        raise ListError(f"A target list holds contacts, leads and accounts, not {entity_type}.")
    model = KIND_OF_TYPE[entity_type].model
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0
    readable = set(session.scalars(visible(select(model.id), model, user).where(
        model.id.in_(wanted))))  # fmt: skip
    present = set(session.scalars(select(TargetListMember.entity_id).where(
        TargetListMember.list_id == found.id, TargetListMember.entity_type == entity_type,
        TargetListMember.entity_id.in_(wanted))))  # fmt: skip
    new = sorted(readable - present)
    session.add_all(
        TargetListMember(list_id=found.id, entity_type=entity_type, entity_id=i) for i in new
    )
    session.flush()
    return len(new)


def add_matching(session: Session, found: TargetList, slug: str, query: str, user: User) -> int:
    """Add every record of a kind that the list search finds for `query` (all pages)."""
    kind = _kind(slug)
    added, number = 0, 1
    while True:  # page by page, so a search over many thousands never sits in memory
        page = records.search_records(session, kind, user, query, number, per_page=500)
        added += add_members(session, found, kind.entity_type, [r.id for r in page.items], user)
        if not page.has_next:
            return added
        number += 1


def remove_members(session: Session, found: TargetList, member_ids) -> int:
    ids = [int(i) for i in member_ids]
    if not ids:
        return 0
    result = session.execute(
        delete(TargetListMember).where(
            TargetListMember.list_id == found.id, TargetListMember.id.in_(ids)
        )
    )
    return result.rowcount or 0


@dataclass
class CsvOutcome:
    report: csv_import.Report
    added: int


def import_csv(session: Session, found: TargetList, slug: str, data: bytes, user: User):
    """Import a CSV file of records (as the CSV import does) and add its records to the list."""
    kind = _kind(slug)
    try:
        table = csv_import.read_table(data)
    except csv_import.UnreadableFile as exc:
        raise ListError(f"The file cannot be read: {exc}.") from exc
    mapping = csv_import.auto_mapping(slug, table.headers)
    if "email" not in mapping.values():
        raise ListError("The file needs a column of e-mail addresses (a header such as Email).")
    report = csv_import.import_table(session, slug, table, user, mapping)
    column = next(i for i, h in enumerate(table.headers) if mapping.get(h) == "email")
    added = 0
    for start in range(0, len(table.rows), 500):
        lowers = _addresses_in(table.rows[start : start + 500], column)
        ids = [eid for _, etype, eid in addressbook.holders(session, lowers)
               if etype == kind.entity_type]  # fmt: skip
        added += add_members(session, found, kind.entity_type, ids, user)
    return CsvOutcome(report, added)


def _addresses_in(rows: list[list[str]], column: int) -> list[str]:
    lowers = []
    for row in rows:
        for part in records.split_addresses(row[column] if column < len(row) else ""):
            address = normalise_address(part)
            if address:
                lowers.append(address.lower())
    return lowers


def _kind(slug: str):
    if slug not in KIND_SLUGS:
        raise ListError("Choose contacts, leads or accounts.")
    return KINDS[slug]


def members_page(session: Session, found: TargetList, number: int = 1) -> Page:
    """One page of members with their names and primary addresses."""
    stmt = (
        select(TargetListMember)
        .where(TargetListMember.list_id == found.id)
        .order_by(TargetListMember.entity_type, TargetListMember.id)
    )
    page = paginate(session, stmt, number, per_page=50)
    items = _described(session, page.items)
    return Page(items=items, number=page.number, per_page=page.per_page, total=page.total)


def _described(session: Session, members: list[TargetListMember]) -> list[Member]:
    by_type: dict[str, list[int]] = {}
    for m in members:
        by_type.setdefault(m.entity_type, []).append(m.entity_id)
    names, addresses = {}, {}
    for entity_type, ids in by_type.items():
        model = KIND_OF_TYPE[entity_type].model
        for rec in session.scalars(select(model).where(model.id.in_(ids))):
            names[(entity_type, rec.id)] = rec.display_name
        for eid, address in records.primary_addresses(session, entity_type, ids).items():
            addresses[(entity_type, eid)] = address
    return [
        Member(m.id, m.entity_type, m.entity_id,
               names.get((m.entity_type, m.entity_id), "(deleted)"),
               addresses.get((m.entity_type, m.entity_id), ""),
               KIND_OF_TYPE[m.entity_type].slug)
        for m in members
    ]  # fmt: skip


def used_by(session: Session, found: TargetList) -> int:
    """How many mass mails name the list (it may still be deleted; they keep their recipients)."""
    stmt = select(func.count()).where(MassMailList.list_id == found.id)
    return session.scalar(stmt) or 0
