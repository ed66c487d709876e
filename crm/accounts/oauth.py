"""Gmail and Microsoft 365 accounts over OAuth2: the providers, the authorisation-code flow
with PKCE, and access tokens kept fresh for IMAP and SMTP (XOAUTH2).

Tokens are sealed at rest with the account's secret scope, like passwords, and never logged.
A refresh runs under a claim on the account row (a conditional UPDATE, committed), so two
workers on different machines never refresh one account at once: the second waits for the
first's token. Refreshing commits in its own short transaction, whatever the caller does
afterwards: a rotated refresh token must never be lost to a caller's rollback, since the
provider no longer accepts the old one.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db import utcnow
from crm.mail.errors import MailError
from crm.mailbox.notifications import notify
from crm.models import MailAccount, Setting, User
from crm.secrets import SecretBox, SecretError

log = logging.getLogger(__name__)

PASSWORD, OAUTH2 = "password", "oauth2"
HTTP_TIMEOUT = 20
# A sign-in left at the provider's page longer than this is started again.
FLOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Provider:
    """One OAuth2 mail provider: endpoints, scopes and the mail servers it fills in."""

    name: str
    label: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    sent_folder: str
    # Folders never monitored by default: Gmail's All Mail holds every INBOX mail again.
    unmonitored: tuple[str, ...] = ()
    extra_authorize: tuple[tuple[str, str], ...] = ()


GOOGLE = Provider(
    name="google",
    label="Google",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    scopes=("https://mail.google.com/", "openid", "email"),
    imap_host="imap.gmail.com",
    imap_port=993,
    imap_security="ssl",
    smtp_host="smtp.gmail.com",
    smtp_port=587,
    smtp_security="starttls",
    sent_folder="[Gmail]/Sent Mail",
    unmonitored=("[Gmail]/All Mail",),
    # Google gives a refresh token only with access_type=offline, and again only on consent.
    extra_authorize=(("access_type", "offline"), ("prompt", "consent")),
)
MICROSOFT = Provider(
    name="microsoft",
    label="Microsoft",
    authorize_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
    token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    scopes=(
        "offline_access",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "openid",
        "email",
    ),
    imap_host="outlook.office365.com",
    imap_port=993,
    imap_security="ssl",
    smtp_host="smtp.office365.com",
    smtp_port=587,
    smtp_security="starttls",
    sent_folder="Sent Items",
    extra_authorize=(("prompt", "select_account"),),
)
PROVIDERS = {p.name: p for p in (GOOGLE, MICROSOFT)}
# Settings an admin may override per provider (the tests point them at loopback).
OVERRIDABLE = (
    "authorize_url",
    "token_url",
    "imap_host",
    "imap_port",
    "imap_security",
    "smtp_host",
    "smtp_port",
    "smtp_security",
)


class OAuthFlowError(ValueError):
    """The connect flow cannot go on; `plain` says why, for the user."""


class NeedsReauthorisation(MailError):
    """The provider refused the stored grant: the owner must connect the account again."""


class TokenUnavailable(MailError):
    """The provider could not be reached (or answered 5xx) after retries: try again later."""


# --- provider settings -------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderConfig:
    provider: Provider  # with the admin's overrides applied
    client_id: str
    client_secret: str
    tenant: str

    @property
    def configured(self) -> bool:
        return bool(self.client_id)


def setting_key(name: str) -> str:
    return f"oauth_{name}"


# One settings row per provider, read and written here: the typed settings form of
# crm.settings has no place for a sealed secret or a nested value.
def _stored(session: Session, name: str) -> dict:
    row = session.get(Setting, setting_key(name))
    return dict(row.value or {}) if row is not None else {}


def _store(session: Session, name: str, value: dict) -> None:
    row = session.get(Setting, setting_key(name))
    if row is None:
        session.add(Setting(key=setting_key(name), value=value))
    else:
        row.value = value


def _secret_scope(name: str) -> str:
    return f"settings:{setting_key(name)}:client_secret"


def provider_config(session: Session, box: SecretBox, name: str) -> ProviderConfig:
    """The provider as the admin configured it (client, tenant, endpoint overrides)."""
    base = PROVIDERS[name]
    stored = _stored(session, name)
    tenant = (stored.get("tenant") or "organizations").strip()
    overrides = {k: stored[k] for k in OVERRIDABLE if stored.get(k) not in (None, "")}
    provider = replace(base, **overrides)
    provider = replace(
        provider,
        authorize_url=provider.authorize_url.replace("{tenant}", tenant),
        token_url=provider.token_url.replace("{tenant}", tenant),
    )
    secret = ""
    if stored.get("client_secret_enc"):
        try:
            secret = box.open(base64.b64decode(stored["client_secret_enc"]), _secret_scope(name))
        except (SecretError, ValueError):
            log.warning("the stored %s client secret cannot be read; enter it again", name)
    return ProviderConfig(provider, stored.get("client_id", ""), secret, tenant)


def save_provider_config(
    session: Session, box: SecretBox, name: str, values: dict, client_secret: str = ""
) -> None:
    """Store a provider's settings; an empty client secret keeps the stored one."""
    stored = _stored(session, name)
    for key in ("client_id", "tenant", *OVERRIDABLE):
        if key in values:
            stored[key] = values[key]
    if client_secret:
        sealed = box.seal(client_secret, _secret_scope(name))
        stored["client_secret_enc"] = base64.b64encode(sealed).decode()
    _store(session, name, stored)


