"""The SMTP transport against a real aiosmtpd server on loopback (tests/support/smtp.py)."""

from __future__ import annotations

import time

import pytest

from crm.mail import smtp
from crm.mail.errors import SmtpError
from crm.mail.hosts import Endpoint
from crm.mail.smtp import (
    Delivery,
    Refusal,
    SmtpConnection,
    SmtpPermanent,
    SmtpSettings,
    SmtpTemporary,
    SmtpUnknown,
)
from tests.support.dovecot import free_port
from tests.support.smtp import SmtpServer

MESSAGE = b"From: a@x.example\r\nTo: b@x.example\r\nSubject: Hello\r\n\r\nHi there.\r\n"
TIMEOUT = 5


@pytest.fixture
def server_factory():
    servers: list[SmtpServer] = []

    def make(**options) -> SmtpServer:
        server = SmtpServer(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def settings_for(server: SmtpServer, security: str = "none", **kwargs) -> SmtpSettings:
    kwargs.setdefault("auth", server.login is not None)
    kwargs.setdefault("login", server.login or "")
    kwargs.setdefault("password", server.password)
    kwargs.setdefault("timeout", TIMEOUT)
    return SmtpSettings(Endpoint("localhost", "127.0.0.1", server.port), security, **kwargs)


def connect(server: SmtpServer, security: str = "none", **kwargs) -> SmtpConnection:
    context = server.ssl_context() if server.tls != "none" else None
    return SmtpConnection(settings_for(server, security, **kwargs), context)


def send_one(server, security="none", message=MESSAGE, recipients=("b@x.example",), **kwargs):
    with connect(server, security, **kwargs) as conn:
        return conn.send(message, "a@x.example", recipients)


# --- delivering ---------------------------------------------------------------------------


def test_plain_connection_delivers_the_bytes_with_crlf_and_dots_restored(server_factory):
    server = server_factory()
    raw = b"Subject: Dots\n\n.starts with a dot\n..two\nlast line without newline"
    delivery = send_one(server, message=raw, recipients=["b@x.example", "c@x.example"])
    assert delivery == Delivery(
        accepted=("b@x.example", "c@x.example"), refused=(), reply="250 2.0.0 OK: queued"
    )
    [stored] = server.messages
    assert stored["mail_from"] == "a@x.example"
    assert stored["rcpt_tos"] == ["b@x.example", "c@x.example"]
    assert stored["data"] == (
        b"Subject: Dots\r\n\r\n.starts with a dot\r\n..two\r\nlast line without newline\r\n"
    )


def test_a_large_message_goes_through_in_chunks(server_factory):
    server = server_factory(tls="starttls")
    body = b"".join(b".%06d some text to fill the line up a bit\r\n" % n for n in range(20000))
    send_one(server, "starttls", message=b"Subject: Big\r\n\r\n" + body)
    assert server.messages[0]["data"] == b"Subject: Big\r\n\r\n" + body
    assert len(body) > 10 * 64 * 1024


def test_starttls_with_auth_plain(server_factory):
    server = server_factory(tls="starttls", login="alice", password="s3cret")
    assert send_one(server, "starttls").accepted == ("b@x.example",)
    assert server.logins == [("PLAIN", "alice")]
    assert server.messages[0]["login"] == "alice"
    assert server.messages[0]["data"] == MESSAGE


def test_implicit_tls_with_auth_login(server_factory):
    server = server_factory(tls="ssl", login="alice", password="s3cret", auth_mechanisms=("LOGIN",))
    send_one(server, "ssl")
    assert server.logins == [("LOGIN", "alice")]
    assert len(server.messages) == 1


def test_auth_over_an_unencrypted_connection_when_the_server_allows_it(server_factory):
    server = server_factory(login="alice", password="s3cret", auth_require_tls=False)
    send_one(server, "none")
    assert server.logins == [("PLAIN", "alice")]


def test_non_ascii_password_is_sent_as_utf8(server_factory):
    server = server_factory(tls="starttls", login="jürgen", password="pässwörd")
    send_one(server, "starttls")
    assert server.logins == [("PLAIN", "jürgen")]


def test_test_connection_summarises_and_quits(server_factory):
    server = server_factory(tls="starttls", login="alice", password="s3cret")
    summary = smtp.test_connection(settings_for(server, "starttls"), server.ssl_context())
    assert summary.startswith(f"Connected to localhost:{server.port} (127.0.0.1)")
    assert "encrypted with STARTTLS (TLSv1." in summary
    assert "logged in as alice" in summary
    assert "220 localhost" in summary
    assert server.messages == []


def test_noop(server_factory):
    server = server_factory()
    with connect(server) as conn:
        assert conn.noop() == "250 OK"


# --- refusing to connect ------------------------------------------------------------------


def test_wrong_password_is_permanent_with_the_servers_words(server_factory):
    server = server_factory(tls="starttls", login="alice", password="s3cret")
    with pytest.raises(SmtpPermanent) as caught:
        send_one(server, "starttls", password="wrong")
    assert caught.value.code == 535
    assert caught.value.reply == "535 5.7.8 Authentication credentials invalid"
    assert "login name or password" in caught.value.plain
    assert server.logins == [] and server.messages == []


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_untrusted_certificate_is_refused_by_the_default_context(server_factory, tls):
    server = server_factory(tls=tls, login="alice", password="s3cret")
    conn = SmtpConnection(settings_for(server, tls))  # no context: the system's trust store
    with pytest.raises(SmtpPermanent) as caught:
        conn.open()
    assert "certificate could not be verified" in caught.value.plain
    assert server.logins == []  # the password never went out


def test_certificate_for_another_host_name_is_refused(server_factory):
    server = server_factory(tls="ssl")
    settings = SmtpSettings(
        Endpoint("mail.other.example", "127.0.0.1", server.port), "ssl", auth=False, timeout=5
    )
    with pytest.raises(SmtpPermanent, match="mail.other.example"):
        SmtpConnection(settings, server.ssl_context()).open()


def test_starttls_required_but_not_offered_is_refused(server_factory):
    server = server_factory(login="alice", password="s3cret", auth_require_tls=False)
    with pytest.raises(SmtpPermanent) as caught:
        send_one(server, "starttls")
    assert "does not offer STARTTLS" in caught.value.plain
    assert server.logins == [] and server.messages == []


def test_login_not_offered_without_encryption_is_refused(server_factory):
    server = server_factory(tls="starttls", require_starttls=False, login="a", password="b")
    with pytest.raises(SmtpPermanent, match="AUTH not offered") as caught:
        send_one(server, "none")
    assert "does not offer a login on an unencrypted connection" in caught.value.plain


def test_server_demanding_a_login_refuses_mail_from_without_one(server_factory):
    server = server_factory(tls="starttls", login="alice", password="s3cret")
    with pytest.raises(SmtpPermanent) as caught:
        send_one(server, "starttls", auth=False)
    assert caught.value.reply == "530 5.7.0 Authentication required"
    assert caught.value.plain.startswith("the mail server wants a login")  # not "the sender"


def test_nothing_listening_is_temporary():
    settings = SmtpSettings(Endpoint("localhost", "127.0.0.1", free_port()), "none", auth=False)
    with pytest.raises(SmtpTemporary) as caught:
        SmtpConnection(settings).open()
    assert "refused the connection" in caught.value.plain
    assert caught.value.code is None


def test_unknown_security_setting():
    settings = SmtpSettings(Endpoint("localhost", "127.0.0.1", 25), "tls")
    with pytest.raises(SmtpPermanent, match="unknown security"):
        SmtpConnection(settings)


def test_password_stays_out_of_the_settings_repr():
    settings = SmtpSettings(Endpoint("h", "127.0.0.1", 25), "ssl", "alice", "hunter2")
    assert "hunter2" not in repr(settings)


# --- refusing the message -----------------------------------------------------------------


def test_one_refused_recipient_is_listed_and_the_others_delivered(server_factory):
    server = server_factory(answer_rcpt={"bad@x.example": "550 5.1.1 No such user"})
    delivery = send_one(server, recipients=["b@x.example", "bad@x.example", "c@x.example"])
    assert delivery.accepted == ("b@x.example", "c@x.example")
    assert delivery.refused == (Refusal("bad@x.example", 550, "550 5.1.1 No such user"),)
    assert server.messages[0]["rcpt_tos"] == ["b@x.example", "c@x.example"]


def test_all_recipients_refused_is_permanent(server_factory):
    server = server_factory(
        answer_rcpt={"bad@x.example": "550 5.1.1 No such user", "full@x.example": "452 4.2.2 Full"}
    )
    with pytest.raises(SmtpPermanent) as caught:
        send_one(server, recipients=["bad@x.example", "full@x.example"])
    assert caught.value.refused == (
        Refusal("bad@x.example", 550, "550 5.1.1 No such user"),
        Refusal("full@x.example", 452, "452 4.2.2 Full"),
    )
    assert "every recipient" in caught.value.plain
    assert server.messages == []


def test_all_recipients_refused_with_4xx_is_temporary(server_factory):
    server = server_factory(answer_rcpt={"full@x.example": "452 4.2.2 Mailbox full"})
    with pytest.raises(SmtpTemporary) as caught:
        send_one(server, recipients=["full@x.example"])
    assert caught.value.code == 452
    assert caught.value.reply == "full@x.example: 452 4.2.2 Mailbox full"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("553 5.7.1 Sender not allowed", SmtpPermanent), ("451 4.7.1 Greylisted", SmtpTemporary)],
)
def test_sender_refused(server_factory, answer, kind):
    server = server_factory(answer_mail=answer)
    with pytest.raises(kind) as caught:
        send_one(server)
    assert caught.value.reply == answer
    assert caught.value.code == int(answer[:3])
    assert server.messages == []


