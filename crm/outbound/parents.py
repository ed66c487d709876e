"""The record a mail being written is linked to: the types offered, the search, the choice.

Compose offers what the linking panel of a mail offers, through the same search
(crm.records.records.search_records), so only records the user may read come up or are taken.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm import settings
from crm.models import RECORD_TYPES, User
from crm.pagination import Page
from crm.records.access import get_visible
from crm.records.forms import PARENT_TYPES  # what mail and tasks link to, in that order
from crm.records.kinds import KIND_OF_TYPE
from crm.records.records import search_records

CHOICES = 20  # results shown at once; a longer list asks for a narrower search


class ParentRefused(ValueError):
    """A record that cannot be chosen: its type, its id, or the user may not read it."""


def offered_types(session: Session) -> tuple[str, ...]:
    """The types compose offers: in B2C mode mail goes to Contacts, never to their Account."""
    if settings.get(session, "b2c_mode"):
        return tuple(t for t in PARENT_TYPES if t != "Account")
    return PARENT_TYPES


def search(session: Session, user: User, parent_type: str, query: str) -> Page:
    """The first records of one offered type the user may read that match `query`."""
    return search_records(session, _kind(session, parent_type), user, query, 1, CHOICES)


def choose(session: Session, user: User, parent_type: str, record_id: int | None):
    """The record to link the mail to, or ParentRefused saying why it cannot be."""
    kind = _kind(session, parent_type)
    if not record_id:
        raise ParentRefused(
            f"No {kind.label.lower()} was chosen: pick one from the search results."
        )
    record = get_visible(session, kind.model, record_id, user)
    if record is None:  # hidden and missing alike: whether it exists is not the user's to know
        raise ParentRefused(f"That {kind.label.lower()} is not one you may open.")
    return record


def name_of(session: Session, user: User, parent_type: str | None, record_id: int | None) -> str:
    """The record's name as the form shows it; one the user may not read (a reply to a mail
    linked to it, say) is named as the linking panel names it, and no record is ""."""
    model = RECORD_TYPES.get(parent_type or "")
    if model is None or not record_id or session.get(model, record_id) is None:
        return ""
    record = get_visible(session, model, record_id, user)
    return record.display_name if record is not None else "a record you cannot open"


def _kind(session: Session, parent_type: str):
    offered = offered_types(session)
    if parent_type not in offered:
        raise ParentRefused(f"A mail can be linked to: {', '.join(offered)}.")
    return KIND_OF_TYPE[parent_type]
