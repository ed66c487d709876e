"""Notifications: the list, marking read, and the polling header badge."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.mailbox.notifications import notify
from crm.models import Notification, User


@pytest.fixture
def rep_id(services, user_client):
    with services.session() as session:
        return session.scalar(select(User.id).where(User.username == "rep"))


def add(services, user_id, text, **data):
    with services.session() as session:
        note = notify(session, user_id, "new_mail", text, **data)
        session.flush()
        return note.id


def test_layout_has_a_polling_badge(user_client):
    page = user_client.get("/inbox/").get_data(as_text=True)
    assert 'id="notification-badge"' in page and 'hx-get="/notifications/badge"' in page


@pytest.mark.parametrize("htmx", [False, True])
def test_badge_fragment_counts_unread_and_polls(user_client, services, rep_id, make_user, htmx):
    other = make_user("other", ["other@example.com"])
    add(services, rep_id, "3 new mail")
    add(services, rep_id, "1 new mail")
    add(services, other, "not yours")
    html = user_client.get(
        "/notifications/badge", headers={"HX-Request": "true"} if htmx else {}
    ).get_data(as_text=True)
    assert "<html" not in html
    assert 'hx-trigger="every 30s' in html and '<span class="count">2</span>' in html


def test_list_shows_only_own_notifications_with_links(user_client, services, rep_id, make_user):
    other = make_user("other", ["other@example.com"])
    add(services, rep_id, "2 new mail from <b>Zed</b>")
    add(services, other, "secret note")
    page = user_client.get("/notifications/").get_data(as_text=True)
    assert "2 new mail from &lt;b&gt;Zed&lt;/b&gt;" in page and "secret note" not in page
    assert 'href="/inbox/"' in page
    fragment = user_client.get("/notifications/", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "<html" not in fragment and "2 new mail" in fragment


@pytest.mark.parametrize("htmx", [False, True])
def test_mark_one_and_all_read(user_client, services, rep_id, db, htmx):
    first = add(services, rep_id, "first")
    add(services, rep_id, "second")
    response = user_client.post(f"/notifications/{first}/read", htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    unread = lambda: db.scalars(
        select(Notification.text).where(Notification.read_at.is_(None))
    ).all()
    db.rollback()
    assert unread() == ["second"]
    response = user_client.post("/notifications/read", htmx=htmx)
    if htmx:
        assert "notifications-changed" in response.headers["HX-Trigger"]
    db.rollback()
    assert unread() == []


def test_someone_elses_notification_is_404(user_client, services, make_user):
    other = make_user("other", ["other@example.com"])
    note = add(services, other, "theirs")
    assert user_client.post(f"/notifications/{note}/read").status_code == 404
