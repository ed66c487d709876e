"""Mail and records together: History and Activities panels, the mail's link panel and actions.

The record page and the mail page embed these with hx-get (hx-trigger="load"); each is a page
of its own too. Actions answer the refreshed panel to htmx and 303 back to the panel otherwise.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from crm.models import RECORD_TYPES, User
from crm.pagination import page_number
from crm.records import addressbook, from_mail, linking, users
from crm.records import history as mail_history
from crm.records.access import get_visible
from crm.records.kinds import KIND_OF_TYPE
from crm.records.people import people_on_mail
from crm.records.preferences import from_local
from crm.records.records import search_records
from crm.web import db, fragment, get_or_404, is_htmx, page, rejected_status

bp = Blueprint("linking", __name__, url_prefix="/linking")
PARENT_TYPES = ("Account", "Contact", "Lead", "Opportunity", "Case")
_TYPE_NAMES = {name.lower(): name for name in RECORD_TYPES} | {
    kind.slug: name for name, kind in KIND_OF_TYPE.items()
}


@bp.before_request
@login_required
def _signed_in():
    return None


@bp.app_template_global("linking_record_url")
def linking_record_url(parent_type: str | None, parent_id: int | None) -> str | None:
    kind = KIND_OF_TYPE.get(parent_type or "")
    return (
        url_for("records.show", kind=kind.slug, record_id=parent_id) if kind and parent_id else None
    )


@bp.app_template_global("linking_mail_url")
def linking_mail_url(email_id: int) -> str:
    """The mail reading page when installed, else this area's panel page."""
    from werkzeug.routing import BuildError

    for kwargs in ({"email_id": email_id}, {"id": email_id}):
        try:
            return url_for("mail.show", **kwargs)
        except BuildError:
            continue
    return url_for("linking.email_panel", id=email_id)


def _record(type_name: str, record_id: int):
    parent_type = get_or_404(_TYPE_NAMES.get(type_name.lower()))
    return parent_type, get_or_404(
        get_visible(db(), RECORD_TYPES[parent_type], record_id, current_user)
    )


def _email(email_id: int):
    return get_or_404(mail_history.can_read_email(db(), email_id, current_user))


@bp.get("/history/<type>/<int:id>")
def history(type, id):
    parent_type, record = _record(type, id)
    found = mail_history.history(
        db(), current_user, parent_type, id, page_number(request.args.get("page"))
    )
    return page("linking/history.html", record=record, parent_type=parent_type, found=found)


@bp.get("/activities/<type>/<int:id>")
def activities(type, id):
    parent_type, record = _record(type, id)
    found = mail_history.activities(db(), current_user, parent_type, id)
    links = addressbook.addresses_of(db(), parent_type, id)
    return page(
        "linking/activities.html",
        record=record,
        parent_type=parent_type,
        found=found,
        primary_address=links[0].address.address if links else None,
    )


def _panel_context(email, notice: str | None = None) -> dict:
    parent = None
    if email.parent_type in RECORD_TYPES:
        parent = get_visible(db(), RECORD_TYPES[email.parent_type], email.parent_id, current_user)
    return {
        "email": email,
        "notice": notice,
        "tasks": from_mail.tasks_from(db(), email, current_user),
        "parent": parent,
        "parent_types": PARENT_TYPES,
        "rule_label": linking.RULE_LABELS.get(email.link_rule or "", email.link_rule),
        "people": people_on_mail(db(), email, current_user),
    }


@bp.get("/email/<int:id>/panel")
def email_panel(id):
    return page("linking/panel.html", **_panel_context(_email(id)))


def _done(email, notice: str | None = None):
    """After an action: the refreshed panel for htmx, else back to the panel page."""
    db().commit()
    if is_htmx():
        return fragment("linking/_panel.html", **_panel_context(email, notice))
    if notice:
        flash(notice)
    return redirect(url_for("linking.email_panel", id=email.id), 303)


def _created(record) -> str:
    kind = KIND_OF_TYPE[record.__class__.__name__]
    return f"{kind.label} “{record.display_name}” created."


