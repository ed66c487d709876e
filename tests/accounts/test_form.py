"""Mail accounts as users see them: scoping, form input, saving, folder list, status panel."""

from __future__ import annotations

from datetime import date

import pytest
from werkzeug.datastructures import MultiDict

from crm import settings
from crm.accounts import form as account_form
from crm.accounts.manage import AccountError, imap_password, smtp_password
from crm.db import utcnow
from crm.mail.errors import HostNotAllowed, ImapError
from crm.mailbox import folders
from crm.models import EmailLocation, FolderCursor, MailAccount, User
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


def test_clean_gives_typed_values_and_defaults():
    values = account_form.clean(
        form(
            port="",
            security="starttls",
            since="2024-03-01",
            login="",
            folders=["INBOX", "Sent"],
            other_folders="Archive, Sent",
        ),
        account_form.Choices(),
        group=False,
    )
    assert values["imap_port"] == 143 and values["imap_security"] == "starttls"
    assert values["imap_login"] == "rep@example.com" and values["name"] == "rep@example.com"
    assert values["monitored_folders"] == ["INBOX", "Sent", "Archive"]
    assert values["fetch_since"] == date(2024, 3, 1) and values["is_active"] is True
    assert "user_id" not in values and "team_ids" not in values


def test_clean_reports_every_problem_at_once():
    with pytest.raises(account_form.AccountFormError) as err:
        account_form.clean(
            form(
                email="nobody",
                host="",
                port="70000",
                security="tls",
                since="01/02/2024",
                target_folder_id="5",
            ),
            account_form.Choices(),
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
    assert account_form.picked_folders(MultiDict()) == ["INBOX"]


def test_group_values_only_accept_offered_ids(db, make_user):
    from crm.records.users import create_team

    rep = db.get(User, make_user("rep"))
    team = create_team(db, "Support")
    db.flush()
    choices = account_form.Choices(teams=[team], users=[rep])
    values = account_form.clean(
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
    with pytest.raises(account_form.AccountFormError) as err:
        account_form.clean(form(user_id="999", case_distribution="random"), choices, group=True)
    assert set(err.value.errors) == {"user_id", "case_distribution"}


def test_form_data_never_keeps_the_password():
    data = account_form.form_data(form(password="hunter2", csrf_token="x"))
    assert "password" not in data and "hunter2" not in repr(data)


def test_account_data_never_contains_the_password(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    data = account_form.account_data(db.get(MailAccount, account_id))
    assert PASSWORD not in repr(data) and "password" not in data


# --- saving --------------------------------------------------------------------------------


def test_save_creates_then_updates_keeping_the_password(services, db, make_user):
    rep = make_user("rep")
    folder = folders.create_folder(db, rep, "Customers")
    choices = account_form.form_choices(db, rep, group=False)
    values = account_form.clean(form(target_folder_id=str(folder.id)), choices, group=False)
    account = account_form.save_account(db, services.secret_box, values, "first", owner_id=rep)
    assert account.user_id == rep and account.target_folder_id == folder.id
    values = account_form.clean(form(name="Work", is_active=""), choices, group=False)
    account_form.save_account(db, services.secret_box, values, "", account=account)
    assert account.name == "Work" and account.is_active is False
    assert imap_password(account, services.secret_box) == "first"


def test_a_new_account_needs_a_password(services, db, make_user):
    values = account_form.clean(form(), account_form.Choices(), group=False)
    with pytest.raises(AccountError, match="password"):
        account_form.save_account(db, services.secret_box, values, "", owner_id=make_user("rep"))


def test_the_stored_password_never_follows_a_changed_server(services, db, make_user):
    values = account_form.clean(form(), account_form.Choices(), group=False)
    account = account_form.save_account(
        db, services.secret_box, values, "pw", owner_id=make_user("rep")
    )
    for change in ({"host": "evil.example"}, {"port": "994"}, {"security": "none"}):
        moved = account_form.clean(form(**change), account_form.Choices(), group=False)
        with pytest.raises(AccountError, match="password again"):
            account_form.save_account(db, services.secret_box, moved, "", account=account)
        assert not account_form.same_server(account, form(**change))
    assert account_form.same_server(account, form())


def test_changing_the_server_forgets_the_old_mailbox(services, db, make_user, imap_server):
    box = imap_server.new_user()
    imap_server.append(box, raw_message())
    account_id = make_account(services, make_user("rep"), imap_server, box)
    fetch(services, account_id)
    account = db.get(MailAccount, account_id)
    values = {"imap_host": "localhost"}
    account_form.save_account(db, services.secret_box, values, "secret", account=account)
    db.commit()
    assert db.query(FolderCursor).filter_by(mail_account_id=account_id).count() == 0
    assert db.query(EmailLocation).filter_by(mail_account_id=account_id).count() == 0


def test_the_cap_on_personal_accounts_is_enforced(services, db, make_user):
    rep = make_user("rep")
    settings.put(db, "max_personal_accounts", 1)
    values = account_form.clean(form(), account_form.Choices(), group=False)
    account_form.save_account(db, services.secret_box, values, "pw", owner_id=rep)
    with pytest.raises(AccountError, match="at most 1"):
        account_form.save_account(db, services.secret_box, values, "pw", owner_id=rep)
    group = account_form.save_account(
        db, services.secret_box, values, "pw", owner_id=rep, group=True
    )
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
    names = account_form.server_folders(values, PASSWORD, LOOPBACK)
    assert names[0] == "INBOX" and "Sent" in names
    assert account_form.looks_like_sent("Sent") and account_form.looks_like_sent("INBOX.Sent Items")
    assert not account_form.looks_like_sent("INBOX")


def test_server_folders_explains_failures_plainly(imap_server):
    values = {
        "imap_host": "127.0.0.1",
        "imap_port": imap_server.port,
        "imap_security": "none",
        "imap_login": imap_server.new_user(),
    }
    with pytest.raises(ImapError) as err:
        account_form.server_folders(values, "wrong", LOOPBACK)
    assert err.value.plain == "authentication failed"
    with pytest.raises(HostNotAllowed) as err:
        account_form.server_folders(values, PASSWORD, set())
    assert "private or local address" in err.value.plain


# --- status --------------------------------------------------------------------------------


def test_reset_folder_rereads_without_duplicates(services, db, make_user, imap_server):
    box = imap_server.new_user()
    imap_server.append(box, raw_message(subject="old"))
    imap_server.append(box, raw_message(subject="new"))
    account_id = make_account(services, make_user("rep"), imap_server, box)
    fetch(services, account_id)
    account = db.get(MailAccount, account_id)
    with pytest.raises(AccountError, match="folders"):
        account_form.reset_folder(db, account, "Elsewhere", "2020-01-01")
    with pytest.raises(AccountError, match="date"):
        account_form.reset_folder(db, account, "INBOX", "")
    assert account_form.reset_folder(db, account, "INBOX", "2000-01-01") == "INBOX"
    db.commit()
    summary = fetch(services, account_id)
    assert summary.imported == 0 and not summary.error
    assert db.query(EmailLocation).filter_by(mail_account_id=account_id).count() == 2


def test_reset_waits_for_a_running_sync(services, db, make_user, imap_server):
    account_id = make_account(services, make_user("rep"), imap_server, imap_server.new_user())
    account = db.get(MailAccount, account_id)
    account.sync_state, account.sync_claimed_at = "running", utcnow()
    with pytest.raises(AccountError, match="running"):
        account_form.reset_folder(db, account, "INBOX", "2020-01-01")


# --- SMTP ----------------------------------------------------------------------------------


def test_clean_gives_smtp_values_with_a_port_for_each_security():
    values = account_form.clean(
        form(
            smtp_host="smtp.example.com",
            smtp_security="ssl",
            smtp_auth="1",
            store_sent="1",
            sent_folder="INBOX.Sent",
        ),
        account_form.Choices(),
        group=False,
    )
    assert values["smtp_host"] == "smtp.example.com" and values["smtp_port"] == 465
    assert values["smtp_security"] == "ssl" and values["smtp_auth"] is True
    assert values["smtp_login"] == "" and values["store_sent"] is True
    assert values["sent_folder"] == "INBOX.Sent"
    for security, port in (("starttls", 587), ("none", 25)):
        values = account_form.clean(
            form(smtp_host="smtp.example.com", smtp_security=security),
            account_form.Choices(),
            group=False,
        )
        assert values["smtp_port"] == port and values["smtp_auth"] is False
    values = account_form.clean(form(smtp_port="2525"), account_form.Choices(), group=False)
    assert values["smtp_port"] == 2525 and values["smtp_host"] == ""
    assert values["sent_folder"] == "Sent"


def test_an_account_may_only_send_but_needs_one_server():
    values = account_form.clean(
        form(host="", since="2024-01-01", smtp_host="smtp.example.com"),
        account_form.Choices(),
        group=False,
    )
    assert values["imap_host"] == "" and values["smtp_host"] == "smtp.example.com"
    assert values["fetch_since"] is None  # nothing to fetch from
    with pytest.raises(account_form.AccountFormError) as err:
        account_form.clean(form(host="", smtp_host=" "), account_form.Choices(), group=False)
    assert set(err.value.errors) == {"host"}
    assert "IMAP server's host name" in err.value.errors["host"]
    assert "SMTP" in err.value.errors["host"]
    # Test connection still needs the IMAP host.
    with pytest.raises(account_form.AccountFormError) as err:
        account_form.connection_values(form(host="", smtp_host="smtp.example.com"))
    assert err.value.errors == {"host": "enter the IMAP server's host name"}


def test_bad_smtp_values_are_reported_with_the_rest():
    with pytest.raises(account_form.AccountFormError) as err:
        account_form.clean(
            form(
                email="nobody",
                smtp_host="smtp.example.com",
                smtp_port="0",
                smtp_security="tls",
            ),
            account_form.Choices(),
            group=False,
        )
    assert set(err.value.errors) == {"email", "smtp_port", "smtp_security"}
    with pytest.raises(account_form.AccountFormError) as err:
        account_form.clean(
            form(host="", smtp_host="smtp.example.com", store_sent="1"),
            account_form.Choices(),
            group=False,
        )
    assert set(err.value.errors) == {"store_sent"}


def test_form_data_never_keeps_the_smtp_password():
    data = account_form.form_data(form(smtp_password="hunter2", smtp_auth="1"))
    assert "smtp_password" not in data and "hunter2" not in repr(data)
    assert data["smtp_auth"] is True and data["store_sent"] is False


def test_smtp_settings_are_saved_and_shown_without_the_password(services, db, make_user):
    values = account_form.clean(
        form(smtp_host="smtp.example.com", smtp_auth="1", smtp_login="rep-smtp"),
        account_form.Choices(),
        group=False,
    )
    account = account_form.save_account(
        db,
        services.secret_box,
        values,
        "imap-pw",
        smtp_password="smtp-pw",
        owner_id=make_user("rep"),
    )
    assert (account.smtp_host, account.smtp_port, account.smtp_login) == (
        "smtp.example.com",
        587,
        "rep-smtp",
    )
    assert smtp_password(account, services.secret_box) == "smtp-pw"
    assert imap_password(account, services.secret_box) == "imap-pw"
    data = account_form.account_data(account)
    assert data["smtp_host"] == "smtp.example.com" and data["smtp_port"] == "587"
    assert data["smtp_auth"] is True and data["smtp_login"] == "rep-smtp"
    assert "smtp-pw" not in repr(data) and "imap-pw" not in repr(data)


def test_an_smtp_only_account_needs_only_an_smtp_password(services, db, make_user):
    rep = make_user("rep")
    values = account_form.clean(
        form(host="", smtp_host="smtp.example.com", smtp_auth="1"),
        account_form.Choices(),
        group=False,
    )
    with pytest.raises(AccountError, match="SMTP server's password"):
        account_form.save_account(db, services.secret_box, values, "", owner_id=rep)
    account = account_form.save_account(
        db, services.secret_box, values, "", smtp_password="smtp-pw", owner_id=rep
    )
    assert account.imap_host == "" and smtp_password(account, services.secret_box) == "smtp-pw"
    # Without a login to the server, no password at all.
    values = account_form.clean(
        form(host="", email="relay@example.com", smtp_host="relay.example.com"),
        account_form.Choices(),
        group=False,
    )
    account = account_form.save_account(db, services.secret_box, values, "", owner_id=rep)
    assert account.smtp_auth is False and account.smtp_password_enc is None


def test_the_stored_smtp_password_never_follows_a_changed_server(services, db, make_user):
    base = {"smtp_host": "smtp.example.com", "smtp_auth": "1"}
    values = account_form.clean(form(**base), account_form.Choices(), group=False)
    account = account_form.save_account(
        db, services.secret_box, values, "pw", smtp_password="smtp-pw", owner_id=make_user("rep")
    )
    for change in (
        {"smtp_host": "evil.example"},
        {"smtp_port": "2525"},
        {"smtp_security": "none"},
    ):
        moved = account_form.clean(form(**{**base, **change}), account_form.Choices(), group=False)
        with pytest.raises(AccountError, match="SMTP password again"):
            account_form.save_account(db, services.secret_box, moved, "", account=account)
        # The IMAP password typed again does not stand in for a stored SMTP password.
        with pytest.raises(AccountError, match="SMTP password again"):
            account_form.save_account(db, services.secret_box, moved, "pw", account=account)
    same = account_form.clean(form(**base, name="Renamed"), account_form.Choices(), group=False)
    account_form.save_account(db, services.secret_box, same, "", account=account)
    assert account.name == "Renamed" and smtp_password(account, services.secret_box) == "smtp-pw"
    moved = account_form.clean(
        form(**{**base, "smtp_host": "smtp2.example.com"}), account_form.Choices(), group=False
    )
    account_form.save_account(
        db, services.secret_box, moved, "", smtp_password="new-pw", account=account
    )
    assert account.smtp_host == "smtp2.example.com"
    assert smtp_password(account, services.secret_box) == "new-pw"


def test_adding_an_smtp_server_to_a_fetching_account_asks_for_a_password(services, db, make_user):
    values = account_form.clean(form(), account_form.Choices(), group=False)
    account = account_form.save_account(
        db, services.secret_box, values, "imap-pw", owner_id=make_user("rep")
    )
    sending = account_form.clean(
        form(smtp_host="smtp.example.com", smtp_auth="1"), account_form.Choices(), group=False
    )
    with pytest.raises(AccountError, match="SMTP password again"):
        account_form.save_account(db, services.secret_box, sending, "", account=account)
    # The IMAP password typed now serves, as the account keeps no SMTP password of its own.
    account_form.save_account(db, services.secret_box, sending, "imap-pw", account=account)
    assert account.smtp_host == "smtp.example.com" and account.smtp_password_enc is None
    assert smtp_password(account, services.secret_box) == "imap-pw"
