"""Submitted campaign forms as typed values (no Flask: a form is any mapping with getlist)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from crm.campaigns.mass_mail import MassMailError
from crm.records.preferences import from_local


def _ids(form, key: str) -> list[int]:
    return [int(v) for v in form.getlist(key) if str(v).isdigit()]


def _int(form, key: str) -> int | None:
    raw = (form.get(key) or "").strip()
    return int(raw) if raw.isdigit() else None


def mass_mail_values(form, time_zone: str | None) -> dict:
    """A mass mail form's values; MassMailError for a start time or rate that is not one."""
    start = (form.get("start_at") or "").strip()
    start_at = None
    if start:
        try:
            start_at = from_local(datetime.fromisoformat(start), time_zone)
        except ValueError as exc:
            raise MassMailError(
                "Enter the start time as date and time, or leave it empty."
            ) from exc
    rate = (form.get("per_hour") or "").strip()
    if rate and not rate.isdigit():
        raise MassMailError("The rate is a whole number of mails per hour.")
    return {
        "name": form.get("name", ""),
        "purpose": "opt_in" if form.get("purpose") == "opt_in" else "mass_mail",
        "template_id": _int(form, "template_id"),
        "mail_account_id": _int(form, "mail_account_id"),
        "from_name": form.get("from_name", ""),
        "list_ids": _ids(form, "list_ids"),
        "excluded_ids": _ids(form, "excluded_ids"),
        "per_hour": int(rate) if rate else None,
        "start_at": start_at,
    }


def site_url(raw: str) -> str:
    """The site's public address as typed, checked: http(s), a host, no query or fragment."""
    value = (raw or "").strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise MassMailError(
            "Enter the address people open the CRM at, such as https://crm.example.com."
        )
    return value
