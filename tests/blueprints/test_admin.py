import pytest
from sqlalchemy import select

from crm import settings
from crm.models import Team, User
from crm.records import addressbook


@pytest.mark.parametrize("url", ["/admin/", "/admin/users/new", "/admin/teams/", "/admin/settings"])
def test_non_admin_gets_404(user_client, url):
    assert user_client.get(url).status_code == 404
    assert user_client.post(url, data={}).status_code in (404, 405)


def test_admin_pages_render_as_page_and_htmx_body(admin_client):
    for url in ("/admin/", "/admin/users/new", "/admin/teams/", "/admin/settings"):
        page = admin_client.get(url)
        assert page.status_code == 200 and b"<html" in page.data
        body = admin_client.get(url, headers={"HX-Request": "true"})
        assert body.status_code == 200 and b"<html" not in body.data


def test_create_user_with_addresses_and_team(admin_client, services):
    with services.session() as s:
        s.add(Team(name="Sales"))
    with services.session() as s:
        team_id = s.scalars(select(Team.id)).one()
    response = admin_client.post(
        "/admin/users/new",
        data={
            "username": "bea",
            "name": "Bea Smith",
            "password": "long-enough-pw",
            "emails": "Bea@Example.com\nbea.smith@example.com",
            "team_ids": [str(team_id)],
            "is_active": "on",
        },
    )
    assert response.status_code == 303
    listing = admin_client.get("/admin/").get_data(as_text=True)
    assert "bea" in listing and "Bea@example.com" in listing
    with services.session() as s:
        user = s.scalars(select(User).where(User.username == "bea")).one()
        assert user.name == "Bea Smith" and user.is_active and not user.is_admin
        assert [t.name for t in user.teams] == ["Sales"]
        links = addressbook.addresses_of(s, "User", user.id)
        assert [(ln.address.address, ln.is_primary) for ln in links] == [
            ("Bea@example.com", True),
            ("bea.smith@example.com", False),
        ]
    admin_client.post("/logout")
    admin_client.token = None
    admin_client.login("bea", "long-enough-pw")


def test_create_user_rejects_short_password_and_taken_address(admin_client):
    short = admin_client.post("/admin/users/new", data={"username": "x", "password": "short"})
    assert short.status_code == 422 and b"at least 8 characters" in short.data
    taken = admin_client.post(
        "/admin/users/new",
        data={"username": "x", "password": "long-enough-pw", "emails": "ADMIN@example.com"},
    )
    assert taken.status_code == 422 and b"already belongs to admin" in taken.data
    htmx = admin_client.post("/admin/users/new", data={"username": "", "password": "p"}, htmx=True)
    assert htmx.status_code == 200 and b"<html" not in htmx.data


def test_edit_user_changes_primary_address_and_password(admin_client, make_user, services):
    uid = make_user("cal", ["cal@example.com"])
    form = admin_client.get(f"/admin/users/{uid}/edit").get_data(as_text=True)
    assert "cal@example.com" in form
    response = admin_client.post(
        f"/admin/users/{uid}/edit",
        data={
            "username": "cal",
            "name": "Cal",
            "emails": "c@new.example; cal@example.com",
            "password": "brand-new-pw",
            "is_active": "on",
        },
    )
    assert response.status_code == 303
    with services.session() as s:
        links = addressbook.addresses_of(s, "User", uid)
        assert links[0].address.lower == "c@new.example" and links[0].is_primary
        assert len(links) == 2


def test_admin_cannot_demote_themselves(admin_client, services):
    with services.session() as s:
        admin_id = s.scalars(select(User.id).where(User.username == "admin")).one()
    response = admin_client.post(
        f"/admin/users/{admin_id}/edit", data={"username": "admin", "is_active": "on"}
    )
    assert response.status_code == 422 and b"your own admin rights" in response.data


def test_unknown_user_is_404(admin_client):
    assert admin_client.get("/admin/users/999/edit").status_code == 404


