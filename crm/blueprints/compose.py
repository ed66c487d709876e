"""Writing mail: the compose form for a new mail, a reply, a forward or a draft; send, save,
discard, undo; address suggestions; the search and choice of the mail's record."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from crm.mail import sanitize
from crm.mail.compose import html_to_text
from crm.mail.mailto import mailto_url
from crm.mail.sanitize import text_to_html
from crm.models import Email
from crm.outbound import drafts, outbox, parents, replies, senders, suggestions
from crm.outbound.drafts import DraftError, DraftInput, Upload
from crm.outbound.senders import SendRefused
from crm.queue import enqueue_send, mail_queue
from crm.records import preferences
from crm.records.kinds import KIND_OF_TYPE
from crm.templating import context, handlebars, library, placeholders
from crm.templating.rendering import Rendered, render_template, text_of
from crm.web import db, fragment, get_or_404, page, rejected_status, services

bp = Blueprint("compose", __name__, url_prefix="/compose")
MAX_UPLOAD = 20 * 1024 * 1024


@bp.before_request
@login_required
def _signed_in():
    return None


@bp.app_template_global()
def compose_url(**args) -> str:
    """Where "write a mail" leads: our compose form, or a mailto: link for users who prefer
    their own mail client (a reply or forward goes through the form, which redirects)."""
    answering = "reply" in args or "forward" in args
    if current_user.is_authenticated and current_user.use_external_client and not answering:
        return mailto_url([args["to"]] if args.get("to") else [])
    return url_for("compose.new", **{k: v for k, v in args.items() if v is not None})


@bp.get("/")
def new():
    """A new mail, a reply (`reply=<id>`, `all=1`) or a forward (`forward=<id>`)."""
    draft = _prefill()
    if current_user.use_external_client and not request.args.get("here"):
        return redirect(_mailto(draft))
    return _form(draft, None)


def _mailto(draft: DraftInput) -> str:
    def plain(field: str) -> list[str]:
        return [a for _, a in drafts.parse_recipients(field)] if field else []

    return mailto_url(
        plain(draft.to), plain(draft.cc), plain(draft.bcc), subject=draft.subject,
        body=html_to_text(draft.body) if draft.is_html else draft.body,
    )  # fmt: skip


def _prefill() -> DraftInput:
    session, args = db(), request.args

    def when(e):
        return preferences.mail_date_text(
            e.date_sent, current_user.time_zone, current_user.date_format, full=True
        )

    if args.get("reply", type=int) or args.get("forward", type=int):
        source_id = args.get("reply", type=int) or args.get("forward", type=int)
        email = get_or_404(_readable(source_id))
        if args.get("forward"):
            return replies.forward(session, current_user, email, when(email))
        return replies.reply(session, current_user, email, bool(args.get("all")), when(email))
    if args.get("copy", type=int):  # "Send again as a new mail" after a failed or unknown send
        email = get_or_404(_readable(args.get("copy", type=int)))
        if email.created_by_id != current_user.id:
            abort(404)
        return _input_of(email)
    parent = _parent_arg(args.get("parent_type"), args.get("parent_id", type=int))
    return replies.new_mail(session, current_user, args.get("to", ""), parent)


def _readable(email_id: int) -> Email | None:
    from crm.mailbox import listing

    return listing.open_mail(db(), current_user, email_id)


def _parent_arg(kind: str | None, record_id: int | None):
    return (kind, record_id) if kind and record_id else None


@bp.get("/<int:email_id>")
def edit(email_id: int):
    email = get_or_404(drafts.editable(db(), current_user, email_id))
    return _form(_input_of(email), email)


@bp.post("/")
@bp.post("/<int:email_id>")
def submit(email_id: int | None = None):
    """One form, several buttons: send, save, schedule, discard."""
    session = db()
    # The autosave timer of a new mail keeps posting to /compose/; the first save's id is sent back.
    email_id = email_id or request.form.get("draft_id", type=int)
    email = drafts.editable(session, current_user, email_id) if email_id else None
    if email_id and email is None:
        abort(404)
    action = request.form.get("action", "save")
    draft = _input_from_form()
    if action == "template":  # "Use template" without JavaScript: the form again, filled in
        return _form(draft, email, fill=_fill(draft))
    if action == "discard":
        if email is not None:
            drafts.discard(session, email)
            session.commit()
        flash("Draft discarded.", "info")
        return redirect(url_for("inbox.folder", key="drafts"), 303)
    try:
        email = drafts.save(session, services().blobs, current_user, draft, email)
    except DraftError as exc:
        session.rollback()
        return _form(draft, email, errors=exc.errors, status=rejected_status())
    # The draft is kept whatever the send says: a refusal never loses what was written.
    session.commit()
    if action == "save":
        return _saved(email)
    if action == "send_anyway":
        action = "send"
    elif unresolved := _unresolved(draft):
        # Shown before sending: the user sends anyway or fixes the text (the draft is kept).
        saved = _input_of(email)
        saved.template_id, saved.template_parent = draft.template_id, draft.template_parent
        return _form(saved, email, unresolved=unresolved, status=rejected_status())
    try:
        handed = outbox.submit(
            session, services().blobs, current_user, email, send_at=_send_at(action)
        )
    except SendRefused as exc:
        session.rollback()
        email = drafts.editable(session, current_user, email.id)
        return _form(_input_of(email), email, errors={"send": str(exc)}, status=rejected_status())
    session.commit()
    _queue(handed)
    _announce(handed, action)
    return redirect(url_for("mail.show", email_id=handed.email_id), 303)


def _queue(handed) -> None:
    svc = services()
    enqueue_send(mail_queue(svc.redis, svc.config.queue_name), handed.entry_id, handed.due_at)


def _send_at(action: str) -> datetime | None:
    if action != "schedule":
        return None
    raw = request.form.get("send_at", "")
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        raise SendRefused("Choose a date and time to send at.") from None
    zone = ZoneInfo(current_user.time_zone or "UTC")
    return local.replace(tzinfo=zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _announce(handed, action: str) -> None:
    if action == "schedule":
        when = preferences.mail_date_text(
            handed.due_at, current_user.time_zone, current_user.date_format, full=True
        )
        flash(f"Scheduled to be sent {when}.", "info")
    else:
        flash("Your mail is on its way: it can still be stopped with Undo send below.", "info")


def _saved(email: Email):
    from crm.web import is_htmx

    if is_htmx():  # the autosave timer and the Save button: a status line, the draft's id
        return fragment("compose/_saved.html", email=email)
    flash("Draft saved.", "info")
    return redirect(url_for("compose.edit", email_id=email.id), 303)


@bp.post("/<int:email_id>/undo")
def undo(email_id: int):
    """Cancel a queued or scheduled send: the mail becomes a draft again, opened for editing."""
    session = db()
    email = get_or_404(session.get(Email, email_id))
    if not outbox.cancel(session, current_user, email):
        session.rollback()
        flash("Too late to undo: the mail is already being sent.", "error")
        return redirect(url_for("mail.show", email_id=email_id), 303)
    session.commit()
    flash("Sending cancelled; the mail is a draft again.", "info")
    return redirect(url_for("compose.edit", email_id=email_id), 303)


@bp.get("/addresses")
def addresses():
    """Suggestions for an address field (a datalist), from users, contacts, leads, accounts."""
    term = request.args.get(request.args.get("field", "to"), "")
    found = suggestions.addresses(db(), current_user, term.rpartition(",")[2].strip())
    prefix = term.rpartition(",")[0]
    return fragment("compose/_suggestions.html", found=found, prefix=prefix)


@bp.get("/records")
def records():
    """The Record field's search: records of one type the user may read (a page of links to a
    new mail linked to each, without JavaScript)."""
    record_type, q = request.args.get("record_type", "Account"), request.args.get("q", "")
    try:
        found, error = parents.search(db(), current_user, record_type, q), None
    except parents.ParentRefused as exc:
        found, error = None, str(exc)
    return page(
        "compose/records.html", rejected_status() if error else 200, found=found, error=error,
        record_type=record_type, kind=KIND_OF_TYPE.get(record_type), q=q,
        parent_types=parents.offered_types(db()),
    )  # fmt: skip


@bp.post("/parent")
def parent():
    """The Record field after a record was chosen from its search, or saying why it was not
    (the form's record stays)."""
    form = request.form
    chosen_type = form.get("choose_type", "")
    try:
        record = parents.choose(db(), current_user, chosen_type, form.get("choose_id", type=int))
    except parents.ParentRefused as exc:
        kept = (form.get("parent_type") or None, form.get("parent_id", type=int))
        field = _record_field(*kept, error=str(exc))
        return fragment("compose/_record.html", rejected_status(), **field)
    return fragment("compose/_record.html", **_record_field(chosen_type, record.id, chosen=True))


def _record_field(parent_type, parent_id, error=None, chosen=False) -> dict:
    session = db()
    return {
        "parent_type": parent_type,
        "parent_id": parent_id,
        "parent_name": parents.name_of(session, current_user, parent_type, parent_id),
        "parent_types": parents.offered_types(session),
        "parent_error": error,
        "chosen": chosen,  # compose.js then asks whether to render the template again
    }


@bp.post("/template")
def template():
    """The chosen template rendered for this draft: subject, body and warnings to fill in."""
    draft = _input_from_form()
    return fragment("compose/_template_fill.html", fill=_fill(draft), draft=draft, swap=True)


def _fill(draft: DraftInput) -> dict:
    """Render the chosen template with the draft's record and first recipient as context."""
    session = db()
    chosen = library.get_usable(session, current_user, draft.template_id or 0)
    fill = {"template": chosen, "parent": _parent_key(draft), "error": None, "rendered": None}
    if chosen is None:
        fill["error"] = "Choose a template."
        return fill
    try:
        rendered = render_template(
            session, text_of(chosen), user=current_user, parent=_parent_record(draft),
            to_address=_first_recipient(draft.to),
        )  # fmt: skip
    except handlebars.TemplateError as exc:
        fill["error"] = f"The template “{chosen.name}” cannot be used: {library.position_text(exc)}"
        return fill
    draft.subject, draft.body, draft.is_html = rendered.subject, rendered.body, rendered.is_html
    draft.template_parent = fill["parent"]
    draft.template_attachment_ids = [a.id for a in chosen.attachments]
    fill.update(rendered=rendered, **_bodies(rendered))
    return fill


def _bodies(rendered: Rendered) -> dict:
    html = rendered.body if rendered.is_html else _text_as_html(rendered.body)
    text = html_to_text(rendered.body) if rendered.is_html else rendered.body
    return {"html": html, "text": text}


def _text_as_html(text: str) -> str:
    """Plain text for the HTML editor: escaped, a blank line starts a paragraph and a line break
    stays one (bare newlines would collapse there, and into one line in the text part sent)."""
    paragraphs = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip("\n"))
    return "".join(
        "<p>" + str(text_to_html(p.strip("\n"))).replace("\n", "<br>") + "</p>"
        for p in paragraphs
        if p.strip()
    )


