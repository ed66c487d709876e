"""The start page and the site's icon."""


def test_favicon_is_linked_and_served_at_favicon_ico(user_client):
    page = user_client.get("/inbox/").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    for url in ("/favicon.ico", "/static/favicon.svg"):
        with user_client.get(url) as response:
            assert response.status_code == 200 and response.mimetype == "image/svg+xml"
            assert response.data.startswith(b"<svg")


def test_favicon_needs_no_sign_in(client):
    assert client.get("/favicon.ico").status_code == 200