def provider_form_data(session: Session, name: str) -> dict:
    """A provider's stored settings for the admin form, never its client secret; empty
    overrides show the real endpoints as placeholders."""
    stored = _stored(session, name)
    data = {k: str(stored.get(k) or "") for k in ("client_id", "tenant", *OVERRIDABLE)}
    data["has_secret"] = bool(stored.get("client_secret_enc"))
    data["provider"] = PROVIDERS[name]
    return data


def clean_provider_form(form) -> dict:
    """Typed provider settings from the admin form; raises OAuthFlowError with the problem."""
    values = {k: (form.get(k) or "").strip() for k in ("client_id", "tenant", *OVERRIDABLE)}
    for key in ("imap_port", "smtp_port"):
        if values[key] and not (values[key].isdigit() and 0 < int(values[key]) < 65536):
            raise OAuthFlowError(f"{key.replace('_', ' ')}: enter a port between 1 and 65535")
        values[key] = int(values[key]) if values[key] else ""
    for key in ("imap_security", "smtp_security"):
        if values[key] not in ("", "ssl", "starttls", "none"):
            raise OAuthFlowError(f"{key.replace('_', ' ')}: choose ssl, starttls or none")
    for key in ("authorize_url", "token_url"):
        if values[key] and not values[key].startswith(("https://", "http://")):
            raise OAuthFlowError(f"{key.replace('_', ' ')}: enter an http(s) address")
    return values


def authorize_origins(providers: list[Provider]) -> list[str]:
    """scheme://host[:port] of the providers' authorisation endpoints: a Connect or Reconnect
    form posts to the CRM, which redirects there (CSP form-action must allow that)."""
    origins = []
    for provider in providers:
        parts = urlsplit(provider.authorize_url)
        if parts.scheme in ("https", "http") and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


def configured_providers(session: Session, box: SecretBox) -> list[Provider]:
    """Providers the admin set up: the Connect buttons shown."""
    configs = (provider_config(session, box, n) for n in PROVIDERS)
    return [c.provider for c in configs if c.configured]


