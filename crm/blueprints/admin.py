"""Admin area: users, teams, system settings (with the system SMTP account)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from crm import settings
from crm.accounts import form as account_form
from crm.accounts import oauth
from crm.accounts.manage import AccountError
from crm.blueprints.accounts import send_test_result, test_mail_answer
from crm.blueprints.auth import admin_required
from crm.models import Team, User
from crm.records import addressbook, records, users
from crm.records.forms import split_addresses
from crm.web import db, get_or_404, page, rejected_status, services

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def _admins_only():
    return None


@bp.get("/")
def index():
    found = users.all_users(db())
    emails = records.primary_addresses(db(), "User", [u.id for u in found])
    return page("admin/users.html", users=found, emails=emails)


def _user_form(user, data, error=None):
    teams = users.all_teams(db())
    status = rejected_status() if error else 200
    return page("admin/user_form.html", status, user=user, data=data, teams=teams, error=error)


def _user_changes(form) -> dict:
    return {
        "name": form.get("name", ""),
        "username": form.get("username", ""),
        "password": form.get("password", ""),
        "is_active": form.get("is_active") == "on",
        "is_admin": form.get("is_admin") == "on",
        "team_ids": [int(t) for t in form.getlist("team_ids") if t.isdigit()],
        "emails": split_addresses(form.get("emails", "")),
    }


def _form_data(form) -> dict:
    data = form.to_dict()
    data["team_ids"] = form.getlist("team_ids")
    return data


@bp.get("/users/new")
def new_user():
    return _user_form(None, {"is_active": "on"})


@bp.post("/users/new")
def create_user():
    changes = _user_changes(request.form)
    try:
        user = users.create_user(
            db(),
            changes["username"],
            changes["password"],
            changes["emails"],
            changes["is_admin"],
            name=changes["name"],
        )
        users.update_user(
            db(),
            user,
            current_user,
            {"is_active": changes["is_active"], "team_ids": changes["team_ids"]},
        )
    except users.UserError as exc:
        db().rollback()
        return _user_form(None, _form_data(request.form), str(exc))
    db().commit()
    return redirect(url_for("admin.index"), 303)


@bp.get("/users/<int:user_id>/edit")
def edit_user(user_id):
    user = get_or_404(db().get(User, user_id))
    links = addressbook.addresses_of(db(), "User", user.id)
    data = {
        "name": user.name,
        "username": user.username,
        "is_active": user.is_active and "on",
        "is_admin": user.is_admin and "on",
        "team_ids": [str(t) for t in user.team_ids],
        "emails": "\n".join(link.address.address for link in links),
    }
    return _user_form(user, data)


@bp.post("/users/<int:user_id>/edit")
def update_user(user_id):
    user = get_or_404(db().get(User, user_id))
    try:
        users.update_user(db(), user, current_user, _user_changes(request.form))
    except users.UserError as exc:
        db().rollback()
        return _user_form(user, _form_data(request.form), str(exc))
    db().commit()
    return redirect(url_for("admin.index"), 303)


@bp.get("/teams/")
def teams(error=None, status=200):
    found = users.all_teams(db())
    return page("admin/teams.html", status, teams=found, error=error)


@bp.post("/teams/")
def create_team():
    try:
        users.create_team(db(), request.form.get("name", ""))
    except users.UserError as exc:
        return teams(str(exc), rejected_status())
    db().commit()
    return redirect(url_for("admin.teams"), 303)


@bp.post("/teams/<int:team_id>/rename")
def rename_team(team_id):
    team = get_or_404(db().get(Team, team_id))
    try:
        users.rename_team(db(), team, request.form.get("name", ""))
    except users.UserError as exc:
        db().rollback()
        return teams(str(exc), rejected_status())
    db().commit()
    return redirect(url_for("admin.teams"), 303)


@bp.get("/teams/<int:team_id>/delete")
def confirm_delete_team(team_id):
    return page("admin/team_delete.html", team=get_or_404(db().get(Team, team_id)))


@bp.post("/teams/<int:team_id>/delete")
def delete_team(team_id):
    db().delete(get_or_404(db().get(Team, team_id)))
    db().commit()
    return redirect(url_for("admin.teams"), 303)


def _settings_page(values, errors=None, error=None):
    status = rejected_status() if errors or error else 200
    system = account_form.system_account_of(db())
    return page(
        "admin/settings.html",
        status,
        values=values,
        errors=errors or {},
        error=error,
        system=system,
        default_to=_own_address(),
        test_url=url_for("admin.settings_send_test"),
        oauth_providers=[oauth.provider_form_data(db(), name) for name in oauth.PROVIDERS],
        oauth_redirect_uri=url_for("accounts.oauth_callback", _external=True),
    )


def _own_address() -> str:
    return records.primary_addresses(db(), "User", [current_user.id]).get(current_user.id, "")


@bp.get("/settings")
def edit_settings():
    values = settings.all_settings(db())
    values.update(account_form.system_data(account_form.system_account_of(db())))
    return _settings_page(values)


def _submitted(form) -> dict:
    """The form with stored values for settings it does not show (an unticked box is absent
    and means off, so only non-boolean settings are filled in)."""
    data = form.to_dict()
    for key, value in settings.all_settings(db()).items():
        default = settings.DEFAULTS[key]
        if key not in data and isinstance(default, int) and not isinstance(default, bool):
            data[key] = str(value)
    return data


@bp.post("/settings")
def save_settings():
    form, session, errors = request.form, db(), {}
    values: dict = {}
    system = None
    try:
        values = settings.from_form(_submitted(form))
    except settings.SettingsError as exc:
        errors.update(exc.errors)
    try:
        system = account_form.clean_system(form)
    except account_form.AccountFormError as exc:
        errors.update(exc.errors)
    data = {**form.to_dict(), **account_form.system_form_data(form)}
    if errors:
        return _settings_page(data, errors)
    values.pop("system_smtp_account_id", None)  # set by saving the system account only
    try:
        if system is not None:
            account_form.save_system_account(
                session, services().secret_box, system, form.get("system_smtp_password", "")
            )
    except AccountError as exc:
        session.rollback()
        return _settings_page(data, error=str(exc))
    for key, value in values.items():
        settings.put(session, key, value)
    session.commit()
    return redirect(url_for("admin.edit_settings", saved=1), 303)


@bp.post("/settings/send-test")
def settings_send_test():
    """A test mail through the system SMTP account."""
    account = get_or_404(account_form.system_account_of(db()))
    result = send_test_result(account, request.form.get("to", "") or _own_address())
    return test_mail_answer(
        account,
        result,
        url_for("admin.settings_send_test"),
        url_for("admin.edit_settings"),
        default_to=_own_address(),
    )


@bp.post("/settings/oauth/<name>")
def save_oauth_provider(name: str):
    """Google or Microsoft sign-in: client id, secret (empty keeps it), tenant, overrides."""
    if name not in oauth.PROVIDERS:
        return redirect(url_for("admin.edit_settings"), 303)
    session = db()
    try:
        values = oauth.clean_provider_form(request.form)
    except oauth.OAuthFlowError as exc:
        flash(f"{oauth.PROVIDERS[name].label} sign-in not saved: {exc}.", "error")
        return redirect(url_for("admin.edit_settings") + "#oauth", 303)
    secret = request.form.get("client_secret", "")
    oauth.save_provider_config(session, services().secret_box, name, values, secret)
    session.commit()
    flash(f"{oauth.PROVIDERS[name].label} sign-in saved.", "info")
    return redirect(url_for("admin.edit_settings") + "#oauth", 303)
