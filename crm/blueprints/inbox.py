"""Mail lists: the folder pane, folder pages with keyset "load more", search and bulk actions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user, login_required

from crm import mailbox, mailbox_actions, search
from crm.db import utcnow
from crm.web import db, fragment, get_or_404, is_htmx, page, services, trigger, wants_fragment

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


@bp.before_request
@login_required
def _signed_in():
    pass


@bp.get("/")
def index():
    return _show("inbox")


@bp.get("/<key>")
def folder(key: str):
    return _show(key)


def _show(key: str, status: int = 200):
    view = get_or_404(mailbox.resolve(db(), current_user, key))
    cursor = request.args.get("after")
    listing = mailbox.list_page(db(), current_user, view, cursor)
    more_url = url_for("inbox.folder", key=view.key, after=listing.next_cursor)
    if cursor and wants_fragment():
        return fragment("inbox/_rows.html", view=view, listing=listing, more_url=more_url)
    return page(
        "inbox/index.html",
        status,
        view=view,
        listing=listing,
        more_url=more_url,
        pane=mailbox.pane(db(), current_user),
        query=search.Query(folder=view.key),
        may_delete=mailbox_actions.may_delete(db(), current_user),
    )


@bp.get("/search")
def find():
    query = search.parse(request.args)
    listing = get_or_404(search.search(db(), current_user, query, request.args.get("after")))
    args = {k: v for k, v in request.args.items(multi=False) if k != "after"}
    more_url = url_for("inbox.find", **args, after=listing.next_cursor)
    view = mailbox.View("search", "Search results")
    if request.args.get("after") and wants_fragment():
        return fragment("inbox/_rows.html", view=view, listing=listing, more_url=more_url)
    return page(
        "inbox/index.html",
        view=view,
        listing=listing,
        more_url=more_url,
        query=query,
        pane=mailbox.pane(db(), current_user),
        may_delete=mailbox_actions.may_delete(db(), current_user),
    )


@bp.get("/pane")
def pane():
    """The folder pane alone: polled, and reloaded whenever mail changes."""
    return fragment(
        "inbox/_pane.html",
        pane=mailbox.pane(db(), current_user),
        current=request.args.get("current", ""),
    )


@bp.post("/actions")
def actions():
    back = request.form.get("folder", "inbox")
    return _act(request.form.get("action", ""), back)


@bp.post("/move")
def move():
    """Drag and drop onto a folder of the pane (mail.js), or any form naming a folder."""
    return _act("move", request.form.get("from", "inbox"))


def _act(action: str, back: str):
    ids = [int(i) for i in request.form.getlist("ids") if i.isdigit()]
    if action == "delete" and request.form.get("confirmed") != "yes":
        return confirm_delete(
            ids, back, url_for("inbox.actions"), url_for("inbox.folder", key=back)
        )
    try:
        done = mailbox_actions.apply(db(), current_user, action, ids, request.form.get("target"))
    except mailbox_actions.ActionError:
        abort(403 if action == "delete" else 404)
    db().commit()
    mailbox_actions.drop_unreferenced_blobs(db(), services().blobs, done.blobs)
    if is_htmx():
        return trigger(
            _show(back if mailbox.resolve(db(), current_user, back) else "inbox"), "mail-changed"
        )
    return redirect(url_for("inbox.folder", key=back), 303)


def confirm_delete(ids: list[int], back: str, action_url: str, back_url: str):
    """Deleting for everyone asks first (mail.js asks in a dialog and skips this page)."""
    return page(
        "inbox/confirm_delete.html", ids=ids, folder=back, action_url=action_url, back_url=back_url
    )


@bp.app_template_filter("maildate")
def maildate(value: datetime | None, full: bool = False) -> str:
    """A UTC timestamp in the reader's zone and format; today's mail shows the time only."""
    if value is None:
        return ""
    try:
        zone = ZoneInfo(current_user.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = value.replace(tzinfo=UTC).astimezone(zone)
    today = utcnow().replace(tzinfo=UTC).astimezone(zone).date()
    fmt = current_user.date_format or "%Y-%m-%d"
    if full:
        return local.strftime(f"{fmt} %H:%M")
    return local.strftime("%H:%M") if local.date() == today else local.strftime(fmt)
