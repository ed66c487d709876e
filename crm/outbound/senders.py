"""Who may send from which address, and through which SMTP account.

A user sends only from an address on their user record (the admin sets those), from a group
account of one of their teams, or from the system address when the admin shares it. For a
user's own address the SMTP account is, in order: their personal account for that address, a
group account of their teams for it, the shared system account. The form offers exactly what
this module allows, and the outbox asks it again at send time, so a forged form gets nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import settings
from crm.models import EmailAddress, EmailAddressLink, MailAccount, User

PERSONAL, GROUP, SYSTEM = "personal", "group", "system"


class SendRefused(ValueError):
    """A send the rules do not allow; the message is for the user."""


@dataclass(frozen=True)
class Sender:
    address: str
    name: str  # the display name on From
    account_id: int | None  # the SMTP account that sends; None: nothing can send it
    kind: str  # which rule allows the address: personal, group or system

    @property
    def label(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


def system_account(session: Session) -> MailAccount | None:
    """The system SMTP account the admin chose in settings, when it can send."""
    account_id = settings.get(session, "system_smtp_account_id")
    account = session.get(MailAccount, account_id) if account_id else None
    return account if account is not None and can_send(account) else None


def can_send(account: MailAccount) -> bool:
    return bool(account.is_active and account.smtp_host)


def senders(session: Session, user: User) -> list[Sender]:
    """Every From a user may choose, own addresses first; each names its SMTP account."""
    personal, groups = _sending_accounts(session, user)
    system = system_account(session) if settings.get(session, "system_smtp_shared") else None
    found: dict[str, Sender] = {}
    for address in user_addresses(session, user.id):
        lower = address.lower()
        account = personal.get(lower) or groups.get(lower) or system
        found[lower] = Sender(address, user.display_name, account.id if account else None, PERSONAL)
    for lower, account in groups.items():
        found.setdefault(lower, Sender(account.email_address, account.name, account.id, GROUP))
    if system is not None:
        found.setdefault(
            system.email_address.lower(),
            Sender(system.email_address, system.name, system.id, SYSTEM),
        )
    return list(found.values())


def sender_for(session: Session, user: User, address: str) -> Sender:
    """The sender for a From address, or SendRefused saying why it cannot be used."""
    lower = (address or "").strip().lower()
    for sender in senders(session, user):
        if sender.address.lower() != lower:
            continue
        if sender.account_id is None:
            raise SendRefused(
                f"No SMTP account can send from {sender.address}: add SMTP settings to your "
                "mail account for it, or ask an admin to share the system account."
            )
        return sender
    raise SendRefused(
        f"You may not send from {address or '(no address)'}: only from the addresses on your "
        "user record, your teams' group accounts or the shared system address."
    )


def user_addresses(session: Session, user_id: int) -> list[str]:
    """The addresses on a user's record, primary first."""
    stmt = (
        select(EmailAddress.address)
        .join(EmailAddressLink, EmailAddressLink.address_id == EmailAddress.id)
        .where(EmailAddressLink.entity_type == "User", EmailAddressLink.entity_id == user_id)
        .order_by(EmailAddressLink.is_primary.desc(), EmailAddress.lower)
    )
    return list(session.scalars(stmt))


def own_addresses(session: Session, user: User) -> set[str]:
    """Lower-cased addresses that are the user's: a reply-all leaves them out."""
    return {s.address.lower() for s in senders(session, user)}


def _sending_accounts(
    session: Session, user: User
) -> tuple[dict[str, MailAccount], dict[str, MailAccount]]:
    """The user's personal and their teams' group accounts that can send, by address."""
    personal: dict[str, MailAccount] = {}
    groups: dict[str, MailAccount] = {}
    team_ids = user.team_ids
    rows = session.scalars(select(MailAccount).order_by(MailAccount.id))
    for account in rows:
        if not can_send(account):
            continue
        lower = account.email_address.lower()
        if not account.is_group and account.user_id == user.id:
            personal.setdefault(lower, account)
        elif account.is_group and team_ids & {t.id for t in account.teams}:
            groups.setdefault(lower, account)
    return personal, groups
