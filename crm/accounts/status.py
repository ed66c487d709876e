"""Mail accounts as their owners see them: which accounts a user sees, and the status panel
(how far behind, progress, time left).

Who sees what: a user sees their own personal accounts; admins see every account, and only
admins see group (shared) accounts. The system SMTP account (no owner, set in the admin's
settings) is nobody's personal account and no group account: the lists leave it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from crm import settings
from crm.accounts import oauth
from crm.db import utcnow
from crm.models import FolderCursor, MailAccount, SyncRun, User
from crm.models.accounts import STALE_CLAIM

# --- lookups -------------------------------------------------------------------------------


def personal_accounts(session: Session, user_id: int) -> list[MailAccount]:
    stmt = select(MailAccount).where(
        MailAccount.user_id == user_id, MailAccount.is_group.is_(False), _not_system(session)
    )
    return list(session.scalars(stmt.order_by(MailAccount.name, MailAccount.id)))


def other_accounts(session: Session, user: User, group: bool) -> list[MailAccount]:
    """The admins' view: group accounts, or other users' personal accounts."""
    if not user.is_admin:
        return []
    stmt = select(MailAccount).where(MailAccount.is_group.is_(group), _not_system(session))
    if not group:
        # Personal accounts always have an owner; one without is the system account.
        stmt = stmt.where(MailAccount.user_id.is_not(None), MailAccount.user_id != user.id)
    return list(session.scalars(stmt.order_by(MailAccount.name, MailAccount.id)))


def _not_system(session: Session):
    system_id = settings.get(session, "system_smtp_account_id")
    return MailAccount.id != system_id if system_id else true()


def is_system_account(session: Session, account: MailAccount) -> bool:
    """Whether this is the account the system sends from (admin settings)."""
    return account.id is not None and account.id == settings.get(session, "system_smtp_account_id")


def owner_names(session: Session, accounts: list[MailAccount]) -> dict[int, str]:
    """user id -> user name of the accounts' owners or assigned users."""
    ids = {a.user_id for a in accounts if a.user_id}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def visible_account(session: Session, user: User, account_id: int) -> MailAccount | None:
    """The account if the user may see it, else None."""
    account = session.get(MailAccount, account_id)
    if account is None or user.is_admin:
        return account
    return account if not account.is_group and account.user_id == user.id else None


def readable_account(session: Session, user: User, account_id: int) -> MailAccount | None:
    """The account if the user may manage it, or read its status: members of a group
    account's teams and its assigned user see whether it syncs (read-only)."""
    account = visible_account(session, user, account_id)
    if account is not None:
        return account
    account = session.get(MailAccount, account_id)
    if account is None or not account.is_group:
        return None
    if account.user_id == user.id or user.team_ids & {t.id for t in account.teams}:
        return account
    return None


def team_accounts(session: Session, user: User) -> list[MailAccount]:
    """Group accounts of the user's teams (or assigned to them), for the read-only list."""
    if user.is_admin:
        return []
    stmt = select(MailAccount).where(MailAccount.is_group.is_(True)).order_by(MailAccount.name)
    return [a for a in session.scalars(stmt) if readable_account(session, user, a.id)]


# --- status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """The latest sync run, with the estimate of time left."""

    run: SyncRun
    remaining: int
    seconds_left: float | None


@dataclass(frozen=True)
class Status:
    account: MailAccount
    syncing: bool
    queued: bool
    behind: int
    cursors: list[FolderCursor]
    progress: Progress | None
    imported: int

    @property
    def active(self) -> bool:
        """A sync is running or waiting: the panel keeps polling."""
        return self.syncing or self.queued


def is_syncing(
    account: MailAccount, now: datetime | None = None, lease: timedelta = STALE_CLAIM
) -> bool:
    """A live claim: a claim not renewed within the lease (the workers' CRM_SYNC_LEASE_SECONDS)
    belongs to a killed worker, which another worker may replace."""
    now = now or utcnow()
    claimed = account.sync_claimed_at
    return account.sync_state == "running" and claimed is not None and now - claimed < lease


def status_of(
    session: Session,
    account: MailAccount,
    queued: bool = False,
    now: datetime | None = None,
    lease: timedelta = STALE_CLAIM,
) -> Status:
    cursors = sorted(account.cursors, key=lambda c: (c.folder.upper() != "INBOX", c.folder.lower()))
    behind = sum(c.pending for c in cursors)
    syncing = is_syncing(account, now, lease)
    run = session.scalars(
        select(SyncRun)
        .where(SyncRun.mail_account_id == account.id)
        .order_by(SyncRun.id.desc())
        .limit(1)
    ).first()
    progress = None
    if run is not None:
        remaining = behind if run.state == "running" else max(run.remaining, behind)
        progress = Progress(run, remaining, time_left(remaining, run.rate))
    return Status(
        account, syncing, queued, behind, cursors, progress, sum(c.imported for c in cursors)
    )


def time_left(remaining: int, rate: float) -> float | None:
    """Seconds to fetch what is left at the last measured rate (messages per second)."""
    if remaining <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return remaining / rate


def plain_duration(seconds: float | None) -> str:
    """ "about 3 minutes" and the like; "unknown" without a rate yet."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = seconds / 3600
    return f"about {hours:.1f} hours" if hours < 48 else f"about {round(hours / 24)} days"


def since_text(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in plain words ("never" when unset)."""
    if moment is None:
        return "never"
    delta = (now or utcnow()) - moment
    if delta < timedelta(minutes=1):
        return "just now"
    return plain_duration(delta.total_seconds()).replace("about ", "") + " ago"


# --- sign-in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """How an OAuth2 account signs in, for its page: the provider, and whether the owner must
    reconnect it (the reason and since when)."""

    provider: str
    needs_reconnect: bool
    reason: str | None
    since: datetime | None


def sign_in_of(account: MailAccount) -> SignIn | None:
    """None for an account that logs in with a password."""
    if not oauth.is_oauth(account):
        return None
    provider = oauth.PROVIDERS.get(account.oauth_provider or "")
    return SignIn(
        provider=provider.label if provider else (account.oauth_provider or "OAuth2"),
        needs_reconnect=oauth.needs_reauthorisation(account),
        reason=account.oauth_reauth_reason,
        since=account.oauth_reauth_since,
    )
