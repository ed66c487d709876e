"""`flask crm account add | fetch | export` against the real Dovecot and database."""

from __future__ import annotations

import json

from tests.support.dovecot import PASSWORD
from tests.support.mailboxes import raw_message


def _cli(app, *args, env=None):
    return app.test_cli_runner().invoke(args=["crm", *args], env=env)


def _add_account(app, *more, email, host, port, login, password_env, env=None):
    """`crm account add` for user "rep", plain IMAP, with `more` options after the required ones."""
    required = ["--user", "rep", "--email", email, "--host", host, "--port", str(port)]
    required += ["--security", "none", "--login", login, "--password-env", password_env]
    return _cli(app, "account", "add", *required, *more, env=env)


def test_account_add_fetch_and_export(app, make_user, imap_server):
    make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw_message(subject="Quote", message_id="<q1@test.example>"))
    imap_server.append(
        box,
        raw_message(
            subject="Bad\x00", message_id="<q2@test.example>", from_="Rep <rep@example.com>"
        ),
        folder="Sent",
    )
    added = _add_account(
        app,
        "--folders",
        "INBOX,Sent",
        "--since",
        "2001-01-01",
        email="rep@example.com",
        host=imap_server.host,
        port=imap_server.port,
        login=box,
        password_env="IMAP_PW",
        env={"IMAP_PW": PASSWORD},
    )
    assert added.exit_code == 0, added.output
    account_id = json.loads(added.output)["id"]

    fetched = _cli(app, "fetch", "--account", str(account_id), "--json")
    assert fetched.exit_code == 0, fetched.output
    summary = json.loads(fetched.output)
    assert {k: summary[k] for k in ("seen", "imported", "duplicates", "failed")} == {
        "seen": 2,
        "imported": 2,
        "duplicates": 0,
        "failed": 0,
    }
    again = json.loads(_cli(app, "fetch", "--json").output)
    assert (again["seen"], again["imported"]) == (0, 0)

    exported = _cli(app, "export", "--user", "rep")
    rows = [json.loads(line) for line in exported.output.splitlines()]
    by_id = {r["message_id"]: r for r in rows}
    assert set(by_id) == {"q1@test.example", "q2@test.example"}
    assert by_id["q1@test.example"]["folder"] == "Inbox"
    assert by_id["q2@test.example"]["folder"] == "Sent"
    assert set(rows[0]) >= {
        "subject",
        "from",
        "to",
        "date",
        "status",
        "is_read",
        "is_important",
        "in_trash",
        "parent_type",
        "parent_id",
        "parent_name",
        "problems",
    }
    inbox_only = _cli(app, "export", "--user", "rep", "--folder", "Inbox").output.splitlines()
    assert len(inbox_only) == 1


def test_account_add_needs_the_password_variable(app, make_user):
    make_user("rep")
    result = _add_account(
        app,
        email="a@example.com",
        host="127.0.0.1",
        port=143,
        login="a",
        password_env="NOT_SET_ANYWHERE",
    )
    assert result.exit_code != 0 and "NOT_SET_ANYWHERE is not set" in result.output


def test_fetch_reports_errors_and_exits_non_zero(app, make_user, imap_server):
    from tests.support.dovecot import free_port

    make_user("rep")
    added = _add_account(
        app,
        "--since",
        "2020-01-01",
        email="a@example.com",
        host="127.0.0.1",
        port=free_port(),
        login="a",
        password_env="PW",
        env={"PW": "x"},
    )
    result = _cli(app, "fetch", "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["errors"] == {
        str(json.loads(added.output)["id"]): "host unreachable"
    }
