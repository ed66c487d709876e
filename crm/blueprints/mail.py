"""Reading one mail: its page, actions on it, its attachments and its original source."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, make_response, redirect, request, url_for
from flask_login import current_user, login_required
from itsdangerous import BadData, URLSafeTimedSerializer

from crm import web
from crm.blueprints import acting
from crm.inbound import bounces
from crm.mail import sanitize
from crm.mailbox import actions as mail_actions
from crm.mailbox import listing, reading
from crm.outbound import sending_view
from crm.web import db, fragment, get_or_404, is_htmx, page, services, trigger

bp = Blueprint("mail", __name__, url_prefix="/mail")
INLINE_TOKEN_SECONDS = 24 * 3600


@bp.before_request
def _signed_in():
    # Inline images are fetched by the sandboxed iframe, whose opaque origin sends no session
    # cookie: they carry a signed, expiring token for one user and one attachment instead.
    if request.endpoint != "mail.inline_image":
        return login_required(lambda: None)()
    return None


@bp.get("/<int:email_id>")
def show(email_id: int):
    email = get_or_404(listing.open_mail(db(), current_user, email_id))
    _open_conversation(email_id, request.args.get("conversation"))
    db().commit()
    allow = request.args.get("images") == "1" or reading.trusts_sender(db(), current_user.id, email)
    body = reading.body(email, request.host_url.rstrip("/"), _inline_url(email_id), allow)
    response = page(
        "mail/show.html",
        email=email,
        body=body,
        images_allowed=allow,
        **_context(email),
        people=reading.people(email),
        thread=listing.thread(db(), current_user, email),
        parent=listing.parent_names(db(), [email]).get((email.parent_type, email.parent_id)),
        sending=sending_view.of(db(), current_user, email),
        **bounces.page(db(), current_user, email, services().blobs),
    )
    if allow:  # the iframe inherits this page's policy, so it must let the images through too
        response.headers["Content-Security-Policy"] = web.CSP.format(images=" https: http:")
    return response


def _open_conversation(email_id: int, folder: str | None) -> None:
    """Opened from a conversation row: the whole conversation in that folder is read now."""
    if folder and listing.resolve(db(), current_user, folder) is not None:
        ids = acting.selected_ids([f"thread:{email_id}"], folder)
        mail_actions.apply(db(), current_user, "read", ids)


def _context(email) -> dict:
    return {
        "back": _back(email.id),
        "state": listing.state_of(db(), current_user.id, email.id),
        "folders": listing.visible_folders(db(), current_user),
        "may_delete": mail_actions.may_delete(db(), current_user),
    }


def _back(email_id: int) -> str:
    """Where "Back" leads: the list the reader came from (a path on this site), else the Inbox.

    The list's links carry it as `back`; a link without one (a record's History) leaves the
    Referer, used only when it is this site's own page and not this mail again.
    """
    here = url_for("mail.show", email_id=email_id)
    for candidate in (request.values.get("back"), _referer_path()):
        path = urlsplit(candidate or "").path
        if web.is_safe_local_path(candidate) and path != here and not path.startswith(here + "/"):
            return candidate
    return url_for("inbox.index")


def _back_arg(back: str) -> dict:
    """`back` for a URL back to the mail, left out when it is the Inbox anyway."""
    return {} if back == url_for("inbox.index") else {"back": back}


def _referer_path() -> str | None:
    parts = urlsplit(request.referrer or "")
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _inline_url(email_id: int):
    def url(att_id: int) -> str:
        token = _signer().dumps([current_user.id, email_id, att_id])
        return url_for(
            "mail.inline_image", email_id=email_id, attachment_id=att_id, t=token, _external=True
        )

    return url


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="mail-inline-image")


@bp.post("/<int:email_id>/action")
def act(email_id: int):
    email = get_or_404(listing.readable(db(), current_user, email_id))
    action = request.form.get("action", "")
    back = _back(email_id)
    if action == "delete" and request.form.get("confirmed") != "yes":
        # The confirmation's form carries the way back in its URL.
        action_url = url_for("mail.act", email_id=email_id, **_back_arg(back))
        here = url_for("mail.show", email_id=email_id, **_back_arg(back))
        return acting.confirm_delete([email_id], "inbox", action_url, here)
    done = acting.apply(action, [email.id])
    if action == "delete":
        return _gone(back)
    here = url_for("mail.show", email_id=email_id, **_back_arg(back))
    undo = acting.undo_offer(action, done, request.form.get("target"), here)
    if is_htmx():
        db().refresh(email)
        actions = fragment("mail/_actions.html", email=email, **_context(email))
        return acting.offer_undo(trigger(actions, "mail-changed"), undo)
    return acting.offer_undo(redirect(here, 303), undo)


@bp.post("/<int:email_id>/star")
def star(email_id: int):
    """The list's star: sets Important to `on` (not a toggle, so a double click stays put)."""
    get_or_404(listing.readable(db(), current_user, email_id))
    important = request.values.get("on") == "1"
    action = "important" if important else "unimportant"
    # A conversation row's star stands for all of its mail in the folder it was listed in.
    folder = request.values.get("conversation") or None
    ids = acting.selected_ids([f"thread:{email_id}"], folder) if folder else [email_id]
    mail_actions.apply(db(), current_user, action, ids)
    db().commit()
    if is_htmx():
        response = fragment(
            "mail/_star.html", mail_id=email_id, important=important, conversation=folder
        )
        return trigger(response, "mail-changed")
    return redirect(_back(email_id), 303)


