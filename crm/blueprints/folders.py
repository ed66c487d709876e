"""Folders: manage one's own folders, admins' group folders, and move mail into them."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from crm.blueprints.auth import admin_required
from crm.mailbox import folders
from crm.records import users
from crm.web import (
    db,
    fragment,
    get_or_404,
    is_htmx,
    page,
)

bp = Blueprint("folders", __name__, url_prefix="/folders")


def _listing(error: str | None = None, template="folders/index.html"):
    session = db()
    mine = folders.personal_folders(session, current_user.id)
    groups, teams = [], []
    if current_user.is_admin:
        groups = folders.group_folders(session)
        teams = users.all_teams(session)
    counts = folders.mail_counts(session, [f.id for f in mine + groups])
    render = page if template.endswith("index.html") else fragment
    return render(
        template, folders=mine, group_folders=groups, teams=teams, counts=counts, error=error
    )


def _done(error: str | None = None):
    """After a change: the list fragment for htmx, a redirect to the page otherwise."""
    if is_htmx():
        return _listing(error, template="folders/_list.html")
    if error:
        flash(error, "error")
    return redirect(url_for("folders.index"), 303)


def _commit(action, *args, **kwargs):
    try:
        action(db(), *args, **kwargs)
    except folders.FolderError as exc:
        db().rollback()
        return _done(str(exc))
    db().commit()
    return _done()


def _own(folder_id: int):
    return get_or_404(folders.own_folder(db(), current_user, folder_id))


@bp.get("/")
@login_required
def index():
    return _listing()


@bp.post("/")
@login_required
def create():
    form = request.form
    return _commit(
        folders.create_folder,
        current_user.id,
        form.get("name", ""),
        bool(form.get("skip_notifications")),
    )


@bp.post("/<int:folder_id>")
@login_required
def update(folder_id: int):
    folder = _own(folder_id)
    form = request.form
    return _commit(
        folders.update_folder, folder, form.get("name", ""), bool(form.get("skip_notifications"))
    )


@bp.post("/<int:folder_id>/shift")
@login_required
def shift(folder_id: int):
    folder = _own(folder_id)
    step = -1 if request.form.get("direction") == "up" else 1
    return _commit(folders.shift_folder, folder, step)


@bp.post("/order")
@login_required
def order():
    ids = [int(i) for i in request.form.getlist("folder_id") if i.isdigit()]
    return _commit(folders.reorder_folders, current_user.id, ids)


@bp.post("/<int:folder_id>/delete")
@login_required
def delete(folder_id: int):
    return _commit(folders.delete_folder, _own(folder_id))


@bp.post("/group")
@admin_required
def create_group():
    form = request.form
    return _commit(
        folders.create_group_folder,
        form.get("name", ""),
        _team_ids(),
        bool(form.get("skip_notifications")),
    )


@bp.post("/group/<int:folder_id>")
@admin_required
def update_group(folder_id: int):
    folder = get_or_404(folders.group_folder(db(), folder_id))
    form = request.form
    return _commit(
        folders.update_group_folder,
        folder,
        form.get("name", ""),
        _team_ids(),
        bool(form.get("skip_notifications")),
    )


@bp.post("/group/<int:folder_id>/delete")
@admin_required
def delete_group(folder_id: int):
    return _commit(folders.delete_folder, get_or_404(folders.group_folder(db(), folder_id)))


def _team_ids() -> list[int]:
    return [int(i) for i in request.form.getlist("team_id") if i.isdigit()]
