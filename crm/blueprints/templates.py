"""E-mail templates: list, new, edit, delete (confirmed), attachments, preview."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, request, url_for
from flask_login import current_user, login_required

from crm.mail import sanitize
from crm.mailbox.reading import content_disposition, safe_type
from crm.models import TemplateAttachment
from crm.templating import handlebars, library
from crm.templating.library import TemplateFormError, TemplateInput, Upload
from crm.templating.rendering import render_template, text_of
from crm.web import db, fragment, get_or_404, page, rejected_status, services

bp = Blueprint("templates", __name__, url_prefix="/templates")
MAX_UPLOAD = 20 * 1024 * 1024


@bp.before_request
@login_required
def _signed_in():
    return None


def _listing() -> dict:
    args = request.args
    state = args.get("state", "active")
    state = state if state in library.STATES else "active"
    q, category = args.get("q", "").strip(), args.get("category", "")
    return {
        "found": library.listing(db(), current_user, q, category, state),
        "q": q,
        "category": category,
        "state": state,
        "categories": library.categories(db(), current_user),
    }


@bp.get("/")
def index():
    return page("templates/index.html", **_listing())


@bp.get("/rows")
def rows():
    """The table alone, for the search box and filters; the address bar follows them."""
    context = _listing()
    response = fragment("templates/_rows.html", **context)
    args = {k: context[k] or None for k in ("q", "category")}
    response.headers["HX-Replace-Url"] = url_for("templates.index", **args, state=context["state"])
    return response


def _form(data: TemplateInput, template=None, errors=None):
    return page(
        "templates/form.html",
        rejected_status() if errors else 200,
        data=data,
        tmpl=template,
        errors=errors or {},
        teams=library.teams_for(db(), current_user),
        categories=library.categories(db(), current_user),
        body_html=sanitize.clean(
            data.body if data.is_html else str(sanitize.text_to_html(data.body)),
            cid_url=lambda cid: f"cid:{cid}",
        ).html,
    )


@bp.get("/new")
def new():
    return _form(TemplateInput())


@bp.get("/<int:template_id>")
def edit(template_id: int):
    template = get_or_404(library.get_editable(db(), current_user, template_id))
    return _form(library.input_of(template), template)


@bp.post("/", defaults={"template_id": None})
@bp.post("/<int:template_id>")
def save(template_id: int | None):
    session = db()
    template = None
    if template_id is not None:
        template = get_or_404(library.get_editable(session, current_user, template_id))
    data = _input_from_form()
    try:
        if template is None:
            template = library.create(session, services().blobs, current_user, data)
        else:
            library.update(session, services().blobs, current_user, template, data)
    except TemplateFormError as exc:
        session.rollback()
        template = library.get_editable(session, current_user, template_id) if template_id else None
        return _form(data, template, exc.errors)
    session.commit()
    flash(f"Template “{template.name}” saved.", "info")
    return redirect(url_for("templates.edit", template_id=template.id), 303)


@bp.get("/<int:template_id>/delete")
def confirm_delete(template_id: int):
    template = get_or_404(library.get_editable(db(), current_user, template_id))
    return page("templates/delete.html", tmpl=template)


@bp.post("/<int:template_id>/delete")
def delete(template_id: int):
    template = get_or_404(library.get_editable(db(), current_user, template_id))
    name = template.name
    library.delete(db(), template)
    db().commit()
    flash(f"Template “{name}” deleted.", "info")
    return redirect(url_for("templates.index"), 303)


@bp.get("/<int:template_id>/attachments/<int:attachment_id>")
def attachment(template_id: int, attachment_id: int):
    template = get_or_404(library.get_usable(db(), current_user, template_id))
    found = db().get(TemplateAttachment, attachment_id)
    if found is None or found.template_id != template.id:
        abort(404)
    response = make_response(services().blobs.get(found.sha256))
    response.headers["Content-Type"] = safe_type(found.content_type)
    response.headers["Content-Disposition"] = content_disposition(found.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/<int:template_id>/preview")
def preview(template_id: int):
    """The template rendered against a chosen record and recipient, shown like mail."""
    session = db()
    template = get_or_404(library.get_usable(session, current_user, template_id))
    kind = request.args.get("parent_type") or ""
    parent = library.preview_parent(
        session, current_user, kind, request.args.get("parent_id", type=int)
    )
    to = request.args.get("to", "").strip()
    context = {"tmpl": template, "kind": kind, "parent": parent, "to": to}
    try:
        rendered = render_template(
            session, text_of(template), user=current_user, parent=parent, to_address=to or None
        )
    except handlebars.TemplateError as exc:
        rendered, context["error"] = None, library.position_text(exc)
    context.update(
        rendered=rendered,
        srcdoc=_srcdoc(rendered),
        kinds=library.PREVIEW_TYPES,
        choices=library.preview_choices(session, current_user, kind) if kind else [],
    )
    return page("templates/preview.html", **context)


def _srcdoc(rendered) -> str | None:
    if rendered is None:
        return None
    body = rendered.body if rendered.is_html else str(sanitize.text_to_html(rendered.body))
    if not rendered.is_html:
        body = f'<div style="white-space:pre-wrap">{body}</div>'
    return sanitize.document(body, request.host_url.rstrip("/"))


@bp.get("/choices")
def choices():
    """The records of one type to preview against (the preview form's second select)."""
    kind = request.args.get("parent_type", "")
    found = library.preview_choices(db(), current_user, kind)
    return fragment("templates/_choices.html", choices=found, kind=kind, parent=None)


def _input_from_form() -> TemplateInput:
    form = request.form
    uploads = [
        Upload(f.filename or "attachment", f.mimetype or "application/octet-stream", f.read())
        for f in request.files.getlist("attachments")
        if f and f.filename
    ]
    if sum(len(u.data) for u in uploads) > MAX_UPLOAD:
        uploads = []
        flash("Attachments above 20 MB in all were not added.", "error")
    return TemplateInput(
        name=form.get("name", ""),
        subject=form.get("subject", ""),
        body=form.get("body", "").replace("\r\n", "\n"),
        is_html=form.get("format", "html") == "html",
        category=form.get("category", ""),
        is_active=form.get("is_active") == "1",
        one_off=form.get("one_off") == "1",
        is_shared=form.get("is_shared") == "1",
        team_ids=[int(t) for t in form.getlist("team") if t.isdigit()],
        keep_attachment_ids=[int(a) for a in form.getlist("keep_attachment") if a.isdigit()],
        uploads=uploads,
    )
