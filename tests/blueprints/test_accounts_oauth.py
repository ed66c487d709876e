"""Connect with Google / Microsoft through the web: admin settings, the connect flow and its
callback (state checked, a forged one refused), the account page of an account that needs
reconnecting, Reconnect, and the edit form of an OAuth2 account."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from crm.accounts import oauth
from crm.db import utcnow
from crm.models import MailAccount
from crm.queue import mail_queue
from tests.support.oauth_provider import CLIENT_SECRET, configure, make_oauth_account


@pytest.fixture
def google(db, services, oauth_provider, oauth_imap_server):
    configure(db, services.secret_box, oauth_provider, oauth_imap_server)
    db.commit()
    return oauth_provider


def _connect(client, google, email, group=False):
    """Press Connect, give consent at the provider; the callback's path and query."""
    data = {"group": "1"} if group else {}
    started = client.post("/accounts/connect/google", data=data)
    assert started.status_code == 303
    location = started.headers["Location"]
    assert location.startswith(google.url + "/authorize?")
    back = urlsplit(google.consent_redirect(location, email))
    return back.path, back.query


def _accounts(db) -> list[MailAccount]:
    db.rollback()
    return list(db.query(MailAccount).order_by(MailAccount.id))


def test_admin_sets_up_a_provider_and_sees_the_redirect_url(admin_client, db, services):
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert "Redirect URL to register" in page and "/accounts/oauth/callback" in page
    answer = admin_client.post(
        "/admin/settings/oauth/microsoft",
        data={"client_id": "abc", "client_secret": "s3cret-value", "tenant": "contoso.example"},
    )
    assert answer.status_code == 303
    config = oauth.provider_config(db, services.secret_box, "microsoft")
    assert (config.client_id, config.client_secret) == ("abc", "s3cret-value")
    assert "/contoso.example/oauth2/v2.0/authorize" in config.provider.authorize_url
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert "s3cret-value" not in page and "Stored (sealed)" in page


def test_bad_provider_settings_are_a_message_not_a_500(admin_client):
    answer = admin_client.post(
        "/admin/settings/oauth/google", data={"client_id": "x", "imap_port": "99999"}
    )
    assert answer.status_code == 303
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert "enter a port between 1 and 65535" in page


def test_a_user_connects_a_gmail_account(user_client, db, google, redis):
    page = user_client.get("/accounts/new").get_data(as_text=True)
    assert "Connect with Google" in page and "Connect with Microsoft" not in page
    path, query = _connect(user_client, google, "rep.gmail@example.com")
    done = user_client.get(f"{path}?{query}")
    assert done.status_code == 303
    [account] = _accounts(db)
    assert (account.auth_method, account.oauth_provider) == ("oauth2", "google")
    assert account.email_address == account.imap_login == "rep.gmail@example.com"
    assert account.sent_folder == "[Gmail]/Sent Mail"
    assert account.imap_password_enc is None
    assert len(mail_queue(redis)) == 1  # the first fetch starts at once
    shown = user_client.get(done.headers["Location"]).get_data(as_text=True)
    assert "is connected with Google" in shown and "Connected with Google (OAuth2)" in shown
    assert CLIENT_SECRET not in shown


def test_a_forged_state_is_refused(user_client, db, google):
    path, query = _connect(user_client, google, "rep.gmail@example.com")
    args = parse_qs(query)
    forged = f"{path}?code={args['code'][0]}&state=forged"
    answer = user_client.get(forged)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/accounts/new")
    assert _accounts(db) == []
    page = user_client.get("/accounts/new").get_data(as_text=True)
    assert "does not belong to this session" in page
    # The state was used up with the refused answer: the real one no longer works either.
    user_client.get(f"{path}?{query}")
    assert _accounts(db) == []


def test_a_callback_nobody_started_is_refused(user_client, db, google):
    answer = user_client.get("/accounts/oauth/callback?code=x&state=y")
    assert answer.status_code == 303
    assert "not started here" in user_client.get("/accounts/new").get_data(as_text=True)


