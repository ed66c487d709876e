"""Claims on mail accounts: two fetches of one account never overlap, and how each sync went
is recorded on the account (failures notify its owner once a day, after a glitch has passed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crm.accounts.oauth import NeedsReauthorisation
from crm.db import utcnow
from crm.mail.errors import MailError
from crm.mailbox.notifications import notify
from crm.models import MailAccount, SyncRun, User
from crm.models.accounts import STALE_CLAIM

# Connection failures shorter than this are glitches and notify nobody.
GLITCH = timedelta(minutes=10)
NOTIFY_EVERY = timedelta(days=1)
ABANDONED = "The worker stopped before this fetch finished; another fetch took over."


def users_receiving(session: Session, account: MailAccount) -> set[int]:
    """Users who get every mail of the account: owner/assigned user, and team members if asked."""
    users = {account.user_id} if account.user_id else set()
    if account.is_group and account.add_all_team_users:
        for team in account.teams:
            users |= {u.id for u in team.members if u.is_active}
    return users


def claim(
    session: Session,
    account_id: int,
    now: datetime | None = None,
    stale_after: timedelta = STALE_CLAIM,
) -> datetime | None:
    """Atomically mark the account as syncing; the claim's time (the holder's token for
    heartbeat and release), or None when another sync holds it."""
    now = now or utcnow()
    result = session.execute(
        update(MailAccount)
        .where(MailAccount.id == account_id)
        .where(
            or_(
                MailAccount.sync_state != "running",
                MailAccount.sync_claimed_at.is_(None),
                MailAccount.sync_claimed_at < now - stale_after,
            )
        )
        .values(sync_state="running", sync_claimed_at=now)
    )
    if result.rowcount != 1:
        return None
    _close_abandoned_runs(session, account_id, now)
    return now


def _close_abandoned_runs(session: Session, account_id: int, now: datetime) -> None:
    """A run still open when its account is claimed was left by a killed worker: close it, so
    the account's runs never overlap and its status shows no sync that nobody does."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.mail_account_id == account_id, SyncRun.state == "running")
        .values(state="failed", error=ABANDONED, finished_at=now)
    )


def lease_expired(
    session: Session, account_ids: list[int], stale_after: timedelta = STALE_CLAIM
) -> set[int]:
    """The accounts among `account_ids` whose sync stopped reporting progress: its worker is
    gone (killed, or its machine lost), whatever the queue still says about its job."""
    return set(
        session.scalars(
            select(MailAccount.id).where(
                MailAccount.id.in_(account_ids),
                MailAccount.sync_state == "running",
                MailAccount.sync_claimed_at < utcnow() - stale_after,
            )
        )
    )


class LostClaim(Exception):
    """Another sync took the account over: this one stalled past its lease."""


def heartbeat(session: Session, account_id: int, claimed_at: datetime) -> datetime:
    """Renew the claim in the transaction that commits a batch; the renewed token.

    Only the holder renews it: a sync that stalled past its lease (its account taken over)
    raises LostClaim, and its batch is rolled back instead of committed beside the other's.
    The row lock orders this with a takeover's claim, so one of the two always loses."""
    now = utcnow()
    renewed = session.execute(
        update(MailAccount)
        .where(MailAccount.id == account_id, MailAccount.sync_claimed_at == claimed_at)
        .values(sync_claimed_at=now)
    )
    if renewed.rowcount != 1:
        raise LostClaim(f"account {account_id} was taken over by another sync")
    return now


def release(session: Session, account_id: int, claimed_at: datetime) -> None:
    """Give the claim up, unless another sync holds it now."""
    session.execute(
        update(MailAccount)
        .where(MailAccount.id == account_id, MailAccount.sync_claimed_at == claimed_at)
        .values(sync_state="idle", sync_claimed_at=None)
    )


# --- outcome --------------------------------------------------------------------------


def record_success(account: MailAccount) -> None:
    account.last_sync_at = utcnow()
    account.last_error = None
    account.error_since = None


def record_failure(session: Session, account: MailAccount, error: MailError) -> None:
    """Keep the plain error; notify once a day, after the failure outlasted a glitch."""
    now = utcnow()
    account.last_error = error.plain
    account.error_since = account.error_since or now
    if isinstance(error, NeedsReauthorisation):
        return  # its owner was told once, when the provider refused the grant
    if now - account.error_since < GLITCH:
        return
    if account.error_notified_at and now - account.error_notified_at < NOTIFY_EVERY:
        return
    account.error_notified_at = now
    text = f"Mail account {account.email_address} cannot fetch mail: {error.plain}."
    for user_id in _failure_recipients(session, account):
        notify(session, user_id, "account_error", text, mail_account_id=account.id)


def _failure_recipients(session: Session, account: MailAccount) -> list[int]:
    if not account.is_group:
        return [account.user_id] if account.user_id else []
    return list(
        session.scalars(select(User.id).where(User.is_admin.is_(True), User.is_active.is_(True)))
    )
