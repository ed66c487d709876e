"""A user's personal preferences: signature, mail client, default answer button, time zone,
date format, mail lists."""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from crm.models import User

# strftime patterns offered to users (a fixed list keeps every page's dates readable).
DATE_FORMATS = {
    "%Y-%m-%d": "2025-03-31",
    "%d/%m/%Y": "31/03/2025",
    "%m/%d/%Y": "03/31/2025",
    "%d.%m.%Y": "31.03.2025",
    "%d %b %Y": "31 Mar 2025",
}
MAX_SIGNATURE = 10_000
ANSWERS = ("reply", "reply_all")  # the mail page's default answer button


class PreferencesError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@cache
def time_zones() -> list[str]:
    return sorted(available_timezones())


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def update_preferences(user: User, form) -> None:
    """Validate and store submitted preferences; raises PreferencesError listing bad fields."""
    errors = {}
    signature = (form.get("signature") or "").replace("\r\n", "\n")
    if len(signature) > MAX_SIGNATURE:
        errors["signature"] = f"at most {MAX_SIGNATURE} characters"
    time_zone = (form.get("time_zone") or "").strip()
    if not is_time_zone(time_zone):
        errors["time_zone"] = "choose a time zone such as Europe/Berlin"
    date_format = form.get("date_format") or ""
    if date_format not in DATE_FORMATS:
        errors["date_format"] = "choose one of the offered formats"
    answer = form.get("default_answer") or "reply"
    if answer not in ANSWERS:
        errors["default_answer"] = "choose Reply or Reply all"
    if errors:
        raise PreferencesError(errors)
    user.signature = signature
    user.time_zone = time_zone
    user.date_format = date_format
    user.use_external_client = form.get("use_external_client") == "on"
    user.mail_as_conversations = form.get("mail_view") == "conversations"
    user.reply_all_default = answer == "reply_all"


def _zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name) if name and is_time_zone(name) else ZoneInfo("UTC")


def to_local(value: datetime | None, time_zone: str | None) -> datetime | None:
    """A stored (naive UTC) time as wall-clock time in the user's zone, still naive."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(_zone(time_zone)).replace(tzinfo=None)


def from_local(value: datetime, time_zone: str | None) -> datetime:
    """Wall-clock time typed by a user, as naive UTC for storage."""
    return value.replace(tzinfo=_zone(time_zone)).astimezone(UTC).replace(tzinfo=None)


def due_text(value: datetime | None, time_zone: str | None, date_format: str | None) -> str:
    """A due time as its user reads it; the start of a day (a due date without a time) as a date."""
    local = to_local(value, time_zone)
    if local is None:
        return ""
    fmt = date_format or "%Y-%m-%d"
    return local.strftime(fmt if local.time() == time() else f"{fmt} %H:%M")


def mail_date_text(
    value: datetime | None,
    time_zone: str | None,
    date_format: str | None,
    full: bool = False,
    now: datetime | None = None,
) -> str:
    """A mail's (naive UTC) date as its reader reads it: today's mail shows the time only."""
    local = to_local(value, time_zone)
    if local is None:
        return ""
    fmt = date_format or "%Y-%m-%d"
    if full:
        return local.strftime(f"{fmt} %H:%M")
    today = to_local(now or datetime.now(UTC).replace(tzinfo=None), time_zone).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime(fmt)