def test_teams_create_rename_delete(admin_client, services):
    assert admin_client.post("/admin/teams/", data={"name": "Support"}).status_code == 303
    assert admin_client.post("/admin/teams/", data={"name": "Support"}).status_code == 422
    with services.session() as s:
        team_id = s.scalars(select(Team.id)).one()
    assert (
        admin_client.post(
            f"/admin/teams/{team_id}/rename", data={"name": "Help desk"}, htmx=True
        ).status_code
        == 303
    )
    assert "Help desk" in admin_client.get("/admin/teams/").get_data(as_text=True)
    assert b"Delete team" in admin_client.get(f"/admin/teams/{team_id}/delete").data
    assert admin_client.post(f"/admin/teams/{team_id}/delete").status_code == 303
    with services.session() as s:
        assert s.scalars(select(Team)).all() == []


def test_settings_are_saved_typed(admin_client, services):
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert 'name="fetch_period_seconds" value="60"' in page
    response = admin_client.post(
        "/admin/settings",
        data={
            "b2c_mode": "on",
            "fetch_period_seconds": "120",
            "max_personal_accounts": "3",
            "max_message_bytes": str(10 * 1024 * 1024),
            "system_smtp_shared": "on",
            "mail_host_allowlist": "imap.internal:993\nsmtp.internal:*",
        },
    )
    assert response.status_code == 303
    with services.session() as s:
        values = settings.all_settings(s)
    assert values["b2c_mode"] is True and values["users_may_delete_mail"] is False
    assert values["fetch_period_seconds"] == 120 and values["max_personal_accounts"] == 3
    assert values["mail_host_allowlist"] == ["imap.internal:993", "smtp.internal:*"]
    assert "Settings saved" in admin_client.get(response.headers["Location"]).get_data(as_text=True)