@bp.get("/email/<int:id>/records")
def record_choices(id):
    """The picker's search results: records of one type the user may read."""
    email = _email(id)
    parent_type = request.args.get("parent_type", "Account")
    kind = get_or_404(KIND_OF_TYPE.get(parent_type) if parent_type in PARENT_TYPES else None)
    found = search_records(db(), kind, current_user, request.args.get("q", ""), 1, 20)
    return page(
        "linking/choices.html", email=email, kind=kind, found=found, q=request.args.get("q", "")
    )


@bp.post("/email/<int:id>/parent")
def set_parent(id):
    email = _email(id)
    if request.form.get("clear"):
        linking.set_parent(db(), email, None, None)
    else:
        parent_type = get_or_404(_TYPE_NAMES.get(request.form.get("parent_type", "").lower()))
        record = _record(
            parent_type if parent_type in PARENT_TYPES else "-", _int(request.form.get("parent_id"))
        )[1]
        linking.set_parent(db(), email, parent_type, record.id, "manual")
    return _done(email)


def _int(raw) -> int:
    return int(raw) if str(raw or "").isdigit() else 0


@bp.get("/email/<int:id>/<any(contact, lead):what>")
def person_form(id, what):
    email = _email(id)
    draft = from_mail.prefill(db(), email, request.args.get("address"))
    return page("linking/person_form.html", **_person_context(email, what, draft), error=None)


def _person_context(email, what: str, draft, account_id: int | None = None) -> dict:
    """The Contact/Lead form: the Account it offers comes from the address's domain."""
    suggested = from_mail.suggest_account(db(), current_user, email, draft.address)
    return {
        "email": email,
        "what": what,
        "draft": draft,
        "suggested": suggested,
        "account_id": account_id if account_id is not None else (suggested and suggested.id),
        "accounts": from_mail.account_choices(db(), current_user) if what == "contact" else [],
    }


@bp.post("/email/<int:id>/<any(contact, lead):what>")
def create_person(id, what):
    email = _email(id)
    form = request.form
    draft = from_mail.PersonDraft(
        form.get("first_name", ""), form.get("last_name", ""), form.get("address", "")
    )
    try:
        if what == "contact":
            account = (
                _record("Account", _int(form.get("account_id")))[1]
                if form.get("account_id")
                else None
            )
            person = from_mail.create_contact(
                db(), email, current_user, draft, account.id if account else None
            )
        else:
            person = from_mail.create_lead(
                db(), email, current_user, draft, form.get("account_name", "")
            )
    except from_mail.DraftError as exc:
        db().rollback()
        context = _person_context(email, what, draft, _int(form.get("account_id")))
        return _form_again("linking/person_form.html", error=str(exc), **context)
    return _done(email, _created(person))


def _form_again(template: str, email, **context):
    """A rejected form: 422 as a page; for htmx, 200 swapped into the action area, not the panel."""
    response = page(template, status=rejected_status(), email=email, **context)
    response.headers["HX-Retarget"] = f"#linking-action-{email.id}"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


def _users():
    return users.active_users(db())


@bp.get("/email/<int:id>/<any(task, case):what>")
def record_form(id, what):
    return page("linking/record_form.html", email=_email(id), what=what, users=_users(), error=None)


@bp.post("/email/<int:id>/<any(task, case):what>")
def create_record(id, what):
    email = _email(id)
    form = request.form
    if what == "case":
        case = from_mail.create_case(db(), email, current_user, form.get("name", ""))
        return _done(email, _created(case))
    assignee = _int(form.get("assigned_user_id")) or current_user.id
    if db().get(User, assignee) is None:
        return _form_again(
            "linking/record_form.html", email, what=what, users=_users(), error="Pick a user."
        )
    task = from_mail.create_task(
        db(), email, current_user, form.get("name", ""), assignee, _due(form.get("due"))
    )
    return _done(email, _created(task))


def _due(raw: str | None) -> datetime | None:
    """A due date: the start of that day in the user's zone, stored as UTC (shown as a date)."""
    try:
        day = datetime.strptime(raw, "%Y-%m-%d") if raw else None
    except ValueError:
        return None
    return from_local(day, current_user.time_zone) if day else None
