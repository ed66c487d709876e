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
