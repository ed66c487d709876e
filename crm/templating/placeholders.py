"""Placeholders in template text: `{Type.field}`, `{Type.link.field}` and the special ones.

Where a placeholder's value comes from (`crm.templating.context` builds the sources):

- `{User.x}` is always the acting user, `{Person.x}` the holder of the first recipient's
  address (a User, Contact, Lead or Account; an unknown address still has `emailAddress`),
  `{Parent.x}` the mail's record.
- A type name (`{Account.x}`, `{Contact.x}`, `{Lead.x}`, `{Opportunity.x}`, `{Case.x}`) is the
  first of these that has that type: **the parent itself, then the person, then the records
  linked to the parent** (a Contact's Account; an Opportunity's Account and first Contact; a
  Case's Account, Contact and Lead), **then the records linked to the person** (a Contact's
  Account; a Lead or an Account links to none), so that a mail from the inbox to a known
  contact fills `{Account.name}` from the contact's account. So on a mail about contact A written to contact B,
  `{Contact.firstName}` is A's (the mail is about A; B is `{Person.firstName}`), and on a
  case's mail to its contact, `{Account.name}` is the case's account. A person who is a user
  never shadows the acting user: `{User.x}` stays the sender.
- `{Type.link.field}` follows one link of that record (`{Contact.account.name}`,
  `{Case.contact.firstName}`, `{Opportunity.assignedUser.name}`).

Field names are EspoCRM's camelCase (`firstName`, `emailAddress`, `phoneNumber`). A
placeholder that gives nothing (unknown field, no such record, a record the user may not read,
an empty value) stays as written and is reported. Values are formatted for the reader: dates
in their format, times also in their zone, amounts with two decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from markupsafe import escape

from crm.models import User
from crm.records import preferences

# `{Name.field}` or `{Name.link.field}`, or a bare special name; never part of `{{...}}`.
TOKEN = re.compile(r"(?<!\{)\{([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*){0,2})\}(?!\})")
# Where each placeholder was, in the text handed on to Handlebars (private-use characters,
# which neither Handlebars nor HTML escaping touch).
MARK = re.compile("\ue000([0-9]+)\ue001")

CLOCK = ("today", "now", "currentYear")
# Special placeholders that only one purpose supplies: name -> (purpose, link key, link text).
PURPOSE_LINKS = {
    "optOutUrl": ("mass_mail", "optOutUrl", None),
    "optOutLink": ("mass_mail", "optOutUrl", "Unsubscribe"),
    "optInUrl": ("opt_in", "optInUrl", None),
    "optInLink": ("opt_in", "optInUrl", "Confirm your address"),
}
PURPOSE_NAMES = {"mass_mail": "mass mail", "opt_in": "an opt-in confirmation"}


@dataclass(frozen=True)
class Parsed:
    """Template text with each placeholder replaced by a mark, and the placeholders in order."""

    text: str
    tokens: tuple[str, ...]  # the placeholder's inside, e.g. "Account.name"


def parse(text: str) -> Parsed:
    """Find the placeholders once; the marks let Handlebars run over the rest of the text."""
    text = text.replace("\ue000", "").replace("\ue001", "")
    tokens: list[str] = []

    def mark(match: re.Match) -> str:
        if not is_placeholder(match.group(1)):
            return match.group(0)
        tokens.append(match.group(1))
        return f"\ue000{len(tokens) - 1}\ue001"

    return Parsed(TOKEN.sub(mark, text), tuple(tokens))


def is_placeholder(token: str) -> bool:
    """Whether a bare `{word}` is one of ours (other braces are plain text, left alone)."""
    return "." in token or token in CLOCK or token in PURPOSE_LINKS


def lookup(sources: dict[str, dict], token: str):
    """The raw value at a dotted path in the sources, or None."""
    value: object = sources
    for part in token.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return None if isinstance(value, dict | list) else value


def format_value(value, user: User) -> str:
    """A value as the user reads it: their date format and zone, two decimals, labels."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        local = preferences.to_local(value, user.time_zone)
        return local.strftime(f"{user.date_format or '%Y-%m-%d'} %H:%M")
    if isinstance(value, date):
        return value.strftime(user.date_format or "%Y-%m-%d")
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    return str(value)


def clock_values(user: User, now: datetime | None = None) -> dict[str, str]:
    """`{today}`, `{now}` and `{currentYear}` in the user's format and time zone."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    local = preferences.to_local(now, user.time_zone)
    fmt = user.date_format or "%Y-%m-%d"
    return {
        "today": local.strftime(fmt),
        "now": local.strftime(f"{fmt} %H:%M"),
        "currentYear": str(local.year),
    }


def purpose_value(token: str, purpose: str, links: dict[str, str], html: bool) -> str | None:
    """An opt-out or opt-in placeholder's text, or None when this purpose does not supply it."""
    wanted, key, label = PURPOSE_LINKS[token]
    url = links.get(key) if purpose == wanted else None
    if not url:
        return None
    if label is None or not html:
        return str(escape(url)) if html else url
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def fill(text: str, values: list[str | None], tokens: tuple[str, ...]) -> str:
    """Put each placeholder's value at its mark; one without a value stays as written."""

    def value(match: re.Match) -> str:
        i = int(match.group(1))
        if i >= len(values):
            return ""
        return values[i] if values[i] is not None else "{" + tokens[i] + "}"

    return MARK.sub(value, text)


def purpose_warning(token: str) -> str:
    wanted = PURPOSE_NAMES[PURPOSE_LINKS[token][0]]
    return f"{{{token}}} works only in {wanted}: it was left out here."
