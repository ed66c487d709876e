"""CSV import of Accounts, Contacts and Leads: read any spreadsheet export, map columns, upsert.

Rows are matched to existing records by e-mail address (accounts without one by exact name), so
importing the same file twice updates instead of duplicating. A bad row is reported with its row
number (the header is row 1, as in a spreadsheet) and never stops the rest of the file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from charset_normalizer import from_bytes
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address
from crm.models import Lead, User
from crm.records import addressbook, records
from crm.records.access import visible

# Importable fields per kind; the first ones are the documented columns.
FIELDS: dict[str, tuple[str, ...]] = {
    "accounts": ("name", "email", "website", "phone", "description"),
    "contacts": ("first_name", "last_name", "email", "account", "phone", "title", "description"),
    "leads": ("first_name", "last_name", "email", "account_name", "status", "phone", "description"),
}
# Other spellings of a header that mean the same field.
ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "e_mail_address": "email",
    "emails": "email",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "company": "account",
    "account_name": "account",
    "company_name": "account",
    "telephone": "phone",
    "phone_number": "phone",
    "web": "website",
    "url": "website",
    "job_title": "title",
}
MAX_ROWS = 100_000


@dataclass
class Rejected:
    row: int
    reason: str


@dataclass
class Report:
    created: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "rejected": [{"row": r.row, "reason": r.reason} for r in self.rejected],
        }


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (empty, no header)."""


