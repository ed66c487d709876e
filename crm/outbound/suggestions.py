"""What the compose form looks up: address suggestions, the parent's name, carried attachments."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import RECORD_TYPES, Attachment, EmailAddress, EmailAddressLink, User
from crm.records import access

LIMIT = 12
KINDS = {"User": User, "Contact": RECORD_TYPES["Contact"], "Lead": RECORD_TYPES["Lead"],
         "Account": RECORD_TYPES["Account"]}  # fmt: skip


@dataclass(frozen=True)
class Suggestion:
    name: str
    address: str
    kind: str

    @property
    def value(self) -> str:
        return f'"{self.name}" <{self.address}>' if self.name else self.address


def addresses(session: Session, user: User, term: str) -> list[Suggestion]:
    """Addresses of users and of the contacts, leads and accounts the user may see, by the
    address or the holder's name."""
    term = (term or "").strip().lower()
    if len(term) < 2:
        return []
    found: dict[str, Suggestion] = {}
    rows = session.execute(
        select(EmailAddress.address, EmailAddressLink.entity_type, EmailAddressLink.entity_id)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddress.lower.contains(term, autoescape=True))
        .limit(LIMIT * 4)
    ).all()
    for address, kind, entity_id in rows:
        name = _holder_name(session, user, kind, entity_id)
        if name is not None:
            found.setdefault(address.lower(), Suggestion(name, address, kind))
    for kind, model in KINDS.items():
        if len(found) >= LIMIT:
            break
        for holder in _named(session, user, kind, model, term):
            for address in _addresses_of(session, kind, holder.id):
                found.setdefault(address.lower(), Suggestion(holder.display_name, address, kind))
    return list(found.values())[:LIMIT]


def _holder_name(session: Session, user: User, kind: str, entity_id: int) -> str | None:
    model = KINDS.get(kind)
    if model is None:
        return None
    if model is User:
        holder = session.get(User, entity_id)
    else:
        holder = access.get_visible(session, model, entity_id, user)
    return holder.display_name if holder is not None else None


def _named(session: Session, user: User, kind: str, model, term: str):
    if model is User:
        stmt = select(User).where(User.is_active.is_(True), User.name.ilike(f"%{term}%"))
    else:
        column = model.name if hasattr(model, "name") else model.last_name
        stmt = access.visible(select(model).where(column.ilike(f"%{term}%")), model, user)
    return session.scalars(stmt.limit(LIMIT)).all()


def _addresses_of(session: Session, kind: str, entity_id: int) -> list[str]:
    stmt = (
        select(EmailAddress.address)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == kind, EmailAddressLink.entity_id == entity_id)
    )
    return list(session.scalars(stmt))


def attachments(session: Session, ids) -> list[Attachment]:
    if not ids:
        return []
    return list(session.scalars(select(Attachment).where(Attachment.id.in_(list(ids)))))
