"""CRM records: list, search, detail, create, edit, delete, and converting leads."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user, login_required

from crm.models import Lead
from crm.pagination import page_number
from crm.records import records
from crm.records.preferences import due_text, to_local
from crm.web import db, fragment, get_or_404, page, rejected_status

bp = Blueprint("records", __name__, url_prefix="/records")


@bp.app_template_filter("local_time")
def local_time(value):
    """A stored UTC time in the signed-in user's time zone."""
    return to_local(value, getattr(current_user, "time_zone", None))


@bp.app_template_filter("due_time")
def due_time(value):
    """A due time in the signed-in user's zone and format; a due date alone shows no 00:00."""
    return due_text(
        value,
        getattr(current_user, "time_zone", None),
        getattr(current_user, "date_format", None),
    )


@bp.before_request
@login_required
def _signed_in():
    return None


def _kind(slug: str) -> records.Kind:
    return get_or_404(records.KINDS.get(slug))


def _record(kind: records.Kind, record_id: int):
    return get_or_404(records.find_visible(db(), kind, record_id, current_user))


def _listing(slug: str) -> dict:
    kind = _kind(slug)
    q = request.args.get("q", "").strip()
    found = records.search_records(
        db(), kind, current_user, q, page_number(request.args.get("page"))
    )
    ids = [r.id for r in found.items]
    emails = records.primary_addresses(db(), kind.entity_type, ids) if kind.has_addresses else {}
    parents = records.parents_of(db(), found.items, current_user) if kind.slug == "tasks" else {}
    return {"kind": kind, "q": q, "found": found, "emails": emails, "parents": parents}


@bp.get("/<kind>/")
def index(kind):
    return page("records/index.html", **_listing(kind))


@bp.get("/<kind>/rows")
def rows(kind):
    """The table alone, for active search and paging; the address bar follows the search."""
    context = _listing(kind)
    response = fragment("records/_rows.html", **context)
    response.headers["HX-Replace-Url"] = _list_url(context)
    return response


def _list_url(context: dict) -> str:
    args = {"q": context["q"] or None, "page": context["found"].number}
    return url_for("records.index", kind=context["kind"].slug, **args)


def _form(kind, data, record=None, errors=None):
    """The create/edit form; a rejected submission answers 422 (200 for htmx, which swaps 2xx)."""
    status = rejected_status() if errors else 200
    choices = records.options(db(), kind.fields, current_user, data)
    return page(
        "records/form.html",
        status,
        kind=kind,
        data=data,
        record=record,
        errors=errors or {},
        choices=choices,
    )


@bp.get("/<kind>/new")
def new(kind):
    kind = _kind(kind)
    return _form(kind, _submitted(request.args))


@bp.post("/<kind>/new")
def create(kind):
    kind = _kind(kind)
    try:
        values = records.clean(db(), kind.model, kind.fields, request.form, current_user)
    except records.RecordError as exc:
        return _form(kind, _submitted(request.form), errors=exc.errors)
    record = records.create_record(db(), kind, values, current_user)
    db().commit()
    return redirect(url_for("records.show", kind=kind.slug, record_id=record.id), 303)


def _submitted(values) -> dict:
    """Form strings to show again (or to prefill from the query string)."""
    data = values.to_dict()
    data["contact_ids"] = values.getlist("contact_ids")
    return data


@bp.get("/<kind>/<int:record_id>")
def show(kind, record_id):
    kind = _kind(kind)
    record = _record(kind, record_id)
    shown = records.detail(db(), kind, record, current_user)
    return page("records/detail.html", kind=kind, record=record, shown=shown)


@bp.get("/<kind>/<int:record_id>/edit")
def edit(kind, record_id):
    kind = _kind(kind)
    record = _record(kind, record_id)
    data = records.form_data(db(), kind.entity_type, record, kind.fields, current_user.time_zone)
    return _form(kind, data, record)


@bp.post("/<kind>/<int:record_id>/edit")
def update(kind, record_id):
    kind = _kind(kind)
    record = _record(kind, record_id)
    try:
        values = records.clean(
            db(), kind.model, kind.fields, request.form, current_user, record.team_id
        )
    except records.RecordError as exc:
        return _form(kind, _submitted(request.form), record, exc.errors)
    records.update_record(db(), kind, record, values)
    db().commit()
    return redirect(url_for("records.show", kind=kind.slug, record_id=record.id), 303)


@bp.post("/<kind>/<int:record_id>/addresses/<int:address_id>")
def flag_address(kind, record_id, address_id):
    """Set an address's opted-out and invalid flags from the record's page."""
    kind = _kind(kind)
    record = _record(kind, record_id)
    flags = {name: request.form.get(name) == "on" for name in ("opted_out", "invalid")}
    get_or_404(records.set_address_flags(db(), kind, record, address_id, **flags))
    db().commit()
    return redirect(url_for("records.show", kind=kind.slug, record_id=record.id), 303)


@bp.get("/<kind>/<int:record_id>/delete")
def confirm_delete(kind, record_id):
    kind = _kind(kind)
    return page("records/delete.html", kind=kind, record=_record(kind, record_id))


@bp.post("/<kind>/<int:record_id>/delete")
def delete(kind, record_id):
    kind = _kind(kind)
    records.delete_record(db(), kind, _record(kind, record_id))
    db().commit()
    return redirect(url_for("records.index", kind=kind.slug), 303)


@bp.post("/leads/<int:record_id>/convert")
def convert(record_id):
    lead = _record(records.KINDS["leads"], record_id)
    if not isinstance(lead, Lead) or lead.is_converted:
        abort(409)
    contact = records.convert_lead(db(), lead, current_user)
    db().commit()
    return redirect(url_for("records.show", kind="contacts", record_id=contact.id), 303)
