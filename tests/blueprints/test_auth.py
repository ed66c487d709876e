import re

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


def test_unknown_user_gets_the_same_answer(client, make_user):
    make_user("ann")
    known = client.post("/login", data={"username": "ann", "password": "x" * 10})
    unknown = client.post("/login", data={"username": "nobody", "password": "x" * 10})
    assert known.status_code == unknown.status_code == 401

    def page(response):  # the CSRF token differs per session and says nothing about the user
        return re.sub(
            r'csrf_token" value="[^"]+"|X-CSRFToken": "[^"]+"', "", response.get_data(as_text=True)
        )

    assert page(unknown) == page(known).replace("ann", "nobody")
    assert "Wrong user name or password." in page(unknown)


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
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "http:/evil",
        "javascript:alert(1)",
    ],
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
    response = client.post(
        "/login", csrf=False, data={"username": "ann", "password": "password123"}
    )
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
    from crm.records.users import set_password

    uid = make_user("ann")
    client.login("ann")
    assert client.get("/preferences/").status_code == 200
    with services.session() as s:
        set_password(s.get(User, uid), "another-password")
    assert "/login" in client.get("/preferences/").headers["Location"]


def test_sign_in_returns_to_the_page_that_asked_for_it(client, make_user):
    make_user("ann")
    asked = client.get("/records/contacts/?q=lee")
    assert asked.status_code == 302
    login_url = asked.headers["Location"]
    assert login_url.startswith("/login?next=")
    form = client.get(login_url).get_data(as_text=True)
    assert 'name="next" value="/records/contacts/?q=lee"' in form
    response = client.post(
        "/login",
        data={"username": "ann", "password": "password123", "next": "/records/contacts/?q=lee"},
    )
    assert response.headers["Location"] == "/records/contacts/?q=lee"


def test_passwords_are_stored_as_argon2id_hashes(make_user, services):
    from crm.models import User
    from crm.passwords import verify_password

    uid = make_user("ann")
    with services.session() as s:
        stored = s.get(User, uid).password_hash
    assert stored.startswith("$argon2id$") and "password123" not in stored
    assert verify_password(stored, "password123") and not verify_password(stored, "password124")


def test_inactive_user_cannot_sign_in(client, make_user, services):
    from crm.models import User

    uid = make_user("ann")
    with services.session() as s:
        s.get(User, uid).is_active = False
    response = client.post("/login", data={"username": "ann", "password": "password123"})
    assert response.status_code == 401