def _parent_key(draft: DraftInput) -> str:
    return f"{draft.parent_type}:{draft.parent_id}" if draft.parent_type else ""


def _parent_record(draft: DraftInput):
    return context.record_of(db(), draft.parent_type, draft.parent_id)


def _first_recipient(field: str) -> str | None:
    for entry in drafts.split_entries(field):
        try:
            found = drafts.parse_recipients(entry)
        except ValueError:
            continue
        if found:
            return found[0][1]
    return None


def _unresolved(draft: DraftInput) -> list[str]:
    """Placeholders still in the text, e.g. a template filled in before its record was chosen."""
    tokens = placeholders.parse(draft.subject).tokens + placeholders.parse(draft.body).tokens
    return [f"{{{t}}}" for t in dict.fromkeys(tokens)]


def _form(
    draft: DraftInput, email: Email | None, errors=None, status: int = 200, fill=None,
    unresolved=(),
):  # fmt: skip
    session = db()
    html = draft.body if draft.is_html else _text_as_html(draft.body)
    return page(
        "compose/form.html",
        status,
        draft=draft,
        body_html=sanitize.clean(html, cid_url=drafts.keep_cid).html,
        body_text=html_to_text(draft.body) if draft.is_html else draft.body,
        email=email,
        errors=errors or {},
        senders=senders.senders(session, current_user),
        **_record_field(draft.parent_type, draft.parent_id),
        attachments=suggestions.attachments(session, draft.keep_attachment_ids),
        scheduled=outbox.scheduled_of(session, current_user.id),
        templates=library.picker(session, current_user),
        fill=fill,
        unresolved=unresolved,
        render_again=bool(draft.template_id) and draft.template_parent != _parent_key(draft),
    )


