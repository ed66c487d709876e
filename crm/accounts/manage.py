"""Mail accounts: create and edit them, keep their passwords sealed, connect to their server,
and reset a folder's fetch state."""

from __future__ import annotations

import ssl
import uuid
from datetime import date, timedelta

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from crm import settings
from crm.accounts import oauth, tokens
from crm.mail.hosts import parse_allowlist, resolve
from crm.mail.imap import SECURITY, ImapConnection, ImapLoginRefused, tls_context
from crm.mail.smtp import SECURITY as SMTP_SECURITY
from crm.mail.smtp import SmtpSettings
from crm.models import EmailLocation, FolderCursor, MailAccount, Team
from crm.secrets import SecretBox


class AccountError(ValueError):
    pass


def _scope(account: MailAccount, field: str) -> str:
    if not account.secret_scope:
        account.secret_scope = uuid.uuid4().hex
    return f"mail_accounts:{account.secret_scope}:{field}"


def set_imap_password(account: MailAccount, box: SecretBox, password: str) -> None:
    account.imap_password_enc = box.seal(password, _scope(account, "imap_password"))


def imap_password(account: MailAccount, box: SecretBox) -> str:
    if not account.imap_password_enc:
        return ""
    return box.open(account.imap_password_enc, _scope(account, "imap_password"))


def set_smtp_password(account: MailAccount, box: SecretBox, password: str) -> None:
    account.smtp_password_enc = box.seal(password, _scope(account, "smtp_password"))


def smtp_password(account: MailAccount, box: SecretBox) -> str:
    """The SMTP password; the IMAP one when the account has none of its own (same mailbox)."""
    if not account.smtp_password_enc:
        return imap_password(account, box)
    return box.open(account.smtp_password_enc, _scope(account, "smtp_password"))


def smtp_settings(
    session: Session, account: MailAccount, box: SecretBox, env_allowlist: str, timeout: float = 30
) -> SmtpSettings:
    """How to reach the account's SMTP server: the host checked against private addresses
    exactly as on the IMAP side, then pinned."""
    endpoint = resolve(account.smtp_host, account.smtp_port, host_allowlist(session, env_allowlist))
    login = account.smtp_login or account.imap_login or account.email_address
    if oauth.is_oauth(account):
        refresher = tokens.Refresher.of(account, box)
        token = refresher.access_token(account.id)
        return SmtpSettings(
            endpoint=endpoint,
            security=account.smtp_security,
            login=login,
            auth=True,
            timeout=timeout,
            access_token=token,
            renew_token=lambda: refresher.access_token(account.id, rejected=token),
        )
    return SmtpSettings(
        endpoint=endpoint,
        security=account.smtp_security,
        login=login,
        password=smtp_password(account, box) if account.smtp_auth else "",
        auth=account.smtp_auth,
        timeout=timeout,
    )


def tls_context_for(ca_file: str | None) -> ssl.SSLContext:
    return tls_context(ca_file or None)


def create_account(
    session: Session,
    box: SecretBox,
    *,
    user_id: int | None,
    email: str,
    host: str,
    port: int,
    security: str,
    login: str,
    password: str,
    folders: list[str] | None = None,
    since: date | None = None,
    is_group: bool = False,
    team_ids: list[int] = (),
    name: str = "",
    add_all_team_users: bool = False,
    smtp: dict | None = None,
) -> MailAccount:
    """A new personal (or group) account; enforces the admin's cap on personal accounts."""
    if security not in SECURITY:
        raise AccountError(f"security must be one of {', '.join(SECURITY)}")
    if not email or "@" not in email:
        raise AccountError("an e-mail address is required")
    smtp = dict(smtp or {})
    if not host and not smtp.get("smtp_host"):
        raise AccountError("an IMAP host, an SMTP host or both are required")
    if smtp.get("smtp_security", "starttls") not in SMTP_SECURITY:
        raise AccountError(f"SMTP security must be one of {', '.join(SMTP_SECURITY)}")
    if not is_group:
        _check_cap(session, user_id)
    account = MailAccount(
        user_id=user_id,
        is_group=is_group,
        name=name or email,
        email_address=email,
        imap_host=host,
        imap_port=port,
        imap_security=security,
        imap_login=login or email,
        monitored_folders=list(folders or ["INBOX"]),
        fetch_since=since,
        secret_scope=uuid.uuid4().hex,
        add_all_team_users=add_all_team_users,
    )
    account.teams = [session.get(Team, t) for t in team_ids]
    set_imap_password(account, box, password)
    smtp_secret = smtp.pop("smtp_password", "")
    for key, value in smtp.items():
        if key not in SMTP_FIELDS:
            raise AccountError(f"unknown field {key}")
        setattr(account, key, value)
    if smtp_secret:
        set_smtp_password(account, box, smtp_secret)
    session.add(account)
    session.flush()
    return account


