"""Typed system settings with defaults, stored as rows of `settings`."""

from __future__ import annotations

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
    # Cap on personal mail accounts per user (0 = no cap).
    "max_personal_accounts": 0,
    # host:port entries an account may use although they resolve to private addresses.
    "mail_host_allowlist": [],
    # Messages above this size are imported header-only.
    "max_message_bytes": 25 * 1024 * 1024,
}


def get(session: Session, key: str):
    """The stored value, or the default."""
    row = session.get(Setting, key)
    return DEFAULTS[key] if row is None else row.value


def put(session: Session, key: str, value) -> None:
    """Store a value (the caller commits)."""
    if key not in DEFAULTS:
        raise KeyError(key)
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
