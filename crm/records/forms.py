"""Record forms: field definitions and validation of submitted strings into typed values.

Views hand in the submitted form as a mapping of strings; `clean()` turns it into typed values or
raises RecordError with one message per field, so a form can show every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address
from crm.models import RECORD_TYPES, Account, Contact, Lead, Team, User
from crm.records import addressbook
from crm.records.access import get_visible, visible
from crm.records.preferences import from_local, to_local

PARENT_TYPES = ("Account", "Contact", "Lead", "Opportunity", "Case")
CHOICE_LIMIT = 500  # options offered in a select; the current value is always among them


class RecordError(ValueError):
    """Invalid input: `errors` maps a field name to a message for the user."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    # text, textarea, emails, choice, date, datetime, money, account, contact, contacts, parent
    type: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    max_length: int = 255


def split_addresses(text: str) -> list[str]:
    """Addresses typed one per line or separated by `;` or `,`, in order."""
    return [part.strip() for part in re.split(r"[\n;,]+", text or "") if part.strip()]


def clean(
    session: Session, model, fields, form: Mapping, actor: User, current_team_id: int | None = None
) -> dict:
    """Typed values from submitted strings; raises RecordError listing every bad field."""
    values, errors = {}, {}
    for f in fields:
        try:
            values[f.name] = _clean_field(session, f, form, actor)
        except ValueError as exc:
            errors[f.name] = str(exc)
    if model in (Contact, Lead) and not (values.get("first_name") or values.get("last_name")):
        errors.setdefault("last_name", "enter a first or last name")
    try:
        values.update(_clean_ownership(session, form, actor, current_team_id))
    except RecordError as exc:
        errors.update(exc.errors)
    if errors:
        raise RecordError(errors)
    return values


def _clean_field(session: Session, f: Field, form: Mapping, actor: User):
    if f.type == "contacts":
        ids = form.getlist(f.name) if hasattr(form, "getlist") else form.get(f.name, [])
        return [_visible_id(session, Contact, raw, actor, "a contact") for raw in ids if raw]
    raw = (form.get(f.name) or "").strip()
    if not raw:
        if f.required:
            raise ValueError("this field is required")
        return f.choices[0] if f.type == "choice" and f.choices else _EMPTY.get(f.type, "")
    return _PARSERS.get(f.type, _text)(session, f, raw, actor)


def _text(_session, f: Field, raw: str, _actor):
    if len(raw) > f.max_length:
        raise ValueError(f"at most {f.max_length} characters")
    return raw


def _emails(_session, _f, raw: str, _actor) -> list[str]:
    parts = split_addresses(raw)
    bad = [p for p in parts if normalise_address(p) is None]
    if bad:
        raise ValueError("not an e-mail address: " + ", ".join(bad))
    return parts


def _choice(_session, f: Field, raw: str, _actor) -> str:
    if raw not in f.choices:
        raise ValueError("choose one of: " + ", ".join(f.choices))
    return raw


def _date(_session, _f, raw: str, _actor) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("enter a date as YYYY-MM-DD") from None


def _datetime(_session, _f, raw: str, actor) -> datetime:
    try:
        typed = datetime.fromisoformat(raw.replace(" ", "T")).replace(tzinfo=None, second=0)
    except ValueError:
        raise ValueError("enter a date and time as YYYY-MM-DD HH:MM") from None
    return from_local(typed, actor.time_zone)


def _money(_session, _f, raw: str, _actor) -> Decimal:
    try:
        amount = Decimal(raw.replace(",", "").replace(" ", ""))
    except InvalidOperation:
        raise ValueError("enter an amount such as 1500.00") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise ValueError("enter an amount between 0 and 999,999,999,999.99")
    return amount.quantize(Decimal("0.01"))


def _parent(session: Session, _f, raw: str, actor: User) -> tuple[str, int]:
    entity_type, _, raw_id = raw.partition(":")
    if entity_type not in PARENT_TYPES:
        raise ValueError("choose a record")
    return entity_type, _visible_id(session, RECORD_TYPES[entity_type], raw_id, actor, "a record")


def _visible_id(session: Session, model, raw: str, actor: User, what: str) -> int:
    record = get_visible(session, model, int(raw), actor) if str(raw).isdigit() else None
    if record is None:
        raise ValueError(f"choose {what} you can see")
    return record.id


