"""The account status panel and which accounts a user sees."""

from __future__ import annotations

from datetime import timedelta

from werkzeug.datastructures import MultiDict

from crm.accounts import status as account_status
from crm.db import utcnow
from crm.models import FolderCursor, MailAccount, SyncRun, User
from tests.support.mailboxes import fetch, make_account, raw_message

LOOPBACK = {"127.0.0.1:*"}


def form(**values) -> MultiDict:
    base = {
        "email": "rep@example.com",
        "host": "imap.example.com",
        "port": "993",
        "security": "ssl",
        "login": "rep",
        "is_active": "1",
    }
    base.update(values)
    return MultiDict(
        [(k, v) for k, vs in base.items() for v in (vs if isinstance(vs, list) else [vs])]
    )


# --- scoping -------------------------------------------------------------------------------


def test_users_see_their_own_personal_accounts_and_admins_see_all(
    services, db, make_user, imap_server
):
    rep, other = make_user("rep"), make_user("other")
    admin = make_user("boss", admin=True)
    mine = make_account(services, rep, imap_server, imap_server.new_user())
    theirs = make_account(services, other, imap_server, imap_server.new_user())
    group = make_account(services, rep, imap_server, imap_server.new_user(), is_group=True)
    rep_user, admin_user = db.get(User, rep), db.get(User, admin)
    assert [a.id for a in account_status.personal_accounts(db, rep)] == [mine]
    assert account_status.visible_account(db, rep_user, mine).id == mine
    assert account_status.visible_account(db, rep_user, theirs) is None
    assert account_status.visible_account(db, rep_user, group) is None
    assert account_status.visible_account(db, rep_user, 999999) is None
    assert {
        a.id
        for a in (account_status.visible_account(db, admin_user, i) for i in (mine, theirs, group))
    } == {mine, theirs, group}
    assert account_status.other_accounts(db, rep_user, group=True) == []
    assert [a.id for a in account_status.other_accounts(db, admin_user, group=True)] == [group]
    assert {a.id for a in account_status.other_accounts(db, admin_user, group=False)} == {
        mine,
        theirs,
    }


# --- the form ------------------------------------------------------------------------------


def test_time_left_and_plain_durations():
    assert account_status.time_left(0, 0) == 0.0
    assert account_status.time_left(100, 0) is None
    assert account_status.time_left(600, 2.0) == 300
    assert account_status.plain_duration(None) == "unknown"
    assert account_status.plain_duration(30) == "less than a minute"
    assert account_status.plain_duration(300) == "about 5 minutes"
    assert account_status.plain_duration(3 * 3600) == "about 3.0 hours"
    assert account_status.plain_duration(5 * 86400) == "about 5 days"
    now = utcnow()
    assert account_status.since_text(None) == "never"
    assert account_status.since_text(now, now) == "just now"
    assert account_status.since_text(now - timedelta(minutes=2), now) == "2 minutes ago"


def test_status_after_a_real_sync(services, db, make_user, imap_server):
    box = imap_server.new_user()
    for n in range(3):
        imap_server.append(box, raw_message(subject=f"m{n}"))
    imap_server.append(box, raw_message(subject="sent"), folder="Sent")
    account_id = make_account(
        services, make_user("rep"), imap_server, box, folders=("INBOX", "Sent")
    )
    fetch(services, account_id)
    status = account_status.status_of(db, db.get(MailAccount, account_id))
    assert not status.active and status.behind == 0 and status.imported == 4
    assert [c.folder for c in status.cursors] == ["INBOX", "Sent"]
    assert [c.server_messages for c in status.cursors] == [3, 1]
    assert status.progress.run.state == "done" and status.progress.run.imported == 4
    assert status.progress.remaining == 0 and status.progress.seconds_left == 0.0
    assert status.account.last_sync_at is not None and status.account.last_error is None


def test_status_of_a_running_sync_estimates_time_left(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    account = db.get(MailAccount, account_id)
    account.sync_state, account.sync_claimed_at = "running", utcnow()
    db.add(FolderCursor(mail_account_id=account_id, folder="INBOX", pending=500))
    db.add(SyncRun(mail_account_id=account_id, state="running", seen=100, rate=25.0))
    db.commit()
    status = account_status.status_of(db, account)
    assert status.syncing and status.active and status.behind == 500
    assert status.progress.remaining == 500 and status.progress.seconds_left == 20.0
    account.sync_claimed_at = utcnow() - timedelta(hours=1)  # a killed worker's claim
    assert not account_status.status_of(db, account).syncing
    assert account_status.status_of(db, account, queued=True).active


def test_the_panel_counts_a_claim_live_for_the_workers_lease(services, db, make_user, imap_server):
    """The panel agrees with the workers (CRM_SYNC_LEASE_SECONDS): a claim the workers would
    take over is no longer shown as a running fetch, and one inside the lease still is."""
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    account = db.get(MailAccount, account_id)
    account.sync_state, account.sync_claimed_at = "running", utcnow() - timedelta(minutes=2)
    db.commit()
    assert not account_status.status_of(db, account, lease=timedelta(seconds=60)).syncing
    assert account_status.status_of(db, account, lease=timedelta(minutes=10)).syncing
    assert services.config.sync_lease == timedelta(seconds=services.config.sync_lease_seconds)


def test_a_failed_sync_keeps_the_plain_error(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    db.get(MailAccount, account_id).imap_login = "nobody-here"
    db.commit()
    summary = fetch(services, account_id)
    db.expire_all()
    status = account_status.status_of(db, db.get(MailAccount, account_id))
    assert summary.error == "authentication failed"
    assert status.account.last_error == "authentication failed"
    assert status.progress.run.state == "failed"
