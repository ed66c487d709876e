"""IMAP login with XOAUTH2 against a Dovecot that asks the local OAuth2 provider."""

from __future__ import annotations

import pytest

from crm.mail.hosts import Endpoint
from crm.mail.imap import ImapConnection, ImapLoginRefused
from tests.support.dovecot import PASSWORD


def _endpoint(server) -> Endpoint:
    return Endpoint(server.host, server.host, server.port)


def test_imap_logs_in_with_an_access_token(oauth_imap_server, oauth_provider):
    email = f"{oauth_imap_server.new_user()}@example.com"
    access, _refresh = oauth_provider.grant(email)
    with ImapConnection(_endpoint(oauth_imap_server), "none", email, "", access_token=access) as c:
        assert "INBOX" in c.folders()


def test_an_expired_token_is_refused_and_the_socket_closed(oauth_imap_server, oauth_provider):
    email = f"{oauth_imap_server.new_user()}@example.com"
    access, _refresh = oauth_provider.grant(email)
    oauth_provider.expire(access)
    with pytest.raises(ImapLoginRefused) as caught:
        ImapConnection(_endpoint(oauth_imap_server), "none", email, "", access_token=access)
    assert "AUTHENTICATIONFAILED" in caught.value.reply
    assert access not in str(caught.value)


def test_a_token_is_never_taken_for_a_password(oauth_imap_server, oauth_provider):
    email = f"{oauth_imap_server.new_user()}@example.com"
    access, _refresh = oauth_provider.grant(email)
    with pytest.raises(ImapLoginRefused):
        ImapConnection(_endpoint(oauth_imap_server), "none", email, access)


def test_passwords_still_work_on_the_oauth_dovecot(oauth_imap_server):
    user = oauth_imap_server.new_user()
    with ImapConnection(_endpoint(oauth_imap_server), "none", user, PASSWORD) as conn:
        assert "INBOX" in conn.folders()


def test_dovecot_takes_oauthbearer_too(oauth_imap_server, oauth_provider):
    import imaplib

    from crm.mail.xoauth2 import oauthbearer

    email = f"{oauth_imap_server.new_user()}@example.com"
    access, _refresh = oauth_provider.grant(email)
    response = oauthbearer(email, access, oauth_imap_server.host, oauth_imap_server.port).encode()
    conn = imaplib.IMAP4(oauth_imap_server.host, oauth_imap_server.port, timeout=30)
    try:
        typ, _data = conn.authenticate("OAUTHBEARER", lambda challenge: response)
        assert typ == "OK"
    finally:
        conn.logout()
