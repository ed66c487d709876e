"""Filters: global (admins), account and inbox filters; preview and apply to existing mail."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, request, url_for
from flask_login import current_user, login_required

from crm.mailbox import filter_preview, filters, folders
from crm.mailbox.filters import FilterForm
from crm.web import (
    db,
    fragment,
    get_or_404,
    is_htmx,
    page,
    rejected_status,
    trigger,
    wants_fragment,
)

bp = Blueprint("filters", __name__, url_prefix="/filters")


def _choices() -> dict:
    session = db()
    return {
        "accounts": filters.editable_accounts(session, current_user),
        "own_folders": folders.personal_folders(session, current_user.id),
        "group_folders": folders.group_folders(session) if current_user.is_admin else [],
    }


def _form_page(form: FilterForm, row=None, errors=(), status=200):
    return page("filters/form.html", status=status, form=form, row=row, errors=errors, **_choices())


def _editable(filter_id: int):
    return get_or_404(filters.get_editable(db(), current_user, filter_id))


@bp.get("/")
@login_required
def index():
    grouped = filters.editable_filters(db(), current_user)
    return page("filters/index.html", grouped=grouped, **_choices())


@bp.get("/new")
@login_required
def new():
    return _form_page(FilterForm.parse(dict(request.args.to_dict(), is_active="1")))


@bp.get("/<int:filter_id>")
@login_required
def edit(filter_id: int):
    row = _editable(filter_id)
    return _form_page(FilterForm.of(row), row)


@bp.post("/", defaults={"filter_id": None})
@bp.post("/<int:filter_id>")
@login_required
def save(filter_id: int | None):
    row = _editable(filter_id) if filter_id is not None else None
    form = FilterForm.parse(request.form)
    try:
        filters.save_filter(db(), current_user, form, row)
    except filters.FilterError:
        db().rollback()
        errors = filters.check_form(db(), current_user, form)
        return _form_page(form, row, errors, status=rejected_status())
    db().commit()
    flash("Filter saved.", "info")
    return redirect(url_for("filters.index"), 303)


@bp.post("/<int:filter_id>/delete")
@login_required
def delete(filter_id: int):
    db().delete(_editable(filter_id))
    db().commit()
    flash("Filter deleted.", "info")
    return redirect(url_for("filters.index"), 303)


def _preview(row, errors=()):
    matched, more = filter_preview.preview(db(), row) if row is not None else ([], False)
    context = {"row": row, "matched": matched, "more": more, "errors": errors}
    if wants_fragment():
        return fragment("filters/_preview.html", **context)
    return page("filters/preview.html", **context)


@bp.get("/<int:filter_id>/preview")
@login_required
def preview(filter_id: int):
    return _preview(_editable(filter_id))


@bp.get("/preview")
@login_required
def preview_draft():
    """Preview of the form being edited (its fields sent as query arguments)."""
    form = FilterForm.parse(request.args)
    errors = filters.check_form(db(), current_user, form)
    # Only a filter the user could save is previewed: scope and account decide what mail is seen.
    blocking = [e for e in errors if e != filters.EMPTY_FILTER]
    row = None if blocking else filters.draft_filter(db(), current_user, form)
    return _preview(row, errors)


@bp.post("/<int:filter_id>/apply")
@login_required
def apply(filter_id: int):
    row = _editable(filter_id)
    count = filter_preview.apply_to_existing(db(), current_user, row)
    db().commit()
    message = f"The filter was applied to {count} existing mail."
    if is_htmx():
        response = make_response(fragment("filters/_applied.html", row=row, message=message))
        return trigger(response, "mail-changed", {"filter": row.id, "count": count})
    flash(message, "info")
    return redirect(url_for("filters.index"), 303)