def _input_of(email: Email) -> DraftInput:
    def field(role: str) -> str:
        return ", ".join(
            f'"{r.name}" <{r.address.address}>' if r.name else r.address.address
            for r in email.recipients
            if r.role == role
        )

    from crm.outbound.message import from_address

    return DraftInput(
        from_address=from_address(email),
        to=field("to"),
        cc=field("cc"),
        bcc=field("bcc"),
        subject=email.subject,
        body=email.body_html or email.body_text,
        is_html=bool(email.body_html) or not email.body_text,
        parent_type=email.parent_type,
        parent_id=email.parent_id,
        in_reply_to=email.in_reply_to,
        references=list(email.references or []),
        keep_attachment_ids=[a.id for a in email.attachments],
    )


def _input_from_form() -> DraftInput:
    form = request.form
    uploads = [
        Upload(f.filename or "attachment", f.mimetype or "application/octet-stream", f.read())
        for f in request.files.getlist("attachments")
        if f and f.filename
    ]
    if sum(len(u.data) for u in uploads) > MAX_UPLOAD:
        uploads = []
        flash("Attachments above 20 MB in all were not added.", "error")
    return DraftInput(
        from_address=form.get("from", ""),
        to=form.get("to", ""),
        cc=form.get("cc", ""),
        bcc=form.get("bcc", ""),
        subject=form.get("subject", ""),
        body=form.get("body", ""),
        is_html=form.get("format", "html") == "html",
        parent_type=form.get("parent_type") or None,
        parent_id=form.get("parent_id", type=int),
        in_reply_to=form.get("in_reply_to") or None,
        references=[r for r in form.get("references", "").split() if r],
        keep_attachment_ids=[int(a) for a in form.getlist("keep_attachment") if a.isdigit()],
        uploads=uploads,
        template_id=form.get("template_id", type=int),
        template_parent=form.get("template_parent", ""),
        template_attachment_ids=[
            int(a) for a in form.getlist("template_attachment") if a.isdigit()
        ],
    )
