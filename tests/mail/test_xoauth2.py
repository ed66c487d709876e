"""SASL bearer-token responses, and AUTH XOAUTH2 against the aiosmtpd fixture."""

from __future__ import annotations

import base64

import pytest

from crm.mail.hosts import Endpoint
from crm.mail.smtp import SmtpConnection, SmtpPermanent, SmtpSettings
from crm.mail.xoauth2 import oauthbearer, xoauth2
from tests.support.smtp import SmtpServer


def test_xoauth2_response_has_google_layout():
    assert xoauth2("a@x.example", "tok") == "user=a@x.example\x01auth=Bearer tok\x01\x01"


def test_oauthbearer_response_follows_rfc_7628():
    assert oauthbearer("a,b=@x.example", "tok", "imap.x.example", 993) == (
        "n,a=a=2Cb=3D@x.example,\x01host=imap.x.example\x01port=993\x01auth=Bearer tok\x01\x01"
    )


@pytest.mark.parametrize("user,token", [("", "t"), ("a", ""), ("a\x01b", "t"), ("a", "t\x01")])
def test_missing_or_smuggling_fields_are_refused(user, token):
    with pytest.raises(ValueError):
        xoauth2(user, token)


@pytest.fixture
def bearer_server():
    server = SmtpServer(
        auth_require_tls=False, token_check=lambda login, token: token == f"good-{login}"
    ).start()
    yield server
    server.stop()


def _settings(server, **kwargs) -> SmtpSettings:
    endpoint = Endpoint(server.host, server.host, server.port)
    return SmtpSettings(endpoint, "none", login="a@x.example", **kwargs)


def test_smtp_sends_after_auth_xoauth2(bearer_server):
    with SmtpConnection(_settings(bearer_server, access_token="good-a@x.example")) as conn:
        conn.send(b"Subject: hi\r\n\r\nhi\r\n", "a@x.example", ["b@y.example"])
    assert bearer_server.logins == [("XOAUTH2", "a@x.example")]
    assert bearer_server.messages[0]["login"] == "a@x.example"


def test_refused_token_is_a_permanent_login_failure(bearer_server):
    with pytest.raises(SmtpPermanent) as caught:
        SmtpConnection(_settings(bearer_server, access_token="stale")).open()
    assert caught.value.code == 535
    assert "stale" not in str(caught.value) and "stale" not in (caught.value.reply or "")


def test_refused_token_is_renewed_once(bearer_server):
    renewals = []

    def renew():
        renewals.append(1)
        return "good-a@x.example"

    with SmtpConnection(_settings(bearer_server, access_token="stale", renew_token=renew)):
        pass
    assert len(renewals) == 1
    assert bearer_server.logins == [("XOAUTH2", "a@x.example")]


def test_the_smtp_fixture_takes_oauthbearer(bearer_server):
    import smtplib

    with smtplib.SMTP(bearer_server.host, bearer_server.port, timeout=30) as client:
        client.ehlo()
        code, _ = client.docmd(
            "AUTH",
            "OAUTHBEARER "
            + base64.b64encode(oauthbearer("a@x.example", "good-a@x.example").encode()).decode(),
        )
    assert code == 235 and bearer_server.logins == [("OAUTHBEARER", "a@x.example")]
