"""The mail lists: folders, load-more pages, the pane, search and bulk actions, page and fragment."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from crm import settings
from crm.mailbox.folders import create_folder
from crm.models import Email, EmailUserState, User
from tests.factories import make_email


@pytest.fixture
def rep(services, user_client):
    # Read in a session of its own: the test's `db` must start its snapshot after make_user.
    with services.session() as session:
        return SimpleNamespace(id=session.scalar(select(User.id).where(User.username == "rep")))


def state(db, user_id, email_id):
    db.rollback()  # a fresh snapshot: the app committed in its own session
    return db.scalar(
        select(EmailUserState).where(
            EmailUserState.user_id == user_id, EmailUserState.email_id == email_id
        )
    )


def test_root_redirects_to_the_inbox(user_client):
    response = user_client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/inbox/")


def test_inbox_page_lists_mail_with_unread_in_bold(user_client, db, rep):
    make_email(db, users=[rep.id], subject="Unread one", from_name="Carla Customer")
    make_email(db, users=[rep.id], subject="Read one", is_read=True)
    db.commit()
    html = user_client.get("/inbox/").get_data(as_text=True)
    assert "<html" in html and 'id="pane"' in html
    assert re.search(r'class="mailrow unread"[^>]*>.*?Carla Customer', html, re.DOTALL)
    assert "Unread one" in html and "Read one" in html


def test_inbox_as_htmx_renders_without_layout(user_client, db, rep):
    make_email(db, users=[rep.id], subject="Hello there")
    db.commit()
    response = user_client.get("/inbox/", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Hello there" in html
    assert "HX-Request" in response.headers["Vary"]


def test_load_more_pages_by_cursor_as_rows_fragment_and_as_page(user_client, db, rep):
    for n in range(55):
        make_email(db, users=[rep.id], subject=f"Mail number {n:02d}")
    db.commit()
    first = user_client.get("/inbox/").get_data(as_text=True)
    more = (
        re.search(r'<a href="([^"]+after=[^"]+)">Older mail', first).group(1).replace("&amp;", "&")
    )
    assert first.count('class="mailrow') == 50
    rows = user_client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert rows.count('class="mailrow') == 5 and "<table" not in rows and "Older mail" not in rows
    page = user_client.get(more).get_data(as_text=True)
    assert "<html" in page and page.count('class="mailrow') == 5


def test_sent_shows_recipients(user_client, db, rep):
    make_email(
        db,
        users=[rep.id],
        from_addr="rep@example.com",
        outgoing_for=[rep.id],
        to=("client@customer.example",),
        subject="Proposal",
    )
    db.commit()
    html = user_client.get("/inbox/sent").get_data(as_text=True)
    assert "To: client@customer.example" in html


def test_unknown_or_foreign_folder_is_404(user_client, db, make_user):
    other = make_user("other", ["other@example.com"])
    folder = create_folder(db, other, "Private")
    db.commit()
    assert user_client.get(f"/inbox/{folder.id}").status_code == 404
    assert user_client.get("/inbox/bogus").status_code == 404


def test_pane_fragment_counts_unread(user_client, db, rep):
    folder = create_folder(db, rep.id, "Projects")
    make_email(db, users=[rep.id])
    make_email(db, users=[rep.id], folder_id=folder.id)
    db.commit()
    for headers in ({}, {"HX-Request": "true"}):
        html = user_client.get("/inbox/pane", headers=headers).get_data(as_text=True)
        assert 'hx-trigger="every 30s, mail-changed from:body"' in html
        assert re.search(r'Inbox <span class="count"[^>]*>1</span>', html)
        assert re.search(r'Projects <span class="count"[^>]*>1</span>', html)
        assert f'data-drop-target="{folder.id}"' in html


@pytest.mark.parametrize("url", ["/inbox/", "/inbox/pane", "/inbox/search?q=x"])
def test_the_pane_leads_to_the_folders_and_filters_pages(user_client, url):
    html = user_client.get(url).get_data(as_text=True)
    assert re.search(r'<a href="/folders/">Manage folders</a>', html)
    assert re.search(r'<a href="/filters/"[^>]*>Filters</a>', html)
    for page in ("/folders/", "/filters/"):
        assert user_client.get(page).status_code == 200


@pytest.mark.parametrize("htmx", [False, True])
def test_bulk_mark_read_and_important(user_client, db, rep, htmx):
    a = make_email(db, users=[rep.id]).id
    b = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post(
        "/inbox/actions", data={"action": "read", "ids": [a, b], "folder": "inbox"}, htmx=htmx
    )
    if htmx:
        assert response.status_code == 200 and "mail-changed" in response.headers["HX-Trigger"]
        assert 'id="list"' in response.get_data(as_text=True)
    else:
        assert response.status_code == 303 and response.headers["Location"].endswith("/inbox/inbox")
    assert state(db, rep.id, a).is_read and state(db, rep.id, b).is_read
    user_client.post("/inbox/actions", data={"action": "important", "ids": [a]}, htmx=htmx)
    assert state(db, rep.id, a).is_important and not state(db, rep.id, b).is_important


@pytest.mark.parametrize("htmx", [False, True])
def test_trash_restore_and_move(user_client, db, rep, htmx):
    folder = create_folder(db, rep.id, "Projects")
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    user_client.post("/inbox/actions", data={"action": "trash", "ids": [mail]}, htmx=htmx)
    assert state(db, rep.id, mail).in_trash
    user_client.post(
        "/inbox/actions", data={"action": "restore", "ids": [mail], "folder": "trash"}, htmx=htmx
    )
    assert not state(db, rep.id, mail).in_trash
    response = user_client.post(
        "/inbox/move", data={"ids": [mail], "target": str(folder.id), "from": "inbox"}, htmx=htmx
    )
    assert response.status_code == (200 if htmx else 303)
    assert state(db, rep.id, mail).folder_id == folder.id


def test_move_to_someone_elses_folder_is_404(user_client, db, rep, make_user):
    other = make_user("other", ["other@example.com"])
    folder = create_folder(db, other, "Private")
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post("/inbox/move", data={"ids": [mail], "target": str(folder.id)})
    assert response.status_code == 404
    assert state(db, rep.id, mail).folder_id is None


def test_delete_is_hidden_and_refused_unless_allowed(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    assert "Delete permanently" not in user_client.get("/inbox/").get_data(as_text=True)
    response = user_client.post(
        "/inbox/actions", data={"action": "delete", "ids": [mail], "confirmed": "yes"}
    )
    assert response.status_code == 403
    assert db.get(Email, mail) is not None


@pytest.mark.parametrize("htmx", [False, True])
def test_delete_asks_first_then_removes_for_everyone(user_client, db, rep, make_user, htmx):
    other = make_user("other", ["other@example.com"])
    settings.put(db, "users_may_delete_mail", True)
    mail = make_email(db, users=[rep.id, other]).id
    db.commit()
    assert "Delete permanently" in user_client.get("/inbox/").get_data(as_text=True)
    ask = user_client.post("/inbox/actions", data={"action": "delete", "ids": [mail]}, htmx=htmx)
    assert ask.status_code == 200 and "cannot be undone" in ask.get_data(as_text=True)
    db.rollback()
    assert db.get(Email, mail) is not None
    user_client.post(
        "/inbox/actions", data={"action": "delete", "ids": [mail], "confirmed": "yes"}, htmx=htmx
    )
    db.rollback()
    assert db.get(Email, mail) is None


def test_actions_need_csrf(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post(
        "/inbox/actions", data={"action": "read", "ids": [mail]}, csrf=False
    )
    assert response.status_code == 400


@pytest.mark.parametrize("htmx", [False, True])
def test_search_page_and_fragment(user_client, db, rep, htmx):
    make_email(db, users=[rep.id], subject="Invoice for March")
    make_email(db, users=[rep.id], subject="Lunch plans")
    db.commit()
    response = user_client.get(
        "/inbox/search?q=invoice", headers={"HX-Request": "true"} if htmx else {}
    )
    html = response.get_data(as_text=True)
    assert ("<html" in html) is not htmx
    assert "Invoice for March" in html and "Lunch plans" not in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html


def test_search_in_a_foreign_folder_is_404(user_client):
    assert user_client.get("/inbox/search?q=x&folder=999").status_code == 404


def test_lists_require_sign_in(client):
    assert client.get("/inbox/").status_code == 302


def undo_form(html: str) -> dict:
    form = re.search(r'<form method="post" action="/inbox/undo".*?</form>', html, re.DOTALL).group(
        0
    )
    fields = re.findall(r'name="(back|item)" value="([^"]*)"', form)
    return {
        "back": next(v for k, v in fields if k == "back"),
        "item": [v for k, v in fields if k == "item"],
    }


@pytest.mark.parametrize("htmx", [False, True])
def test_move_and_trash_offer_undo_that_puts_mail_back(user_client, db, rep, htmx):
    folder = create_folder(db, rep.id, "Projects")
    a = make_email(db, users=[rep.id]).id
    b = make_email(db, users=[rep.id], folder_id=folder.id).id
    db.commit()
    data = {"action": "move", "ids": [a, b], "target": str(folder.id), "folder": "inbox"}
    response = user_client.post("/inbox/actions", data=data, htmx=htmx)
    if htmx:
        html = response.get_data(as_text=True)
        assert (
            '<div id="notice" class="notice" role="status" aria-live="polite" hx-swap-oob="true">'
            in html
        )
    else:
        html = user_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 mails moved to Projects." in html
    form = undo_form(html)
    assert sorted(form["item"]) == sorted([f"{a}::0", f"{b}:{folder.id}:0"])
    undone = user_client.post("/inbox/undo", data=form)
    assert undone.status_code == 303 and undone.headers["Location"] == form["back"]
    assert state(db, rep.id, a).folder_id is None
    assert state(db, rep.id, b).folder_id == folder.id
    assert "Undone: 2 mails are back" in user_client.get(form["back"]).get_data(as_text=True)
    response = user_client.post("/inbox/actions", data={"action": "trash", "ids": [a]}, htmx=htmx)
    html = (
        response.get_data(as_text=True)
        if htmx
        else user_client.get("/inbox/").get_data(as_text=True)
    )
    assert "1 mail moved to Trash." in html
    user_client.post("/inbox/undo", data=undo_form(html))
    assert not state(db, rep.id, a).in_trash


def test_read_and_unread_offer_no_undo(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post("/inbox/actions", data={"action": "read", "ids": [mail]}, htmx=True)
    assert "hx-swap-oob" not in response.get_data(as_text=True)


def test_undo_ignores_bad_items_and_never_leaves_the_site(user_client, db, rep):
    mail = make_email(db, users=[rep.id], in_trash=True).id
    db.commit()
    data = {"item": ["x:1:0", f"{mail}:abc:0", f"{mail}::2"], "back": "https://evil.example/"}
    response = user_client.post("/inbox/undo", data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/inbox/"
    assert state(db, rep.id, mail).in_trash


def test_undo_from_the_mail_page_comes_back_to_it(user_client, db, rep):
    mail = make_email(db, users=[rep.id]).id
    db.commit()
    response = user_client.post(
        f"/mail/{mail}/action", data={"action": "trash", "back": "/inbox/search?q=x"}, htmx=True
    )
    form = undo_form(response.get_data(as_text=True))
    assert form["back"] == f"/mail/{mail}?back=/inbox/search?q%3Dx"
    user_client.post("/inbox/undo", data=form)
    assert not state(db, rep.id, mail).in_trash


def test_the_search_box_covers_all_mail_and_the_folder_is_a_removable_refinement(
    user_client, db, rep
):
    folder = create_folder(db, rep.id, "Support")
    make_email(db, users=[rep.id], subject="ticket filed away", folder_id=folder.id)
    db.commit()
    for url in ("/inbox/", f"/inbox/{folder.id}"):  # no folder is chosen from a folder's page
        form = user_client.get(url).get_data(as_text=True).split('role="search"')[1]
        form = form.split("</form>")[0]
        assert "selected" not in form and "<summary>Refine</summary>" in form
        assert "Filters" not in form and "from:" in form and "is:unread" in form
    html = user_client.get("/inbox/search?q=ticket").get_data(as_text=True)
    assert "ticket filed away" in html and "Search results in all mail" in html
    html = user_client.get(f"/inbox/search?q=ticket&folder={folder.id}").get_data(as_text=True)
    assert "ticket filed away" in html
    chip = re.search(r'<span class="chip">in: Support\s*<a href="([^"]+)"', html)
    assert chip and "folder=all" in chip.group(1) and "q=ticket" in chip.group(1)
    html = user_client.get("/inbox/search?q=ticket&folder=inbox").get_data(as_text=True)
    assert "ticket filed away" not in html and '<span class="chip">in: Inbox' in html