def test_4xx_after_the_data_is_temporary(server_factory):
    server = server_factory(answer_data="451 4.3.0 Try later")
    with pytest.raises(SmtpTemporary) as caught:
        send_one(server)
    assert (caught.value.code, caught.value.reply) == (451, "451 4.3.0 Try later")
    assert server.messages == []


def test_5xx_after_the_data_is_permanent(server_factory):
    server = server_factory(answer_data="554 5.7.1 Message rejected as spam")
    with pytest.raises(SmtpPermanent) as caught:
        send_one(server)
    assert (caught.value.code, caught.value.reply) == (554, "554 5.7.1 Message rejected as spam")


def test_data_command_refused_is_permanent(server_factory):
    server = server_factory(answer_data_command="554 5.5.1 No valid recipients")
    with pytest.raises(SmtpPermanent, match="No valid recipients"):
        send_one(server)
    assert server.messages == []


@pytest.mark.parametrize("bad", ["b@x.example\r\nRCPT TO:<evil@x.example>", "<b@x.example>", ""])
def test_invalid_recipient_is_refused_before_anything_is_sent(server_factory, bad):
    server = server_factory()
    with connect(server) as conn, pytest.raises(SmtpPermanent) as caught:
        conn.send(MESSAGE, "a@x.example", [bad])
    assert "is not an address" in caught.value.plain
    assert server.messages == []


