"""CSV import: upload a file, map its columns to fields, read the report."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user, login_required

from crm.records import csv_import
from crm.records.kinds import KINDS
from crm.upload_stash import StashError, UploadStash
from crm.web import db, page, rejected_status, services

bp = Blueprint("imports", __name__, url_prefix="/imports")


@bp.before_request
@login_required
def _signed_in():
    return None


def _stash() -> UploadStash:
    return UploadStash(services().config.data_dir)


def _kind(kind: str) -> str:
    if kind not in csv_import.FIELDS:
        abort(404)
    return kind


def _upload_form(error=None, kind="contacts"):
    # htmx swaps only 2xx answers, so a rejected boosted form comes back as 200.
    status = rejected_status() if error else 200
    return page("imports/index.html", status, error=error, kind=kind, fields=csv_import.FIELDS)


@bp.get("/")
def index():
    return _upload_form(kind=request.args.get("kind", "contacts"))


@bp.post("/")
def upload():
    kind = request.form.get("kind", "")
    upload = request.files.get("file")
    if kind not in csv_import.FIELDS or upload is None or not upload.filename:
        return _upload_form("choose what to import and a CSV file", kind)
    data = upload.read()
    try:
        csv_import.read_table(data)
    except csv_import.UnreadableFile as exc:
        return _upload_form(str(exc), kind)
    token = _stash().put(current_user.id, data)
    return redirect(url_for("imports.mapping", kind=kind, token=token), 303)


def _table(token: str) -> csv_import.Table:
    try:
        return csv_import.read_table(_stash().get(current_user.id, token))
    except (StashError, csv_import.UnreadableFile):
        abort(404)


def _mapping_page(kind, token, table, mapping, error=None):
    status = rejected_status() if error else 200
    return page(
        "imports/mapping.html",
        status,
        kind=kind,
        token=token,
        table=table,
        mapping=mapping,
        fields=csv_import.FIELDS[kind],
        labels=_labels(kind),
        error=error,
    )


def _labels(kind: str) -> dict[str, str]:
    """What the mapping shows for each importable field: the label the record's form uses."""
    form = {f.name: f.label for f in KINDS[kind].fields}
    other = {"email": "E-mail address", "account": "Account (by name)"}
    return {
        name: form.get(name) or other.get(name) or name.replace("_", " ").capitalize()
        for name in csv_import.FIELDS[kind]
    }


@bp.get("/<kind>/<token>")
def mapping(kind, token):
    table = _table(token)
    return _mapping_page(_kind(kind), token, table, csv_import.auto_mapping(kind, table.headers))


@bp.post("/<kind>/<token>")
def run(kind, token):
    table = _table(token)
    choices = [request.form.get(f"map-{i}", "") for i in range(len(table.headers))]
    try:
        chosen = csv_import.mapping_from_choices(_kind(kind), table.headers, choices)
    except csv_import.UnreadableFile as exc:
        return _mapping_page(kind, token, table, dict(zip(table.headers, choices)), str(exc))
    report = csv_import.import_table(db(), kind, table, current_user, chosen)
    db().commit()
    _stash().put_report(current_user.id, token, report.as_dict())
    _stash().discard(current_user.id, token)
    return redirect(url_for("imports.report", kind=kind, token=token), 303)


@bp.get("/<kind>/<token>/report")
def report(kind, token):
    try:
        found = _stash().get_report(current_user.id, token)
    except StashError:
        abort(404)
    return page("imports/report.html", kind=_kind(kind), report=found)
