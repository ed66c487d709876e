"""Typed system settings with defaults, stored as rows of `settings`."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from crm.models import Setting

DEFAULTS: dict[str, object] = {
    # B2C: mail links to Contacts directly, never to their Account.
    "b2c_mode": False,
    # How often the scheduler dispatches fetch jobs.
    "fetch_period_seconds": 60,
    # Whether regular users may delete mail permanently (admins always may).
    "users_may_delete_mail": False,
    # Whether users may send through the system SMTP account.
    "system_smtp_shared": False,
    # The mail account (SMTP) the system sends from; None until the admin sets one.
    "system_smtp_account_id": None,
    # Seconds a sent mail waits in the outbox, so "Undo" can still stop it.
    "undo_send_seconds": 10,
    # Recipients (To + Cc + Bcc) one mail may have, and mails one user may send per hour.
    "max_recipients_per_mail": 100,
    "max_sends_per_hour": 200,
    # Auto-replies of group accounts: at most this many per sender within the period.
    "auto_reply_max_per_sender": 1,
    "auto_reply_period_hours": 24,
    # Cap on personal mail accounts per user (0 = no cap).
    "max_personal_accounts": 0,
    # host:port entries an account may use although they resolve to private addresses.
    "mail_host_allowlist": [],
    # Messages above this size are imported header-only.
    "max_message_bytes": 25 * 1024 * 1024,
    # The site's public address (https://crm.example.com), for links in mail such as the
    # opt-out of a mass mail; None until the admin sets it (on the mass mail settings page).
    "site_url": None,
    # Ids of the group accounts (and the system account) mass mail may be sent from.
    "mass_mail_account_ids": None,
}


def get(session: Session, key: str):
    """The stored value, or the default; read once per session (an import asks per message)."""
    cache = session.info.setdefault("settings", {})
    if key not in cache:
        row = session.get(Setting, key)
        cache[key] = DEFAULTS[key] if row is None else row.value
    return cache[key]


def put(session: Session, key: str, value) -> None:
    """Store a value (the caller commits)."""
    if key not in DEFAULTS:
        raise KeyError(key)
    session.info.setdefault("settings", {})[key] = value
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def all_settings(session: Session) -> dict[str, object]:
    values = dict(DEFAULTS)
    for row in session.query(Setting).all():
        if row.key in values:
            values[row.key] = row.value
    return values


class SettingsError(ValueError):
    """Invalid settings input: `errors` maps a key to a message for the admin."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# Lowest and highest accepted values of the numeric settings.
BOUNDS = {
    "fetch_period_seconds": (10, 86400),
    "max_personal_accounts": (0, 1000),
    "max_message_bytes": (1024 * 1024, 1024 * 1024 * 1024),
    "undo_send_seconds": (0, 60),
    "max_recipients_per_mail": (0, 10_000),
    "max_sends_per_hour": (0, 100_000),
    "auto_reply_max_per_sender": (0, 100),
    "auto_reply_period_hours": (1, 8760),
}
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:(\d{1,5}|\*)$")


def from_form(form) -> dict[str, object]:
    """Typed values from a submitted settings form (unchecked boxes are absent, meaning False)."""
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    for key, default in DEFAULTS.items():
        raw = form.get(key)
        if default is None:
            continue  # set by its own form (the system SMTP account), not typed in
        if isinstance(default, bool):
            values[key] = raw in ("on", "true", "1", "yes")
        elif isinstance(default, int):
            low, high = BOUNDS[key]
            if not (raw or "").strip().isdigit() or not low <= int(raw) <= high:
                errors[key] = f"enter a whole number from {low} to {high}"
            else:
                values[key] = int(raw)
        else:
            entries = [e.strip() for e in (raw or "").replace(",", "\n").splitlines() if e.strip()]
            bad = [e for e in entries if not _HOST_PORT.match(e)]
            if bad:
                errors[key] = "use host:port entries (port may be *): " + ", ".join(bad)
            values[key] = entries
    if errors:
        raise SettingsError(errors)
    return values