# --- losing the connection ----------------------------------------------------------------


def test_drop_before_data_is_temporary_and_nothing_is_stored(server_factory):
    server = server_factory(drop="before_data")
    with pytest.raises(SmtpTemporary) as caught:
        send_one(server)
    assert caught.value.code is None
    assert "lost" in caught.value.plain
    assert server.messages == []


def test_drop_after_the_dot_is_unknown_and_the_server_has_the_message(server_factory):
    server = server_factory(drop="after_dot")
    with pytest.raises(SmtpUnknown) as caught:
        send_one(server)
    assert "may have been delivered" in caught.value.plain
    assert isinstance(caught.value, SmtpError)
    assert [m["data"] for m in server.messages] == [MESSAGE]


def test_timeout_before_data_is_temporary(server_factory):
    server = server_factory(hang="before_data")
    with pytest.raises(SmtpTemporary) as caught:
        send_one(server, timeout=0.5)
    assert "did not answer in time" in caught.value.plain


def test_timeout_after_the_dot_is_unknown(server_factory):
    server = server_factory(hang="after_dot")
    with pytest.raises(SmtpUnknown) as caught:
        send_one(server, timeout=0.5)
    assert "did not confirm the message in time" in caught.value.plain
    assert len(server.messages) == 1


# --- one connection, many messages --------------------------------------------------------


