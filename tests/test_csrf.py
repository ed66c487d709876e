"""CSRF on every state-changing endpoint: the app's URL map is walked, so a new route is covered
the day it is added, without anyone remembering to write a test for it."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing.converters import AnyConverter, IntegerConverter

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Reached from a mail, not from a session of ours: the link's signed token is what authorises
# them (RFC 8058's one-click POST carries no CSRF token by design). A forged token is a 404.
SIGNED_LINKS = {
    "campaigns.unsubscribe_post",
    "campaigns.subscribe_again",
    "campaigns.opt_in_post",
}


def _sample_value(converter) -> str:
    """A value the rule accepts: CSRF is checked before the view runs, so no object need exist."""
    if isinstance(converter, IntegerConverter):
        return "1"
    if isinstance(converter, AnyConverter):
        return min(converter.items)
    return "x"


def _state_changing_requests(app) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule
        for name, converter in rule._converters.items():
            # `<name>`, `<int:name>` or `<conv(args):name>`
            pattern = r"<(?:[^<>]*:)?" + re.escape(name) + ">"
            path = re.sub(pattern, _sample_value(converter), path)
        for method in sorted(rule.methods & STATE_CHANGING):
            found.append((rule.endpoint, method, path))
    return found


def test_every_state_changing_rule_is_found(app):
    requests = _state_changing_requests(app)
    endpoints = {endpoint for endpoint, _method, _path in requests}
    # A sample from each area, so a broken walk cannot pass by finding nothing.
    assert {
        "auth.login_post",
        "records.create",
        "admin.save_settings",
        "imports.upload",
    } <= endpoints
    assert all("<" not in path for _endpoint, _method, path in requests)


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_state_changing_request_without_token_is_rejected(app, admin_client, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    accepted = []
    for endpoint, method, path in _state_changing_requests(app):
        response = admin_client._send(method.lower(), path, csrf=False, headers=headers, data={})
        expected = 404 if endpoint in SIGNED_LINKS else 400  # "x" is no valid signed token
        if response.status_code != expected:
            accepted.append((endpoint, method, path, response.status_code))
    assert accepted == []


def test_token_from_body_hx_headers_is_accepted(admin_client):
    """htmx sends the token that layout.html puts in hx-headers on <body>."""
    page = admin_client.get("/admin/teams/").get_data(as_text=True)
    body = page[page.index("<body") : page.index(">", page.index("<body"))]
    token = admin_client.TOKEN_RE.search(body).group(2)
    response = admin_client.raw.post(
        "/admin/teams/",
        data={"name": "Support"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 303
