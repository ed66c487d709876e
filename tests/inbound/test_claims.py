"""Sync outcomes on the account: plain words, notifications only after a glitch, at most once a day."""

from datetime import timedelta

from sqlalchemy import select

from crm.accounts.manage import create_account
from crm.db import utcnow
from crm.inbound.claims import record_failure, record_success
from crm.mail.errors import ImapError
from crm.models import Notification


def _account(db, services, user_id, **kw):
    account = create_account(
        db,
        services.secret_box,
        user_id=user_id,
        email="a@example.com",
        host="127.0.0.1",
        port=143,
        security="none",
        login="a",
        password="pw",
        **kw,
    )
    db.flush()
    return account


def _notes(db):
    return list(db.scalars(select(Notification).where(Notification.kind == "account_error")))


def test_short_glitch_notifies_nobody(db, services, make_user):
    account = _account(db, services, make_user("rep"))
    record_failure(db, account, ImapError(plain="host unreachable"))
    assert account.last_error == "host unreachable" and _notes(db) == []


def test_lasting_failure_notifies_the_owner_once_a_day(db, services, make_user):
    owner = make_user("rep")
    account = _account(db, services, owner)
    account.error_since = utcnow() - timedelta(minutes=11)
    record_failure(db, account, ImapError(plain="authentication failed"))
    record_failure(db, account, ImapError(plain="authentication failed"))
    notes = _notes(db)
    assert [n.user_id for n in notes] == [owner]
    assert "authentication failed" in notes[0].text
    account.error_notified_at = utcnow() - timedelta(days=1, minutes=1)
    record_failure(db, account, ImapError(plain="authentication failed"))
    assert len(_notes(db)) == 2


def test_group_account_failures_notify_admins(db, services, make_user):
    admin = make_user("boss", admin=True)
    account = _account(db, services, make_user("rep"), is_group=True)
    account.error_since = utcnow() - timedelta(hours=1)
    record_failure(db, account, ImapError(plain="host unreachable"))
    assert [n.user_id for n in _notes(db)] == [admin]


def test_success_clears_the_error(db, services, make_user):
    account = _account(db, services, make_user("rep"))
    record_failure(db, account, ImapError(plain="host unreachable"))
    record_success(account)
    assert account.last_error is None and account.error_since is None


def test_taking_over_a_lapsed_claim_closes_the_run_its_killed_worker_left_open(
    db, services, make_user
):
    from crm.inbound.claims import ABANDONED, claim
    from crm.models import SyncRun

    account = _account(db, services, make_user("rep"))
    assert claim(db, account.id)
    left = SyncRun(mail_account_id=account.id)
    db.add(left)
    db.flush()
    assert not claim(db, account.id)  # its worker may still be alive
    later = utcnow() + timedelta(minutes=6)
    assert claim(db, account.id, now=later, stale_after=timedelta(minutes=5))
    db.refresh(left)
    assert (left.state, left.error, left.finished_at) == ("failed", ABANDONED, later)


def test_lease_expired_names_only_accounts_whose_sync_stopped_reporting(db, services, make_user):
    from crm.inbound.claims import claim, lease_expired

    owner = make_user("rep")
    live, dead, idle = (_account(db, services, owner) for _ in range(3))
    assert claim(db, live.id)
    assert claim(db, dead.id, now=utcnow() - timedelta(seconds=30))
    ids = [live.id, dead.id, idle.id]
    assert lease_expired(db, ids, timedelta(seconds=20)) == {dead.id}
    assert lease_expired(db, ids) == set()  # the default lease is minutes


def test_only_the_holder_renews_or_releases_a_claim(db, services, make_user):
    import pytest

    from crm.inbound.claims import LostClaim, claim, heartbeat, release

    account = _account(db, services, make_user("rep"))
    stalled = claim(db, account.id, now=utcnow() - timedelta(minutes=6))
    taker = claim(db, account.id)  # the lease ran out: another sync took the account over
    assert taker is not None
    with pytest.raises(LostClaim):
        heartbeat(db, account.id, stalled)
    release(db, account.id, stalled)
    db.refresh(account)
    assert (account.sync_state, account.sync_claimed_at) == ("running", taker)
    renewed = heartbeat(db, account.id, taker)
    release(db, account.id, renewed)
    db.refresh(account)
    assert (account.sync_state, account.sync_claimed_at) == ("idle", None)