_PARSERS = {
    "emails": _emails,
    "choice": _choice,
    "date": _date,
    "datetime": _datetime,
    "money": _money,
    "parent": _parent,
    "textarea": _text,
    "account": lambda s, f, raw, a: _visible_id(s, Account, raw, a, "an account"),
    "contact": lambda s, f, raw, a: _visible_id(s, Contact, raw, a, "a contact"),
}
_EMPTY = {
    "emails": [],
    "date": None,
    "datetime": None,
    "money": None,
    "account": None,
    "contact": None,
    "parent": None,
}


def _clean_ownership(session: Session, form: Mapping, actor: User, current_team_id) -> dict:
    """Assigned user (admins only) and team (the actor's own or the record's current one)."""
    values, errors = {}, {}
    raw_team = (form.get("team_id") or "").strip()
    if raw_team:
        team = session.get(Team, int(raw_team)) if raw_team.isdigit() else None
        allowed = (
            actor.is_admin or team is not None and team.id in actor.team_ids | {current_team_id}
        )
        if team is None or not allowed:
            errors["team_id"] = "choose one of your teams"
        else:
            values["team_id"] = team.id
    else:
        values["team_id"] = None
    raw_user = (form.get("assigned_user_id") or "").strip()
    if actor.is_admin and raw_user:
        user = session.get(User, int(raw_user)) if raw_user.isdigit() else None
        if user is None or not user.is_active:
            errors["assigned_user_id"] = "choose an active user"
        else:
            values["assigned_user_id"] = user.id
    if errors:
        raise RecordError(errors)
    return values


# --- showing a form ----------------------------------------------------------------------


def form_data(session: Session, entity_type: str, record, fields, time_zone: str = "UTC") -> dict:
    """The strings an edit form starts with (times in the user's zone)."""
    data: dict = {
        "team_id": _str(record.team_id),
        "assigned_user_id": _str(record.assigned_user_id),
    }
    for f in fields:
        if f.type == "emails":
            links = addressbook.addresses_of(session, entity_type, record.id)
            data[f.name] = "\n".join(link.address.address for link in links)
        elif f.type == "contacts":
            data[f.name] = [str(c.id) for c in record.contacts]
        elif f.type == "parent":
            data[f.name] = f"{record.parent_type}:{record.parent_id}" if record.parent_type else ""
        elif f.type == "datetime":
            local = to_local(record.due_at, time_zone)
            data[f.name] = local.strftime("%Y-%m-%dT%H:%M") if local else ""
        else:
            data[f.name] = _str(getattr(record, f.name))
    return data


def _str(value) -> str:
    return "" if value is None else str(value)


def options(session: Session, fields, actor: User, data: Mapping) -> dict[str, list]:
    """Choices for the form's selects: records, teams and users the actor may pick."""
    found: dict[str, list] = {}
    for f in fields:
        if f.type in ("account", "contact", "contacts"):
            model = Account if f.type == "account" else Contact
            found[f.name] = _record_choices(session, model, actor, data.get(f.name))
        elif f.type == "parent":
            found[f.name] = [
                (name, _record_choices(session, RECORD_TYPES[name], actor, None, prefix=name + ":"))
                for name in PARENT_TYPES
            ]
    teams = select(Team).order_by(Team.name)
    if not actor.is_admin:
        teams = teams.where(Team.id.in_(actor.team_ids | {int(data.get("team_id") or 0)}))
    found["team_id"] = [(str(t.id), t.name) for t in session.scalars(teams)]
    if actor.is_admin:
        users = select(User).where(User.is_active.is_(True)).order_by(User.username)
        found["assigned_user_id"] = [(str(u.id), u.display_name) for u in session.scalars(users)]
    return found


def _record_choices(session: Session, model, actor: User, current, prefix: str = "") -> list:
    order = [model.last_name, model.first_name] if hasattr(model, "last_name") else [model.id]
    if hasattr(model, "name"):
        order = [model.name]
    stmt = visible(select(model), model, actor).order_by(*order, model.id).limit(CHOICE_LIMIT)
    rows = list(session.scalars(stmt))
    wanted = current if isinstance(current, list) else [current] if current else []
    have = {str(r.id) for r in rows}
    for raw in wanted:
        if raw not in have and str(raw).isdigit():
            extra = get_visible(session, model, int(raw), actor)
            rows += [extra] if extra else []
    return [(f"{prefix}{r.id}", r.display_name) for r in rows]