# A new OAuth2 account fetches this far back until its owner picks another date.
OAUTH_FETCH_DAYS = 30


def create_oauth_account(
    session: Session,
    box: SecretBox,
    *,
    user_id: int | None,
    provider: str,
    grant: oauth.Grant,
    is_group: bool = False,
    team_ids: list[int] = (),
    name: str = "",
    since: date | None = None,
) -> MailAccount:
    """A new account connected with Google or Microsoft: the provider's servers and folders,
    the mailbox the user signed in to, and the grant's tokens (sealed)."""
    if not is_group:
        _check_cap(session, user_id)
        _check_not_twice(session, user_id, grant.email)
    config = oauth.provider_config(session, box, provider)
    account = MailAccount(
        user_id=user_id,
        is_group=is_group,
        name=name or grant.email,
        monitored_folders=["INBOX"],
        fetch_since=since or date.today() - timedelta(days=OAUTH_FETCH_DAYS),
        secret_scope=uuid.uuid4().hex,
    )
    account.teams = [t for t in (session.get(Team, i) for i in team_ids) if t is not None]
    oauth.apply_provider(account, config.provider, grant.email)
    oauth.apply_grant(account, box, provider, grant)
    session.add(account)
    session.flush()
    return account


def _check_not_twice(session: Session, user_id: int | None, email: str) -> None:
    stmt = select(MailAccount.id).where(
        MailAccount.user_id == user_id,
        MailAccount.is_group.is_(False),
        func.lower(MailAccount.email_address) == email.lower(),
    )
    if session.scalars(stmt).first() is not None:
        raise AccountError(f"you already have an account for {email}; use Reconnect on its page")


def reconnect_oauth_account(
    session: Session, box: SecretBox, account: MailAccount, provider: str, grant: oauth.Grant
) -> None:
    """New tokens for an account (after "needs re-authorisation"): its cursors are kept, so
    the next fetch goes on where the last one stopped."""
    if grant.email.lower() != account.email_address.lower():
        raise AccountError(
            f"you signed in as {grant.email}, but this account is {account.email_address}; "
            "sign in to that mailbox"
        )
    if account.oauth_provider not in (None, provider):
        raise AccountError("this account is connected with another provider")
    oauth.apply_grant(account, box, provider, grant)


def _check_cap(session: Session, user_id: int | None) -> None:
    cap = settings.get(session, "max_personal_accounts")
    if not cap:
        return
    count = session.query(MailAccount).filter_by(user_id=user_id, is_group=False).count()
    if count >= cap:
        raise AccountError(f"you may have at most {cap} personal mail accounts")


def host_allowlist(session: Session, env_allowlist: str) -> set[str]:
    """The admin's allow-list plus the one seeded from CRM_MAIL_HOST_ALLOWLIST."""
    return parse_allowlist(env_allowlist) | parse_allowlist(
        settings.get(session, "mail_host_allowlist")
    )


