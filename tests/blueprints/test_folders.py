"""The folders pages: managing folders and moving mail, as pages and as htmx fragments."""

from __future__ import annotations

from sqlalchemy import select

from crm.mailbox import folders
from crm.models import Folder, Team


def folder_names(db, user_id=None):
    db.rollback()
    stmt = select(Folder).order_by(Folder.position, Folder.id)
    if user_id is not None:
        stmt = stmt.where(Folder.user_id == user_id)
    return [f.name for f in db.scalars(stmt)]


def rep_id(db):
    from crm.models import User

    return db.scalars(select(User.id).where(User.username == "rep")).one()


def test_index_is_a_page_and_a_fragment(user_client):
    page = user_client.get("/folders/")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    body = user_client.get("/folders/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in body and 'id="folder-list"' in body
    assert "Group folders" not in body


def test_create_folder_redirects_or_answers_the_list_fragment(user_client, db):
    response = user_client.post("/folders/", data={"name": "Customers"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/folders/")
    response = user_client.post("/folders/", data={"name": "Suppliers"}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="folder-list">')
    assert "Customers" in body and "Suppliers" in body
    assert folder_names(db) == ["Customers", "Suppliers"]


def test_a_bad_name_is_reported(user_client, db):
    user_client.post("/folders/", data={"name": "Customers"})
    body = user_client.post("/folders/", data={"name": "customers"}, htmx=True).get_data(
        as_text=True
    )
    assert "already a folder" in body
    response = user_client.post("/folders/", data={"name": " "}, follow_redirects=True)
    assert "needs a name" in response.get_data(as_text=True)


def test_rename_reorder_and_delete(user_client, db):
    for name in ("A", "B", "C"):
        user_client.post("/folders/", data={"name": name})
    ids = {f.name: f.id for f in db.scalars(select(Folder))}
    user_client.post(f"/folders/{ids['C']}", data={"name": "Cc", "skip_notifications": "1"})
    user_client.post(f"/folders/{ids['C']}/shift", data={"direction": "up"}, htmx=True)
    assert folder_names(db) == ["A", "Cc", "B"]
    assert db.get(Folder, ids["C"]).skip_notifications
    user_client.post("/folders/order", data={"folder_id": [str(ids["B"]), str(ids["A"])]})
    assert folder_names(db) == ["B", "A", "Cc"]
    user_client.post(f"/folders/{ids['A']}/delete")
    assert folder_names(db) == ["B", "Cc"]


def test_other_users_folders_answer_404(user_client, make_user, db):
    other = make_user("other")
    with user_client.app.extensions["crm"].session() as session:
        theirs = folders.create_folder(session, other, "Private").id
    assert user_client.post(f"/folders/{theirs}", data={"name": "Mine"}).status_code == 404
    assert user_client.post(f"/folders/{theirs}/delete").status_code == 404


def test_group_folders_are_for_admins(user_client):
    assert user_client.post("/folders/group", data={"name": "Desk"}).status_code == 404


def test_admin_creates_edits_and_deletes_group_folders(admin_client, services, db):
    with services.session() as session:
        sales = Team(name="sales")
        session.add(sales)
        session.flush()
        sales_id = sales.id
    body = admin_client.get("/folders/").get_data(as_text=True)
    assert "Group folders" in body and "sales" in body
    admin_client.post("/folders/group", data={"name": "Desk", "team_id": [str(sales_id)]})
    shared = db.scalars(select(Folder).where(Folder.is_group.is_(True))).one()
    assert [t.name for t in shared.teams] == ["sales"]
    response = admin_client.post(
        f"/folders/group/{shared.id}",
        data={"name": "Front desk", "skip_notifications": "1"},
        htmx=True,
    )
    assert "Front desk" in response.get_data(as_text=True)
    db.rollback()
    assert shared.name == "Front desk" and shared.teams == [] and shared.skip_notifications
    admin_client.post(f"/folders/group/{shared.id}/delete")
    assert folder_names(db) == []
