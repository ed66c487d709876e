"""A group account's auto-reply, set on its form (it was only settable from the CLI)."""

from __future__ import annotations

from crm.models import MailAccount

FORM = {
    "name": "Support",
    "email": "support@example.com",
    "host": "127.0.0.1",
    "port": "993",
    "security": "none",
    "login": "support",
    "password": "secret",
    "folders": "INBOX",
    "since": "2024-01-01",
    "is_active": "1",
    "case_distribution": "direct",
}


def _account(db) -> MailAccount:
    db.commit()
    db.expire_all()
    return db.query(MailAccount).one()


def test_admins_set_the_auto_reply_of_a_group_account(admin_client, db):
    page = admin_client.get("/accounts/group/new").get_data(as_text=True)
    assert "Answer mail that opens a new case" in page
    data = dict(
        FORM,
        create_case="1",
        auto_reply="1",
        auto_reply_subject="  We got  your mail ",
        auto_reply_text="Thanks! Case [#{number}] is open.\r\nThe team",
    )
    assert admin_client.post("/accounts/group/new", data=data).status_code == 303
    account = _account(db)
    assert account.auto_reply and account.auto_reply_subject == "We got your mail"
    assert account.auto_reply_text == "Thanks! Case [#{number}] is open.\nThe team"
    edit = admin_client.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    assert 'name="auto_reply" value="1" checked' in edit and "We got your mail" in edit
    data.update(password="", auto_reply="")
    assert admin_client.post(f"/accounts/{account.id}/edit", data=data).status_code == 303
    account = _account(db)
    assert not account.auto_reply and account.auto_reply_text.startswith("Thanks!")


def test_an_auto_reply_without_cases_is_refused_and_nothing_is_lost(admin_client, db):
    data = dict(FORM, auto_reply="1", auto_reply_text="Kept text")
    answer = admin_client.post("/accounts/group/new", data=data)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "tick that box too" in body and "Kept text" in body
    assert db.query(MailAccount).count() == 0


def test_personal_accounts_have_no_auto_reply(user_client):
    assert "Answer mail that opens a new case" not in user_client.get("/accounts/new").get_data(
        as_text=True
    )
