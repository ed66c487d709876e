"""The mail accounts pages: forms, Test connection, status panel, Fetch now, Reset, scoping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import settings
from crm.accounts.manage import imap_password, smtp_password
from crm.models import FolderCursor, MailAccount, Team, User
from crm.queue import mail_queue
from tests.support.dovecot import PASSWORD, free_port
from tests.support.mailboxes import fetch, make_account, raw_message

SECRET = "s3cret-Pa55word"


@pytest.fixture
def bodies(monkeypatch):
    """Every response body the test client sees, to prove the password never appears."""
    from flask.testing import FlaskClient

    seen: list[str] = []
    original = FlaskClient.open

    def open_and_keep(self, *args, **kwargs):
        response = original(self, *args, **kwargs)
        seen.append(response.get_data(as_text=True))
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_keep)
    return seen


def user_id(db, username):
    return db.scalars(select(User.id).where(User.username == username)).one()


def account_form(imap_server=None, **values):
    data = {
        "name": "Work",
        "email": "rep@example.com",
        "host": "127.0.0.1",
        "port": str(imap_server.port) if imap_server else "993",
        "security": "none",
        "login": "rep",
        "password": SECRET,
        "folders": "INBOX",
        "since": "2024-01-01",
        "is_active": "1",
    }
    data.update(values)
    return data


def accounts_of(db, username=None):
    db.commit()  # a fresh snapshot: SQLite keeps showing the old one inside a transaction
    db.expire_all()  # the factory keeps objects loaded across commits
    stmt = select(MailAccount).order_by(MailAccount.id)
    if username:
        stmt = stmt.where(MailAccount.user_id == user_id(db, username))
    return list(db.scalars(stmt))


# --- list and forms ------------------------------------------------------------------------


def test_index_is_a_page_and_a_fragment(user_client):
    page = user_client.get("/accounts/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and "My accounts" in body
    assert "Group accounts" not in body
    fragment = user_client.get("/accounts/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "My accounts" in fragment


def test_nav_links_to_the_accounts(user_client):
    assert 'href="/accounts/"' in user_client.get("/accounts/").get_data(as_text=True)


def test_create_and_edit_keep_the_password_write_only(user_client, db, services, bodies):
    assert user_client.get("/accounts/new").status_code == 200
    response = user_client.post("/accounts/new", data=account_form())
    assert response.status_code == 303
    [account] = accounts_of(db, "rep")
    assert response.headers["Location"].endswith(f"/accounts/{account.id}")
    assert account.name == "Work" and account.imap_login == "rep"
    assert imap_password(account, services.secret_box) == SECRET
    edit = user_client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert 'value="Work"' in edit and 'name="password" value=""' in edit
    response = user_client.post(
        f"/accounts/{account.id}/edit", data=account_form(name="Renamed", password="")
    )
    assert response.status_code == 303
    [account] = accounts_of(db, "rep")
    assert account.name == "Renamed" and imap_password(account, services.secret_box) == SECRET
    user_client.get(f"/accounts/{account.id}")
    user_client.get("/accounts/")
    # A rejected form is rendered again: still without the password.
    bad = user_client.post(f"/accounts/{account.id}/edit", data=account_form(email="broken"))
    assert bad.status_code == 422 and "e-mail address" in bad.get_data(as_text=True)
    bad = user_client.post("/accounts/new", data=account_form(email="x"), htmx=True)
    assert bad.status_code == 200
    assert len(bodies) >= 8 and not [b for b in bodies if SECRET in b]


def test_a_new_password_replaces_the_stored_one(user_client, db, services):
    user_client.post("/accounts/new", data=account_form())
    [account] = accounts_of(db, "rep")
    user_client.post(f"/accounts/{account.id}/edit", data=account_form(password="another"))
    [account] = accounts_of(db, "rep")
    assert imap_password(account, services.secret_box) == "another"


def test_changing_the_host_requires_the_password_again(user_client, db, services):
    user_client.post("/accounts/new", data=account_form())
    [account] = accounts_of(db, "rep")
    response = user_client.post(
        f"/accounts/{account.id}/edit", data=account_form(host="elsewhere.example", password="")
    )
    assert response.status_code == 422 and "password again" in response.get_data(as_text=True)
    assert accounts_of(db, "rep")[0].imap_host == "127.0.0.1"


def test_target_folder_must_be_one_of_the_users_folders(user_client, make_user, db, services):
    from crm.mailbox import folders

    other = make_user("other")
    with services.session() as session:
        mine = folders.create_folder(session, user_id(session, "rep"), "Customers").id
        theirs = folders.create_folder(session, other, "Private").id
    page = user_client.get("/accounts/new").get_data(as_text=True)
    assert "Customers" in page and "Private" not in page
    assert (
        user_client.post(
            "/accounts/new", data=account_form(target_folder_id=str(theirs))
        ).status_code
        == 422
    )
    assert (
        user_client.post("/accounts/new", data=account_form(target_folder_id=str(mine))).status_code
        == 303
    )
    assert accounts_of(db, "rep")[0].target_folder_id == mine


def test_an_imap_folder_can_be_mapped_to_one_of_the_users_folders(
    user_client, make_user, db, services
):
    from crm.mailbox import folders

    other = make_user("other")
    with services.session() as session:
        mine = folders.create_folder(session, user_id(session, "rep"), "Archived").id
        theirs = folders.create_folder(session, other, "Private").id
    form = account_form(folders=["INBOX", "Archive"], **{"map:Archive": str(mine)})
    assert user_client.post("/accounts/new", data=form).status_code == 303
    account = accounts_of(db, "rep")[0]
    assert account.folder_map == {"Archive": mine}
    page = user_client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert 'name="map:Archive"' in page and f'<option value="{mine}" selected>' in page
    refused = account_form(folders=["INBOX", "Archive"], **{"map:Archive": str(theirs)})
    assert user_client.post(f"/accounts/{account.id}/edit", data=refused).status_code == 422
    cleared = account_form(folders=["INBOX", "Archive"], **{"map:Archive": ""})
    assert user_client.post(f"/accounts/{account.id}/edit", data=cleared).status_code == 303
    assert accounts_of(db, "rep")[0].folder_map == {}


def test_the_admins_cap_on_personal_accounts_is_shown(user_client, db, services):
    with services.session() as session:
        settings.put(session, "max_personal_accounts", 1)
    assert user_client.post("/accounts/new", data=account_form()).status_code == 303
    response = user_client.post("/accounts/new", data=account_form(email="two@example.com"))
    assert response.status_code == 422
    assert "at most 1 personal mail accounts" in response.get_data(as_text=True)
    assert len(accounts_of(db, "rep")) == 1


def test_delete_keeps_nothing_of_the_account(user_client, db):
    user_client.post("/accounts/new", data=account_form())
    [account] = accounts_of(db, "rep")
    response = user_client.post(f"/accounts/{account.id}/delete")
    assert response.status_code == 303 and response.headers["Location"].endswith("/accounts/")
    assert accounts_of(db) == []


# --- test connection -----------------------------------------------------------------------


def test_connection_lists_the_servers_folders(user_client, imap_server, bodies):
    box = imap_server.new_user()
    imap_server.append(box, raw_message(), folder="Sent")
    data = account_form(imap_server, login=box, password=PASSWORD, folders=["INBOX"])
    response = user_client.post("/accounts/test", data=data, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith(
        '<fieldset id="server-folders">'
    )
    assert "Connected" in body and 'value="Sent"' in body and "(sent mail)" in body
    assert 'value="INBOX" checked' in body
    # Without JavaScript the whole form comes back, with the list.
    page = user_client.post("/accounts/test", data=data).get_data(as_text=True)
    assert "<html" in page and 'value="Sent"' in page and 'name="host"' in page
    assert not [b for b in bodies if PASSWORD in b]


def test_connection_failures_are_plain_words(user_client, imap_server, bodies):
    data = account_form(imap_server, login=imap_server.new_user(), password="wrong-password")
    body = user_client.post("/accounts/test", data=data, htmx=True).get_data(as_text=True)
    assert "Connection failed: authentication failed" in body
    body = user_client.post("/accounts/test", data=account_form(port="x"), htmx=True).get_data(
        as_text=True
    )
    assert "enter a port between 1 and 65535" in body
    assert not [b for b in bodies if "wrong-password" in b]


def test_a_private_host_not_allow_listed_is_refused(user_client, app, imap_server):
    app.config["CRM_CONFIG"].mail_host_allowlist = ""
    data = account_form(imap_server, login=imap_server.new_user(), password=PASSWORD)
    body = user_client.post("/accounts/test", data=data, htmx=True).get_data(as_text=True)
    assert "127.0.0.1 is a private or local address; an admin must allow" in body
    assert "Connected" not in body


def test_connection_of_a_saved_account_uses_the_stored_password(user_client, imap_server, db):
    box = imap_server.new_user()
    user_client.post("/accounts/new", data=account_form(imap_server, login=box, password=PASSWORD))
    [account] = accounts_of(db, "rep")
    data = account_form(imap_server, login=box, password="")
    body = user_client.post(f"/accounts/{account.id}/test", data=data, htmx=True).get_data(
        as_text=True
    )
    assert "Connected" in body
    # Pointed at another port, the stored password stays home (see same_server's own test).
    moved = account_form(imap_server, login=box, password="", port=str(free_port()))
    body = user_client.post(f"/accounts/{account.id}/test", data=moved, htmx=True).get_data(
        as_text=True
    )
    assert "Connected" not in body and "Connection failed: host unreachable" in body


# --- SMTP settings and "Send test e-mail" ----------------------------------------------------


def smtp_form(smtp_server=None, **values):
    """An account form with SMTP settings for the loopback test server (no login there)."""
    data = account_form(
        smtp_host="127.0.0.1",
        smtp_port=str(smtp_server.port) if smtp_server else "587",
        smtp_security="none",
    )
    data.update(values)
    return data


def test_smtp_settings_are_saved_and_shown_without_the_password(user_client, db, services, bodies):
    page = user_client.get("/accounts/new").get_data(as_text=True)
    assert "SMTP server (sending)" in page and 'name="smtp_auth" value="1" checked' in page
    assert 'placeholder="same as IMAP login"' in page and "Keep a copy of sent mail" in page
    data = smtp_form(
        smtp_port="2525",
        smtp_auth="1",
        smtp_login="rep-smtp",
        smtp_password="smtp-" + SECRET,
        store_sent="1",
        sent_folder="INBOX.Sent",
    )
    assert user_client.post("/accounts/new", data=data).status_code == 303
    [account] = accounts_of(db, "rep")
    assert (account.smtp_host, account.smtp_port, account.smtp_security) == (
        "127.0.0.1",
        2525,
        "none",
    )
    assert account.smtp_auth and account.smtp_login == "rep-smtp"
    assert account.store_sent and account.sent_folder == "INBOX.Sent"
    assert smtp_password(account, services.secret_box) == "smtp-" + SECRET
    edit = user_client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert 'name="smtp_host" value="127.0.0.1"' in edit and 'name="smtp_port" value="2525"' in edit
    assert 'name="smtp_login" value="rep-smtp"' in edit and 'name="smtp_password" value=""' in edit
    assert 'name="store_sent" value="1" checked' in edit and 'value="INBOX.Sent"' in edit
    show = user_client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "127.0.0.1:2525 (unencrypted), login rep-smtp" in show
    assert "a copy of sent mail goes to INBOX.Sent" in show
    # Saved again without passwords: both stay.
    data.update(password="", smtp_password="", name="Renamed")
    assert user_client.post(f"/accounts/{account.id}/edit", data=data).status_code == 303
    [account] = accounts_of(db, "rep")
    assert account.name == "Renamed"
    assert smtp_password(account, services.secret_box) == "smtp-" + SECRET
    # A rejected form comes back without either password.
    bad = user_client.post(f"/accounts/{account.id}/edit", data={**data, "smtp_port": "x"})
    assert bad.status_code == 422 and "enter a port between 1 and 65535" in bad.get_data(
        as_text=True
    )
    assert not [b for b in bodies if SECRET in b]


def test_changing_the_smtp_server_requires_the_smtp_password_again(user_client, db, services):
    data = smtp_form(smtp_auth="1", smtp_password="smtp-pw")
    user_client.post("/accounts/new", data=data)
    [account] = accounts_of(db, "rep")
    moved = {**data, "password": "", "smtp_password": "", "smtp_host": "smtp.elsewhere.example"}
    response = user_client.post(f"/accounts/{account.id}/edit", data=moved)
    assert response.status_code == 422
    assert "SMTP password again" in response.get_data(as_text=True)
    assert accounts_of(db, "rep")[0].smtp_host == "127.0.0.1"


def test_an_smtp_only_account_is_accepted(user_client, db, redis):
    data = smtp_form(host="", password="", smtp_password="", since="")
    response = user_client.post("/accounts/new", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    [account] = accounts_of(db, "rep")
    assert account.imap_host == "" and account.smtp_host == "127.0.0.1"
    assert account.fetch_since is None and account.is_active
    show = user_client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "this account only sends mail" in show and "Send test e-mail" in show
    assert 'id="account-status"' not in show
    body = user_client.post(f"/accounts/{account.id}/fetch", htmx=True).get_data(as_text=True)
    assert "only sends mail" in body and len(mail_queue(redis)) == 0
    listing = user_client.get("/accounts/").get_data(as_text=True)
    assert f'id="account-{account.id}"' in listing


def test_an_account_without_any_server_is_refused_clearly(user_client, db):
    response = user_client.post("/accounts/new", data=account_form(host="", smtp_host=""))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "enter the IMAP server&#39;s host name (or an SMTP server&#39;s below" in body
    assert accounts_of(db) == []


def test_an_account_without_smtp_offers_no_test_mail(user_client, db):
    user_client.post("/accounts/new", data=account_form())
    [account] = accounts_of(db, "rep")
    show = user_client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "Send test e-mail" not in show and "no SMTP server" in show
    response = user_client.post(f"/accounts/{account.id}/send-test", data={"to": "a@b.example"})
    assert response.status_code == 303
    page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "this account has no SMTP server" in page


def test_send_test_mail_shows_the_servers_reply(user_client, db, smtp_server):
    user_client.post("/accounts/new", data=smtp_form(smtp_server))
    [account] = accounts_of(db, "rep")
    show = user_client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert 'name="to" value="rep@example.com"' in show  # the account's own address
    response = user_client.post(
        f"/accounts/{account.id}/send-test", data={"to": "someone@customer.example"}, htmx=True
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="send-test"')
    assert "Test e-mail sent to someone@customer.example" in body and "250" in body
    [received] = smtp_server.messages
    assert received["rcpt_tos"] == ["someone@customer.example"]
    assert received["mail_from"] == "rep@example.com"
    assert b"Subject: Test e-mail from Mail CRM" in received["data"]
    # Without JavaScript: back to the account's page, the reply in a flash; empty means own.
    response = user_client.post(f"/accounts/{account.id}/send-test", data={"to": ""})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/accounts/{account.id}")
    page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Test e-mail sent to rep@example.com" in page and "250" in page
    assert smtp_server.messages[1]["rcpt_tos"] == ["rep@example.com"]


def test_send_test_mail_shows_a_refusal_in_plain_words(user_client, db, smtp_server):
    smtp_server.script(answer_data="550 5.7.1 Message refused by policy")
    user_client.post("/accounts/new", data=smtp_form(smtp_server))
    [account] = accounts_of(db, "rep")
    response = user_client.post(
        f"/accounts/{account.id}/send-test", data={"to": "x@customer.example"}, htmx=True
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The test e-mail was not sent: the mail server refused the message" in body
    assert "550 5.7.1 Message refused by policy" in body and smtp_server.messages == []
    response = user_client.post(f"/accounts/{account.id}/send-test", data={"to": "x@c.example"})
    page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "not sent" in page and "550 5.7.1 Message refused by policy" in page
    bad = user_client.post(
        f"/accounts/{account.id}/send-test", data={"to": "not an address"}, htmx=True
    )
    assert bad.status_code == 200 and "is not an e-mail address" in bad.get_data(as_text=True)


def test_send_test_mail_to_an_unreachable_server_is_plain_words(user_client, db):
    user_client.post("/accounts/new", data=smtp_form(smtp_port=str(free_port())))
    [account] = accounts_of(db, "rep")
    response = user_client.post(f"/accounts/{account.id}/send-test", data={}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "The test e-mail was not sent: the mail server" in body


def test_the_system_account_is_nobodys_account(admin_client, make_user, services, db):
    from crm.accounts import manage

    with services.session() as session:
        system = manage.create_account(
            session,
            services.secret_box,
            user_id=None,
            email="crm@example.com",
            host="",
            port=993,
            security="ssl",
            login="",
            password="",
            smtp={"smtp_host": "smtp.example.com", "smtp_auth": False},
        )
        settings.put(session, "system_smtp_account_id", system.id)
        system_id = system.id
    listing = admin_client.get("/accounts/").get_data(as_text=True)
    assert "crm@example.com" not in listing and f"account-{system_id}" not in listing
    page = admin_client.get(f"/accounts/{system_id}").get_data(as_text=True)
    assert "System sending account" in page
    admin_client.post("/logout")
    admin_client.token = None
    make_user("rep", ["rep@example.com"])
    admin_client.login("rep")
    assert "crm@example.com" not in admin_client.get("/accounts/").get_data(as_text=True)
    assert admin_client.get(f"/accounts/{system_id}").status_code == 404
    assert admin_client.post(f"/accounts/{system_id}/send-test", data={}).status_code == 404


# --- status, fetch now, reset ----------------------------------------------------------------


def synced_account(services, db, imap_server, username="rep"):
    box = imap_server.new_user()
    for n in range(2):
        imap_server.append(box, raw_message(subject=f"Hello {n}"))
    account_id = make_account(services, user_id(db, username), imap_server, box)
    fetch(services, account_id)
    return account_id


def test_status_is_a_page_and_a_fragment_that_stops_polling_when_idle(
    user_client, services, db, imap_server
):
    account_id = synced_account(services, db, imap_server)
    page = user_client.get(f"/accounts/{account_id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and 'id="account-status"' in body
    assert "Up to date" in body and 'class="imported">2<' in body and "INBOX" in body
    fragment = user_client.get(f"/accounts/{account_id}/status", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 286 and text.lstrip().startswith('<section id="account-status"')
    assert "every 2s" not in text
    plain = user_client.get(f"/accounts/{account_id}/status")
    assert plain.status_code == 302 and plain.headers["Location"].endswith(
        f"/accounts/{account_id}"
    )


def test_a_running_sync_keeps_polling_with_progress(user_client, services, db, imap_server):
    from crm.db import utcnow
    from crm.models import SyncRun

    account_id = synced_account(services, db, imap_server)
    with services.session() as session:
        account = session.get(MailAccount, account_id)
        account.sync_state, account.sync_claimed_at = "running", utcnow()
        session.get(MailAccount, account_id).cursors[0].pending = 1200
        session.add(SyncRun(mail_account_id=account_id, state="running", seen=300, rate=10.0))
    response = user_client.get(f"/accounts/{account_id}/status", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'hx-trigger="every 2s"' in body
    assert (
        "Fetching now" in body and 'class="remaining">1200<' in body and "about 2 minutes" in body
    )


def test_the_last_error_is_shown_in_plain_words(user_client, services, db, imap_server):
    account_id = make_account(services, user_id(db, "rep"), imap_server, "no-such-user")
    fetch(services, account_id)
    body = user_client.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert "authentication failed" in body


def test_fetch_now_enqueues_one_job(user_client, services, db, imap_server, redis):
    account_id = synced_account(services, db, imap_server)
    response = user_client.post(f"/accounts/{account_id}/fetch", htmx=True)
    body = response.get_data(as_text=True)
    assert (
        response.status_code == 200 and "Fetch queued" in body and 'hx-trigger="every 2s"' in body
    )
    assert len(mail_queue(redis)) == 1
    response = user_client.post(f"/accounts/{account_id}/fetch")
    assert response.status_code == 303 and len(mail_queue(redis)) == 1
    page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "already waiting or running" in page and "A fetch is waiting to start" in page
    polled = user_client.get(f"/accounts/{account_id}/status", headers={"HX-Request": "true"})
    assert polled.status_code == 200


def test_fetch_now_says_so_when_redis_is_down(user_client, app, services, db, imap_server):
    from redis import Redis

    account_id = synced_account(services, db, imap_server)
    services.__dict__["redis"] = Redis.from_url("redis://127.0.0.1:1/0")
    body = user_client.post(f"/accounts/{account_id}/fetch", htmx=True).get_data(as_text=True)
    assert "not reachable" in body


def test_fetch_now_needs_a_since_date(user_client, services, db, imap_server, redis):
    account_id = make_account(
        services, user_id(db, "rep"), imap_server, imap_server.new_user(), since=None
    )
    body = user_client.post(f"/accounts/{account_id}/fetch", htmx=True).get_data(as_text=True)
    assert "fetch since" in body and len(mail_queue(redis)) == 0


def test_reset_fetch_state_rereads_the_folder(user_client, services, db, imap_server):
    account_id = synced_account(services, db, imap_server)
    response = user_client.post(
        f"/accounts/{account_id}/reset", data={"folder": "INBOX", "since": "2001-02-03"}, htmx=True
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "will be read again from 2001-02-03" in body
    db.commit()
    db.expire_all()
    cursor = db.scalars(
        select(FolderCursor).where(FolderCursor.mail_account_id == account_id)
    ).one()
    assert cursor.since.isoformat() == "2001-02-03" and cursor.last_uid == 0
    assert fetch(services, account_id).imported == 0
    response = user_client.post(
        f"/accounts/{account_id}/reset", data={"folder": "Nope", "since": "2001-02-03"}
    )
    assert response.status_code == 303
    assert "choose one of the account" in user_client.get(response.headers["Location"]).get_data(
        as_text=True
    )


# --- scoping -------------------------------------------------------------------------------


def test_another_users_account_answers_404(user_client, make_user, services, db, imap_server):
    theirs = make_account(services, make_user("other"), imap_server, imap_server.new_user())
    for url in ("", "/edit", "/status"):
        assert user_client.get(f"/accounts/{theirs}{url}").status_code == 404
    for url in ("/edit", "/delete", "/fetch", "/reset", "/test", "/send-test"):
        assert user_client.post(f"/accounts/{theirs}{url}", data=account_form()).status_code == 404
    assert len(accounts_of(db)) == 1


def test_group_accounts_are_for_admins_only(user_client, services, db, imap_server):
    group = make_account(
        services, user_id(db, "rep"), imap_server, imap_server.new_user(), is_group=True
    )
    assert user_client.get("/accounts/group/new").status_code == 404
    assert user_client.post("/accounts/group/new", data=account_form()).status_code == 404
    assert user_client.post("/accounts/test", data=account_form(group="1")).status_code == 404
    # Its assigned user sees its status, read-only (issue 16); managing it stays refused.
    page = user_client.get(f"/accounts/{group}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "read-only" in text and "Fetch now" not in text and f"/accounts/{group}/edit" not in text
    assert user_client.get(f"/accounts/{group}/edit").status_code == 404
    assert user_client.post(f"/accounts/{group}/fetch").status_code == 404


def test_admins_create_and_edit_group_accounts(admin_client, make_user, services, db):
    rep = make_user("rep")
    with services.session() as session:
        team = Team(name="Support")
        session.add(team)
        session.flush()
        team_id = team.id
    page = admin_client.get("/accounts/group/new").get_data(as_text=True)
    assert "Support" in page and "Add all team users" in page and "round-robin" in page.lower()
    data = account_form(
        email="support@example.com",
        team_ids=str(team_id),
        add_all_team_users="1",
        user_id=str(rep),
        create_case="1",
        case_distribution="least-busy",
        case_team_id=str(team_id),
    )
    assert admin_client.post("/accounts/group/new", data=data).status_code == 303
    [account] = accounts_of(db)
    assert (
        account.is_group and account.user_id == rep and [t.id for t in account.teams] == [team_id]
    )
    assert account.add_all_team_users and account.create_case
    assert account.case_distribution == "least-busy" and account.case_team_id == team_id
    edit = admin_client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert f'value="{team_id}" checked' in edit
    data.update(password="", team_ids=[], case_distribution="direct", add_all_team_users="")
    assert admin_client.post(f"/accounts/{account.id}/edit", data=data).status_code == 303
    [account] = accounts_of(db)
    assert (
        account.teams == []
        and account.case_distribution == "direct"
        and not account.add_all_team_users
    )
    listing = admin_client.get("/accounts/").get_data(as_text=True)
    assert "Group accounts" in listing and "support@example.com" in listing and "rep" in listing


def test_admins_see_other_users_accounts(admin_client, make_user, services, imap_server):
    theirs = make_account(
        services, make_user("rep"), imap_server, imap_server.new_user(), email="reps@example.com"
    )
    assert "reps@example.com" in admin_client.get("/accounts/").get_data(as_text=True)
    assert admin_client.get(f"/accounts/{theirs}").status_code == 200


# --- in a browser --------------------------------------------------------------------------


@pytest.mark.browser
def test_in_a_browser_pick_folders_save_fetch_and_watch_progress(
    live_server, browser, make_user, services, db, imap_server, redis
):
    from playwright.sync_api import expect

    make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(subject="In the inbox"))
    imap_server.append(box, raw_message(subject="Sent elsewhere"), folder="Sent")
    page = browser
    page.goto(f"{live_server}/login")
    page.get_by_label("User name").fill("rep")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Mail accounts").click()
    page.get_by_role("link", name="New account").click()
    page.get_by_label("E-mail address").fill("rep@example.com")
    imap = page.get_by_role("group", name="IMAP server")  # the SMTP fieldset has the same labels
    imap.get_by_label("Host").fill("127.0.0.1")
    imap.get_by_label("Port", exact=True).fill(str(imap_server.port))
    imap.get_by_label("Security").select_option("none")
    imap.get_by_label("Login").fill(box)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#server-folders")).to_contain_text("Connected")
    page.locator("#server-folders input[value=Sent]").check()
    page.get_by_label("Fetch mail since").fill("2000-01-01")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#account-status")).to_contain_text("never")
    page.get_by_role("button", name="Fetch now").click()
    expect(page.locator("#account-status")).to_contain_text("waiting to start")
    [account] = accounts_of(db, "rep")
    assert account.monitored_folders == ["INBOX", "Sent"] and len(mail_queue(redis)) == 1
    # Stand in for the worker: run the sync and take the job off the queue; the panel polls.
    fetch(services, account.id)
    mail_queue(redis).empty()
    expect(page.locator("#account-status")).to_contain_text("Up to date", timeout=10_000)
    expect(page.locator("#account-status .imported")).to_have_text("2")
    expect(page.locator("#account-status")).not_to_have_attribute("hx-trigger", "every 2s")
