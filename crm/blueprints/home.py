"""The start page: the inbox when mail is set up, else a short dashboard."""

from flask import Blueprint, current_app, redirect, url_for
from flask_login import login_required

from crm.web import page

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    if "inbox.index" in current_app.view_functions:
        return redirect(url_for("inbox.index"))
    return page("home/index.html")
