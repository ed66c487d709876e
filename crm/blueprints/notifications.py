"""In-app notifications: the list, marking read, and the header badge that polls."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user, login_required

from crm.mailbox import notifications
from crm.web import db, fragment, get_or_404, is_htmx, page, trigger

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
LIMIT = 100


@bp.before_request
@login_required
def _signed_in():
    pass


@bp.get("/")
def index():
    notes = notifications.latest(db(), current_user.id, LIMIT)
    return page("notifications/index.html", notes=notes)


@bp.get("/badge")
def badge():
    return fragment(
        "notifications/_badge.html", unread=notifications.unread_count(db(), current_user.id)
    )


@bp.post("/read")
def read_all():
    notifications.mark_all_read(db(), current_user.id)
    db().commit()
    return _answer()


@bp.post("/<int:note_id>/read")
def read_one(note_id: int):
    get_or_404(notifications.mark_read(db(), current_user.id, note_id))
    db().commit()
    return _answer()


def _answer():
    if is_htmx():
        return trigger(index(), "notifications-changed")
    return redirect(url_for("notifications.index"), 303)
