"""Which accounts mass mail may go out from: group accounts and the system account, as the
admin allows. Mass mail is machine mail, so personal accounts never send it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import settings
from crm.models import MailAccount
from crm.outbound.senders import can_send, system_account


def candidates(session: Session) -> list[MailAccount]:
    """Accounts an admin may allow: every group account that can send, and the system one."""
    stmt = select(MailAccount).where(MailAccount.is_group.is_(True)).order_by(MailAccount.name)
    found = [a for a in session.scalars(stmt) if can_send(a)]
    system = system_account(session)
    return found + ([system] if system is not None else [])


def allowed(session: Session) -> list[MailAccount]:
    """The candidates the admin allowed for mass mail."""
    ids = set(settings.get(session, "mass_mail_account_ids") or [])
    return [a for a in candidates(session) if a.id in ids]


def allowed_account(session: Session, account_id: int | None) -> MailAccount | None:
    return next((a for a in allowed(session) if a.id == account_id), None)


def allow(session: Session, account_ids) -> None:
    """Store the allowed accounts (only candidates are kept; the caller commits)."""
    wanted = {int(i) for i in account_ids}
    settings.put(
        session,
        "mass_mail_account_ids",
        sorted(a.id for a in candidates(session) if a.id in wanted),
    )
