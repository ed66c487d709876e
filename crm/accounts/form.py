"""The mail account form: its choices, its input checked and saved (IMAP for fetching, SMTP for
sending, or either alone), the server's folder list for "Test connection", "Reset fetch state"
for one folder, and the admin's system SMTP account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import settings
from crm.accounts.manage import (
    SMTP_FIELDS,
    AccountError,
    connect,
    create_account,
    reset_fetch_state,
    update_account,
)
from crm.accounts.status import is_syncing
from crm.mail.hosts import resolve
from crm.mail.imap import SECURITY, ImapConnection, tls_context
from crm.mail.smtp import SECURITY as SMTP_SECURITY
from crm.mailbox import folders
from crm.models import MailAccount, Team, User
from crm.models.accounts import STALE_CLAIM
from crm.secrets import SecretBox

DISTRIBUTIONS = ("direct", "round-robin", "least-busy")
MAP = "map:"  # prefix of the form fields mapping an IMAP folder to a CRM folder
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# The stored password is only ever sent to the server (and with the security) it was given for.
SERVER = ("imap_host", "imap_port", "imap_security")
SMTP_SERVER = ("smtp_host", "smtp_port", "smtp_security")
# Form fields that are never kept for re-rendering.
SECRETS = ("password", "smtp_password", "system_smtp_password", "csrf_token")


class AccountFormError(ValueError):
    """Invalid input: `errors` maps a field name to a message for the user."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- the form ------------------------------------------------------------------------------


@dataclass
class Choices:
    """What the form offers; submitted ids are checked against these."""

    folders: list = field(default_factory=list)
    teams: list = field(default_factory=list)
    users: list = field(default_factory=list)


def form_choices(session: Session, owner_id: int | None, group: bool) -> Choices:
    if not group:
        return Choices(folders=folders.personal_folders(session, owner_id) if owner_id else [])
    users = session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.username))
    return Choices(
        folders=folders.group_folders(session),
        teams=list(session.scalars(select(Team).order_by(Team.name))),
        users=list(users),
    )


def account_data(account: MailAccount) -> dict:
    """The account as form values (strings), never with its password."""
    return {
        "name": account.name,
        "email": account.email_address,
        "host": account.imap_host,
        "port": str(account.imap_port),
        "security": account.imap_security,
        "login": account.imap_login,
        "folders": list(account.monitored_folders or []),
        "since": account.fetch_since.isoformat() if account.fetch_since else "",
        "target_folder_id": str(account.target_folder_id or ""),
        "folder_map": {name: str(i) for name, i in (account.folder_map or {}).items()},
        "is_active": account.is_active,
        "team_ids": [str(t.id) for t in account.teams],
        "add_all_team_users": account.add_all_team_users,
        "user_id": str(account.user_id or ""),
        "create_case": account.create_case,
        "case_distribution": account.case_distribution,
        "case_team_id": str(account.case_team_id or ""),
        "auto_reply": account.auto_reply,
        "auto_reply_subject": account.auto_reply_subject or "",
        "auto_reply_text": account.auto_reply_text or "",
        **smtp_data(account),
    }


def smtp_data(account: MailAccount) -> dict:
    """The account's SMTP settings as form values, never with its password."""
    return {
        "smtp_host": account.smtp_host or "",
        "smtp_port": str(account.smtp_port) if account.smtp_host else "",
        "smtp_security": account.smtp_security or "starttls",
        "smtp_auth": bool(account.smtp_auth),
        "smtp_login": account.smtp_login or "",
        "store_sent": bool(account.store_sent),
        "sent_folder": account.sent_folder or "Sent",
    }


def form_data(form) -> dict:
    """Submitted values kept for re-rendering the form (the passwords are dropped)."""
    data = {k: v for k, v in form.items() if k not in SECRETS}
    data["folders"] = picked_folders(form)
    data["team_ids"] = form.getlist("team_ids")
    data["folder_map"] = {k[len(MAP) :]: v for k, v in form.items() if k.startswith(MAP)}
    boxes = ("is_active", "add_all_team_users", "create_case", "smtp_auth", "store_sent")
    for box in (*boxes, "auto_reply"):
        data[box] = bool(form.get(box))
    return data


def picked_folders(form) -> list[str]:
    """Ticked folders plus any typed in "other folders" (comma-separated), in order."""
    typed = [f.strip() for f in form.get("other_folders", "").split(",")]
    names = [*form.getlist("folders"), *typed]
    return list(dict.fromkeys(n for n in names if n)) or ["INBOX"]


