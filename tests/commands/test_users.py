import json

from sqlalchemy import select

from crm.models import Team, User
from crm.records import addressbook


def _create(app, *args):
    return app.test_cli_runner().invoke(args=["crm", "create-user", *args])


def test_create_user_with_addresses_admin_and_team(app, services, client):
    result = _create(
        app,
        "ann",
        "--password",
        "long-enough-pw",
        "--email",
        "Ann.Lee@Example.com",
        "--email",
        "ann@home.example",
        "--admin",
        "--team",
        "Sales",
    )
    assert result.exit_code == 0, result.output
    user_id = json.loads(result.output)["id"]
    with services.session() as s:
        user = s.get(User, user_id)
        assert user.username == "ann" and user.is_admin and user.is_active
        assert [t.name for t in user.teams] == ["Sales"]
        assert user.password_hash.startswith("$argon2id$")
        links = addressbook.addresses_of(s, "User", user_id)
        # The local part keeps its spelling; domains are case-insensitive (RFC 5321 section 2.4).
        assert [(ln.address.address, ln.is_primary) for ln in links] == [
            ("Ann.Lee@example.com", True),
            ("ann@home.example", False),
        ]
    client.login("ann", "long-enough-pw")
    assert client.get("/admin/").status_code == 200


def test_create_regular_user_joins_an_existing_team(app, services):
    with services.session() as s:
        s.add(Team(name="Support"))
    result = _create(app, "bob", "--password", "long-enough-pw", "--team", "Support")
    assert result.exit_code == 0, result.output
    with services.session() as s:
        user = s.scalars(select(User).where(User.username == "bob")).one()
        assert not user.is_admin
        assert s.scalars(select(Team.name)).all() == ["Support"]
        assert [t.name for t in user.teams] == ["Support"]


def test_create_user_refusals_exit_non_zero_and_create_nothing(app, services):
    assert (
        _create(app, "ann", "--password", "long-enough-pw", "--email", "a@x.example").exit_code == 0
    )
    for args, message in [
        (["ann", "--password", "long-enough-pw"], "already exists"),
        (["bob", "--password", "short"], "at least 8 characters"),
        (["bob", "--password", "long-enough-pw", "--email", "A@X.example"], "already belongs"),
        (["bob", "--password", "long-enough-pw", "--email", "not-an-address"], "not an e-mail"),
    ]:
        result = _create(app, *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert _create(app, "bob").exit_code == 2  # --password is required
    with services.session() as s:
        assert s.scalars(select(User.username)).all() == ["ann"]


def test_ensure_admin_creates_one_admin_once(app, services):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["crm", "ensure-admin", "--url", "http://127.0.0.1:5000/"])
    assert first.exit_code == 0 and "sign in as admin / " in first.output
    second = runner.invoke(args=["crm", "ensure-admin"])
    assert second.exit_code == 0 and "sign in with your admin account" in second.output
    with services.session() as s:
        assert s.scalars(select(User.username).where(User.is_admin.is_(True))).all() == ["admin"]
    credentials = (services.config.instance_dir / "admin-credentials.txt").read_text()
    assert first.output.split("admin / ")[1].split(" ")[0] in credentials