def decode(data: bytes) -> str:
    """Text of an upload: UTF-8 (with or without BOM), else the best guess, else Latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    return str(best) if best is not None else data.decode("latin-1")


def read_table(data: bytes) -> Table:
    """Header and rows of a CSV file whose delimiter (`,` `;` tab `|`) is sniffed."""
    text = decode(data).replace("\x00", "")
    sample = text[: 64 * 1024]
    try:
        # The header line decides: `;`-separated addresses in later cells must not confuse it.
        dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0] or sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), dialect)]
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise UnreadableFile("the file is empty or has no header row")
    if len(rows) > MAX_ROWS + 1:
        raise UnreadableFile(f"the file has more than {MAX_ROWS} rows; split it")
    return Table(headers=[h.strip() for h in rows[0]], rows=rows[1:])


def field_for_header(kind: str, header: str) -> str | None:
    """The field a header names, compared case-insensitively ("First Name" is first_name)."""
    key = re.sub(r"[\s\-.]+", "_", header.strip().lower())
    key = key if key in FIELDS[kind] else ALIASES.get(key, key)
    if kind == "leads" and key == "account":
        key = "account_name"
    return key if key in FIELDS[kind] else None


def auto_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """header -> field for every header that names a field by itself."""
    mapping: dict[str, str] = {}
    for header in headers:
        target = field_for_header(kind, header)
        if target and target not in mapping.values():
            mapping[header] = target
    return mapping


def mapping_from_choices(kind: str, headers: list[str], choices: list[str]) -> dict[str, str]:
    """header -> field from one choice per header ("" ignores a column); a field at most once."""
    mapping: dict[str, str] = {}
    for header, choice in zip(headers, choices):
        if choice in FIELDS[kind]:
            if choice in mapping.values():
                raise UnreadableFile(f"{choice} is chosen for more than one column")
            mapping[header] = choice
    if not mapping:
        raise UnreadableFile("choose a field for at least one column")
    return mapping


def import_table(
    session: Session, kind: str, table: Table, actor: User, mapping: dict[str, str] | None = None
) -> Report:
    """Create or update one record per row; returns what happened to every row."""
    mapping = auto_mapping(kind, table.headers) if mapping is None else mapping
    columns = [(i, mapping.get(h)) for i, h in enumerate(table.headers) if mapping.get(h)]
    report = Report()
    for number, row in enumerate(table.rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {name: row[i].strip() for i, name in columns if i < len(row)}
        try:
            outcome = _IMPORTERS[kind](session, values, actor)
        except ValueError as exc:
            report.rejected.append(Rejected(number, str(exc)))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _addresses(values: dict) -> list[str]:
    parts = records.split_addresses(values.get("email", ""))
    bad = [p for p in parts if normalise_address(p) is None]
    if bad:
        raise ValueError("not an e-mail address: " + ", ".join(bad))
    return parts


def _check_lengths(kind: str, values: dict) -> None:
    for f in records.KINDS[kind].fields:
        if len(values.get(f.name, "")) > f.max_length:
            raise ValueError(f"{f.name} is longer than {f.max_length} characters")


def _holder(session: Session, kind: str, addresses: list[str], actor: User):
    """The first visible record of this kind holding one of the addresses."""
    model = records.KINDS[kind].model
    lowers = [normalise_address(a).lower() for a in addresses]
    ids = [
        eid for _, etype, eid in addressbook.holders(session, lowers) if etype == model.entity_type
    ]
    if not ids:
        return None
    stmt = visible(select(model).where(model.id.in_(ids)), model, actor).order_by(model.id)
    return session.scalars(stmt).first()


def _upsert(session: Session, kind: str, record, values: dict, addresses: list[str], actor) -> str:
    """Create the record or fill in the given (non-empty) values; addresses are added."""
    spec = records.KINDS[kind]
    values = {k: v for k, v in values.items() if v not in ("", None)}
    if record is None:
        records.create_record(session, spec, {**values, "emails": addresses}, actor)
        return "created"
    records.update_record(session, spec, record, values)
    addressbook.add_addresses(session, spec.entity_type, record.id, addresses)
    return "updated"


def _import_account(session: Session, values: dict, actor: User) -> str:
    addresses = _addresses(values)
    _check_lengths("accounts", values)
    name = values.get("name", "")
    if not name:
        raise ValueError("name is required")
    record = _holder(session, "accounts", addresses, actor) if addresses else None
    if record is None and not addresses:
        record = records.account_named(session, name, actor)
    fields = {k: values.get(k, "") for k in ("name", "website", "phone", "description")}
    return _upsert(session, "accounts", record, fields, addresses, actor)


def _person(kind: str, values: dict) -> tuple[list[str], dict]:
    addresses = _addresses(values)
    _check_lengths(kind, values)
    if not (values.get("first_name") or values.get("last_name")):
        raise ValueError("first_name or last_name is required")
    return addresses, values


def _import_contact(session: Session, values: dict, actor: User) -> str:
    addresses, values = _person("contacts", values)
    account_name = values.get("account", "")
    if len(account_name) > 255:
        raise ValueError("account is longer than 255 characters")
    fields = {
        k: values.get(k, "") for k in ("first_name", "last_name", "phone", "title", "description")
    }
    if account_name:
        account = records.account_named(session, account_name, actor)
        if account is None:
            account = records.create_record(
                session, records.KINDS["accounts"], {"name": account_name}, actor
            )
        fields["account_id"] = account.id
    record = _holder(session, "contacts", addresses, actor) if addresses else None
    return _upsert(session, "contacts", record, fields, addresses, actor)


def _import_lead(session: Session, values: dict, actor: User) -> str:
    addresses, values = _person("leads", values)
    status = values.get("status", "")
    if status:
        canonical = {s.lower(): s for s in Lead.STATUSES}.get(status.lower())
        if canonical is None:
            raise ValueError(f"status {status!r} is not one of: " + ", ".join(Lead.STATUSES))
        status = canonical
    fields = {
        k: values.get(k, "")
        for k in ("first_name", "last_name", "account_name", "phone", "description")
    }
    fields["status"] = status
    record = _holder(session, "leads", addresses, actor) if addresses else None
    return _upsert(session, "leads", record, fields, addresses, actor)


_IMPORTERS = {"accounts": _import_account, "contacts": _import_contact, "leads": _import_lead}
