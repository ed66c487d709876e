"""Personal preferences."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user, login_required

from crm.records import preferences
from crm.web import db, page, rejected_status

bp = Blueprint("preferences", __name__, url_prefix="/preferences")


def _form(data: dict, errors: dict | None = None):
    # htmx swaps only 2xx answers, so a rejected boosted form comes back as 200.
    status = rejected_status() if errors else 200
    return page(
        "preferences/edit.html",
        status,
        data=data,
        errors=errors or {},
        time_zones=preferences.time_zones(),
        date_formats=preferences.DATE_FORMATS,
    )


@bp.get("/")
@login_required
def edit():
    user = current_user
    return _form(
        {
            "signature": user.signature,
            "use_external_client": user.use_external_client,
            "time_zone": user.time_zone,
            "date_format": user.date_format,
            "mail_view": "conversations" if user.mail_as_conversations else "mails",
            "default_answer": "reply_all" if user.reply_all_default else "reply",
        }
    )


@bp.post("/")
@login_required
def save():
    user = current_user._get_current_object()  # loaded through db(), so saved by its commit
    try:
        preferences.update_preferences(user, request.form)
    except preferences.PreferencesError as exc:
        return _form(request.form.to_dict(), exc.errors)
    db().commit()
    return redirect(url_for("preferences.edit", saved=1), 303)
