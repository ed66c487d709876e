from sqlalchemy import select

from crm.models import User


def _rep(services):
    with services.session() as s:
        return s.scalars(select(User).where(User.username == "rep")).one()


def test_preferences_need_sign_in(client):
    assert "/login" in client.get("/preferences/").headers["Location"]


def test_preferences_render_as_page_and_htmx_body(user_client):
    page = user_client.get("/preferences/")
    assert page.status_code == 200 and b"<html" in page.data and b'value="UTC"' in page.data
    body = user_client.get("/preferences/", headers={"HX-Request": "true"})
    assert body.status_code == 200 and b"<html" not in body.data


def test_saving_preferences(user_client, services):
    response = user_client.post(
        "/preferences/",
        data={
            "signature": "Best,\r\nRep",
            "time_zone": "Europe/Berlin",
            "date_format": "%d.%m.%Y",
            "use_external_client": "on",
        },
    )
    assert response.status_code == 303
    user = _rep(services)
    assert (user.signature, user.time_zone, user.date_format) == (
        "Best,\nRep",
        "Europe/Berlin",
        "%d.%m.%Y",
    )
    assert user.use_external_client is True
    assert b"Preferences saved" in user_client.get(response.headers["Location"]).data


def test_unknown_time_zone_and_format_are_refused(user_client, services):
    response = user_client.post(
        "/preferences/", data={"time_zone": "Mars/Olympus", "date_format": "%s"}
    )
    assert response.status_code == 422
    assert b"choose a time zone" in response.data and b"offered formats" in response.data
    assert _rep(services).time_zone == "UTC"
    htmx = user_client.post("/preferences/", data={"time_zone": "../etc"}, htmx=True)
    assert htmx.status_code == 200 and b"<html" not in htmx.data


def test_date_format_is_used_on_record_pages(user_client, services):
    user_client.post("/preferences/", data={"time_zone": "UTC", "date_format": "%d.%m.%Y"})
    user_client.post(
        "/records/opportunities/new",
        data={"name": "Deal", "stage": "Prospecting", "close_date": "2030-01-31"},
    )
    assert "31.01.2030" in user_client.get("/records/opportunities/").get_data(as_text=True)


def test_sending_preferences_are_saved_and_shown(user_client, services):
    page = user_client.get("/preferences/").get_data(as_text=True)
    assert 'name="signature"' in page and "Default answer button" in page
    assert 'name="default_answer" value="reply" checked' in page
    assert "Use an external mail client" in page
    assert 'name="use_external_client" checked' not in page
    response = user_client.post(
        "/preferences/",
        data={
            "signature": "Rita Rep\r\nSales <rita@example.com>",
            "time_zone": "UTC",
            "date_format": "%Y-%m-%d",
            "use_external_client": "on",
            "default_answer": "reply_all",
        },
    )
    assert response.status_code == 303
    user = _rep(services)
    assert user.reply_all_default is True and user.use_external_client is True
    assert user.signature == "Rita Rep\nSales <rita@example.com>"
    page = user_client.get("/preferences/").get_data(as_text=True)
    assert 'name="default_answer" value="reply_all" checked' in page
    assert 'name="use_external_client" checked' in page
    assert "Rita Rep\nSales &lt;rita@example.com&gt;</textarea>" in page  # plain text, escaped
    # Back to Reply, the external client off; the other preferences stay as they were.
    user_client.post(
        "/preferences/",
        data={"time_zone": "UTC", "date_format": "%Y-%m-%d", "default_answer": "reply"},
    )
    user = _rep(services)
    assert user.reply_all_default is False and user.use_external_client is False


def test_an_unknown_answer_button_is_refused(user_client, services):
    response = user_client.post(
        "/preferences/",
        data={"time_zone": "UTC", "date_format": "%Y-%m-%d", "default_answer": "forward"},
    )
    assert response.status_code == 422 and b"choose Reply or Reply all" in response.data
    assert _rep(services).reply_all_default is False
