"""`flask crm send | outbox run | outbox list | send-test` and `account add --smtp-*`, end to end:
the command line, the database, Redis and the real (scriptable) SMTP server on loopback."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest

from crm import settings
from crm.accounts import manage
from crm.mail import threadtoken
from crm.models import Email, MailAccount, OutboxEntry
from crm.queue import mail_queue, send_job_id
from crm.records.linking import session_key
from tests.factories import make_email
from tests.support import records
from tests.support.smtp import SmtpServer


def _cli(app, *args, env=None):
    return app.test_cli_runner().invoke(args=["crm", *args], env=env)


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _add_smtp_account(app, server, *more, email="rep@example.com", env=None) -> int:
    """`crm account add` for rep with only SMTP settings (no --host), on the test server."""
    result = _cli(
        app,
        "account", "add", "--user", "rep", "--email", email,
        "--smtp-host", server.host, "--smtp-port", str(server.port), "--smtp-security", "none",
        *more,
        env=env,
    )  # fmt: skip
    return json.loads(_ok(result))["id"]


@pytest.fixture
def rep(make_user):
    return make_user("rep", ["rep@example.com"], name="Rita Rep")


@pytest.fixture
def account_id(app, services, rep, smtp_server):
    """rep's SMTP-only account, added with the command line; mail leaves at once (no undo)."""
    added = _add_smtp_account(app, smtp_server)
    with services.session() as session:
        settings.put(session, "undo_send_seconds", 0)
    return added


@pytest.fixture
def body(tmp_path):
    path = tmp_path / "body.txt"
    # The lone dot line must survive dot-stuffing; "Grüße" needs an encoding.
    path.write_text("Dear Ann,\n\nour offer is attached.\n.\nGrüße, Rita\n", encoding="utf-8")
    return str(path)


def _send(app, body, *more, to=("Ann Buyer <ann@customer.example>",), subject="Offer"):
    args = ["send", "--user", "rep", "--from", "rep@example.com", "--subject", subject]
    for address in to:
        args += ["--to", address]
    return _cli(app, *args, "--text-file", body, *more)


def _received(message) -> object:
    return message_from_bytes(message["data"], policy=policy.default)


# --- account add ---------------------------------------------------------------------------


def test_account_add_takes_smtp_settings_without_an_imap_host(app, db, services, rep, smtp_server):
    account_id = _add_smtp_account(
        app, smtp_server, "--smtp-login", "rita", "--smtp-password-env", "SMTP_PW",
        env={"SMTP_PW": "s3cret"},
    )  # fmt: skip
    account = db.get(MailAccount, account_id)
    assert (account.imap_host, account.fetch_since) == ("", None)  # nothing to fetch
    assert (account.smtp_host, account.smtp_port, account.smtp_security) == (
        smtp_server.host,
        smtp_server.port,
        "none",
    )
    assert (account.smtp_auth, account.smtp_login, account.store_sent) == (True, "rita", False)
    assert b"s3cret" not in account.smtp_password_enc  # sealed
    assert manage.smtp_password(account, services.secret_box) == "s3cret"


def test_account_add_needs_some_server(app, rep):
    result = _cli(app, "account", "add", "--user", "rep", "--email", "rep@example.com")
    assert result.exit_code != 0 and "--smtp-host" in result.output


def test_account_add_smtp_password_variable_must_be_set(app, rep, smtp_server):
    result = _cli(
        app,
        "account", "add", "--user", "rep", "--email", "rep@example.com",
        "--smtp-host", smtp_server.host, "--smtp-password-env", "NOT_SET_ANYWHERE_SMTP",
    )  # fmt: skip
    assert result.exit_code != 0 and "NOT_SET_ANYWHERE_SMTP is not set" in result.output


