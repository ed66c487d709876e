"""A small OAuth2 provider on a free loopback port, for the OAuth2 account tests.

Endpoints: `/authorize` (a consent page; its form POSTs back and redirects to the client with
a code), `/token` (authorization_code with PKCE S256, and refresh_token), `/introspect`
(RFC 7662, HTTP Basic with the client's credentials; Dovecot's oauth2 passdb asks it about
every XOAUTH2/OAUTHBEARER login). Access tokens are opaque random strings; the ID token is an
unsigned JWT carrying the mailbox address (`email`).

Scripting, as plain attributes: `rotate` (each refresh returns a new refresh token and the old
one stops working, default True), `refresh_error="invalid_grant"` (the next refreshes answer
that error), `unavailable=N` (the next N token requests answer 503), `refresh_pause` (seconds a
refresh waits before answering, so two workers surely overlap), `expires_in`. `expire(token)`
or `expire_all()` ends access tokens early, `revoke(email)` withdraws a user's grant; `refreshes` counts successful refreshes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "crm-test-client"
CLIENT_SECRET = "crm-test-secret"


@dataclass
class _Code:
    email: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class Provider:
    host: str = "127.0.0.1"
    port: int = 0
    rotate: bool = True
    refresh_error: str | None = None
    unavailable: int = 0
    refresh_pause: float = 0.0
    expires_in: int = 3600
    refreshes: int = 0
    token_requests: int = 0
    codes: dict[str, _Code] = field(default_factory=dict)
    access: dict[str, dict] = field(default_factory=dict)  # token -> {email, expires}
    refresh: dict[str, str] = field(default_factory=dict)  # live refresh token -> email
    retired: set[str] = field(default_factory=set)  # refresh tokens used up by rotation
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def introspection_url(self) -> str:
        return f"http://{CLIENT_ID}:{CLIENT_SECRET}@{self.host}:{self.port}/introspect"

    def reset(self) -> None:
        with self.lock:
            self.rotate, self.refresh_error, self.unavailable = True, None, 0
            self.refresh_pause, self.expires_in = 0.0, 3600
            self.refreshes = self.token_requests = 0
            self.codes.clear()
            self.access.clear()
            self.refresh.clear()
            self.retired.clear()

    # --- scripting --------------------------------------------------------------------
    def expire(self, token: str) -> None:
        with self.lock:
            if token in self.access:
                self.access[token]["expires"] = 0

    def expire_all(self) -> None:
        with self.lock:
            for entry in self.access.values():
                entry["expires"] = 0

    def revoke(self, email: str) -> None:
        """The user withdrew the grant: its refresh and access tokens stop working."""
        with self.lock:
            for token in [t for t, owner in self.refresh.items() if owner == email]:
                del self.refresh[token]
            for entry in self.access.values():
                if entry["email"] == email:
                    entry["expires"] = 0

    def is_active(self, token: str) -> bool:
        entry = self.access.get(token)
        return entry is not None and entry["expires"] > time.time()

    def owner(self, token: str) -> str | None:
        with self.lock:
            return self.access[token]["email"] if self.is_active(token) else None

    def grant(self, email: str) -> tuple[str, str]:
        """An access and a refresh token for `email`, as after a consent (tests that start
        from a connected account)."""
        with self.lock:
            return self._issue_access(email), self._issue_refresh(email)

    def consent_redirect(self, authorize_url: str, email: str) -> str:
        """What the consent page's "Allow" does: the redirect back to the client, with a code."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        return self._approve(query, email)

    # --- tokens -----------------------------------------------------------------------
    def _issue_access(self, email: str) -> str:
        token = "at-" + secrets.token_urlsafe(24)
        self.access[token] = {"email": email, "expires": time.time() + self.expires_in}
        return token

    def _issue_refresh(self, email: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh[token] = email
        return token

    def _approve(self, query: dict, email: str) -> str:
        code = "code-" + secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = _Code(
                email,
                query["redirect_uri"],
                query.get("code_challenge", ""),
                query.get("scope", ""),
            )
        answer = {"code": code, "state": query.get("state", "")}
        return query["redirect_uri"] + "?" + urlencode(answer)

    def token_answer(self, form: dict) -> tuple[int, dict]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client"}
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_answer(form)
        if grant_type == "refresh_token":
            return self._refresh_answer(form)
        return 400, {"error": "unsupported_grant_type"}

    def _code_answer(self, form: dict) -> tuple[int, dict]:
        with self.lock:
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code.redirect_uri != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if not code.challenge or digest.decode() != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
            return 200, self._tokens(code.email, self._issue_refresh(code.email), code.scope)

    def _refresh_answer(self, form: dict) -> tuple[int, dict]:
        if self.refresh_pause:
            time.sleep(self.refresh_pause)
        with self.lock:
            old = form.get("refresh_token", "")
            if self.refresh_error:
                return 400, {"error": self.refresh_error}
            email = self.refresh.get(old)
            if email is None:
                return 400, {"error": "invalid_grant"}
            self.refreshes += 1
            new = old
            if self.rotate:
                del self.refresh[old]
                self.retired.add(old)
                new = self._issue_refresh(email)
            return 200, self._tokens(email, new, form.get("scope", ""))

    def _tokens(self, email: str, refresh_token: str, scope: str) -> dict:
        return {
            "access_token": self._issue_access(email),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": refresh_token,
            "scope": scope,
            "id_token": _unsigned_jwt({"email": email, "sub": email}),
        }


def _unsigned_jwt(claims: dict) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(claims)}."