def connection_values(form: Mapping, host_required: bool = True) -> dict:
    """IMAP host, port, security and login for connecting; raises AccountFormError. Without
    `host_required` the host may be empty (an account that only sends)."""
    errors: dict[str, str] = {}
    host = form.get("host", "").strip()
    security = form.get("security", "ssl")
    port_text = form.get("port", "").strip() or str(DEFAULT_PORTS.get(security, 993))
    if not host and host_required:
        errors["host"] = "enter the IMAP server's host name"
    if security not in SECURITY:
        errors["security"] = f"choose one of {', '.join(SECURITY)}"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        errors["port"] = "enter a port between 1 and 65535"
    if errors:
        raise AccountFormError(errors)
    login = form.get("login", "").strip() or form.get("email", "").strip()
    return {
        "imap_host": host,
        "imap_port": int(port_text),
        "imap_security": security,
        "imap_login": login,
    }


def smtp_values(form: Mapping, prefix: str = "") -> dict:
    """SMTP host, port, security, login and whether to log in; raises AccountFormError.
    An empty host is an account that cannot send; an empty login means the IMAP login."""
    errors: dict[str, str] = {}
    host = form.get(prefix + "smtp_host", "").strip()
    security = form.get(prefix + "smtp_security", "starttls")
    port_text = form.get(prefix + "smtp_port", "").strip() or str(
        SMTP_DEFAULT_PORTS.get(security, 587)
    )
    if security not in SMTP_SECURITY:
        errors[prefix + "smtp_security"] = f"choose one of {', '.join(SMTP_SECURITY)}"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        errors[prefix + "smtp_port"] = "enter a port between 1 and 65535"
    if errors:
        raise AccountFormError(errors)
    return {
        "smtp_host": host,
        "smtp_port": int(port_text),
        "smtp_security": security,
        "smtp_auth": bool(form.get(prefix + "smtp_auth")),
        "smtp_login": form.get(prefix + "smtp_login", "").strip(),
    }


def clean(form, choices: Choices, group: bool) -> dict:
    """Typed changes from the submitted form; raises AccountFormError with every problem."""
    errors: dict[str, str] = {}
    try:
        values = smtp_values(form)
    except AccountFormError as exc:
        values, errors = {}, dict(exc.errors)
    sends = bool(form.get("smtp_host", "").strip())
    try:
        values.update(connection_values(form, host_required=not sends))
    except AccountFormError as exc:
        errors.update(exc.errors)
    fetches = bool(form.get("host", "").strip())
    if not fetches and not sends:
        errors["host"] = (
            "enter the IMAP server's host name (or an SMTP server's below, for an account "
            "that only sends)"
        )
    values["store_sent"] = bool(form.get("store_sent"))
    values["sent_folder"] = form.get("sent_folder", "").strip() or "Sent"
    if values["store_sent"] and not fetches:
        errors["store_sent"] = "a copy of sent mail needs the IMAP server above"
    email = form.get("email", "").strip()
    if "@" not in email:
        errors["email"] = "enter the account's e-mail address"
    values.update(
        name=form.get("name", "").strip() or email,
        email_address=email,
        monitored_folders=picked_folders(form),
        is_active=bool(form.get("is_active")),
    )
    values["fetch_since"] = _date(form.get("since", ""), errors)
    if not fetches:
        values["fetch_since"] = None  # nothing to fetch from: the scheduler leaves it alone
    values["target_folder_id"] = _pick(
        form.get("target_folder_id"), choices.folders, "target_folder_id", errors
    )
    values["folder_map"] = _folder_map(form, values["monitored_folders"], choices, errors)
    if group:
        values.update(_group_values(form, choices, errors))
    if errors:
        raise AccountFormError(errors)
    return values


def _folder_map(form, monitored: list[str], choices: Choices, errors: dict) -> dict[str, int]:
    """IMAP folder -> CRM folder for incoming mail, from the `map:<IMAP folder>` selects;
    folders left at the default (or no longer monitored) go where "Put incoming mail in" says."""
    mapped = {}
    for name in monitored:
        folder_id = _pick(form.get(MAP + name), choices.folders, "folder_map", errors)
        if folder_id is not None:
            mapped[name] = folder_id
    return mapped


def _group_values(form, choices: Choices, errors: dict) -> dict:
    distribution = form.get("case_distribution", "direct")
    if distribution not in DISTRIBUTIONS:
        errors["case_distribution"] = f"choose one of {', '.join(DISTRIBUTIONS)}"
    team_ids = {t.id for t in choices.teams}
    return {
        "team_ids": [
            int(t) for t in form.getlist("team_ids") if t.isdigit() and int(t) in team_ids
        ],
        "add_all_team_users": bool(form.get("add_all_team_users")),
        "user_id": _pick(form.get("user_id"), choices.users, "user_id", errors),
        "create_case": bool(form.get("create_case")),
        "case_distribution": distribution,
        "case_team_id": _pick(form.get("case_team_id"), choices.teams, "case_team_id", errors),
        **_auto_reply_values(form, errors),
    }


