"""Mail accounts: personal accounts for everyone, group accounts for admins, "Test connection",
"Send test e-mail", and the status panel with "Fetch now" and "Reset fetch state"."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask import session as browser_session
from flask_login import current_user, login_required
from redis.exceptions import RedisError

from crm.accounts import form as account_form
from crm.accounts import manage, oauth
from crm.accounts import status as account_status
from crm.accounts.manage import AccountError, host_allowlist, imap_password
from crm.blueprints.auth import admin_required
from crm.mail.address import normalise_address
from crm.mail.errors import MailError
from crm.outbound.sending import send_test_mail
from crm.queue import enqueue_fetch, fetch_job_id, is_pending, mail_queue
from crm.web import (
    CSP,
    db,
    fragment,
    get_or_404,
    page,
    rejected_status,
    services,
    stop_polling,
    wants_fragment,
)

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.context_processor
def _helpers():
    return {
        "ago": account_status.since_text,
        "duration": account_status.plain_duration,
        "looks_like_sent": account_form.looks_like_sent,
    }


def _account(account_id: int):
    return get_or_404(account_status.visible_account(db(), current_user, account_id))


def _readable(account_id: int):
    """An account to look at: the user's own (or any, for admins), or a team's group account,
    whose members see its status read-only."""
    return get_or_404(account_status.readable_account(db(), current_user, account_id))


def _manages(account) -> bool:
    return account_status.visible_account(db(), current_user, account.id) is not None


@bp.get("/")
@login_required
def index():
    session = db()
    groups = account_status.other_accounts(session, current_user, group=True)
    others = account_status.other_accounts(session, current_user, group=False)
    return page(
        "accounts/index.html",
        mine=account_status.personal_accounts(session, current_user.id),
        groups=groups,
        team_groups=account_status.team_accounts(session, current_user),
        others=others,
        owners=account_status.owner_names(session, groups + others),
    )


# --- create and edit ----------------------------------------------------------------------


def _form(account, group: bool, data: dict, errors=None, error=None, server=None, status=200):
    owner = account.user_id if account else current_user.id
    choices = account_form.form_choices(db(), owner, group)
    providers = oauth.configured_providers(db(), services().secret_box)
    response = page(
        "accounts/form.html",
        status,
        account=account,
        group=group,
        data=data,
        choices=choices,
        errors=errors or {},
        error=error,
        server=server or {},
        providers=providers,
        oauth_label=oauth.PROVIDERS[account.oauth_provider].label
        if account is not None and oauth.is_oauth(account)
        else None,
    )
    return _allow_connect(response, providers)


def _allow_connect(response, providers):
    """Connect and Reconnect post here and are redirected to the provider: the page's CSP
    lets its forms go on to the providers' sign-in pages (and nowhere else)."""
    origins = oauth.authorize_origins(providers)
    if origins:
        csp = CSP.format(images="").replace(
            "form-action 'self'", "form-action 'self' " + " ".join(origins)
        )
        response.headers["Content-Security-Policy"] = csp
    return response


def _save(account, group: bool):
    form, session = request.form, db()
    owner = account.user_id if account else current_user.id
    try:
        values = account_form.clean(form, account_form.form_choices(session, owner, group), group)
        saved = account_form.save_account(
            session,
            services().secret_box,
            values,
            form.get("password", ""),
            smtp_password=form.get("smtp_password", ""),
            account=account,
            owner_id=current_user.id,
            group=group,
        )
    except account_form.AccountFormError as exc:
        session.rollback()
        return _form(
            account,
            group,
            account_form.form_data(form),
            errors=exc.errors,
            status=rejected_status(),
        )
    except AccountError as exc:
        session.rollback()
        return _form(
            account, group, account_form.form_data(form), error=str(exc), status=rejected_status()
        )
    session.commit()
    flash(f"Mail account {saved.name} saved.", "info")
    return redirect(url_for("accounts.show", account_id=saved.id), 303)


# What a new account's form starts with.
NEW_ACCOUNT = {
    "folders": ["INBOX"],
    "security": "ssl",
    "port": "993",
    "is_active": True,
    "smtp_security": "starttls",
    "smtp_auth": True,
    "sent_folder": "Sent",
}


@bp.get("/new")
@login_required
def new():
    return _form(None, False, dict(NEW_ACCOUNT))


@bp.post("/new")
@login_required
def create():
    return _save(None, group=False)


@bp.get("/group/new")
@admin_required
def new_group():
    return _form(None, True, {**NEW_ACCOUNT, "case_distribution": "direct"})


@bp.post("/group/new")
@admin_required
def create_group():
    return _save(None, group=True)


@bp.get("/<int:account_id>/edit")
@login_required
def edit(account_id: int):
    account = _account(account_id)
    return _form(account, account.is_group, account_form.account_data(account))


@bp.post("/<int:account_id>/edit")
@login_required
def update(account_id: int):
    account = _account(account_id)
    return _save(account, account.is_group)


