"""Flask glue: the request's database session, the one rendering rule, htmx helpers."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, make_response, render_template, request
from sqlalchemy.orm import Session

from crm.services import Services


def services() -> Services:
    return current_app.extensions["crm"]


def db() -> Session:
    """The request's session; closed (rolled back if not committed) at teardown."""
    if "db" not in g:
        g.db = services().Session()
    return g.db


def _close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def rejected_status() -> int:
    """The status of a page that shows rejected input: 422, except for htmx, which swaps only
    2xx answers, so a rejected boosted form must come back as 200 to be shown."""
    return 200 if is_htmx() else 422


def wants_fragment() -> bool:
    """An htmx request that swaps part of the page (not boosted, not a history restore)."""
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def page(template: str, status: int = 200, **context):
    """Render a page: its body alone for htmx, inside the layout otherwise."""
    context.setdefault("base_template", "_bare.html" if wants_fragment() else "layout.html")
    response = make_response(render_template(template, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def fragment(template: str, status: int = 200, **context):
    """Render a swap target (always without layout)."""
    response = make_response(render_template(template, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def trigger(response, event: str, detail=None):
    """Ask htmx to fire an event on the client after the swap."""
    response.headers["HX-Trigger"] = json.dumps({event: detail or {}})
    return response


def stop_polling(response):
    """Answer 286: htmx stops a polling element that receives it."""
    response.status_code = 286
    return response


def get_or_404(value):
    if value is None:
        abort(404)
    return value


def is_safe_local_path(target: str | None) -> bool:
    """Only a path on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


# No inline script on any page, so markup that slips into one can never run; a view may widen
# img-src (the mail view does, for remote images the reader asked for).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:{images}; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP.format(images=""))
    return response


def init_app(app: Flask, services_: Services) -> None:
    app.extensions["crm"] = services_
    app.teardown_appcontext(_close_db)
    app.after_request(_security_headers)
    # Globals, not context: macros imported without context ("{% from ... import %}") see them.
    app.jinja_env.globals.update(nav_items=_nav_items)


# Main navigation: (label, endpoint, url kwargs); Admin only for admins.
NAV = [
    ("Inbox", "inbox.index", {}),
    ("Accounts", "records.index", {"kind": "accounts"}),
    ("Contacts", "records.index", {"kind": "contacts"}),
    ("Leads", "records.index", {"kind": "leads"}),
    ("Opportunities", "records.index", {"kind": "opportunities"}),
    ("Cases", "records.index", {"kind": "cases"}),
    ("Tasks", "records.index", {"kind": "tasks"}),
    ("Campaigns", "campaigns.index", {}),
    ("Templates", "templates.index", {}),
    ("Import", "imports.index", {}),
    ("Mail accounts", "accounts.index", {}),
    ("Admin", "admin.index", {}),
]


def _nav_items():
    from flask_login import current_user

    return [item for item in NAV if item[1] != "admin.index" or current_user.is_admin]