def _gone(back: str):
    """A deleted mail: back to the list the reader came from."""
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = back
        return response
    return redirect(back, 303)


@bp.post("/<int:email_id>/trust-sender")
def trust_sender(email_id: int):
    """ "Always show images" from this mail's sender."""
    email = get_or_404(listing.readable(db(), current_user, email_id))
    reading.trust_sender(db(), current_user.id, email)
    db().commit()
    return redirect(url_for("mail.show", email_id=email.id, **_back_arg(_back(email.id))), 303)


@bp.get("/<int:email_id>/attachments/<int:attachment_id>")
def attachment(email_id: int, attachment_id: int):
    email = get_or_404(listing.readable(db(), current_user, email_id))
    att = get_or_404(next((a for a in email.attachments if a.id == attachment_id), None))
    kind = reading.safe_type(att.content_type)
    inline = request.args.get("inline") == "1" and kind in reading.INLINE_IMAGE_TYPES
    return _download(services().blobs.get(att.sha256), kind, att.filename, inline)


@bp.get("/<int:email_id>/inline/<int:attachment_id>")
def inline_image(email_id: int, attachment_id: int):
    """An inline (cid:) image for the mail body, authorised by its token, images only."""
    try:
        user_id, signed_email, signed_att = _signer().loads(
            request.args.get("t", ""), max_age=INLINE_TOKEN_SECONDS
        )
    except BadData:
        abort(404)
    if (signed_email, signed_att) != (email_id, attachment_id):
        abort(404)
    att, kind = get_or_404(reading.inline_image(db(), user_id, email_id, attachment_id))
    return _download(services().blobs.get(att.sha256), kind, att.filename, inline=True)


@bp.get("/<int:email_id>/original")
def original(email_id: int):
    """The raw message as we received it, as a download."""
    email = get_or_404(listing.readable(db(), current_user, email_id))
    if not email.raw_sha256 or not services().blobs.exists(email.raw_sha256):
        abort(404)
    raw = services().blobs.get(email.raw_sha256)
    return _download(raw, "message/rfc822", f"mail-{email.id}.eml", inline=False)


@bp.app_template_filter("mailtext")
def mailtext(text: str):
    return sanitize.text_to_html(text or "")


def _download(data: bytes, kind: str, filename: str, inline: bool):
    response = make_response(data)
    response.headers["Content-Type"] = kind
    response.headers["Content-Disposition"] = reading.content_disposition(filename, inline)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Even if a browser rendered it, a download may run nothing and load nothing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
