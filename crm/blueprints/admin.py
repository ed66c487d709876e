"""Admin area: users, teams, system settings."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from crm import settings
from crm.blueprints.auth import admin_required
from crm.models import Team, User
from crm.records import addressbook, records, users
from crm.records.forms import split_addresses
from crm.web import db, get_or_404, page, rejected_status

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


@bp.get("/settings")
def edit_settings(values=None, errors=None):
    values = values or settings.all_settings(db())
    status = rejected_status() if errors else 200
    return page("admin/settings.html", status, values=values, errors=errors or {})


@bp.post("/settings")
def save_settings():
    try:
        values = settings.from_form(request.form)
    except settings.SettingsError as exc:
        return edit_settings(request.form.to_dict(), exc.errors)
    for key, value in values.items():
        settings.put(db(), key, value)
    db().commit()
    return redirect(url_for("admin.edit_settings", saved=1), 303)