@bp.post("/<int:account_id>/delete")
@login_required
def delete(account_id: int):
    account = _account(account_id)
    db().delete(account)
    db().commit()
    flash(f"Mail account {account.name} deleted; its imported mail stays.", "info")
    return redirect(url_for("accounts.index"), 303)


# --- test connection -----------------------------------------------------------------------


@bp.post("/test")
@login_required
def test_connection():
    group = request.form.get("group") == "1"
    if group and not current_user.is_admin:
        abort(404)
    return _test(None, group, request.form.get("password", ""))


@bp.post("/<int:account_id>/test")
@login_required
def test_saved(account_id: int):
    account = _account(account_id)
    password = request.form.get("password", "")
    if not password and account_form.same_server(account, request.form):
        password = imap_password(account, services().secret_box)
    return _test(account, account.is_group, password)


def _test(account, group: bool, password: str):
    """The server's folders for picking, or the problem in plain words; never the password."""
    form = request.form
    server = {"folders": None, "error": None}
    try:
        values = account_form.connection_values(form)
        allowlist = host_allowlist(db(), services().config.mail_host_allowlist)
        ca_file = services().config.mail_ca_file
        if account is not None and oauth.is_oauth(account):
            box = services().secret_box
            server["folders"] = account_form.account_folders(account, box, allowlist, ca_file)
        else:
            server["folders"] = account_form.server_folders(
                values, password, allowlist, ca_file=ca_file
            )
    except account_form.AccountFormError as exc:
        server["error"] = "; ".join(exc.errors.values())
    except MailError as exc:
        server["error"] = exc.plain
    if wants_fragment():
        return fragment("accounts/_folders.html", data=account_form.form_data(form), server=server)
    return _form(account, group, account_form.form_data(form), server=server)


# --- send test e-mail -----------------------------------------------------------------------


def send_test_result(account, to: str) -> dict:
    """Send one test mail through the account's SMTP server: {"to", "reply"} on success,
    {"to", "error", "reply"} with the problem in plain words otherwise."""
    to = to.strip() or account.email_address
    if not account_form.can_send(account):
        return {"to": to, "error": "this account has no SMTP server", "reply": None}
    address = normalise_address(to)
    if address is None:
        return {"to": to, "error": f"{to} is not an e-mail address", "reply": None}
    try:
        reply = send_test_mail(services(), db(), account, address)
    except MailError as exc:
        return {"to": to, "error": exc.plain, "reply": exc.reply}
    return {"to": to, "reply": reply, "error": None}


def test_mail_answer(account, result: dict, url: str, back: str, **context):
    """The "Send test e-mail" box for htmx, else a flash on the page it came from."""
    if wants_fragment():
        return fragment(
            "accounts/_send_test.html", account=account, outcome=result, send_url=url, **context
        )
    if result["error"]:
        reply = f" (the server said: {result['reply']})" if result["reply"] else ""
        flash(f"The test e-mail was not sent: {result['error']}{reply}.", "error")
    else:
        flash(f"Test e-mail sent to {result['to']}. The server said: {result['reply']}", "info")
    return redirect(back, 303)


@bp.post("/<int:account_id>/send-test")
@login_required
def send_test(account_id: int):
    account = _account(account_id)
    result = send_test_result(account, request.form.get("to", ""))
    return test_mail_answer(
        account,
        result,
        url_for("accounts.send_test", account_id=account.id),
        url_for("accounts.show", account_id=account.id),
    )


# --- status --------------------------------------------------------------------------------


def _queue():
    return mail_queue(services().redis, services().config.queue_name)


def _queued(account_id: int) -> bool:
    job_id = fetch_job_id(account_id)
    try:
        redis = services().redis
        return is_pending(redis, job_id) or is_pending(redis, job_id + "-next")
    except RedisError:
        return False


def _status(account, notice: str | None = None, error: bool = False):
    panel = account_status.status_of(
        db(), account, queued=_queued(account.id), lease=services().config.sync_lease
    )
    return {"panel": panel, "account": account, "notice": notice, "notice_error": error}


@bp.get("/<int:account_id>")
@login_required
def show(account_id: int):
    account = _readable(account_id)
    response = page(
        "accounts/show.html",
        system_account=account_status.is_system_account(db(), account),
        manages=_manages(account),
        sign_in=account_status.sign_in_of(account),
        **_status(account),
    )
    if not oauth.is_oauth(account):
        return response
    config = oauth.provider_config(db(), services().secret_box, account.oauth_provider)
    return _allow_connect(response, [config.provider])


@bp.get("/<int:account_id>/status")
@login_required
def status(account_id: int):
    """The self-polling panel; 286 (stop polling) once nothing runs or waits."""
    account = _readable(account_id)
    if not wants_fragment():
        return redirect(url_for("accounts.show", account_id=account.id))
    context = _status(account)
    response = fragment("accounts/_status.html", manages=_manages(account), **context)
    return response if context["panel"].active else stop_polling(response)


