"""The filters pages: list, create/edit/delete, preview (page and fragment), apply."""

from __future__ import annotations

import json

from sqlalchemy import select

from crm.mailbox import folders
from crm.models import EmailFilter, EmailUserState, MailAccount, User
from tests.factories import make_email

CRITERIA = {
    "scope": "inbox",
    "name": "Shop",
    "from_pattern": "*@shop.example",
    "action": "ignore",
    "priority": "2",
    "is_active": "1",
}


def user_id(session, username="rep"):
    return session.scalars(select(User.id).where(User.username == username)).one()


def only_filter(db) -> EmailFilter:
    db.rollback()
    return db.scalars(select(EmailFilter)).one()


def test_index_page_and_fragment(user_client):
    page = user_client.get("/filters/").get_data(as_text=True)
    assert "<html" in page and "My inbox filters" in page and "Global filters" not in page
    body = user_client.get("/filters/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in body and "My inbox filters" in body


def test_admins_see_global_filters(admin_client):
    assert "Global filters" in admin_client.get("/filters/").get_data(as_text=True)


def test_new_form_says_matching_ignores_case(user_client):
    body = user_client.get("/filters/new?scope=inbox").get_data(as_text=True)
    assert "Upper and lower case do not matter, in the subject too" in body
    assert 'name="is_active" value="1" checked' in body


def test_create_edit_and_delete_an_inbox_filter(user_client, db):
    response = user_client.post("/filters/", data=CRITERIA)
    assert response.status_code == 303
    row = only_filter(db)
    assert (row.scope, row.from_pattern, row.priority, row.user_id) == (
        "inbox",
        "*@shop.example",
        2,
        user_id(db),
    )
    listing = user_client.get("/filters/").get_data(as_text=True)
    assert "from “*@shop.example”" in listing and "Ignore (to Trash)" in listing
    assert "*@shop.example" in user_client.get(f"/filters/{row.id}").get_data(as_text=True)
    user_client.post(f"/filters/{row.id}", data=CRITERIA | {"subject_pattern": "order*"})
    assert only_filter(db).subject_pattern == "order*"
    user_client.post(f"/filters/{row.id}/delete")
    db.rollback()
    assert db.scalars(select(EmailFilter)).all() == []


def test_an_invalid_filter_shows_the_form_with_errors(user_client, db):
    response = user_client.post("/filters/", data={"scope": "inbox", "action": "ignore"})
    assert response.status_code == 422
    assert "an empty filter never matches" in response.get_data(as_text=True)
    response = user_client.post("/filters/", data=CRITERIA | {"scope": "global"}, htmx=True)
    assert response.status_code == 200 and "Choose where the filter applies" in response.get_data(
        as_text=True
    )
    assert db.scalars(select(EmailFilter)).all() == []


def test_other_users_filters_answer_404(user_client, make_user, services):
    other = make_user("other")
    with services.session() as session:
        row = EmailFilter(scope="inbox", user_id=other, from_pattern="*", body_any=[], body_all=[])
        session.add(row)
        session.flush()
        row_id = row.id
    for url in (f"/filters/{row_id}", f"/filters/{row_id}/preview"):
        assert user_client.get(url).status_code == 404
    for url in (f"/filters/{row_id}", f"/filters/{row_id}/delete", f"/filters/{row_id}/apply"):
        assert user_client.post(url, data=CRITERIA).status_code == 404


def test_account_filters_on_own_accounts_only(user_client, make_user, services, db):
    other = make_user("other")
    with services.session() as session:
        mine = MailAccount(user_id=user_id(session), email_address="rep@example.com", name="Work")
        theirs = MailAccount(user_id=other, email_address="o@example.com")
        session.add_all([mine, theirs])
        session.flush()
        ids = mine.id, theirs.id
    assert "Work" in user_client.get("/filters/new?scope=account").get_data(as_text=True)
    data = CRITERIA | {"scope": "account", "mail_account_id": str(ids[1])}
    assert user_client.post("/filters/", data=data).status_code == 422
    user_client.post("/filters/", data=data | {"mail_account_id": str(ids[0])})
    assert only_filter(db).mail_account_id == ids[0]
    assert "Ignore (not imported)" in user_client.get("/filters/").get_data(as_text=True)


def seed_mail(services):
    with services.session() as session:
        rep = user_id(session)
        hit = make_email(session, users=[rep], subject="Your order", from_addr="bill@shop.example")
        make_email(session, users=[rep], subject="Lunch?", from_addr="friend@home.example")
        row = EmailFilter(
            scope="inbox",
            user_id=rep,
            from_pattern="*@SHOP.example",
            body_any=[],
            body_all=[],
            action="ignore",
        )
        session.add(row)
        session.flush()
        return row.id, hit.id


def test_preview_of_a_saved_filter_as_page_and_fragment(user_client, services):
    row_id, _ = seed_mail(services)
    page = user_client.get(f"/filters/{row_id}/preview").get_data(as_text=True)
    assert "<html" in page and "Your order" in page and "Lunch?" not in page
    response = user_client.get(f"/filters/{row_id}/preview", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="filter-preview"') and "Your order" in body


def test_preview_of_the_form_being_edited(user_client, services):
    seed_mail(services)
    query = {"scope": "inbox", "subject_pattern": "LUNCH*", "action": "ignore"}
    response = user_client.get(
        "/filters/preview", query_string=query, headers={"HX-Request": "true"}
    )
    body = response.get_data(as_text=True)
    assert "Lunch?" in body and "Your order" not in body and "<html" not in body
    page = user_client.get("/filters/preview", query_string=query).get_data(as_text=True)
    assert "<html" in page and "Lunch?" in page


def test_preview_of_a_form_the_user_may_not_save_shows_nothing(user_client, services):
    seed_mail(services)
    body = user_client.get(
        "/filters/preview",
        query_string={"scope": "global", "from_pattern": "*"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "Choose where the filter applies" in body and "Your order" not in body
    body = user_client.get(
        "/filters/preview", query_string={"scope": "inbox"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "empty filter never matches" in body


def test_apply_to_existing_mail_as_redirect_and_as_fragment(user_client, services, db):
    row_id, hit = seed_mail(services)
    response = user_client.post(f"/filters/{row_id}/apply")
    assert response.status_code == 303
    assert "applied to 1 existing mail" in user_client.get("/filters/").get_data(as_text=True)
    db.rollback()
    assert db.scalars(select(EmailUserState.in_trash).where(EmailUserState.email_id == hit)).one()
    response = user_client.post(f"/filters/{row_id}/apply", htmx=True)
    assert "applied to 0 existing mail" in response.get_data(as_text=True)
    assert json.loads(response.headers["HX-Trigger"])["mail-changed"]["count"] == 0


def test_move_filter_form_lists_my_folders(user_client, services, db):
    with services.session() as session:
        folder_id = folders.create_folder(session, user_id(session), "Receipts").id
    assert "Receipts" in user_client.get("/filters/new").get_data(as_text=True)
    user_client.post(
        "/filters/",
        data=CRITERIA | {"action": "move", "folder_id": str(folder_id), "mark_read": "1"},
    )
    row = only_filter(db)
    assert (row.action, row.folder_id, row.mark_read) == ("move", folder_id, True)
    assert "Move to Receipts, mark as read" in user_client.get("/filters/").get_data(as_text=True)
