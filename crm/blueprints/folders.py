"""Folders: manage one's own folders, admins' group folders, and move mail into them."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from crm import folders
from crm.blueprints.auth import admin_required
from crm.models import Team
from crm.web import (
    db,
    fragment,
    get_or_404,
    has_endpoint,
    is_htmx,
    is_safe_local_path,
    page,
    trigger,
)

bp = Blueprint("folders", __name__, url_prefix="/folders")


def _listing(error: str | None = None, template="folders/index.html"):
    session = db()
    mine = folders.personal_folders(session, current_user.id)
    groups, teams = [], []
    if current_user.is_admin:
        groups = folders.group_folders(session)
        teams = session.scalars(select(Team).order_by(Team.name)).all()
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


@bp.post("/move")
@login_required
def move():
    """Move mail (`email_id`, repeated) to `folder` (a folder id, or "inbox")."""
    session = db()
    target_key = request.form.get("folder", "")
    target = None
    if target_key != "inbox":
        target = (
            folders.target_folder(session, current_user, int(target_key))
            if target_key.isdigit()
            else None
        )
        if target is None:
            abort(404)
    ids = [int(i) for i in request.form.getlist("email_id") if i.isdigit()]
    moved = folders.move_mail(session, current_user, ids, target)
    session.commit()
    if is_htmx():
        return trigger(make_response("", 204), "mail-changed", {"moved": moved})
    back = request.form.get("next") or ""
    if not is_safe_local_path(back):
        back = url_for("inbox.index" if has_endpoint("inbox.index") else "folders.index")
    return redirect(back, 303)
