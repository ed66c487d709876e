"""The mail account form: its choices, its input checked and saved, the server's folder list
for "Test connection", and "Reset fetch state" for one folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.accounts.manage import (
    AccountError,
    create_account,
    reset_fetch_state,
    update_account,
)
from crm.accounts.status import is_syncing
from crm.mail.hosts import resolve
from crm.mail.imap import SECURITY, ImapConnection, tls_context
from crm.mailbox import folders
from crm.models import MailAccount, Team, User
from crm.secrets import SecretBox

DISTRIBUTIONS = ("direct", "round-robin", "least-busy")
MAP = "map:"  # prefix of the form fields mapping an IMAP folder to a CRM folder
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
# The stored password is only ever sent to the server (and with the security) it was given for.
SERVER = ("imap_host", "imap_port", "imap_security")


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
    }


def form_data(form) -> dict:
    """Submitted values kept for re-rendering the form (the password is dropped)."""
    data = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
    data["folders"] = picked_folders(form)
    data["team_ids"] = form.getlist("team_ids")
    data["folder_map"] = {k[len(MAP) :]: v for k, v in form.items() if k.startswith(MAP)}
    for box in ("is_active", "add_all_team_users", "create_case"):
        data[box] = bool(form.get(box))
    return data


def picked_folders(form) -> list[str]:
    """Ticked folders plus any typed in "other folders" (comma-separated), in order."""
    typed = [f.strip() for f in form.get("other_folders", "").split(",")]
    names = [*form.getlist("folders"), *typed]
    return list(dict.fromkeys(n for n in names if n)) or ["INBOX"]


def connection_values(form: Mapping) -> dict:
    """Host, port, security and login for connecting; raises AccountFormError."""
    errors: dict[str, str] = {}
    host = form.get("host", "").strip()
    security = form.get("security", "ssl")
    port_text = form.get("port", "").strip() or str(DEFAULT_PORTS.get(security, 993))
    if not host:
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


def clean(form, choices: Choices, group: bool) -> dict:
    """Typed changes from the submitted form; raises AccountFormError with every problem."""
    errors: dict[str, str] = {}
    try:
        values = connection_values(form)
    except AccountFormError as exc:
        values, errors = {}, dict(exc.errors)
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
    }


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
    account: MailAccount | None = None,
    owner_id: int | None = None,
    group: bool = False,
) -> MailAccount:
    """Create (with `owner_id`) or update an account from cleaned values; AccountError on refusal."""
    values = dict(values)
    team_ids = values.pop("team_ids", None)
    if account is not None and not password and _moved(account, values):
        raise AccountError("enter the password again when you change the host, port or security")
    if account is None:
        if not password:
            raise AccountError("enter the account's password")
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
        )
        password, team_ids = "", None
    update_account(session, box, account, password=password, team_ids=team_ids, **values)
    session.flush()
    return account


def _moved(account: MailAccount, values: Mapping) -> bool:
    """Whether the values point elsewhere: the stored password must not follow unasked."""
    return any(values.get(k, getattr(account, k)) != getattr(account, k) for k in SERVER)


def same_server(account: MailAccount, form: Mapping) -> bool:
    """Whether the submitted host, port and security are the stored ones."""
    try:
        return not _moved(account, connection_values(form))
    except AccountFormError:
        return False


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


def looks_like_sent(folder: str) -> bool:
    """Folder names servers commonly use for sent mail (for the form's hint)."""
    leaf = folder.replace("/", ".").split(".")[-1].lower()
    return leaf in ("sent", "sent items", "sent mail", "sent messages", "gesendet", "envoyés")


def reset_folder(session: Session, account: MailAccount, folder: str, since_text: str) -> str:
    """Re-read one folder from a new date (no duplicates: identity dedupe); AccountError if not now."""
    known = set(account.monitored_folders or []) | {c.folder for c in account.cursors}
    if folder not in known:
        raise AccountError("choose one of the account's folders")
    errors: dict[str, str] = {}
    since = _date(since_text, errors)
    if since is None:
        raise AccountError("enter the date to read the folder from (YYYY-MM-DD)")
    if is_syncing(account):
        raise AccountError("a fetch is running; reset the folder when it has finished")
    reset_fetch_state(session, account, folder, since)
    return folder
