"""Campaigns: target lists, mass mail with its progress and log, the mass mail settings, and
the public opt-out and opt-in pages that links in mass mail open (no sign-in: they are signed).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from crm import settings
from crm.blueprints.auth import admin_required
from crm.campaigns import forms, mass_mail, opt_out, progress, senders, target_lists
from crm.campaigns.mass_mail import MassMailError
from crm.campaigns.target_lists import ListError
from crm.extensions import csrf
from crm.models.campaigns import DRAFT
from crm.queue import mail_queue
from crm.records import records
from crm.records.kinds import KINDS
from crm.records.preferences import to_local
from crm.web import db, get_or_404, page, rejected_status, services, stop_polling, wants_fragment

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
# The job that queues due batches, by its import path (the web does not import the workers).
MASS_MAIL_JOB = "workers.jobs.run_mass_mails"
PUBLIC = {"campaigns.unsubscribe", "campaigns.unsubscribe_post", "campaigns.subscribe_again",
          "campaigns.opt_in", "campaigns.opt_in_post"}  # fmt: skip


@bp.before_request
def _signed_in():
    if request.endpoint in PUBLIC:
        return None
    return login_required(lambda: None)()


@bp.get("/")
def index():
    lists = target_lists.visible_lists(db(), current_user)
    mass_mails = mass_mail.visible_mass_mails(db(), current_user)
    return page(
        "campaigns/index.html",
        mass_mails=mass_mails,
        states=progress.states(db(), mass_mails),
        state_labels=progress.STATE_LABELS,
        lists=lists,
        counts=target_lists.member_counts(db(), [t.id for t in lists]),
    )


# --- target lists ------------------------------------------------------------------------


def _list(list_id: int):
    return get_or_404(target_lists.find_list(db(), list_id, current_user))


def _list_form(found, data, error=None):
    status = rejected_status() if error else 200
    return page("campaigns/list_form.html", status, found=found, data=data, error=error)


@bp.get("/lists/new")
def new_list():
    return _list_form(None, {})


@bp.post("/lists/new")
def create_list():
    try:
        found = target_lists.save_list(db(), current_user, request.form)
    except ListError as exc:
        db().rollback()
        return _list_form(None, request.form, str(exc))
    db().commit()
    return redirect(url_for("campaigns.show_list", list_id=found.id), 303)


@bp.get("/lists/<int:list_id>/edit")
def edit_list(list_id):
    found = _list(list_id)
    return _list_form(found, {"name": found.name, "description": found.description,
                              "requires_opt_in": found.requires_opt_in})  # fmt: skip


@bp.post("/lists/<int:list_id>/edit")
def update_list(list_id):
    found = _list(list_id)
    try:
        target_lists.save_list(db(), current_user, request.form, found)
    except ListError as exc:
        db().rollback()
        return _list_form(found, request.form, str(exc))
    db().commit()
    return redirect(url_for("campaigns.show_list", list_id=found.id), 303)


@bp.get("/lists/<int:list_id>")
def show_list(list_id, error=None):
    found = _list(list_id)
    members = target_lists.members_page(db(), found, request.args.get("page", 1, type=int))
    status = rejected_status() if error else 200
    return page("campaigns/list.html", status, found=found, members=members, error=error,
                kinds=target_lists.KIND_SLUGS)  # fmt: skip


@bp.get("/lists/<int:list_id>/add")
def add_page(list_id):
    """Find records to add: a search over contacts, leads or accounts, rows to tick."""
    found = _list(list_id)
    slug = request.args.get("kind", "contacts")
    if slug not in target_lists.KIND_SLUGS:
        abort(404)
    q = request.args.get("q", "")
    kind = KINDS[slug]
    hits = records.search_records(
        db(), kind, current_user, q, request.args.get("page", 1, type=int)
    )
    emails = records.primary_addresses(db(), kind.entity_type, [r.id for r in hits.items])
    template = "campaigns/_candidates.html" if wants_fragment() else "campaigns/add.html"
    return page(template, found=found, kind=kind, q=q, hits=hits, emails=emails,
                kinds=target_lists.KIND_SLUGS)  # fmt: skip


@bp.post("/lists/<int:list_id>/add")
def add_members(list_id):
    found = _list(list_id)
    slug = request.form.get("kind", "")
    try:
        if request.form.get("all") == "1":
            added = target_lists.add_matching(db(), found, slug, request.form.get("q", ""),
                                              current_user)  # fmt: skip
        else:
            kind = KINDS.get(slug) if slug in target_lists.KIND_SLUGS else None
            if kind is None:
                raise ListError("Choose contacts, leads or accounts.")
            ids = [i for i in request.form.getlist("ids") if i.isdigit()]
            added = target_lists.add_members(db(), found, kind.entity_type, ids, current_user)
    except ListError as exc:
        db().rollback()
        return show_list(list_id, str(exc))
    db().commit()
    flash(f"{added} added to the list." if added else "Nothing new to add.", "info")
    return redirect(url_for("campaigns.show_list", list_id=found.id), 303)


@bp.post("/lists/<int:list_id>/import")
def import_csv(list_id):
    found = _list(list_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return show_list(list_id, "Choose a CSV file to import.")
    try:
        outcome = target_lists.import_csv(
            db(), found, request.form.get("kind", ""), upload.read(), current_user
        )
    except ListError as exc:
        db().rollback()
        return show_list(list_id, str(exc))
    db().commit()
    report = outcome.report
    rejected = "; ".join(f"row {r.row}: {r.reason}" for r in report.rejected[:10])
    flash(f"Imported: {report.created} created, {report.updated} updated, {outcome.added} added "
          f"to the list." + (f" Rejected: {rejected}." if rejected else ""), "info")  # fmt: skip
    return redirect(url_for("campaigns.show_list", list_id=found.id), 303)


@bp.post("/lists/<int:list_id>/remove")
def remove_members(list_id):
    found = _list(list_id)
    removed = target_lists.remove_members(db(), found, [
        i for i in request.form.getlist("member_ids") if i.isdigit()])  # fmt: skip
    db().commit()
    flash(f"{removed} removed from the list.", "info")
    return redirect(url_for("campaigns.show_list", list_id=found.id), 303)


@bp.get("/lists/<int:list_id>/delete")
def confirm_delete_list(list_id):
    found = _list(list_id)
    return page("campaigns/list_delete.html", found=found,
                used=target_lists.used_by(db(), found))  # fmt: skip


@bp.post("/lists/<int:list_id>/delete")
def delete_list(list_id):
    target_lists.delete_list(db(), _list(list_id))
    db().commit()
    return redirect(url_for("campaigns.index"), 303)


# --- mass mail ---------------------------------------------------------------------------


def _mass_mail(mass_mail_id: int):
    return get_or_404(mass_mail.find(db(), mass_mail_id, current_user))


def _mass_mail_form(found, data, error=None):
    status = rejected_status() if error else 200
    return page(
        "campaigns/form.html", status, found=found, data=data, error=error,
        templates=mass_mail.usable_templates(db(), current_user),
        accounts=senders.allowed(db()), lists=target_lists.visible_lists(db(), current_user),
    )  # fmt: skip


def _form_data(form) -> dict:
    data = form.to_dict()
    data["list_ids"], data["excluded_ids"] = form.getlist("list_ids"), form.getlist("excluded_ids")
    return data


@bp.get("/new")
def new():
    purpose = request.args.get("purpose", "")
    data = {"per_hour": mass_mail.DEFAULT_PER_HOUR, "purpose": purpose,
            "list_ids": request.args.getlist("list_id")}  # fmt: skip
    return _mass_mail_form(None, data)


@bp.post("/new")
def create():
    try:
        values = forms.mass_mail_values(request.form, current_user.time_zone)
        found = mass_mail.save(db(), current_user, values)
    except MassMailError as exc:
        db().rollback()
        return _mass_mail_form(None, _form_data(request.form), str(exc))
    db().commit()
    return redirect(url_for("campaigns.show", mass_mail_id=found.id), 303)


@bp.get("/<int:mass_mail_id>/edit")
def edit(mass_mail_id):
    found = _mass_mail(mass_mail_id)
    if found.status != DRAFT:
        return redirect(url_for("campaigns.show", mass_mail_id=found.id), 303)
    local = to_local(found.start_at, current_user.time_zone)
    data = {
        "name": found.name, "purpose": found.purpose, "template_id": str(found.template_id),
        "mail_account_id": str(found.mail_account_id), "from_name": found.from_name,
        "per_hour": found.per_hour, "start_at": local.strftime("%Y-%m-%dT%H:%M") if local else "",
        "list_ids": [str(x.list_id) for x in found.lists if not x.excluded],
        "excluded_ids": [str(x.list_id) for x in found.lists if x.excluded],
    }  # fmt: skip
    return _mass_mail_form(found, data)


@bp.post("/<int:mass_mail_id>/edit")
def update(mass_mail_id):
    found = _mass_mail(mass_mail_id)
    try:
        values = forms.mass_mail_values(request.form, current_user.time_zone)
        mass_mail.save(db(), current_user, values, found)
    except MassMailError as exc:
        db().rollback()
        return _mass_mail_form(found, _form_data(request.form), str(exc))
    db().commit()
    return redirect(url_for("campaigns.show", mass_mail_id=found.id), 303)


@bp.get("/<int:mass_mail_id>")
def show(mass_mail_id, error=None):
    found = _mass_mail(mass_mail_id)
    included, excluded = mass_mail.lists_of(db(), found)
    status = rejected_status() if error else 200
    return page(
        "campaigns/show.html", status, found=found, error=error, included=included,
        excluded=excluded, progress=progress.progress(db(), found), labels=progress.LABELS,
        log=progress.recipients_page(db(), found, request.args.get("status"),
                                     request.args.get("page", 1, type=int)),
        shown_status=request.args.get("status", ""), account=senders.allowed_account(
            db(), found.mail_account_id),
    )  # fmt: skip


@bp.get("/<int:mass_mail_id>/progress")
def progress_bar(mass_mail_id):
    """The self-updating bar: a fragment for htmx (286 stops the polling when done)."""
    found = _mass_mail(mass_mail_id)
    shown = progress.progress(db(), found)
    if not wants_fragment():
        return show(mass_mail_id)
    response = page("campaigns/_progress.html", found=found, progress=shown,
                    labels=progress.LABELS)  # fmt: skip
    return stop_polling(response) if shown.finished else response


@bp.get("/<int:mass_mail_id>/log")
def log(mass_mail_id):
    """The per-recipient log, filtered by status: the log fragment for htmx, else the page."""
    found = _mass_mail(mass_mail_id)
    if not wants_fragment():
        return show(mass_mail_id)
    shown = progress.progress(db(), found)
    response = page("campaigns/_log.html", progress=shown, found=found, labels=progress.LABELS,
                log=progress.recipients_page(db(), found, request.args.get("status"),
                                             request.args.get("page", 1, type=int)),
                shown_status=request.args.get("status", ""))  # fmt: skip
    return stop_polling(response) if shown.finished else response


def _act(mass_mail_id, action):
    found = _mass_mail(mass_mail_id)
    try:
        action(found)
    except MassMailError as exc:
        db().rollback()
        return show(mass_mail_id, str(exc))
    db().commit()
    _queue_batches()
    return redirect(url_for("campaigns.show", mass_mail_id=found.id), 303)


def _queue_batches() -> None:
    """Let the job queue what is due now rather than at its next periodic run."""
    svc = services()
    mail_queue(svc.redis, svc.config.queue_name).enqueue(
        MASS_MAIL_JOB, job_timeout=600, result_ttl=300, failure_ttl=86400
    )


@bp.post("/<int:mass_mail_id>/start")
def start(mass_mail_id):
    def _start(found):
        count = mass_mail.start(db(), found, current_user)
        flash(f"Started: {count} recipients.", "info")

    return _act(mass_mail_id, _start)


@bp.post("/<int:mass_mail_id>/pause")
def pause(mass_mail_id):
    def _pause(found):
        held = mass_mail.pause(db(), found)
        if held:
            flash(f"Paused: {held} mails waiting in the outbox are held until you resume.", "info")

    return _act(mass_mail_id, _pause)


@bp.post("/<int:mass_mail_id>/resume")
def resume(mass_mail_id):
    return _act(mass_mail_id, lambda found: mass_mail.resume(db(), found))


@bp.post("/<int:mass_mail_id>/cancel")
def cancel(mass_mail_id):
    def _cancel(found):
        was_draft = found.status == DRAFT
        cancelled = mass_mail.cancel(db(), found)
        sending = mass_mail.still_sending(db(), found).sending
        going = f" {sending} being sent right now will still go." if sending else ""
        said = (
            "Cancelled." if was_draft else f"Cancelled: {cancelled} queued mails will not be sent."
        )
        flash(said + going, "info")

    return _act(mass_mail_id, _cancel)


# --- the admin's settings ----------------------------------------------------------------


def _settings_page(data, error=None):
    status = rejected_status() if error else 200
    return page("campaigns/settings.html", status, data=data, error=error,
                candidates=senders.candidates(db()))  # fmt: skip


@bp.get("/settings")
@admin_required
def edit_settings():
    data = {"site_url": opt_out.site_url(db()),
            "account_ids": [str(a.id) for a in senders.allowed(db())]}  # fmt: skip
    return _settings_page(data)


@bp.post("/settings")
@admin_required
def save_settings():
    data = {"site_url": request.form.get("site_url", ""),
            "account_ids": request.form.getlist("account_ids")}  # fmt: skip
    try:
        site = forms.site_url(data["site_url"])
    except MassMailError as exc:
        return _settings_page(data, str(exc))
    settings.put(db(), "site_url", site)
    senders.allow(db(), [i for i in data["account_ids"] if i.isdigit()])
    db().commit()
    flash("Mass mail settings saved.", "info")
    return redirect(url_for("campaigns.edit_settings"), 303)


# --- public: opt-out and opt-in ------------------------------------------------------------


def _signed(token: str, kind: str):
    return get_or_404(opt_out.address_of(db(), token, kind))


@bp.get("/unsubscribe/<token>")
def unsubscribe(token):
    _found, address = _signed(token, opt_out.UNSUBSCRIBE)
    return page("campaigns/unsubscribe.html", token=token, address=address,
                done=request.args.get("done", ""))  # fmt: skip


@bp.post("/unsubscribe/<token>")
@csrf.exempt
def unsubscribe_post(token):
    """The confirm button of the page, and RFC 8058's one-click POST from a mail client (its
    body is `List-Unsubscribe=One-Click`; it gets a plain 200, no redirect to follow)."""
    found, address = _signed(token, opt_out.UNSUBSCRIBE)
    opt_out.opt_out(db(), found, address)
    db().commit()
    if request.form.get("List-Unsubscribe") == "One-Click":
        return "Unsubscribed.\n", 200, {"Content-Type": "text/plain; charset=utf-8"}
    return redirect(url_for("campaigns.unsubscribe", token=token, done="out"), 303)


@bp.post("/unsubscribe/<token>/again")
@csrf.exempt
def subscribe_again(token):
    _found, address = _signed(token, opt_out.UNSUBSCRIBE)
    opt_out.subscribe_again(db(), address)
    db().commit()
    return redirect(url_for("campaigns.unsubscribe", token=token, done="in"), 303)


@bp.get("/opt-in/<token>")
def opt_in(token):
    _found, address = _signed(token, opt_out.CONFIRM)
    confirmed = opt_out.is_confirmed(db(), address.id)
    return page("campaigns/opt_in.html", token=token, address=address, confirmed=confirmed)


@bp.post("/opt-in/<token>")
@csrf.exempt
def opt_in_post(token):
    found, address = _signed(token, opt_out.CONFIRM)
    opt_out.confirm(db(), found, address)
    db().commit()
    return redirect(url_for("campaigns.opt_in", token=token), 303)