def _after_action(account, notice: str, error: bool = False):
    if wants_fragment():
        return fragment("accounts/_status.html", **_status(account, notice, error))
    flash(notice, "error" if error else "info")
    return redirect(url_for("accounts.show", account_id=account.id), 303)


@bp.post("/<int:account_id>/fetch")
@login_required
def fetch_now(account_id: int):
    account = _account(account_id)
    if not account.imap_host:
        return _after_action(account, "This account only sends mail: it has no IMAP server.", True)
    if account.fetch_since is None and not account.cursors:
        return _after_action(account, "Set a 'fetch since' date before the first fetch.", True)
    if oauth.needs_reauthorisation(account):
        return _after_action(account, oauth.reauth_text(account) + " Use Reconnect first.", True)
    try:
        queued = enqueue_fetch(_queue(), account.id)
    except RedisError:
        return _after_action(
            account,
            "The background queue (Redis) is not reachable, so the "
            "fetch could not start. Please try again later.",
            True,
        )
    return _after_action(
        account, "Fetch queued." if queued else "A fetch is already waiting or running."
    )


@bp.post("/<int:account_id>/reset")
@login_required
def reset(account_id: int):
    account = _account(account_id)
    form = request.form
    try:
        folder = account_form.reset_folder(
            db(),
            account,
            form.get("folder", ""),
            form.get("since", ""),
            lease=services().config.sync_lease,
        )
    except AccountError as exc:
        db().rollback()
        return _after_action(account, str(exc), True)
    db().commit()
    return _after_action(
        account,
        f"{folder} will be read again from {form.get('since')} at the "
        "next fetch; mail already here is not duplicated.",
    )


# --- Connect with Google / Microsoft (OAuth2) --------------------------------------------

PENDING = "oauth_pending"  # the flow's state and PKCE verifier, in the signed session cookie


def _redirect_uri() -> str:
    return url_for("accounts.oauth_callback", _external=True)


def _start(name: str, back: str, **flow):
    try:
        url, pending = oauth.start_flow(db(), services().secret_box, name, _redirect_uri(), **flow)
    except oauth.OAuthFlowError as exc:
        flash(f"Cannot connect: {exc}.", "error")
        return redirect(back, 303)
    browser_session[PENDING] = pending
    return redirect(url, 303)


@bp.post("/connect/<name>")
@login_required
def oauth_connect(name: str):
    """Start "Connect with Google/Microsoft" for a new personal or (admins) group account."""
    group = request.form.get("group") == "1"
    if group and not current_user.is_admin:
        abort(404)
    back = url_for("accounts.new_group" if group else "accounts.new")
    hint = request.form.get("email", "").strip()
    return _start(name, back, login_hint=hint, is_group=group)


@bp.post("/<int:account_id>/reconnect")
@login_required
def reconnect(account_id: int):
    """Sign in again to an OAuth2 account (after "needs re-authorisation")."""
    account = _account(account_id)
    back = url_for("accounts.show", account_id=account.id)
    if not oauth.is_oauth(account):
        flash("This account logs in with a password; change it on the Edit page.", "error")
        return redirect(back, 303)
    return _start(
        account.oauth_provider, back, login_hint=account.email_address, account_id=account.id
    )


@bp.get("/oauth/callback")
@login_required
def oauth_callback():
    """Where the provider sends the user back: check, trade the code, save, resume."""
    pending = browser_session.pop(PENDING, None)
    session, box = db(), services().secret_box
    account_id = (pending or {}).get("account_id")
    back = (
        url_for("accounts.show", account_id=account_id) if account_id else url_for("accounts.new")
    )
    try:
        grant = oauth.finish_flow(session, box, pending, request.args.to_dict())
        account = _save_grant(pending, grant)
    except (oauth.OAuthFlowError, AccountError) as exc:
        session.rollback()
        flash(f"The account was not connected: {exc}.", "error")
        return redirect(back, 303)
    session.commit()
    _resume(account)
    label = oauth.PROVIDERS[pending["provider"]].label
    flash(f"{account.email_address} is connected with {label}.", "info")
    return redirect(url_for("accounts.show", account_id=account.id), 303)


def _save_grant(pending: dict, grant: oauth.Grant):
    session, box = db(), services().secret_box
    if pending.get("account_id"):
        account = _account(pending["account_id"])
        manage.reconnect_oauth_account(session, box, account, pending["provider"], grant)
        return account
    group = bool(pending.get("is_group"))
    if group and not current_user.is_admin:
        abort(404)
    return manage.create_oauth_account(
        session,
        box,
        user_id=None if group else current_user.id,
        provider=pending["provider"],
        grant=grant,
        is_group=group,
    )


def _resume(account) -> None:
    """Fetch at once after connecting; without Redis the scheduler does it later."""
    try:
        enqueue_fetch(_queue(), account.id)
    except RedisError:
        pass
