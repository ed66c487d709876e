"""Mail lists: the folder pane, folder pages with keyset "load more", search and bulk actions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from crm import conversations, mailbox, mailbox_actions, search
from crm.db import utcnow
from crm.web import (
    db,
    fragment,
    get_or_404,
    is_htmx,
    is_safe_local_path,
    page,
    services,
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
    view = get_or_404(mailbox.resolve(db(), current_user, key))
    cursor = request.args.get("after")
    listing = _listing(view, cursor)
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
        query=search.Query(),  # the search box covers all mail; Refine narrows to a folder
        may_delete=mailbox_actions.may_delete(db(), current_user),
    )


def _listing(view: mailbox.View, cursor: str | None) -> mailbox.ListPage:
    """The user's choice in Preferences: a row per conversation, or (the default) per mail."""
    if current_user.mail_as_conversations and view.key != "drafts":
        return conversations.conversation_page(db(), current_user, view, cursor)
    return mailbox.list_page(db(), current_user, view, cursor)


@bp.get("/search")
def find():
    query = search.parse(request.args)
    listing = get_or_404(search.search(db(), current_user, query, request.args.get("after")))
    args = {k: v for k, v in request.args.items(multi=False) if k != "after"}
    more_url = url_for("inbox.find", **args, after=listing.next_cursor)
    search_args = {k: v for k, v in args.items() if k != "folder"}
    view = mailbox.View("search", "Search results")
    if request.args.get("after") and wants_fragment():
        return fragment("inbox/_rows.html", view=view, listing=listing, more_url=more_url)
    return page(
        "inbox/index.html",
        view=view,
        listing=listing,
        more_url=more_url,
        query=query,
        search_args=search_args,
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
    ids = selected_ids(request.form.getlist("ids"), back)
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
    undo = undo_offer(action, done, request.form.get("target"), url_for("inbox.folder", key=back))
    if is_htmx():
        listing = _show(back if mailbox.resolve(db(), current_user, back) else "inbox")
        return offer_undo(trigger(listing, "mail-changed"), undo)
    return offer_undo(redirect(url_for("inbox.folder", key=back), 303), undo)


def selected_ids(values: list[str], back: str) -> list[int]:
    """The mail a list form names: mail ids, and "thread:<id>" for a conversation row, which
    stands for all of that mail's thread in the folder `back` the row was listed in."""
    ids = {int(v) for v in values if v.isdigit()}
    heads = [int(v[7:]) for v in values if v.startswith("thread:") and v[7:].isdigit()]
    view = mailbox.resolve(db(), current_user, back) if heads else None
    if view is not None:
        ids.update(conversations.thread_mail_ids(db(), current_user, view, heads))
    else:
        ids.update(heads)
    return sorted(ids)


# --- undo of move and trash -----------------------------------------------------------------

UNDO_LIMIT = 200  # beyond this many mails the notice (and a flashed cookie) would grow too big


def undo_offer(action: str, done, target: str | None, back: str) -> dict | None:
    """What a move or trash offers to undo: a line of text, where each mail was, and a way back."""
    if action not in ("trash", "move") or not done.before or len(done.before) > UNDO_LIMIT:
        return None
    view = mailbox.resolve(db(), current_user, target or "") if action == "move" else None
    where = view.label if view else "Trash"
    n = len(done.before)
    return {
        "text": f"{n} mail{'s' if n != 1 else ''} moved to {where}.",
        "back": back,
        "items": [f"{p.email_id}:{p.folder_id or ''}:{int(p.in_trash)}" for p in done.before],
    }


def offer_undo(response, undo: dict | None):
    """The undo notice: swapped in out of band for htmx, else flashed onto the next page."""
    if undo is not None and is_htmx():
        notice = render_template("inbox/_undo.html", undo=undo, oob=True)
        response.set_data(response.get_data(as_text=True) + notice)
    elif undo is not None:
        flash(undo, "undo")
    return response


@bp.post("/undo")
def undo():
    """Undo a move or trash: each mail back to the folder and Trash state it had."""
    before = [p for p in map(_placement, request.form.getlist("item")) if p is not None]
    count = mailbox_actions.restore(db(), current_user, before)
    db().commit()
    flash(
        f"Undone: {count} mail{'s are' if count != 1 else ' is'} back where {'they' if count != 1 else 'it'} had been."
    )
    back = request.form.get("back")
    return redirect(back if is_safe_local_path(back) else url_for("inbox.index"), 303)


def _placement(raw: str) -> mailbox_actions.Placement | None:
    """ "email id:folder id (empty for the Inbox):1 if in Trash", as the undo form sends it."""
    email_id, _, rest = raw.partition(":")
    folder, _, trash = rest.partition(":")
    if not email_id.isdigit() or not (folder == "" or folder.isdigit()) or trash not in ("0", "1"):
        return None
    return mailbox_actions.Placement(int(email_id), int(folder) if folder else None, trash == "1")


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