def _handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: bytes, kind="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: dict):
            self._send(status, json.dumps(data).encode())

        def _form(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path != "/authorize":
                return self._send(404, b"not found", "text/plain")
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in query.items()
            )
            email = html.escape(query.get("login_hint", ""))
            page = (
                "<!doctype html><title>Test provider: sign in</title>"
                "<h1>Test provider</h1><p>CRM test client asks to read and send your mail.</p>"
                f'<form method="post" action="/authorize">{hidden}'
                f'<label>Mailbox <input name="email" value="{email}"></label>'
                '<button name="decision" value="allow">Allow</button>'
                '<button name="decision" value="deny">Deny</button></form>'
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def do_POST(self):
            path = urlsplit(self.path).path
            form = self._form()
            if path == "/authorize":
                if form.get("decision") != "allow":
                    answer = {"error": "access_denied", "state": form.get("state", "")}
                    target = form["redirect_uri"] + "?" + urlencode(answer)
                else:
                    target = provider._approve(form, form.get("email", ""))
                return self._send(302, b"", "text/plain", [("Location", target)])
            if path == "/token":
                provider.token_requests += 1
                if provider.unavailable > 0:
                    provider.unavailable -= 1
                    return self._send(503, b"try later", "text/plain")
                return self._json(*provider.token_answer(form))
            if path == "/introspect":
                return self._introspect(form)
            return self._send(404, b"not found", "text/plain")

        def _introspect(self, form: dict):
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization", "") != f"Basic {expected}":
                return self._json(401, {"error": "invalid_client"})
            email = provider.owner(form.get("token", ""))
            # A bad token is 200 {"active": false}: Dovecot takes any other answer for a
            # temporary failure instead of a refused login.
            if email is None:
                return self._json(200, {"active": False})
            return self._json(200, {"active": True, "username": email})

    return Handler


class ProviderServer:
    """The provider served in a thread; `.provider` holds its state."""

    def __init__(self):
        self.provider = Provider()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.provider))
        self.provider.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> Provider:
        self.thread.start()
        return self.provider

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def configure(session, box, provider: Provider, imap_server, smtp_server=None, name="google"):
    """Point the CRM's `name` provider at this one (and its mail at the test servers)."""
    from crm.accounts import oauth

    values = {
        "client_id": CLIENT_ID,
        "authorize_url": provider.url + "/authorize",
        "token_url": provider.url + "/token",
        "imap_host": imap_server.host,
        "imap_port": imap_server.port,
        "imap_security": "none",
    }
    if smtp_server is not None:
        values.update(smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none")
    oauth.save_provider_config(session, box, name, values, client_secret=CLIENT_SECRET)


def make_oauth_account(
    services,
    user_id,
    provider: Provider,
    imap_server,
    smtp_server=None,
    *,
    email: str | None = None,
    folders=("INBOX",),
    since=None,
    **attrs,
) -> int:
    """A Google-type account connected to `provider` for a fresh mailbox of `imap_server`
    (or `email`), as after the consent; extra attributes are set on the account."""
    from datetime import date, timedelta

    from crm.accounts import manage, oauth
    from crm.db import utcnow

    email = email or f"{imap_server.new_user()}@example.com"
    with services.session() as session:
        configure(session, services.secret_box, provider, imap_server, smtp_server)
        access, refresh = provider.grant(email)
        expires = utcnow() + timedelta(seconds=provider.expires_in)
        grant = oauth.Grant(email, access, refresh, expires, "")
        account = manage.create_oauth_account(
            session,
            services.secret_box,
            user_id=user_id,
            provider="google",
            grant=grant,
            since=since or date(2000, 1, 1),
        )
        account.monitored_folders = list(folders)
        for key, value in attrs.items():
            setattr(account, key, value)
        session.flush()
        return account.id


def smtp_token_check(provider: Provider):
    """For SmtpServer(token_check=...): a token is good when the provider says it is the
    login's, exactly as Dovecot asks the introspection endpoint."""
    return lambda login, token: provider.owner(token) == login
