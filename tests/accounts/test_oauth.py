"""OAuth2 accounts against the local provider: the connect flow (state, PKCE), tokens kept
fresh (ahead of expiry, rotated refresh tokens stored, invalid_grant, network errors) and two
workers that refresh at once."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from crm.accounts import oauth, tokens
from crm.db import utcnow
from crm.models import MailAccount, Notification
from tests.support.oauth_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    configure,
    make_oauth_account,
)

REDIRECT = "http://127.0.0.1:5000/accounts/oauth/callback"


def _args(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _account(services, account_id) -> MailAccount:
    with services.Session() as session:
        return session.get(MailAccount, account_id)


def _refresher(services, **kwargs) -> tokens.Refresher:
    sessions = sessionmaker(bind=services.engine, expire_on_commit=False)
    return tokens.Refresher(sessions, services.secret_box, sleep=lambda _s: None, **kwargs)


def _stored_refresh_token(services, account_id) -> str:
    account = _account(services, account_id)
    return oauth.open_token(account, services.secret_box, "oauth_refresh_token")


def _expire_soon(services, account_id, within=timedelta(minutes=1)) -> None:
    with services.session() as session:
        session.get(MailAccount, account_id).oauth_expires_at = utcnow() + within


@pytest.fixture
def configured(db, services, oauth_provider, oauth_imap_server):
    configure(db, services.secret_box, oauth_provider, oauth_imap_server)
    db.commit()
    return oauth_provider


# --- the connect flow ---------------------------------------------------------------------


def test_connect_flow_sends_state_and_pkce_and_gets_tokens(db, services, configured):
    url, pending = oauth.start_flow(
        db, services.secret_box, "google", REDIRECT, login_hint="ann@example.com"
    )
    asked = _args(url)
    assert url.startswith(configured.url + "/authorize?")
    assert asked["state"] == pending["state"] and len(pending["state"]) >= 20
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert pending["verifier"] not in url  # only its hash travels
    assert (asked["access_type"], asked["client_id"]) == ("offline", CLIENT_ID)
    assert "https://mail.google.com/" in asked["scope"]
    back = configured.consent_redirect(url, "ann@example.com")
    grant = oauth.finish_flow(db, services.secret_box, pending, _args(back))
    assert grant.email == "ann@example.com"
    assert configured.owner(grant.access_token) == "ann@example.com"
    assert grant.refresh_token in configured.refresh


def test_a_forged_state_is_refused_and_the_code_not_spent(db, services, configured):
    url, pending = oauth.start_flow(db, services.secret_box, "google", REDIRECT)
    args = _args(configured.consent_redirect(url, "ann@example.com"))
    forged = dict(args, state="forged-" + args["state"])
    with pytest.raises(oauth.OAuthFlowError, match="does not belong to this session"):
        oauth.finish_flow(db, services.secret_box, pending, forged)
    assert args["code"] in configured.codes  # never traded
    with pytest.raises(oauth.OAuthFlowError, match="not started here"):
        oauth.finish_flow(db, services.secret_box, None, args)


def test_a_wrong_pkce_verifier_is_refused_by_the_provider(db, services, configured):
    url, pending = oauth.start_flow(db, services.secret_box, "google", REDIRECT)
    args = _args(configured.consent_redirect(url, "ann@example.com"))
    with pytest.raises(oauth.OAuthFlowError, match="invalid_grant"):
        oauth.finish_flow(db, services.secret_box, dict(pending, verifier="x" * 64), args)


def test_a_sign_in_left_too_long_must_start_again(db, services, configured):
    url, pending = oauth.start_flow(db, services.secret_box, "google", REDIRECT)
    args = _args(configured.consent_redirect(url, "ann@example.com"))
    stale = dict(pending, started=pending["started"] - oauth.FLOW_SECONDS - 1)
    with pytest.raises(oauth.OAuthFlowError, match="took too long"):
        oauth.finish_flow(db, services.secret_box, stale, args)


def test_a_denied_consent_is_a_plain_error(db, services, configured):
    _url, pending = oauth.start_flow(db, services.secret_box, "google", REDIRECT)
    args = {"error": "access_denied", "state": pending["state"]}
    with pytest.raises(oauth.OAuthFlowError, match="did not grant access"):
        oauth.finish_flow(db, services.secret_box, pending, args)


def test_an_unconfigured_provider_cannot_be_started(db, services):
    with pytest.raises(oauth.OAuthFlowError, match="not set up Microsoft"):
        oauth.start_flow(db, services.secret_box, "microsoft", REDIRECT)


def test_real_endpoints_are_the_defaults(db, services):
    oauth.save_provider_config(db, services.secret_box, "microsoft", {"client_id": "c"})
    config = oauth.provider_config(db, services.secret_box, "microsoft")
    assert config.provider.authorize_url == (
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
    )
    assert config.provider.imap_host == "outlook.office365.com"
    google = oauth.provider_config(db, services.secret_box, "google").provider
    assert google.token_url == "https://oauth2.googleapis.com/token"
    assert google.sent_folder == "[Gmail]/Sent Mail"


def test_client_secret_is_sealed_at_rest(db, services, configured):
    from crm.models import Setting

    row = db.get(Setting, "oauth_google")
    assert CLIENT_SECRET not in str(row.value)
    assert oauth.provider_config(db, services.secret_box, "google").client_secret == CLIENT_SECRET


# --- fresh tokens -------------------------------------------------------------------------


def test_a_fresh_token_is_used_as_it_is(services, make_user, oauth_provider, oauth_imap_server):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    token = _refresher(services).access_token(account_id)
    assert oauth_provider.owner(token) and oauth_provider.refreshes == 0


def test_a_token_is_refreshed_ahead_of_expiry_and_the_rotated_refresh_token_stored(
    db, services, oauth_provider, oauth_imap_server
):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    old_refresh = _stored_refresh_token(services, account_id)
    _expire_soon(services, account_id)
    token = _refresher(services).access_token(account_id)
    assert oauth_provider.refreshes == 1 and oauth_provider.owner(token)
    new_refresh = _stored_refresh_token(services, account_id)
    assert new_refresh != old_refresh and new_refresh in oauth_provider.refresh
    account = _account(services, account_id)
    assert account.oauth_expires_at > utcnow() + timedelta(minutes=50)
    assert token.encode() not in account.oauth_access_token_enc  # sealed at rest
    assert new_refresh.encode() not in account.oauth_refresh_token_enc
    # The provider no longer takes the old one.
    answer = requests.post(
        oauth_provider.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": old_refresh,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=10,
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


def test_a_refused_token_is_renewed_although_not_expired(
    services, oauth_provider, oauth_imap_server
):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    refresher = _refresher(services)
    first = refresher.access_token(account_id)
    second = refresher.access_token(account_id, rejected=first)
    assert second != first and oauth_provider.refreshes == 1


def test_invalid_grant_needs_reauthorisation_and_notifies_once(
    db, services, make_user, oauth_provider, oauth_imap_server
):
    owner = make_user("rep", ["rep@example.com"])
    account_id = make_oauth_account(services, owner, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)
    oauth_provider.refresh_error = "invalid_grant"
    refresher = _refresher(services)
    with pytest.raises(oauth.NeedsReauthorisation, match="must be reconnected with Google"):
        refresher.access_token(account_id)
    asked = oauth_provider.token_requests
    with pytest.raises(oauth.NeedsReauthorisation):
        refresher.access_token(account_id)
    assert oauth_provider.token_requests == asked  # the provider is not asked again
    account = _account(services, account_id)
    assert oauth.needs_reauthorisation(account) and "invalid_grant" in account.oauth_reauth_reason
    assert account.oauth_refresh_claim is None
    notes = db.scalar(select(func.count()).select_from(Notification).filter_by(user_id=owner))
    assert notes == 1


def test_network_errors_are_retried(services, oauth_provider, oauth_imap_server):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)
    pauses = []
    refresher = _refresher(services)
    refresher.sleep = pauses.append
    oauth_provider.unavailable = 2
    assert oauth_provider.owner(refresher.access_token(account_id))
    assert oauth_provider.refreshes == 1 and len(pauses) == 2


def test_a_provider_that_stays_down_is_a_temporary_error(
    services, oauth_provider, oauth_imap_server
):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)
    oauth_provider.unavailable = 10
    with pytest.raises(oauth.TokenUnavailable, match="could not be reached"):
        _refresher(services).access_token(account_id)
    account = _account(services, account_id)
    assert not oauth.needs_reauthorisation(account) and account.oauth_refresh_claim is None
    oauth_provider.unavailable = 0
    assert oauth_provider.owner(_refresher(services).access_token(account_id))


def test_two_workers_refreshing_at_once_refresh_once(services, oauth_provider, oauth_imap_server):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)
    oauth_provider.refresh_pause = 0.5  # the first refresh is surely still running
    start = threading.Barrier(2)
    tokens, errors = [], []

    def worker():
        refresher = _refresher(services)  # its own sessions, as on another machine
        refresher.sleep = time.sleep
        start.wait(10)
        try:
            tokens.append(refresher.access_token(account_id))
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert oauth_provider.refreshes == 1
    assert len(tokens) == 2 and tokens[0] == tokens[1] and oauth_provider.owner(tokens[0])


def test_tokens_are_never_logged(db, services, caplog, oauth_provider, oauth_imap_server):
    caplog.set_level(logging.DEBUG)
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)
    oauth_provider.unavailable = 1
    token = _refresher(services).access_token(account_id)
    refresh = _stored_refresh_token(services, account_id)
    assert token not in caplog.text and refresh not in caplog.text
    assert CLIENT_SECRET not in caplog.text


def test_a_locked_sqlite_database_keeps_a_working_token(
    db, services, database_url, oauth_provider, oauth_imap_server
):
    """A caller holding SQLite's write lock (sending keeps a mail's outcome open while it
    reconnects) must not make the refresh fail: the still valid token is used."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has row locks: the claim UPDATE does not wait on the caller")
    from sqlalchemy import update

    from crm.db import make_engine

    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)  # within REFRESH_AHEAD, not yet expired
    engine = make_engine(database_url, connect_args={"timeout": 0.2, "check_same_thread": False})
    impatient = tokens.Refresher(sessionmaker(bind=engine), services.secret_box, lambda _s: None)
    db.execute(update(MailAccount).where(MailAccount.id == account_id).values(name="busy"))
    try:
        token = impatient.access_token(account_id)
        assert oauth_provider.owner(token) and oauth_provider.refreshes == 0
        db.rollback()
        _expire_soon(services, account_id, within=timedelta(minutes=-1))  # expired now
        db.execute(update(MailAccount).where(MailAccount.id == account_id).values(name="busy"))
        with pytest.raises(oauth.TokenUnavailable):
            impatient.access_token(account_id)
    finally:
        db.rollback()
        engine.dispose()


def test_a_refused_client_is_the_admins_problem_not_the_accounts(
    services, oauth_provider, oauth_imap_server
):
    account_id = make_oauth_account(services, None, oauth_provider, oauth_imap_server)
    _expire_soon(services, account_id)
    with services.session() as session:
        oauth.save_provider_config(session, services.secret_box, "google", {}, "wrong-secret")
    with pytest.raises(oauth.TokenUnavailable, match="an admin must check the client id"):
        _refresher(services).access_token(account_id)
    assert not oauth.needs_reauthorisation(_account(services, account_id))
