"""The start page: the inbox when mail is set up, else a short dashboard."""

from pathlib import Path

from flask import Blueprint, current_app, make_response, redirect, url_for
from flask_login import login_required

from crm.web import page

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    if "inbox.index" in current_app.view_functions:
        return redirect(url_for("inbox.index"))
    return page("home/index.html")


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links; answer with the SVG icon."""
    icon = Path(current_app.static_folder, "favicon.svg").read_bytes()
    response = make_response(icon)
    response.headers["Content-Type"] = "image/svg+xml"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
