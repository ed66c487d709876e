"""Fetching OAuth2 accounts over XOAUTH2 from a Dovecot that asks the local provider: tokens
that expire mid-sync, invalid_grant stopping one account only, reconnect resuming the fetch,
and Gmail's All Mail never duplicating INBOX mail."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from crm.accounts import manage, oauth
from crm.db import utcnow
from crm.inbound.sync import Budget, sync_account
from crm.models import Email, EmailUserState, FolderCursor, MailAccount, Notification
from tests.support.mailboxes import fetch, make_account, raw_message
from tests.support.oauth_provider import make_oauth_account


def _count(db, model, **where) -> int:
    db.rollback()
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return db.scalar(stmt)


def _fill(imap_server, email: str, n: int, prefix: str, folder: str = "INBOX") -> None:
    user = email.split("@")[0]
    for i in range(n):
        raw = raw_message(subject=f"{prefix}{i}", message_id=f"<{prefix}{i}@test.example>")
        imap_server.append(user, raw, folder=folder)


def _new_box(imap_server) -> str:
    return f"{imap_server.new_user()}@example.com"


def test_an_oauth_account_fetches_over_xoauth2(
    services, db, make_user, oauth_provider, oauth_imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    email = _new_box(oauth_imap_server)
    _fill(oauth_imap_server, email, 3, "x")
    account_id = make_oauth_account(services, uid, oauth_provider, oauth_imap_server, email=email)
    summary = fetch(services, account_id)
    assert (summary.imported, summary.error) == (3, None)
    assert _count(db, EmailUserState, user_id=uid) == 3
    assert "method=XOAUTH2" in oauth_imap_server.log_tail(200)


def test_a_token_expiring_in_the_middle_of_a_sync(
    services, db, make_user, oauth_provider, oauth_imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    email = _new_box(oauth_imap_server)
    _fill(oauth_imap_server, email, 6, "mid")
    account_id = make_oauth_account(services, uid, oauth_provider, oauth_imap_server, email=email)

    def expire_after_first_batch(_summary):
        oauth_provider.expire_all()  # the provider ends the token early, our clock says fresh

    first = sync_account(
        services, account_id, Budget(batch_size=2, max_batches=2), progress=expire_after_first_batch
    )
    # The logged-in session goes on; the next login needs a new token and gets one.
    assert (first.imported, first.error, first.done) == (4, None, False)
    second = fetch(services, account_id, batch_size=2)
    assert (second.imported, second.error) == (2, None)
    assert oauth_provider.refreshes == 1
    assert _count(db, Email) == 6


def test_a_token_running_out_by_the_clock_is_refreshed_before_the_next_batch_job(
    services, db, make_user, oauth_provider, oauth_imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    email = _new_box(oauth_imap_server)
    _fill(oauth_imap_server, email, 4, "clock")
    account_id = make_oauth_account(services, uid, oauth_provider, oauth_imap_server, email=email)
    sync_account(services, account_id, Budget(batch_size=2, max_batches=1))
    with services.session() as session:
        session.get(MailAccount, account_id).oauth_expires_at = utcnow() + timedelta(minutes=2)
    rest = fetch(services, account_id, batch_size=2)
    assert (rest.imported, rest.error, oauth_provider.refreshes) == (2, None, 1)


def test_invalid_grant_stops_that_account_only_and_reconnect_resumes(
    services, db, make_user, oauth_provider, oauth_imap_server, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    broken_box, other_box = _new_box(oauth_imap_server), _new_box(oauth_imap_server)
    _fill(oauth_imap_server, broken_box, 2, "old")
    _fill(oauth_imap_server, other_box, 1, "other")
    broken = make_oauth_account(services, uid, oauth_provider, oauth_imap_server, email=broken_box)
    other = make_oauth_account(services, uid, oauth_provider, oauth_imap_server, email=other_box)
    password_box = imap_server.new_user()
    imap_server.append(password_box, raw_message(message_id="<pw@test.example>"))
    with_password = make_account(services, uid, imap_server, password_box)
    assert fetch(services, broken).imported == 2

    oauth_provider.revoke(broken_box)  # the user withdrew the grant at the provider
    _fill(oauth_imap_server, broken_box, 1, "new")
    failed = fetch(services, broken)
    assert failed.imported == 0 and "must be reconnected" in failed.error
    assert fetch(services, other).imported == 1
    assert fetch(services, with_password).imported == 1
    account = db.get(MailAccount, broken)
    assert oauth.needs_reauthorisation(account)
    again = sync_account(services, broken)  # skipped: the server is not even asked
    assert again.run_id is None and "must be reconnected" in again.error
    notes = _count(db, Notification, user_id=uid, kind="account_error")
    assert notes == 1

    access, refresh = oauth_provider.grant(broken_box)
    grant = oauth.Grant(broken_box, access, refresh, utcnow() + timedelta(hours=1), "")
    with services.session() as session:
        account = session.get(MailAccount, broken)
        manage.reconnect_oauth_account(session, services.secret_box, account, "google", grant)
    resumed = fetch(services, broken)
    assert (resumed.seen, resumed.imported, resumed.error) == (1, 1, None)
    db.rollback()
    cursor = db.scalars(select(FolderCursor).filter_by(mail_account_id=broken)).one()
    assert cursor.last_uid == 3


def test_gmail_all_mail_is_not_monitored_and_never_duplicates_inbox(
    services, db, make_user, oauth_provider, oauth_imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    email = _new_box(oauth_imap_server)
    _fill(oauth_imap_server, email, 3, "g")
    _fill(oauth_imap_server, email, 3, "g", folder="[Gmail]/All Mail")  # the same mail again
    _fill(oauth_imap_server, email, 1, "archived", folder="[Gmail]/All Mail")
    account_id = make_oauth_account(
        services, uid, oauth_provider, oauth_imap_server, email=email, folders=("INBOX",)
    )
    account = db.get(MailAccount, account_id)
    assert account.sent_folder == "[Gmail]/Sent Mail"
    # A new Google account never monitors All Mail, even if asked before the provider applied.
    account.monitored_folders = ["INBOX", "[Gmail]/All Mail"]
    google = oauth.provider_config(db, services.secret_box, "google").provider
    oauth.apply_provider(account, google, email)
    assert account.monitored_folders == ["INBOX"]
    # Chosen by hand, it adds only the mail INBOX does not have.
    account.monitored_folders = ["INBOX", "[Gmail]/All Mail"]
    db.commit()
    summary = fetch(services, account_id)
    assert (summary.imported, summary.duplicates) == (4, 3)
    assert _count(db, Email) == 4
    assert _count(db, EmailUserState, user_id=uid) == 4