def _auto_reply_values(form, errors: dict) -> dict:
    """The answer to mail that opens a new case (crm.outbound.autoreply); empty subject and
    text mean "Re: <their subject>" and the standard text."""
    values = {
        "auto_reply": bool(form.get("auto_reply")),
        "auto_reply_subject": " ".join(form.get("auto_reply_subject", "").split()),
        "auto_reply_text": form.get("auto_reply_text", "").replace("\r\n", "\n").strip(),
    }
    if values["auto_reply"] and not form.get("create_case"):
        errors["auto_reply"] = "auto-replies answer mail that opens a case: tick that box too"
    if len(values["auto_reply_subject"]) > 255:
        errors["auto_reply_subject"] = "keep the subject under 255 characters"
    if len(values["auto_reply_text"]) > 20_000:
        errors["auto_reply_text"] = "keep the text under 20,000 characters"
    return values


def _date(text: str, errors: dict) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors["since"] = "enter a date as YYYY-MM-DD"
        return None


def _pick(raw: str | None, options: list, name: str, errors: dict) -> int | None:
    """An id chosen from `options`, or None for "none"."""
    if not raw:
        return None
    if not raw.isdigit() or int(raw) not in {o.id for o in options}:
        errors[name] = "choose one of the offered entries"
        return None
    return int(raw)


def save_account(
    session: Session,
    box: SecretBox,
    values: dict,
    password: str,
    *,
    smtp_password: str = "",
    account: MailAccount | None = None,
    owner_id: int | None = None,
    group: bool = False,
) -> MailAccount:
    """Create (with `owner_id`) or update an account from cleaned values; AccountError on refusal.
    An empty password keeps the stored one; with no SMTP password the IMAP one logs in to SMTP."""
    values = dict(values)
    team_ids = values.pop("team_ids", None)
    fetches = values.get("imap_host", account.imap_host if account else "")
    if account is not None and not password and fetches and _moved(account, values):
        raise AccountError("enter the password again when you change the host, port or security")
    if account is not None and _smtp_needs_password(account, values, password, smtp_password):
        raise AccountError(
            "enter the SMTP password again when you change the SMTP host, port or security"
        )
    if account is None:
        if not password and fetches:
            raise AccountError("enter the account's password")
        if not (password or smtp_password) and values.get("smtp_auth"):
            raise AccountError("enter the SMTP server's password")
        smtp = {k: values.pop(k) for k in SMTP_FIELDS if k in values}
        account = create_account(
            session,
            box,
            user_id=values.pop("user_id", owner_id),
            is_group=group,
            email=values.pop("email_address"),
            host=values.pop("imap_host"),
            port=values.pop("imap_port"),
            security=values.pop("imap_security"),
            login=values.pop("imap_login"),
            password=password,
            name=values.pop("name"),
            folders=values.pop("monitored_folders"),
            since=values.pop("fetch_since"),
            team_ids=team_ids or [],
            smtp={**smtp, "smtp_password": smtp_password},
        )
        password, smtp_password, team_ids = "", "", None
    update_account(
        session,
        box,
        account,
        password=password,
        smtp_password=smtp_password,
        team_ids=team_ids,
        **values,
    )
    session.flush()
    return account


def _moved(account: MailAccount, values: Mapping, server=SERVER) -> bool:
    """Whether the values point elsewhere: the stored password must not follow unasked."""
    return any(values.get(k, getattr(account, k)) != getattr(account, k) for k in server)


def _smtp_needs_password(
    account: MailAccount, values: Mapping, password: str, smtp_password: str
) -> bool:
    """Whether a stored password would go to an SMTP server it was not given for: the SMTP
    server changed (or logging in was just switched on) and no password came with it. A newly
    typed IMAP password may serve when the account keeps no SMTP password of its own."""
    if smtp_password or not values.get("smtp_host", account.smtp_host):
        return False
    if not values.get("smtp_auth", account.smtp_auth):
        return False
    if not _moved(account, values, SMTP_SERVER) and account.smtp_auth:
        return False
    return not (password and not account.smtp_password_enc)


def same_server(account: MailAccount, form: Mapping) -> bool:
    """Whether the submitted host, port and security are the stored ones."""
    try:
        return not _moved(account, connection_values(form))
    except AccountFormError:
        return False


def can_send(account: MailAccount) -> bool:
    """Whether the account has SMTP settings (for "Send test e-mail")."""
    return bool(account.smtp_host)


# --- the system SMTP account (admin settings) ----------------------------------------------

SYSTEM = "system_"  # prefix of the system account's fields on the settings form


def system_account_of(session: Session) -> MailAccount | None:
    """The account the system sends from, as stored in the settings (even when it cannot send
    now); None when there is none yet."""
    account_id = settings.get(session, "system_smtp_account_id")
    account = session.get(MailAccount, account_id) if account_id else None
    if account is None or account.is_group or account.user_id is not None:
        return None
    return account