def test_users_cannot_start_a_group_connect(user_client, google):
    assert user_client.post("/accounts/connect/google", data={"group": "1"}).status_code == 404


def test_admins_connect_a_group_account(admin_client, db, google, redis):
    path, query = _connect(admin_client, google, "support@example.com", group=True)
    assert admin_client.get(f"{path}?{query}").status_code == 303
    [account] = _accounts(db)
    assert account.is_group and account.user_id is None


def test_the_page_of_an_account_needing_reauthorisation_loads_and_offers_reconnect(
    user_client, db, services, google, oauth_imap_server, redis
):
    from crm.models import User

    owner = db.query(User).filter_by(username="rep").one()
    account_id = make_oauth_account(services, owner.id, google, oauth_imap_server)
    with services.session() as session:
        account = session.get(MailAccount, account_id)
        oauth.mark_needs_reauthorisation(session, account, "Google refused (invalid_grant)")
    for htmx in (False, True):
        headers = {"HX-Request": "true"} if htmx else {}
        answer = user_client.get(f"/accounts/{account_id}", headers=headers)
        body = answer.get_data(as_text=True)
        assert answer.status_code == 200 and "Needs reconnecting" in body
        assert "Reconnect with Google" in body and ("<html" in body) is not htmx
    status = user_client.get(f"/accounts/{account_id}/status", headers={"HX-Request": "true"})
    assert status.status_code in (200, 286)
    assert "Needs reconnecting" in user_client.get("/accounts/").get_data(as_text=True)
    refused = user_client.post(f"/accounts/{account_id}/fetch", htmx=True)
    assert "Use Reconnect first" in refused.get_data(as_text=True) and len(mail_queue(redis)) == 0

    email = db.get(MailAccount, account_id).email_address
    started = user_client.post(f"/accounts/{account_id}/reconnect")
    assert started.status_code == 303
    back = urlsplit(google.consent_redirect(started.headers["Location"], email))
    assert user_client.get(f"{back.path}?{back.query}").status_code == 303
    db.rollback()
    account = db.get(MailAccount, account_id)
    assert not oauth.needs_reauthorisation(account) and account.oauth_expires_at > utcnow()


def test_reconnecting_with_another_mailbox_is_refused(
    user_client, db, services, google, oauth_imap_server
):
    from crm.models import User

    owner = db.query(User).filter_by(username="rep").one()
    account_id = make_oauth_account(services, owner.id, google, oauth_imap_server)
    started = user_client.post(f"/accounts/{account_id}/reconnect")
    back = urlsplit(google.consent_redirect(started.headers["Location"], "someone@else.example"))
    answer = user_client.get(f"{back.path}?{back.query}")
    assert answer.headers["Location"].endswith(f"/accounts/{account_id}")
    assert "but this account is" in user_client.get(answer.headers["Location"]).get_data(
        as_text=True
    )


def test_the_edit_form_of_an_oauth_account_asks_no_password(
    user_client, db, services, google, oauth_imap_server
):
    from crm.models import User

    owner = db.query(User).filter_by(username="rep").one()
    account_id = make_oauth_account(services, owner.id, google, oauth_imap_server)
    page = user_client.get(f"/accounts/{account_id}/edit").get_data(as_text=True)
    assert "Connected with Google" in page and 'name="password"' not in page
    account = db.get(MailAccount, account_id)
    form = {
        "name": "Renamed",
        "email": account.email_address,
        "host": account.imap_host,
        "port": str(account.imap_port),
        "security": account.imap_security,
        "login": account.imap_login,
        "smtp_host": account.smtp_host,
        "smtp_port": str(account.smtp_port),
        "smtp_security": account.smtp_security,
        "smtp_auth": "1",
        "folders": "INBOX",
        "since": "2020-01-01",
        "is_active": "1",
    }
    answer = user_client.post(f"/accounts/{account_id}/edit", data=form)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    db.rollback()
    assert db.get(MailAccount, account_id).name == "Renamed"
    folders = user_client.post(f"/accounts/{account_id}/test", data=form, htmx=True)
    assert "INBOX" in folders.get_data(as_text=True) and "Connected." in folders.get_data(
        as_text=True
    )