def connect(
    account: MailAccount,
    box: SecretBox,
    allowlist: set[str],
    timeout: float = 60,
    ca_file: str | None = None,
) -> ImapConnection:
    """Log in to the account's IMAP server (host checked, then pinned). OAuth2 accounts log in
    with a fresh access token, renewed once if the server refuses it (revoked, or expired
    early at the provider)."""
    endpoint = resolve(account.imap_host, account.imap_port, allowlist)
    if oauth.is_oauth(account):
        refresher = tokens.Refresher.of(account, box)
        token = refresher.access_token(account.id)
        login = account.imap_login or account.email_address
        context = _imap_tls(account, ca_file)
        try:
            return ImapConnection(
                endpoint, account.imap_security, login, "", timeout, context, access_token=token
            )
        except ImapLoginRefused:
            token = refresher.access_token(account.id, rejected=token)
            return ImapConnection(
                endpoint, account.imap_security, login, "", timeout, context, access_token=token
            )
    return ImapConnection(
        endpoint,
        account.imap_security,
        account.imap_login,
        imap_password(account, box),
        timeout=timeout,
        ssl_context=_imap_tls(account, ca_file),
    )


def _imap_tls(account: MailAccount, ca_file: str | None) -> ssl.SSLContext | None:
    """Loading the system's CA certificates costs tens of milliseconds, a quarter of a
    no-new-mail sync: a plain connection (on-site or test servers) does not pay for it."""
    return None if account.imap_security == "none" else tls_context(ca_file)


def reset_fetch_state(session: Session, account: MailAccount, folder: str, since: date) -> None:
    """Re-read a folder from a new date; identity dedupe keeps this free of duplicates.

    The new cursor's `since` marks the re-read: the mail it lists was there before and notifies
    nobody (crm.inbound.sync), and mail deleted for everyone stays deleted (the import skips the
    identities in deleted_messages)."""
    cursor = session.scalars(
        select(FolderCursor).where(
            and_(FolderCursor.mail_account_id == account.id, FolderCursor.folder == folder)
        )
    ).first()
    if cursor is not None:
        session.delete(cursor)
    session.flush()
    session.add(FolderCursor(mail_account_id=account.id, folder=folder, since=since))


# --- editing ----------------------------------------------------------------------------

SMTP_FIELDS = (
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_auth",
    "smtp_login",
    "store_sent",
    "sent_folder",
)

# Fields a form may change directly; the password and teams go through their own paths.
EDITABLE = (
    "name",
    "email_address",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_login",
    "monitored_folders",
    "fetch_since",
    "target_folder_id",
    "folder_map",
    "is_active",
    "user_id",
    "add_all_team_users",
    "create_case",
    "case_distribution",
    "case_team_id",
    "auto_reply",
    "auto_reply_subject",
    "auto_reply_text",
    *SMTP_FIELDS,
)
# Changing any of these points the account at another mailbox.
ENDPOINT = ("imap_host", "imap_port", "imap_login")


def update_account(
    session: Session,
    box: SecretBox,
    account: MailAccount,
    *,
    password: str = "",
    smtp_password: str = "",
    team_ids: list[int] | None = None,
    **changes,
) -> None:
    """Apply edited fields; an empty password keeps the stored one."""
    if changes.get("imap_security", account.imap_security) not in SECURITY:
        raise AccountError(f"security must be one of {', '.join(SECURITY)}")
    if changes.get("smtp_security", account.smtp_security) not in SMTP_SECURITY:
        raise AccountError(f"SMTP security must be one of {', '.join(SMTP_SECURITY)}")
    if "@" not in changes.get("email_address", account.email_address):
        raise AccountError("an e-mail address is required")
    moved = any(k in changes and changes[k] != getattr(account, k) for k in ENDPOINT)
    for key, value in changes.items():
        if key not in EDITABLE:
            raise AccountError(f"unknown field {key}")
        setattr(account, key, value)
    if password:
        set_imap_password(account, box, password)
    if smtp_password:
        set_smtp_password(account, box, smtp_password)
    if team_ids is not None:
        account.teams = [t for t in (session.get(Team, i) for i in team_ids) if t is not None]
    if moved and account.id is not None:
        _forget_mailbox(session, account)


def _forget_mailbox(session: Session, account: MailAccount) -> None:
    # UIDs of the old mailbox mean nothing on the new one; identity dedupe finds stored mail.
    session.execute(delete(EmailLocation).where(EmailLocation.mail_account_id == account.id))
    account.cursors.clear()
    session.flush()