def test_bad_settings_are_refused_with_reasons(admin_client, services):
    response = admin_client.post(
        "/admin/settings",
        data={
            "fetch_period_seconds": "1",
            "max_personal_accounts": "x",
            "max_message_bytes": str(10 * 1024 * 1024),
            "mail_host_allowlist": "no port here",
        },
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "from 10 to 86400" in text and "host:port" in text
    with services.session() as s:
        assert settings.get(s, "fetch_period_seconds") == 60


# --- sending ----------------------------------------------------------------------------------


def general_settings(**values):
    data = {
        "fetch_period_seconds": "60",
        "max_personal_accounts": "0",
        "max_message_bytes": str(25 * 1024 * 1024),
        "undo_send_seconds": "10",
        "max_recipients_per_mail": "100",
        "max_sends_per_hour": "200",
    }
    data.update(values)
    return data


def system_settings(smtp_server=None, **values):
    data = general_settings(
        system_email="crm@example.com",
        system_name="Example CRM",
        system_smtp_host="127.0.0.1",
        system_smtp_port=str(smtp_server.port) if smtp_server else "587",
        system_smtp_security="none",
    )
    data.update(values)
    return data


def system_account(services):
    from crm.models import MailAccount

    with services.session() as s:
        account_id = settings.get(s, "system_smtp_account_id")
        account = s.get(MailAccount, account_id) if account_id else None
        if account is not None:
            s.expunge(account)
        return account


def test_sending_settings_are_saved(admin_client, services):
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert "Sending" in page and 'name="undo_send_seconds" value="10"' in page
    assert 'name="system_smtp_host" value=""' in page
    response = admin_client.post(
        "/admin/settings",
        data=general_settings(
            undo_send_seconds="30",
            max_recipients_per_mail="0",
            max_sends_per_hour="50",
            system_smtp_shared="on",
        ),
    )
    assert response.status_code == 303
    with services.session() as s:
        values = settings.all_settings(s)
    assert values["undo_send_seconds"] == 30 and values["max_recipients_per_mail"] == 0
    assert values["max_sends_per_hour"] == 50 and values["system_smtp_shared"] is True
    assert values["system_smtp_account_id"] is None  # no system account was asked for
    bad = admin_client.post(
        "/admin/settings", data=general_settings(undo_send_seconds="61", max_sends_per_hour="-1")
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "from 0 to 60" in text
    with services.session() as s:
        assert settings.get(s, "undo_send_seconds") == 30


def test_the_system_account_is_created_then_updated(admin_client, services):
    response = admin_client.post(
        "/admin/settings",
        data=system_settings(
            system_smtp_auth="1", system_smtp_login="crm", system_smtp_password="pw-1"
        ),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    account = system_account(services)
    assert account is not None and account.email_address == "crm@example.com"
    assert account.name == "Example CRM" and account.smtp_host == "127.0.0.1"
    assert (account.smtp_port, account.smtp_security, account.smtp_login) == (587, "none", "crm")
    assert account.user_id is None and not account.is_group and account.imap_host == ""
    assert account.fetch_since is None and account.is_active and account.smtp_auth
    with services.session() as s:
        from crm.accounts.manage import smtp_password
        from crm.models import MailAccount

        assert smtp_password(s.get(MailAccount, account.id), services.secret_box) == "pw-1"
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert 'name="system_email" value="crm@example.com"' in page
    assert 'name="system_smtp_password" value=""' in page and "pw-1" not in page
    assert "Send test e-mail" in page
    # Saved again: the same account, the password kept; a changed port needs it again.
    data = system_settings(system_smtp_auth="1", system_name="Renamed")
    saved = admin_client.post("/admin/settings", data=data)
    assert saved.status_code == 303, saved.get_data(as_text=True)
    again = system_account(services)
    assert again.id == account.id and again.name == "Renamed"
    moved = admin_client.post("/admin/settings", data={**data, "system_smtp_port": "2525"})
    assert moved.status_code == 422
    assert "SMTP password again" in moved.get_data(as_text=True)
    assert system_account(services).smtp_port == 587
    with services.session() as s:
        from crm.models import MailAccount

        assert s.query(MailAccount).count() == 1


def test_the_system_account_needs_an_address_and_a_host(admin_client, services):
    response = admin_client.post(
        "/admin/settings", data=general_settings(system_email="nobody", system_smtp_port="x")
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "enter the address the system sends from" in text
    assert "enter the SMTP server&#39;s host name" in text and "between 1 and 65535" in text
    new = admin_client.post("/admin/settings", data=system_settings(system_smtp_auth="1"))
    assert new.status_code == 422 and "SMTP server&#39;s password" in new.get_data(as_text=True)
    assert system_account(services) is None


def test_the_system_account_is_not_listed_as_anybodys(admin_client, services):
    admin_client.post("/admin/settings", data=system_settings())
    listing = admin_client.get("/accounts/").get_data(as_text=True)
    assert "crm@example.com" not in listing


def test_send_test_mail_through_the_system_account(admin_client, services, smtp_server):
    assert admin_client.post("/admin/settings/send-test", data={}).status_code == 404
    admin_client.post("/admin/settings", data=system_settings(smtp_server))
    page = admin_client.get("/admin/settings").get_data(as_text=True)
    assert 'name="to" value="admin@example.com"' in page  # the admin's own address
    response = admin_client.post("/admin/settings/send-test", data={}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="send-test"')
    assert "Test e-mail sent to admin@example.com" in body and "250" in body
    [received] = smtp_server.messages
    assert received["mail_from"] == "crm@example.com"
    assert received["rcpt_tos"] == ["admin@example.com"]
    smtp_server.script(answer_data="550 5.7.1 Relaying denied")
    response = admin_client.post("/admin/settings/send-test", data={"to": "x@customer.example"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/settings")
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The test e-mail was not sent" in page and "550 5.7.1 Relaying denied" in page


def test_only_admins_send_through_the_system_account(user_client):
    assert user_client.post("/admin/settings/send-test", data={}).status_code == 404
