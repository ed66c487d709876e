"""The account sending tests send through: a personal SMTP-only account on a loopback server."""

from __future__ import annotations

from crm.accounts import manage
from crm.models import MailAccount


def smtp_only_account(
    session, services, user_id: int, address: str, host: str, port: int
) -> MailAccount:
    """No IMAP side, no TLS and no login (the loopback test server and the bench's sink
    accept mail as it comes); the caller commits."""
    return manage.create_account(
        session,
        services.secret_box,
        user_id=user_id,
        email=address,
        host="",
        port=993,
        security="ssl",
        login="",
        password="",
        smtp={"smtp_host": host, "smtp_port": port, "smtp_security": "none", "smtp_auth": False},
    )