def system_data(account: MailAccount | None) -> dict:
    """The system account as settings form values, never with its password."""
    if account is None:
        data = {"email": "", "name": "", "smtp_security": "starttls", "smtp_auth": True}
    else:
        data = {"email": account.email_address, "name": account.name, **smtp_data(account)}
    return {SYSTEM + k: v for k, v in data.items()}


def system_form_data(form) -> dict:
    """Submitted system account values kept for re-rendering (the password is dropped)."""
    data = {k: v for k, v in form.items() if k.startswith(SYSTEM) and k not in SECRETS}
    data[SYSTEM + "smtp_auth"] = bool(form.get(SYSTEM + "smtp_auth"))
    return data


def clean_system(form) -> dict | None:
    """Typed system account values; None when its fields are all left empty (no system
    account wanted); raises AccountFormError."""
    errors: dict[str, str] = {}
    try:
        values = smtp_values(form, SYSTEM)
    except AccountFormError as exc:
        values, errors = {}, dict(exc.errors)
    email = form.get(SYSTEM + "email", "").strip()
    host = form.get(SYSTEM + "smtp_host", "").strip()
    if not email and not host and not errors:
        return None
    if "@" not in email:
        errors[SYSTEM + "email"] = "enter the address the system sends from"
    if not host:
        errors[SYSTEM + "smtp_host"] = "enter the SMTP server's host name"
    if errors:
        raise AccountFormError(errors)
    values.update(email_address=email, name=form.get(SYSTEM + "name", "").strip())
    return values


def save_system_account(
    session: Session, box: SecretBox, values: dict, password: str
) -> MailAccount:
    """Create or update the system SMTP account (no owner, not a group, no IMAP server) and
    store its id in the settings; AccountError on refusal. An empty password keeps the stored
    one, unless the server changed."""
    values = dict(values)
    account = system_account_of(session)
    if account is None:
        if values.get("smtp_auth") and not password:
            raise AccountError("enter the SMTP server's password")
        name = values.pop("name")
        account = create_account(
            session,
            box,
            user_id=None,
            email=values.pop("email_address"),
            host="",
            port=993,
            security="ssl",
            login="",
            password="",
            name=name,
            smtp={**values, "smtp_password": password},
        )
        account.name = name  # create_account names a nameless account after its address
    else:
        if _smtp_needs_password(account, values, "", password):
            raise AccountError(
                "enter the SMTP password again when you change the SMTP host, port or security"
            )
        update_account(session, box, account, smtp_password=password, is_active=True, **values)
    session.flush()
    settings.put(session, "system_smtp_account_id", account.id)
    return account


def server_folders(
    values: dict, password: str, allowlist: set[str], timeout: float = 20, ca_file: str = ""
) -> list[str]:
    """Log in with the form's values and list the server's folders; raises MailError."""
    endpoint = resolve(values["imap_host"], values["imap_port"], allowlist)
    with ImapConnection(
        endpoint,
        values["imap_security"],
        values["imap_login"],
        password,
        timeout=timeout,
        ssl_context=tls_context(ca_file),
    ) as conn:
        return sorted(conn.folders(), key=lambda name: (name.upper() != "INBOX", name.lower()))


def account_folders(
    account: MailAccount, box: SecretBox, allowlist: set[str], ca_file: str = ""
) -> list[str]:
    """The saved account's folders, logged in as it logs in (an OAuth2 account with its
    token); raises MailError."""
    with connect(account, box, allowlist, timeout=20, ca_file=ca_file or None) as conn:
        return sorted(conn.folders(), key=lambda name: (name.upper() != "INBOX", name.lower()))


def looks_like_sent(folder: str) -> bool:
    """Folder names servers commonly use for sent mail (for the form's hint)."""
    leaf = folder.replace("/", ".").split(".")[-1].lower()
    return leaf in ("sent", "sent items", "sent mail", "sent messages", "gesendet", "envoyés")


def reset_folder(
    session: Session,
    account: MailAccount,
    folder: str,
    since_text: str,
    lease: timedelta = STALE_CLAIM,
) -> str:
    """Re-read one folder from a new date (no duplicates: identity dedupe); AccountError if not now."""
    known = set(account.monitored_folders or []) | {c.folder for c in account.cursors}
    if folder not in known:
        raise AccountError("choose one of the account's folders")
    errors: dict[str, str] = {}
    since = _date(since_text, errors)
    if since is None:
        raise AccountError("enter the date to read the folder from (YYYY-MM-DD)")
    if is_syncing(account, lease=lease):
        raise AccountError("a fetch is running; reset the folder when it has finished")
    reset_fetch_state(session, account, folder, since)
    return folder
