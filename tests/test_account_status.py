"""Mail accounts as users see them: scoping, form input, saving, folder list, status panel."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from werkzeug.datastructures import MultiDict

from crm import account_status as accounts
from crm import folders, settings
from crm.db import utcnow
from crm.mail.errors import HostNotAllowed, ImapError
from crm.mail_accounts import AccountError, imap_password
from crm.models import EmailLocation, FolderCursor, MailAccount, SyncRun, User
from tests.support.dovecot import PASSWORD
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
    assert [a.id for a in accounts.personal_accounts(db, rep)] == [mine]
    assert accounts.visible_account(db, rep_user, mine).id == mine
    assert accounts.visible_account(db, rep_user, theirs) is None
    assert accounts.visible_account(db, rep_user, group) is None
    assert accounts.visible_account(db, rep_user, 999999) is None
    assert {
        a.id for a in (accounts.visible_account(db, admin_user, i) for i in (mine, theirs, group))
    } == {mine, theirs, group}
    assert accounts.other_accounts(db, rep_user, group=True) == []
    assert [a.id for a in accounts.other_accounts(db, admin_user, group=True)] == [group]
    assert {a.id for a in accounts.other_accounts(db, admin_user, group=False)} == {mine, theirs}


# --- the form ------------------------------------------------------------------------------


def test_clean_gives_typed_values_and_defaults():
    values = accounts.clean(
        form(
            port="",
            security="starttls",
            since="2024-03-01",
            login="",
            folders=["INBOX", "Sent"],
            other_folders="Archive, Sent",
        ),
        accounts.Choices(),
        group=False,
    )
    assert values["imap_port"] == 143 and values["imap_security"] == "starttls"
    assert values["imap_login"] == "rep@example.com" and values["name"] == "rep@example.com"
    assert values["monitored_folders"] == ["INBOX", "Sent", "Archive"]
    assert values["fetch_since"] == date(2024, 3, 1) and values["is_active"] is True
    assert "user_id" not in values and "team_ids" not in values


def test_clean_reports_every_problem_at_once():
    with pytest.raises(accounts.AccountFormError) as err:
        accounts.clean(
            form(
                email="nobody",
                host="",
                port="70000",
                security="tls",
                since="01/02/2024",
                target_folder_id="5",
            ),
            accounts.Choices(),
            group=False,
        )
    assert set(err.value.errors) == {
        "email",
        "host",
        "port",
        "security",
        "since",
        "target_folder_id",
    }


def test_no_folder_ticked_means_inbox():
    assert accounts.picked_folders(MultiDict()) == ["INBOX"]


def test_group_values_only_accept_offered_ids(db, make_user):
    from crm.users import create_team

    rep = db.get(User, make_user("rep"))
    team = create_team(db, "Support")
    db.flush()
    choices = accounts.Choices(teams=[team], users=[rep])
    values = accounts.clean(
        form(
            team_ids=[str(team.id), "999"],
            user_id=str(rep.id),
            create_case="1",
            case_distribution="round-robin",
            case_team_id=str(team.id),
            add_all_team_users="1",
        ),
        choices,
        group=True,
    )
    assert values["team_ids"] == [team.id] and values["user_id"] == rep.id
    assert values["case_distribution"] == "round-robin" and values["create_case"]
    with pytest.raises(accounts.AccountFormError) as err:
        accounts.clean(form(user_id="999", case_distribution="random"), choices, group=True)
    assert set(err.value.errors) == {"user_id", "case_distribution"}


def test_form_data_never_keeps_the_password():
    data = accounts.form_data(form(password="hunter2", csrf_token="x"))
    assert "password" not in data and "hunter2" not in repr(data)


def test_account_data_never_contains_the_password(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    data = accounts.account_data(db.get(MailAccount, account_id))
    assert PASSWORD not in repr(data) and "password" not in data


# --- saving --------------------------------------------------------------------------------


def test_save_creates_then_updates_keeping_the_password(services, db, make_user):
    rep = make_user("rep")
    folder = folders.create_folder(db, rep, "Customers")
    choices = accounts.form_choices(db, rep, group=False)
    values = accounts.clean(form(target_folder_id=str(folder.id)), choices, group=False)
    account = accounts.save_account(db, services.secret_box, values, "first", owner_id=rep)
    assert account.user_id == rep and account.target_folder_id == folder.id
    values = accounts.clean(form(name="Work", is_active=""), choices, group=False)
    accounts.save_account(db, services.secret_box, values, "", account=account)
    assert account.name == "Work" and account.is_active is False
    assert imap_password(account, services.secret_box) == "first"


def test_a_new_account_needs_a_password(services, db, make_user):
    values = accounts.clean(form(), accounts.Choices(), group=False)
    with pytest.raises(AccountError, match="password"):
        accounts.save_account(db, services.secret_box, values, "", owner_id=make_user("rep"))


def test_the_stored_password_never_follows_a_changed_server(services, db, make_user):
    values = accounts.clean(form(), accounts.Choices(), group=False)
    account = accounts.save_account(
        db, services.secret_box, values, "pw", owner_id=make_user("rep")
    )
    for change in ({"host": "evil.example"}, {"port": "994"}, {"security": "none"}):
        moved = accounts.clean(form(**change), accounts.Choices(), group=False)
        with pytest.raises(AccountError, match="password again"):
            accounts.save_account(db, services.secret_box, moved, "", account=account)
        assert not accounts.same_server(account, form(**change))
    assert accounts.same_server(account, form())


def test_changing_the_server_forgets_the_old_mailbox(services, db, make_user, imap_server):
    box = imap_server.new_user()
    imap_server.append(box, raw_message())
    account_id = make_account(services, make_user("rep"), imap_server, box)
    fetch(services, account_id)
    account = db.get(MailAccount, account_id)
    values = {"imap_host": "localhost"}
    accounts.save_account(db, services.secret_box, values, "secret", account=account)
    db.commit()
    assert db.query(FolderCursor).filter_by(mail_account_id=account_id).count() == 0
    assert db.query(EmailLocation).filter_by(mail_account_id=account_id).count() == 0


def test_the_cap_on_personal_accounts_is_enforced(services, db, make_user):
    rep = make_user("rep")
    settings.put(db, "max_personal_accounts", 1)
    values = accounts.clean(form(), accounts.Choices(), group=False)
    accounts.save_account(db, services.secret_box, values, "pw", owner_id=rep)
    with pytest.raises(AccountError, match="at most 1"):
        accounts.save_account(db, services.secret_box, values, "pw", owner_id=rep)
    group = accounts.save_account(db, services.secret_box, values, "pw", owner_id=rep, group=True)
    assert group.is_group


# --- the server's folders ------------------------------------------------------------------


def test_server_folders_lists_the_mailbox_inbox_first(imap_server):
    box = imap_server.new_user()
    imap_server.append(box, raw_message(), folder="Sent")
    values = {
        "imap_host": "127.0.0.1",
        "imap_port": imap_server.port,
        "imap_security": "none",
        "imap_login": box,
    }
    names = accounts.server_folders(values, PASSWORD, LOOPBACK)
    assert names[0] == "INBOX" and "Sent" in names
    assert accounts.looks_like_sent("Sent") and accounts.looks_like_sent("INBOX.Sent Items")
    assert not accounts.looks_like_sent("INBOX")


def test_server_folders_explains_failures_plainly(imap_server):
    values = {
        "imap_host": "127.0.0.1",
        "imap_port": imap_server.port,
        "imap_security": "none",
        "imap_login": imap_server.new_user(),
    }
    with pytest.raises(ImapError) as err:
        accounts.server_folders(values, "wrong", LOOPBACK)
    assert err.value.plain == "authentication failed"
    with pytest.raises(HostNotAllowed) as err:
        accounts.server_folders(values, PASSWORD, set())
    assert "private or local address" in err.value.plain


# --- status --------------------------------------------------------------------------------


def test_time_left_and_plain_durations():
    assert accounts.time_left(0, 0) == 0.0
    assert accounts.time_left(100, 0) is None
    assert accounts.time_left(600, 2.0) == 300
    assert accounts.plain_duration(None) == "unknown"
    assert accounts.plain_duration(30) == "less than a minute"
    assert accounts.plain_duration(300) == "about 5 minutes"
    assert accounts.plain_duration(3 * 3600) == "about 3.0 hours"
    assert accounts.plain_duration(5 * 86400) == "about 5 days"
    now = utcnow()
    assert accounts.since_text(None) == "never"
    assert accounts.since_text(now, now) == "just now"
    assert accounts.since_text(now - timedelta(minutes=2), now) == "2 minutes ago"


def test_status_after_a_real_sync(services, db, make_user, imap_server):
    box = imap_server.new_user()
    for n in range(3):
        imap_server.append(box, raw_message(subject=f"m{n}"))
    imap_server.append(box, raw_message(subject="sent"), folder="Sent")
    account_id = make_account(
        services, make_user("rep"), imap_server, box, folders=("INBOX", "Sent")
    )
    fetch(services, account_id)
    status = accounts.account_status(db, db.get(MailAccount, account_id))
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
    status = accounts.account_status(db, account)
    assert status.syncing and status.active and status.behind == 500
    assert status.progress.remaining == 500 and status.progress.seconds_left == 20.0
    account.sync_claimed_at = utcnow() - timedelta(hours=1)  # a killed worker's claim
    assert not accounts.account_status(db, account).syncing
    assert accounts.account_status(db, account, queued=True).active


def test_a_failed_sync_keeps_the_plain_error(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    db.get(MailAccount, account_id).imap_login = "nobody-here"
    db.commit()
    summary = fetch(services, account_id)
    db.expire_all()
    status = accounts.account_status(db, db.get(MailAccount, account_id))
    assert summary.error == "authentication failed"
    assert status.account.last_error == "authentication failed"
    assert status.progress.run.state == "failed"


def test_reset_folder_rereads_without_duplicates(services, db, make_user, imap_server):
    box = imap_server.new_user()
    imap_server.append(box, raw_message(subject="old"))
    imap_server.append(box, raw_message(subject="new"))
    account_id = make_account(services, make_user("rep"), imap_server, box)
    fetch(services, account_id)
    account = db.get(MailAccount, account_id)
    with pytest.raises(AccountError, match="folders"):
        accounts.reset_folder(db, account, "Elsewhere", "2020-01-01")
    with pytest.raises(AccountError, match="date"):
        accounts.reset_folder(db, account, "INBOX", "")
    assert accounts.reset_folder(db, account, "INBOX", "2000-01-01") == "INBOX"
    db.commit()
    summary = fetch(services, account_id)
    assert summary.imported == 0 and not summary.error
    assert db.query(EmailLocation).filter_by(mail_account_id=account_id).count() == 2


def test_reset_waits_for_a_running_sync(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    account = db.get(MailAccount, account_id)
    account.sync_state, account.sync_claimed_at = "running", utcnow()
    with pytest.raises(AccountError, match="running"):
        accounts.reset_folder(db, account, "INBOX", "2020-01-01")