def client_for(
    config: ProviderConfig, redirect_uri: str | None = None, token=None
) -> OAuth2Session:
    return OAuth2Session(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scope=" ".join(config.provider.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
        token=token,
        default_timeout=HTTP_TIMEOUT,
    )


# --- the connect flow --------------------------------------------------------------------


def start_flow(
    session: Session,
    box: SecretBox,
    name: str,
    redirect_uri: str,
    *,
    login_hint: str = "",
    account_id: int | None = None,
    is_group: bool = False,
) -> tuple[str, dict]:
    """The provider's authorisation URL, and what the caller keeps in the user's session
    until the callback: the state and the PKCE verifier (RFC 7636), never sent in the URL."""
    if name not in PROVIDERS:
        raise OAuthFlowError("unknown provider")
    config = provider_config(session, box, name)
    if not config.configured:
        raise OAuthFlowError(f"an admin has not set up {PROVIDERS[name].label} sign-in yet")
    verifier = generate_token(64)
    extra = dict(config.provider.extra_authorize)
    if login_hint:
        extra["login_hint"] = login_hint
    url, state = client_for(config, redirect_uri).create_authorization_url(
        config.provider.authorize_url, code_verifier=verifier, **extra
    )
    pending = {
        "provider": name,
        "state": state,
        "verifier": verifier,
        "account_id": account_id,
        "is_group": is_group,
        "redirect_uri": redirect_uri,
        "started": int(time.time()),
    }
    return url, pending


@dataclass(frozen=True)
class Grant:
    email: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str


def finish_flow(session: Session, box: SecretBox, pending: dict | None, args: dict) -> Grant:
    """Check the callback's state against the session's, then trade the code (with the PKCE
    verifier) for tokens. Raises OAuthFlowError with a plain reason."""
    if not pending:
        raise OAuthFlowError("this sign-in was not started here, or it expired; start again")
    if time.time() - pending.get("started", 0) > FLOW_SECONDS:
        raise OAuthFlowError("the sign-in took too long; start again")
    if args.get("error"):
        raise OAuthFlowError(f"the provider did not grant access ({args['error']})")
    if not hmac.compare_digest(str(args.get("state", "")), str(pending["state"])):
        raise OAuthFlowError("the sign-in answer does not belong to this session; start again")
    if not args.get("code"):
        raise OAuthFlowError("the provider's answer carries no authorisation code")
    config = provider_config(session, box, pending["provider"])
    client = client_for(config, pending["redirect_uri"])
    try:
        token = client.fetch_token(
            config.provider.token_url,
            grant_type="authorization_code",
            code=args["code"],
            code_verifier=pending["verifier"],
        )
    except OAuthError as exc:
        raise OAuthFlowError(f"the provider refused the sign-in ({exc.error})") from exc
    except (requests.RequestException, ValueError) as exc:
        raise OAuthFlowError("the provider could not be reached; try again") from exc
    if not token.get("refresh_token"):
        raise OAuthFlowError("the provider gave no refresh token (offline access was refused)")
    email = _email_of(token.get("id_token", ""))
    if not email:
        raise OAuthFlowError("the provider did not say which mailbox was signed in")
    return Grant(
        email=email,
        access_token=token["access_token"],
        refresh_token=token["refresh_token"],
        expires_at=expiry_of(token),
        scope=token.get("scope", ""),
    )


def _email_of(id_token: str) -> str:
    """The mailbox address in the ID token's claims. The token came straight from the token
    endpoint over a verified connection, which OpenID Connect Core 3.1.3.7 accepts in place of
    checking its signature."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    return str(claims.get("email") or claims.get("preferred_username") or "").strip()


def expiry_of(token: dict) -> datetime:
    seconds = int(token.get("expires_in") or 3600)
    return utcnow() + timedelta(seconds=seconds)


# --- tokens on the account ---------------------------------------------------------------


def _scope(account: MailAccount, field: str) -> str:
    if not account.secret_scope:
        account.secret_scope = uuid.uuid4().hex
    return f"mail_accounts:{account.secret_scope}:{field}"


def seal_token(account: MailAccount, box: SecretBox, field: str, value: str) -> bytes:
    return box.seal(value, _scope(account, field))


def open_token(account: MailAccount, box: SecretBox, field: str) -> str:
    blob = getattr(account, f"{field}_enc")
    return box.open(blob, _scope(account, field)) if blob else ""


def apply_grant(account: MailAccount, box: SecretBox, provider: str, grant: Grant) -> None:
    """Make the account an OAuth2 account of this grant (new, or reconnected)."""
    account.auth_method, account.oauth_provider = OAUTH2, provider
    account.oauth_access_token_enc = seal_token(
        account, box, "oauth_access_token", grant.access_token
    )
    account.oauth_refresh_token_enc = seal_token(
        account, box, "oauth_refresh_token", grant.refresh_token
    )
    account.oauth_expires_at = grant.expires_at
    account.oauth_reauth_reason, account.oauth_reauth_since = None, None
    account.oauth_refresh_claim, account.oauth_refresh_claimed_at = None, None
    account.imap_password_enc = account.smtp_password_enc = None


def apply_provider(account: MailAccount, provider: Provider, email: str) -> None:
    """Hosts, ports, security, login and folders as the provider wants them."""
    account.email_address = email
    account.imap_host, account.imap_port = provider.imap_host, provider.imap_port
    account.imap_security, account.imap_login = provider.imap_security, email
    account.smtp_host, account.smtp_port = provider.smtp_host, provider.smtp_port
    account.smtp_security, account.smtp_login = provider.smtp_security, email
    account.smtp_auth = True
    account.sent_folder = provider.sent_folder
    folders = [f for f in (account.monitored_folders or ["INBOX"]) if f not in provider.unmonitored]
    account.monitored_folders = folders or ["INBOX"]


def is_oauth(account: MailAccount) -> bool:
    return account.auth_method == OAUTH2


def needs_reauthorisation(account: MailAccount) -> bool:
    return is_oauth(account) and account.oauth_reauth_since is not None


def reauth_text(account: MailAccount) -> str:
    label = PROVIDERS.get(account.oauth_provider or "", GOOGLE).label
    return (
        f"Mail account {account.email_address} must be reconnected with {label}: "
        f"{account.oauth_reauth_reason or 'the provider no longer accepts its authorisation'}."
    )


def mark_needs_reauthorisation(session: Session, account: MailAccount, reason: str) -> None:
    """Stop fetching and sending for this account; its owner hears of it once."""
    first = account.oauth_reauth_since is None
    account.oauth_reauth_reason = reason
    account.oauth_reauth_since = account.oauth_reauth_since or utcnow()
    if first:
        for user_id in _owners(session, account):
            notify(
                session, user_id, "account_error", reauth_text(account), mail_account_id=account.id
            )


def _owners(session: Session, account: MailAccount) -> list[int]:
    if not account.is_group:
        return [account.user_id] if account.user_id else []
    admins = select(User.id).where(User.is_admin.is_(True), User.is_active.is_(True))
    return sorted({*session.scalars(admins), *([account.user_id] if account.user_id else [])})
