"""Fresh access tokens for OAuth2 accounts (crm.accounts.oauth), refreshed ahead of expiry.

A refresh runs under a claim on the account row (a conditional UPDATE, committed), so two
workers on different machines never refresh one account at once: the second waits for the
first's token. Refreshing commits in its own short transaction, whatever the caller does
afterwards: a rotated refresh token must never be lost to a caller's rollback, since the
provider no longer accepts the old one.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import requests
from authlib.integrations.requests_client import OAuthError
from sqlalchemy import or_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, object_session, sessionmaker

from crm.accounts.oauth import (
    NeedsReauthorisation,
    ProviderConfig,
    TokenUnavailable,
    client_for,
    expiry_of,
    is_oauth,
    mark_needs_reauthorisation,
    open_token,
    provider_config,
    reauth_text,
    seal_token,
)
from crm.db import utcnow
from crm.models import MailAccount
from crm.secrets import SecretBox

log = logging.getLogger(__name__)

# Refresh this long before the provider's expiry: a token must not run out between the
# check and the server's login.
REFRESH_AHEAD = timedelta(minutes=5)
# A worker that claimed a refresh and died frees the account after this long.
REFRESH_LEASE = timedelta(minutes=2)
WAIT_POLL_SECONDS = 0.1
# Network errors: attempts and the pauses between them (seconds).
RETRY_PAUSES = (0.5, 2.0)


# --- fresh access tokens -----------------------------------------------------------------


@dataclass
class Refresher:
    """Keeps one account's access token fresh. `sleep` is injectable for tests."""

    sessions: sessionmaker
    box: SecretBox
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def of(cls, account: MailAccount, box: SecretBox) -> Refresher:
        """One on the engine the account was loaded from (its own sessions, own commits)."""
        session = object_session(account)
        if session is None:
            raise RuntimeError("the account must be loaded in a session")
        return cls(sessionmaker(bind=session.get_bind(), expire_on_commit=False), box)

    def access_token(self, account_id: int, rejected: str | None = None) -> str:
        """A valid access token; refreshed when it expires within REFRESH_AHEAD, or when the
        mail server refused `rejected` (revoked or expired early at the provider)."""
        # Past the lease a dead worker's claim can be taken over: wait a little longer than it.
        deadline = time.monotonic() + REFRESH_LEASE.total_seconds() + 15
        while True:
            with self.sessions() as session:
                account = session.get(MailAccount, account_id)
                if account is None or not is_oauth(account):
                    raise NeedsReauthorisation(plain="this account is not connected with OAuth2")
                if account.oauth_reauth_since is not None:
                    raise NeedsReauthorisation(plain=reauth_text(account))
                current = open_token(account, self.box, "oauth_access_token")
                if current and current != rejected and _fresh(account):
                    return current
                try:
                    claim = _claim(session, account_id)
                    session.commit()
                except OperationalError:
                    # SQLite: another connection holds the write lock (a caller's open
                    # transaction) past the busy timeout. A token that still works is used.
                    session.rollback()
                    if current and current != rejected and _valid(account):
                        return current
                    raise TokenUnavailable(
                        plain="the access could not be renewed just now"
                    ) from None
                if claim:
                    return self._refresh(session, account_id, claim, rejected)
            if time.monotonic() > deadline:
                raise TokenUnavailable(plain="another worker is renewing the access; try again")
            self.sleep(WAIT_POLL_SECONDS)  # another worker refreshes: wait for its token

    def _refresh(self, session: Session, account_id: int, claim: str, rejected) -> str:
        account = session.get(MailAccount, account_id)
        session.refresh(account)
        current = open_token(account, self.box, "oauth_access_token")
        if current and current != rejected and _fresh(account):
            _release(session, account_id, claim)  # renewed by another worker just now
            session.commit()
            return current
        config = provider_config(session, self.box, account.oauth_provider)
        refresh_token = open_token(account, self.box, "oauth_refresh_token")
        try:
            token = self._ask(config, refresh_token)
        except OAuthError as exc:
            _release(session, account_id, claim)
            if exc.error == "invalid_grant":  # revoked, expired, password changed: reconnect
                reason = f"{config.provider.label} refused the stored authorisation ({exc.error})"
                mark_needs_reauthorisation(session, account, reason)
                session.commit()
                raise NeedsReauthorisation(plain=reauth_text(account)) from None
            session.commit()
            if exc.error in ("invalid_client", "unauthorized_client"):
                # The CRM's client (id, secret, e.g. an expired Microsoft secret), not this
                # account: reconnecting would not help, the admin's settings must change.
                raise TokenUnavailable(
                    plain=f"{config.provider.label} refused the CRM's sign-in settings "
                    f"({exc.error}); an admin must check the client id and secret"
                ) from None
            raise TokenUnavailable(
                plain=f"{config.provider.label} did not renew the access ({exc.error})"
            ) from None
        except (requests.RequestException, ValueError) as exc:
            _release(session, account_id, claim)
            session.commit()
            log.warning("renewing the access of account %s failed: %s", account_id, type(exc))
            raise TokenUnavailable(
                plain=f"{config.provider.label} could not be reached to renew the access"
            ) from None
        access = token["access_token"]
        values = {
            "oauth_access_token_enc": seal_token(account, self.box, "oauth_access_token", access),
            "oauth_expires_at": expiry_of(token),
            "oauth_refresh_claim": None,
            "oauth_refresh_claimed_at": None,
        }
        rotated = token.get("refresh_token")
        if rotated and rotated != refresh_token:
            # One UPDATE with the access token: never a new access token with a lost refresh one.
            values["oauth_refresh_token_enc"] = seal_token(
                account, self.box, "oauth_refresh_token", rotated
            )
        session.execute(
            update(MailAccount)
            .where(MailAccount.id == account_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return access

    def _ask(self, config: ProviderConfig, refresh_token: str) -> dict:
        """The refresh request; network errors and 5xx answers are tried again after a pause."""
        pauses = list(RETRY_PAUSES)
        while True:
            try:
                client = client_for(config)
                return dict(client.refresh_token(config.provider.token_url, refresh_token))
            except requests.RequestException:
                if not pauses:
                    raise
                self.sleep(pauses.pop(0))


def _fresh(account: MailAccount) -> bool:
    expires = account.oauth_expires_at
    return expires is not None and expires - REFRESH_AHEAD > utcnow()


def _valid(account: MailAccount) -> bool:
    return account.oauth_expires_at is not None and account.oauth_expires_at > utcnow()


def _claim(session: Session, account_id: int) -> str | None:
    """Take the refresh of this account (a conditional UPDATE); None when another holds it."""
    now, claim = utcnow(), uuid.uuid4().hex
    result = session.execute(
        update(MailAccount)
        .where(
            MailAccount.id == account_id,
            MailAccount.oauth_reauth_since.is_(None),
            or_(
                MailAccount.oauth_refresh_claim.is_(None),
                MailAccount.oauth_refresh_claimed_at < now - REFRESH_LEASE,
            ),
        )
        .values(oauth_refresh_claim=claim, oauth_refresh_claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return claim if result.rowcount == 1 else None


def _release(session: Session, account_id: int, claim: str) -> None:
    session.execute(
        update(MailAccount)
        .where(MailAccount.id == account_id, MailAccount.oauth_refresh_claim == claim)
        .values(oauth_refresh_claim=None, oauth_refresh_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