def test_the_smtp_login_and_password_are_used(app, rep):
    server = SmtpServer(login="rita", password="s3cret", auth_require_tls=False).start()
    try:
        account_id = _add_smtp_account(
            app, server, "--smtp-login", "rita", "--smtp-password-env", "SMTP_PW",
            env={"SMTP_PW": "s3cret"},
        )  # fmt: skip
        out = _ok(_cli(app, "send-test", "--account", str(account_id), "--to", "a@b.example"))
        assert out.strip() == "250 2.0.0 OK: queued"
        assert [login for _, login in server.logins] == ["rita"]
        assert [m["login"] for m in server.messages] == ["rita"]
    finally:
        server.stop()


def test_store_sent_without_an_imap_server_is_refused(app, rep, smtp_server):
    result = _cli(
        app,
        "account", "add", "--user", "rep", "--email", "rep@example.com",
        "--smtp-host", smtp_server.host, "--smtp-port", str(smtp_server.port), "--store-sent",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--store-sent needs --host" in result.output


# --- send ----------------------------------------------------------------------------------


def test_send_prints_id_status_and_message_id_and_queues_the_job(
    app, db, redis, account_id, body, smtp_server
):
    out = _ok(_send(app, body))
    fields = dict(part.split("=", 1) for part in out.split())
    assert set(fields) == {"id", "outbox_id", "status", "due_at", "message_id"}
    assert fields["status"] == "queued"
    email = db.get(Email, int(fields["id"]))
    assert fields["message_id"] == f"<{email.message_id}>"
    assert email.status == "Sending"
    assert db.get(OutboxEntry, int(fields["outbox_id"])).email_id == email.id
    # The job the worker runs is queued after the commit, for the second the row is due.
    queued = mail_queue(redis).job_ids
    due_at = db.get(OutboxEntry, int(fields["outbox_id"])).due_at
    assert queued == [send_job_id(due_at)]
    assert smtp_server.messages == []  # the command only queues


def test_send_json_and_the_mail_the_server_receives(app, db, account_id, body, smtp_server):
    sent = json.loads(
        _ok(_send(app, body, "--json", "--cc", "boss@customer.example", "--bcc", "audit@x.example"))
    )
    assert sent["status"] == "queued" and sent["message_id"].startswith("<")
    [outcome] = _json_lines(_ok(_cli(app, "outbox", "run", "--json")))
    assert outcome == {
        "email_id": sent["id"],
        "outbox_id": sent["outbox_id"],
        "state": "sent",
        "reply": "250 2.0.0 OK: queued",
        "refused": [],
    }
    [received] = smtp_server.messages
    assert received["mail_from"] == "rep@example.com"
    assert sorted(received["rcpt_tos"]) == [
        "ann@customer.example",
        "audit@x.example",
        "boss@customer.example",
    ]
    parsed = _received(received)
    assert parsed["Message-ID"] == sent["message_id"]
    assert (parsed["Subject"], parsed["From"]) == ("Offer", "Rita Rep <rep@example.com>")
    assert "Bcc" not in parsed
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "our offer is attached.\n.\nGrüße, Rita" in text
    db.expire_all()
    assert db.get(Email, sent["id"]).status == "Sent"


def test_a_refused_sender_exits_non_zero_with_the_reason(app, db, account_id, body):
    result = _cli(
        app, "send", "--user", "rep", "--from", "ceo@example.com", "--to", "a@b.example",
        "--subject", "Hi", "--text-file", body,
    )  # fmt: skip
    assert result.exit_code != 0
    assert "You may not send from ceo@example.com" in result.output
    assert db.query(OutboxEntry).count() == 0


def test_an_address_without_smtp_exits_non_zero_with_the_reason(app, db, make_user, body):
    make_user("rep", ["rep@example.com"])
    result = _send(app, body)
    assert result.exit_code != 0
    assert "No SMTP account can send from rep@example.com" in result.output


def test_a_subject_with_a_line_break_exits_non_zero(app, db, account_id, body, smtp_server):
    result = _send(app, body, subject="Offer\r\nBcc: victim@evil.example")
    assert result.exit_code != 0 and "line break" in result.output
    assert db.query(OutboxEntry).count() == 0
    assert _ok(_cli(app, "outbox", "run")).strip() == "nothing due"
    assert smtp_server.messages == []


def test_an_attachment_name_with_a_line_break_exits_non_zero(
    app, db, account_id, body, tmp_path, smtp_server
):
    evil = tmp_path / "offer.pdf\nBcc: victim@evil.example"
    evil.write_bytes(b"%PDF-1.4\n")
    result = _send(app, body, "--attach", str(evil))
    assert result.exit_code != 0
    assert "attachment filename contains a line break" in result.output
    assert db.query(OutboxEntry).count() == 0 and smtp_server.messages == []


def test_a_sender_name_with_a_line_break_exits_non_zero(app, db, make_user, body, smtp_server):
    make_user("rep", ["rep@example.com"], name="Rita\r\nBcc: victim@evil.example")
    _add_smtp_account(app, smtp_server)
    result = _send(app, body)
    assert result.exit_code != 0 and "line break" in result.output
    assert db.query(OutboxEntry).count() == 0


def test_send_needs_exactly_one_body(app, account_id, body):
    result = _cli(app, "send", "--user", "rep", "--from", "rep@example.com", "--to", "a@b.example",
                  "--subject", "Hi")  # fmt: skip
    assert result.exit_code != 0 and "exactly one of --text-file and --html-file" in result.output


def test_send_html_file(app, account_id, tmp_path, smtp_server):
    page = tmp_path / "body.html"
    page.write_text("<p>Dear Ann,</p><p>our <b>offer</b>.</p><script>x()</script>")
    _ok(_cli(app, "send", "--user", "rep", "--from", "rep@example.com", "--to", "a@b.example",
             "--subject", "Hi", "--html-file", str(page)))  # fmt: skip
    _ok(_cli(app, "outbox", "run"))
    parsed = _received(smtp_server.messages[0])
    html = parsed.get_body(("html",)).get_content()
    assert "<b>offer</b>" in html and "<script" not in html
    assert "offer" in parsed.get_body(("plain",)).get_content()


def test_attach(app, account_id, body, tmp_path, smtp_server):
    pdf = tmp_path / "Angebot Müller.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40)
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\n.\nline three\n")
    _ok(_send(app, body, "--attach", str(pdf), "--attach", str(notes)))
    _ok(_cli(app, "outbox", "run"))
    parsed = _received(smtp_server.messages[0])
    parts = {p.get_filename(): p for p in parsed.iter_attachments()}
    assert set(parts) == {"Angebot Müller.pdf", "notes.txt"}
    assert parts["Angebot Müller.pdf"].get_content_type() == "application/pdf"
    assert parts["Angebot Müller.pdf"].get_content() == pdf.read_bytes()
    assert parts["notes.txt"].get_content().replace("\r\n", "\n") == notes.read_text()


def test_parent_puts_the_record_in_the_message_id(
    app, db, services, rep, account_id, body, smtp_server
):
    account = records.account(db, "Acme", assigned_user_id=rep)  # a record rep may read
    db.commit()
    sent = json.loads(_ok(_send(app, body, "--parent", f"Account:{account.id}", "--json")))
    email = db.get(Email, sent["id"])
    assert (email.parent_type, email.parent_id) == ("Account", account.id)
    key = session_key(db)
    assert threadtoken.parse_token(key, sent["message_id"]) == ("Account", account.id)
    _ok(_cli(app, "outbox", "run"))
    received_id = _received(smtp_server.messages[0])["Message-ID"]
    assert received_id == sent["message_id"]


def test_a_record_the_user_may_not_read_is_refused(app, db, make_user, account_id, body):
    """--parent acts as the user: mail is not put into the History of a record they cannot
    open (another user's account)."""
    other = make_user("otto", ["otto@example.com"])
    theirs = records.account(db, "Otto's customer", assigned_user_id=other)
    db.commit()
    result = _send(app, body, "--parent", f"Account:{theirs.id}")
    assert result.exit_code != 0 and "not one you may open" in result.output
    assert db.query(OutboxEntry).count() == 0


@pytest.mark.parametrize(
    ("parent", "words"),
    [
        ("Account", "--parent must be TYPE:ID"),
        ("Account:x", "--parent must be TYPE:ID"),
        ("Account:999999", "the chosen record does not exist"),
        ("Nonsense:1", "the chosen record does not exist"),
    ],
)
def test_a_bad_parent_exits_non_zero(app, db, account_id, body, parent, words):
    result = _send(app, body, "--parent", parent)
    assert result.exit_code != 0 and words in result.output
    assert db.query(OutboxEntry).count() == 0


def test_reply_to_mail_sets_in_reply_to_and_references(app, db, rep, account_id, body, smtp_server):
    acme = records.account(db, "Acme")
    original = make_email(
        db,
        users=[rep],
        subject="Question",
        message_id="q2@customer.example",
        in_reply_to="q1@customer.example",
        references=["q0@customer.example", "q1@customer.example"],
        parent=acme,
    )
    db.commit()
    sent = json.loads(
        _ok(_send(app, body, "--reply-to-mail", str(original.id), "--json", subject="Re: Question"))
    )
    email = db.get(Email, sent["id"])
    assert (email.parent_type, email.parent_id) == ("Account", acme.id)  # the thread's record
    _ok(_cli(app, "outbox", "run"))
    parsed = _received(smtp_server.messages[0])
    assert parsed["In-Reply-To"] == "<q2@customer.example>"
    assert parsed["References"].split() == [
        "<q0@customer.example>",
        "<q1@customer.example>",
        "<q2@customer.example>",
    ]


def test_reply_to_a_missing_mail_exits_non_zero(app, account_id, body):
    result = _send(app, body, "--reply-to-mail", "999999")
    assert result.exit_code != 0 and "no mail 999999" in result.output


# --- outbox run / list ---------------------------------------------------------------------


def test_outbox_run_json_prints_every_outcome_with_the_servers_reply(
    app, account_id, body, smtp_server
):
    first = json.loads(_ok(_send(app, body, "--json", subject="First")))
    second = json.loads(_ok(_send(app, body, "--json", subject="Second")))
    smtp_server.script(answer_data="554 5.7.1 Message rejected as spam", fail_times=1)
    rows = _json_lines(_ok(_cli(app, "outbox", "run", "--json")))
    by_id = {r["outbox_id"]: r for r in rows}
    assert set(by_id) == {first["outbox_id"], second["outbox_id"]}
    assert by_id[first["outbox_id"]]["state"] == "failed"
    assert by_id[first["outbox_id"]]["reply"] == "554 5.7.1 Message rejected as spam"
    assert by_id[second["outbox_id"]]["state"] == "sent"
    assert by_id[second["outbox_id"]]["reply"] == "250 2.0.0 OK: queued"
    assert smtp_server.connections == 1  # both over one connection
    assert _cli(app, "outbox", "run", "--json").output == ""  # nothing twice


def test_outbox_run_plain_lines(app, account_id, body, smtp_server):
    sent = json.loads(_ok(_send(app, body, "--json")))
    out = _ok(_cli(app, "outbox", "run"))
    assert out.startswith(f"email_id={sent['id']} outbox_id={sent['outbox_id']} state=sent ")
    assert "reply=250 2.0.0 OK: queued" in out


def test_outbox_run_leaves_mail_inside_its_undo_time(app, services, account_id, body, smtp_server):
    with services.session() as session:
        settings.put(session, "undo_send_seconds", 300)
    sent = json.loads(_ok(_send(app, body, "--json")))
    assert _ok(_cli(app, "outbox", "run")).strip() == "nothing due"
    [row] = _json_lines(_ok(_cli(app, "outbox", "list", "--json")))
    assert (row["outbox_id"], row["state"], row["attempts"]) == (sent["outbox_id"], "queued", 0)
    assert (row["due_at"], row["held"]) == (sent["due_at"], False)  # a real time, not held
    line = _ok(_cli(app, "outbox", "list")).strip()
    assert f" state=queued attempts=0 due_at={sent['due_at']} last_reply=" in line
    assert "held" not in line
    assert smtp_server.messages == []


def test_outbox_list_json_shows_state_attempts_reply_and_refused_recipients(
    app, account_id, body, smtp_server
):
    smtp_server.script(answer_rcpt={"gone@customer.example": "550 5.1.1 No such user"})
    sent = json.loads(
        _ok(_send(app, body, "--json", to=("ann@customer.example", "gone@customer.example")))
    )
    [outcome] = _json_lines(_ok(_cli(app, "outbox", "run", "--json")))
    assert outcome["state"] == "sent"
    refused = [{"address": "gone@customer.example", "code": 550, "reply": "550 5.1.1 No such user"}]
    assert outcome["refused"] == refused
    [row] = _json_lines(_ok(_cli(app, "outbox", "list", "--json")))
    assert row["outbox_id"] == sent["outbox_id"] and row["email_id"] == sent["id"]
    assert (row["state"], row["attempts"]) == ("sent", 1)
    assert row["last_reply"] == "250 2.0.0 OK: queued"
    assert row["refused"] == refused
    assert smtp_server.messages[0]["rcpt_tos"] == ["ann@customer.example"]


def test_outbox_list_shows_a_temporary_failure_queued_again(app, account_id, body, smtp_server):
    smtp_server.script(answer_data="451 4.3.0 Try again later", fail_times=1)
    _ok(_send(app, body))
    [outcome] = _json_lines(_ok(_cli(app, "outbox", "run", "--json")))
    assert (outcome["state"], outcome["reply"]) == ("queued", "451 4.3.0 Try again later")
    [row] = _json_lines(_ok(_cli(app, "outbox", "list", "--json")))
    assert (row["state"], row["attempts"], row["last_reply"]) == (
        "queued",
        1,
        "451 4.3.0 Try again later",
    )
    assert smtp_server.messages == []


def test_outbox_list_newest_first_and_every_recipient_refused(app, account_id, body, smtp_server):
    smtp_server.script(answer_rcpt={"gone@customer.example": "550 5.1.1 No such user"})
    first = json.loads(_ok(_send(app, body, "--json", to=("gone@customer.example",))))
    second = json.loads(_ok(_send(app, body, "--json")))
    _ok(_cli(app, "outbox", "run"))
    rows = _json_lines(_ok(_cli(app, "outbox", "list", "--json")))
    assert [r["outbox_id"] for r in rows] == [second["outbox_id"], first["outbox_id"]]
    assert rows[1]["state"] == "failed" and "550 5.1.1 No such user" in rows[1]["last_reply"]
    assert rows[1]["refused"] == [
        {"address": "gone@customer.example", "code": 550, "reply": "550 5.1.1 No such user"}
    ]


# --- send-test -----------------------------------------------------------------------------


def test_send_test_prints_the_servers_reply(app, account_id, smtp_server):
    out = _ok(_cli(app, "send-test", "--account", str(account_id), "--to", "ann@customer.example"))
    assert out.strip() == "250 2.0.0 OK: queued"
    [received] = smtp_server.messages
    assert received["rcpt_tos"] == ["ann@customer.example"]
    assert _received(received)["Subject"] == "Test e-mail from Mail CRM"


def test_send_test_fails_clearly_on_a_refusal(app, account_id, smtp_server):
    smtp_server.script(answer_rcpt={"gone@customer.example": "550 5.1.1 No such user"})
    result = _cli(app, "send-test", "--account", str(account_id), "--to", "gone@customer.example")
    assert result.exit_code == 1
    assert result.output == "Error: gone@customer.example: 550 5.1.1 No such user\n"
    assert smtp_server.messages == []


def test_send_test_fails_clearly_when_nothing_listens(app, db, account_id):
    from tests.support.dovecot import free_port

    db.get(MailAccount, account_id).smtp_port = free_port()
    db.commit()
    result = _cli(app, "send-test", "--account", str(account_id), "--to", "ann@customer.example")
    assert result.exit_code == 1  # a ClickException, not a traceback
    assert result.output == "Error: the mail server refused the connection (port closed)\n"


def test_send_test_needs_an_account_with_smtp(app, account_id):
    result = _cli(app, "send-test", "--account", "999999", "--to", "a@b.example")
    assert result.exit_code != 0 and "account 999999 has no SMTP settings" in result.output
