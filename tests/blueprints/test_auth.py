import pytest


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_good_password_signs_in_and_redirects_home(client, make_user):
    make_user("ann", ["ann@example.com"])
    response = client.post("/login", data={"username": "ann", "password": "password123"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_bad_password_is_refused(client, make_user):
    make_user("ann")
    response = client.post("/login", data={"username": "ann", "password": "wrong-password"})
    assert response.status_code == 401
    assert b"Wrong user name or password" in response.data
    assert "/login" in client.get("/").headers["Location"]  # still signed out


def test_unknown_user_gets_the_same_answer(client):
    response = client.post("/login", data={"username": "nobody", "password": "x" * 10})
    assert response.status_code == 401


def test_login_is_rate_limited(client, make_user):
    make_user("ann")
    codes = [
        client.post("/login", data={"username": "ann", "password": "bad"}).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    # Even the right password is refused while limited.
    good = client.post("/login", data={"username": "ann", "password": "password123"})
    assert good.status_code == 429


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil", "javascript:alert(1)"],
)
def test_next_must_be_a_local_path(client, make_user, target):
    make_user("ann")
    response = client.post(
        "/login", data={"username": "ann", "password": "password123", "next": target}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_local_path_is_followed(client, make_user):
    make_user("ann")
    response = client.post(
        "/login", data={"username": "ann", "password": "password123", "next": "/preferences/"}
    )
    assert response.headers["Location"] == "/preferences/"


def test_post_without_csrf_token_is_rejected(client, make_user):
    make_user("ann")
    response = client.post("/login", csrf=False, data={"username": "ann", "password": "password123"})
    assert response.status_code == 400


def test_logout_requires_post_with_csrf(client, make_user):
    make_user("ann")
    client.login("ann")
    assert client.post("/logout", csrf=False).status_code == 400
    assert client.post("/logout").status_code == 303
    assert "/login" in client.get("/").headers["Location"]


def test_session_cookie_is_httponly_and_samesite(client, make_user):
    make_user("ann")
    response = client.post("/login", data={"username": "ann", "password": "password123"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_password_change_ends_old_sessions(client, make_user, services):
    from crm.models import User
    from crm.users import set_password

    uid = make_user("ann")
    client.login("ann")
    assert client.get("/preferences/").status_code == 200
    with services.session() as s:
        set_password(s.get(User, uid), "another-password")
    assert "/login" in client.get("/preferences/").headers["Location"]
