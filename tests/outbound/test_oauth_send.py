"""Sending from OAuth2 accounts with AUTH XOAUTH2 (aiosmtpd asking the local provider), and
mail of an account needing re-authorisation kept queued with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm import settings
from crm.accounts import manage, oauth
from crm.db import utcnow
from crm.models import MailAccount, OutboxEntry
from crm.outbound import drafts, outbox
from crm.outbound.drafts import DraftInput
from crm.outbound.sending import deliver_due
from tests.support.oauth_provider import make_oauth_account, smtp_token_check
from tests.support.smtp import SmtpServer


@pytest.fixture
def bearer_smtp(oauth_provider):
    server = SmtpServer(auth_require_tls=False, token_check=smtp_token_check(oauth_provider))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def oauth_account(db, services, rep, oauth_provider, oauth_imap_server, bearer_smtp):
    account_id = make_oauth_account(
        services, rep.id, oauth_provider, oauth_imap_server, bearer_smtp, email="rep@example.com"
    )
    settings.put(db, "undo_send_seconds", 0)
    db.commit()
    return account_id


def _queue(db, services, user):
    draft = DraftInput(
        from_address="rep@example.com",
        to="Ann Buyer <ann@customer.example>",
        subject="Offer",
        body="<p>Dear Ann,</p>",
    )
    handed = outbox.submit(db, services.blobs, user, drafts.save(db, services.blobs, user, draft))
    db.commit()
    return handed


def _entry(db, handed) -> OutboxEntry:
    db.expire_all()
    return db.get(OutboxEntry, handed.entry_id)


def test_mail_is_sent_with_auth_xoauth2(db, services, rep, oauth_account, bearer_smtp):
    handed = _queue(db, services, rep)
    assert [o.state for o in deliver_due(services)] == ["sent"]
    assert bearer_smtp.logins == [("XOAUTH2", "rep@example.com")]
    assert bearer_smtp.messages[0]["rcpt_tos"] == ["ann@customer.example"]
    assert _entry(db, handed).state == "sent"


def test_a_token_the_server_refuses_is_renewed_once(
    db, services, rep, oauth_account, bearer_smtp, oauth_provider
):
    oauth_provider.expire_all()  # ended early at the provider; our clock says it is fresh
    _queue(db, services, rep)
    assert [o.state for o in deliver_due(services)] == ["sent"]
    assert oauth_provider.refreshes == 1 and len(bearer_smtp.messages) == 1


def test_mail_of_an_account_needing_reauthorisation_stays_queued_with_the_reason(
    db, services, rep, oauth_account, bearer_smtp, oauth_provider, client
):
    oauth_provider.revoke("rep@example.com")
    with services.session() as session:
        session.get(MailAccount, oauth_account).oauth_expires_at = utcnow()
    handed = _queue(db, services, rep)
    deliver_due(services)
    entry = _entry(db, handed)
    assert entry.state == "queued" and "must be reconnected with Google" in entry.last_reply
    assert bearer_smtp.messages == []
    account = db.get(MailAccount, oauth_account)
    assert oauth.needs_reauthorisation(account)
    client.login("rep")
    page = client.get(f"/mail/{handed.email_id}").get_data(as_text=True)
    assert "Not sent yet: Mail account rep@example.com must be reconnected with Google" in page

    access, refresh = oauth_provider.grant("rep@example.com")
    grant = oauth.Grant("rep@example.com", access, refresh, utcnow() + timedelta(hours=1), "")
    manage.reconnect_oauth_account(db, services.secret_box, account, "google", grant)
    db.commit()
    with services.session() as session:  # its retry is due
        session.get(OutboxEntry, handed.entry_id).due_at = utcnow()
    assert [o.state for o in deliver_due(services)] == ["sent"]
    assert len(bearer_smtp.messages) == 1
