import io
import re

from sqlalchemy import select

from crm.models import Contact, User


def _upload(client, kind, text, htmx=False):
    return client.post(
        "/imports/",
        htmx=htmx,
        data={"kind": kind, "file": (io.BytesIO(text.encode()), "people.csv")},
        content_type="multipart/form-data",
    )


def test_upload_page_renders_as_page_and_htmx_body(user_client):
    page = user_client.get("/imports/")
    assert page.status_code == 200 and b"<html" in page.data and b'type="file"' in page.data
    body = user_client.get("/imports/", headers={"HX-Request": "true"})
    assert body.status_code == 200 and b"<html" not in body.data


def test_upload_map_import_report(user_client, services):
    response = _upload(
        user_client, "contacts", "Vorname,Last Name,Mail\nAnna,Schmidt,anna@example.de\n,,\n"
    )
    assert response.status_code == 303
    mapping_url = response.headers["Location"]
    page = user_client.get(mapping_url).get_data(as_text=True)
    assert "Vorname" in page and "Anna" in page
    assert re.search(r'name="map-1".*?<option value="last_name" selected>', page, re.DOTALL)
    result = user_client.post(
        mapping_url, data={"map-0": "first_name", "map-1": "last_name", "map-2": "email"}
    )
    assert result.status_code == 303
    report = user_client.get(result.headers["Location"]).get_data(as_text=True)
    assert re.search(r"<strong>1</strong> created", report)
    with services.session() as s:
        contact = s.scalars(select(Contact)).one()
        rep_id = s.scalars(select(User.id).where(User.username == "rep")).one()
        assert contact.display_name == "Anna Schmidt" and contact.created_by_id == rep_id
    # The upload is gone once imported.
    assert user_client.get(mapping_url).status_code == 404


def test_report_lists_rejected_rows(user_client):
    response = _upload(user_client, "leads", "first_name,last_name,email\nA,B,bad-address\n")
    result = user_client.post(
        response.headers["Location"],
        data={"map-0": "first_name", "map-1": "last_name", "map-2": "email"},
        htmx=True,
    )
    report = user_client.get(result.headers["Location"], headers={"HX-Request": "true"})
    text = report.get_data(as_text=True)
    assert "<html" not in text and "not an e-mail address: bad-address" in text


def test_mapping_a_field_twice_is_refused(user_client):
    response = _upload(user_client, "leads", "a,b\n1,2\n")
    again = user_client.post(
        response.headers["Location"], data={"map-0": "email", "map-1": "email"}
    )
    assert again.status_code == 422 and b"more than one column" in again.data


def test_empty_upload_is_refused(user_client):
    response = _upload(user_client, "accounts", "")
    assert response.status_code == 422 and b"empty" in response.data
    missing = user_client.post("/imports/", data={"kind": "accounts"})
    assert missing.status_code == 422


def test_another_users_upload_is_404(client, make_user):
    make_user("ann")
    make_user("bob")
    client.login("ann")
    url = _upload(client, "accounts", "name\nAcme\n").headers["Location"]
    client.post("/logout")
    client.token = None
    client.login("bob")
    assert client.get(url).status_code == 404
    assert client.post(url, data={"map-0": "name"}).status_code == 404


def test_mapping_shows_field_labels_not_raw_names(user_client):
    response = _upload(user_client, "contacts", "Vorname,Mail,Firma\nAnna,anna@example.de,ACME\n")
    page = user_client.get(response.headers["Location"]).get_data(as_text=True)
    options = dict(re.findall(r'<option value="([a-z_]+)"[^>]*>([^<]*)</option>', page))
    assert options["first_name"] == "First name" and options["last_name"] == "Last name"
    assert options["email"] == "E-mail address" and options["account"] == "Account (by name)"
    assert ">first_name<" not in page