def test_three_messages_over_one_connection(server_factory):
    server = server_factory(tls="starttls", login="alice", password="s3cret")
    with connect(server, "starttls") as conn:
        for n in range(3):
            conn.send(MESSAGE + b"%d\r\n" % n, "a@x.example", ["b@x.example"])
    assert server.connections == 1
    assert server.logins == [("PLAIN", "alice")]
    assert [m["connection"] for m in server.messages] == [1, 1, 1]
    assert [m["data"][-3:] for m in server.messages] == [b"0\r\n", b"1\r\n", b"2\r\n"]


@pytest.mark.parametrize(
    "failure",
    [
        {"answer_rcpt": {"b@x.example": "550 5.1.1 No such user"}},
        {"answer_data": "554 5.7.1 Rejected"},
        {"answer_data_command": "451 4.3.0 Not now"},
        {"answer_mail": "451 4.7.1 Greylisted"},
    ],
)
def test_after_a_refused_transaction_the_next_send_works_on_the_same_connection(
    server_factory, failure
):
    server = server_factory(fail_times=1, **failure)
    with connect(server) as conn:
        with pytest.raises((SmtpPermanent, SmtpTemporary)):
            conn.send(MESSAGE, "a@x.example", ["b@x.example"])
        delivery = conn.send(MESSAGE, "a@x.example", ["b@x.example"])
    assert delivery.accepted == ("b@x.example",)
    assert server.connections == 1
    assert len(server.messages) == 1


def test_after_a_lost_connection_the_next_send_reconnects(server_factory):
    server = server_factory(drop="after_dot", fail_times=1)
    with connect(server) as conn:
        with pytest.raises(SmtpUnknown):
            conn.send(MESSAGE, "a@x.example", ["b@x.example"])
        conn.send(MESSAGE, "a@x.example", ["c@x.example"])
    assert server.connections == 2
    assert [(m["rcpt_tos"], m["connection"]) for m in server.messages] == [
        (["b@x.example"], 1),
        (["c@x.example"], 2),
    ]


def test_connection_the_server_closed_while_idle_is_reopened_once(server_factory):
    server = server_factory(idle_timeout=0.3)
    with connect(server) as conn:
        conn.send(MESSAGE, "a@x.example", ["b@x.example"])
        time.sleep(0.8)
        conn.send(MESSAGE, "a@x.example", ["c@x.example"])
    assert server.connections == 2
    assert len(server.messages) == 2


def test_fail_times_then_normal_answers(server_factory):
    server = server_factory(answer_data="451 4.3.0 Try later", fail_times=2)
    with connect(server) as conn:
        for _ in range(2):
            with pytest.raises(SmtpTemporary):
                conn.send(MESSAGE, "a@x.example", ["b@x.example"])
        conn.send(MESSAGE, "a@x.example", ["b@x.example"])
    assert len(server.messages) == 1 and server.connections == 1


def test_send_after_close_is_a_programming_error(server_factory):
    server = server_factory()
    with connect(server) as conn:
        pass
    with pytest.raises(RuntimeError):
        conn.send(MESSAGE, "a@x.example", ["b@x.example"])
