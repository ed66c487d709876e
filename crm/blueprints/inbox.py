"""Mail lists: the folder pane, folder pages with keyset "load more", search and bulk actions."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from crm.blueprints import acting
from crm.db import utcnow
from crm.mailbox import actions as mail_actions
from crm.mailbox import conversations, listing, search
from crm.records import preferences
from crm.web import (
    db,
    fragment,
    get_or_404,
    is_htmx,
    is_safe_local_path,
    page,
    trigger,
    wants_fragment,
)

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
    view = get_or_404(listing.resolve(db(), current_user, key))
    cursor = request.args.get("after")
    rows = _listing(view, cursor)
    more_url = url_for("inbox.folder", key=view.key, after=rows.next_cursor)
    if cursor and wants_fragment():
        return fragment("inbox/_rows.html", view=view, listing=rows, more_url=more_url)
    return page(
        "inbox/index.html",
        status,
        view=view,
        listing=rows,
        more_url=more_url,
        pane=listing.pane(db(), current_user),
        query=search.Query(),  # the search box covers all mail; Refine narrows to a folder
        may_delete=mail_actions.may_delete(db(), current_user),
    )


def _listing(view: listing.View, cursor: str | None) -> listing.ListPage:
    """The user's choice in Preferences: a row per conversation, or (the default) per mail."""
    if current_user.mail_as_conversations and view.key != "drafts":
        return conversations.conversation_page(db(), current_user, view, cursor)
    return listing.list_page(db(), current_user, view, cursor)


@bp.get("/search")
def find():
    query = search.parse(request.args)
    rows = get_or_404(search.search(db(), current_user, query, request.args.get("after")))
    args = {k: v for k, v in request.args.items(multi=False) if k != "after"}
    more_url = url_for("inbox.find", **args, after=rows.next_cursor)
    search_args = {k: v for k, v in args.items() if k != "folder"}
    view = listing.View("search", "Search results")
    if request.args.get("after") and wants_fragment():
        return fragment("inbox/_rows.html", view=view, listing=rows, more_url=more_url)
    return page(
        "inbox/index.html",
        view=view,
        listing=rows,
        more_url=more_url,
        query=query,
        search_args=search_args,
        pane=listing.pane(db(), current_user),
        may_delete=mail_actions.may_delete(db(), current_user),
    )


@bp.get("/pane")
def pane():
    """The folder pane alone: polled, and reloaded whenever mail changes."""
    return fragment(
        "inbox/_pane.html",
        pane=listing.pane(db(), current_user),
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
    ids = acting.selected_ids(request.form.getlist("ids"), back)
    if action == "delete" and request.form.get("confirmed") != "yes":
        return acting.confirm_delete(
            ids, back, url_for("inbox.actions"), url_for("inbox.folder", key=back)
        )
    done = acting.apply(action, ids)
    undo = acting.undo_offer(
        action, done, request.form.get("target"), url_for("inbox.folder", key=back)
    )
    if is_htmx():
        shown = _show(back if listing.resolve(db(), current_user, back) else "inbox")
        return acting.offer_undo(trigger(shown, "mail-changed"), undo)
    return acting.offer_undo(redirect(url_for("inbox.folder", key=back), 303), undo)


# --- undo of move and trash -----------------------------------------------------------------


@bp.post("/undo")
def undo():
    """Undo a move or trash: each mail back to the folder and Trash state it had."""
    before = [p for p in map(_placement, request.form.getlist("item")) if p is not None]
    count = mail_actions.restore(db(), current_user, before)
    db().commit()
    flash(
        f"Undone: {count} mail{'s are' if count != 1 else ' is'} back where {'they' if count != 1 else 'it'} had been."
    )
    back = request.form.get("back")
    return redirect(back if is_safe_local_path(back) else url_for("inbox.index"), 303)


def _placement(raw: str) -> mail_actions.Placement | None:
    """ "email id:folder id (empty for the Inbox):1 if in Trash", as the undo form sends it."""
    email_id, _, rest = raw.partition(":")
    folder, _, trash = rest.partition(":")
    if not email_id.isdigit() or not (folder == "" or folder.isdigit()) or trash not in ("0", "1"):
        return None
    return mail_actions.Placement(int(email_id), int(folder) if folder else None, trash == "1")


@bp.app_template_filter("maildate")
def maildate(value: datetime | None, full: bool = False) -> str:
    """A UTC timestamp in the reader's zone and format; today's mail shows the time only."""
    return preferences.mail_date_text(
        value, current_user.time_zone, current_user.date_format, full, utcnow()
    )
