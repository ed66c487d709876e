"""Acting on mail from a list or from one mail's page: the same rules for both.

Which mail a form names (conversation rows stand for their thread), the delete confirmation,
applying an action (the blobs no mail needs any more go after the commit), and the undo notice.
"""

from __future__ import annotations

from flask import abort, flash, render_template, request
from flask_login import current_user

from crm.mailbox import actions as mail_actions
from crm.mailbox import conversations, listing
from crm.web import db, is_htmx, page, services

DELETE_FORBIDDEN = (
    "Deleting mail permanently is switched off for users: move it to Trash, or ask an admin."
)


def apply(action: str, ids: list[int]) -> mail_actions.Done:
    """Apply and commit; a delete the user may not do answers 403, an unknown target 404."""
    try:
        done = mail_actions.apply(db(), current_user, action, ids, request.form.get("target"))
    except mail_actions.ActionError:
        if action == "delete":
            abort(403, description=DELETE_FORBIDDEN)
        abort(404)
    db().commit()
    mail_actions.drop_unreferenced_blobs(db(), services().blobs, done.blobs)
    return done


def selected_ids(values: list[str], back: str) -> list[int]:
    return conversations.selected_ids(db(), current_user, values, back)


UNDO_LIMIT = 200  # beyond this many mails the notice (and a flashed cookie) would grow too big


def undo_offer(action: str, done, target: str | None, back: str) -> dict | None:
    """What a move or trash offers to undo: a line of text, where each mail was, and a way back."""
    if action not in ("trash", "move") or not done.before or len(done.before) > UNDO_LIMIT:
        return None
    view = listing.resolve(db(), current_user, target or "") if action == "move" else None
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


def confirm_delete(ids: list[int], back: str, action_url: str, back_url: str):
    """Deleting for everyone asks first (mail.js asks in a dialog and skips this page); a
    user who may not delete is refused at once, not asked first."""
    if not mail_actions.may_delete(db(), current_user):
        abort(403, description=DELETE_FORBIDDEN)
    return page(
        "inbox/confirm_delete.html", ids=ids, folder=back, action_url=action_url, back_url=back_url
    )
