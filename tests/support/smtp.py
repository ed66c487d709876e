"""A capturing, scriptable aiosmtpd server on a free loopback port.

`SmtpServer()` with no options is the plain capturing server other tests use: no TLS, no AUTH,
every message accepted and kept in `.messages`. Options make it behave like a real server:

- `tls="none" | "starttls" | "ssl"`: STARTTLS offered (and, with `require_starttls`, demanded
  before MAIL), or implicit TLS from the first byte. The certificate is for `localhost` and
  127.0.0.1, signed by a test CA made once per process with openssl; `.ssl_context()` gives a
  client context that trusts that CA (a default context does not).
- `login`/`password`: AUTH PLAIN and LOGIN (`auth_mechanisms` narrows the offer) and MAIL is
  refused with 530 until the client logged in. `auth_require_tls` (aiosmtpd's default, True)
  hides AUTH on a connection that is not encrypted.
- failure injection, per transaction (a transaction begins with MAIL FROM):
  `answer_mail="451 ..."`, `answer_rcpt={"bad@x.example": "550 5.1.1 No such user"}`,
  `answer_data_command="554 ..."` (the reply to the DATA command itself, before any data),
  `answer_data="451 4.3.0 Try later"` (the reply after the final dot; the message is not kept),
  `drop="before_data" | "after_dot"` (close the connection without replying: at the DATA
  command, or after the final dot, in which case the message IS kept: the realistic unknown
  outcome), `hang="before_data" | "after_dot"` (the same, but never answer and never close,
  for client timeouts). `fail_times=N` limits all of these to the first N transactions since
  the server was made or last `script()`-ed; after that it answers normally.
- `token_check=callable(login, token) -> bool`: AUTH XOAUTH2 and OAUTHBEARER (RFC 7628) are
  offered too and a bearer token is accepted when the callable says so (the OAuth tests ask
  their local provider); a refused token gets the 334 JSON error challenge, then 535.
- `idle_timeout`: seconds of silence after which the server closes a connection (aiosmtpd's).

Options are plain attributes and may be changed between sends; `script(**options)` changes
several at once and restarts the `fail_times` count.

`.messages` holds one dict per kept message: `mail_from`, `rcpt_tos` (accepted ones only),
`data` (the raw bytes, dots un-stuffed), `login` (the AUTH login or None) and `connection`
(which TCP session, from 1). `.connections` counts TCP sessions opened by clients; `.logins`
lists `(mechanism, login)` of every successful AUTH.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session, syntax

from tests.support.dovecot import free_port

TLS_MODES = ("none", "starttls", "ssl")
POINTS = ("before_data", "after_dot")
MECHANISMS = ("PLAIN", "LOGIN")
BEARER_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
HANG_SECONDS = 3600  # "forever": the client's timeout or the server's stop ends it first

_OPTIONS = (
    "answer_mail",
    "answer_rcpt",
    "answer_data_command",
    "answer_data",
    "drop",
    "hang",
    "fail_times",
)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@functools.cache
def certificates() -> Certificates:
    """A test CA and a server certificate for localhost / 127.0.0.1, made once per process."""
    d = Path(tempfile.mkdtemp(prefix="crm-smtp-tls-"))
    atexit.register(shutil.rmtree, d, True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = d / "ca.pem", d / "ca.key"
    cert, key, csr, ext = d / "cert.pem", d / "key.pem", d / "cert.csr", d / "cert.ext"
    _openssl(
        "req", "-x509", *ec, "-sha256", "-days", "3650", "-subj", "/CN=CRM test CA",
        "-keyout", ca_key, "-out", ca,
    )  # fmt: skip
    _openssl("req", "-new", *ec, "-subj", "/CN=localhost", "-keyout", key, "-out", csr)
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "1",
        "-days", "3650", "-sha256", "-extfile", ext, "-out", cert,
    )  # fmt: skip
    return Certificates(ca=ca, cert=cert, key=key)


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server
        self.messages: list[dict] = []

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        session.host_name = hostname  # aiosmtpd leaves this to a 5-argument hook
        if not self.server.has_logins:  # nothing to log in to: do not offer AUTH at all
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        server = self.server
        if server.has_logins and not session.authenticated:
            return "530 5.7.0 Authentication required"
        session.crm_transaction = server._begin_transaction()
        if server._failing(session) and server.answer_mail:
            return server.answer_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        server = self.server
        answers = {k.lower(): v for k, v in (server.answer_rcpt or {}).items()}
        if server._failing(session) and address.lower() in answers:
            return answers[address.lower()]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        server = self.server
        failing = server._failing(session)
        if failing and (server.drop == "after_dot" or server.hang == "after_dot"):
            self._keep(smtp, session, envelope)
            if server.drop == "after_dot":
                smtp.transport.close()
            await asyncio.sleep(HANG_SECONDS)  # cancelled when the connection goes
        if failing and server.answer_data:
            return server.answer_data
        self._keep(smtp, session, envelope)
        return "250 2.0.0 OK: queued"

    def _keep(self, smtp, session, envelope) -> None:
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": envelope.original_content or envelope.content,
                "login": _login_of(session),
                "connection": smtp.crm_connection,
            }
        )


def _login_of(session) -> str | None:
    login = getattr(session.auth_data, "login", None) if session.authenticated else None
    return login.decode() if isinstance(login, bytes) else login


class _Session(Session):
    # aiosmtpd itself sets the legacy login_data after every AUTH and logs a deprecation
    # warning for it each time; the value is the same as auth_data.login.
    login_data = property(
        lambda self: self._login_data, lambda self, value: setattr(self, "_login_data", value)
    )


class _ScriptedSMTP(SMTP):
    """aiosmtpd's SMTP that counts connections and can fail at the DATA command."""

    def __init__(self, server: SmtpServer, **kwargs):
        self.crm_server = server
        self.crm_connection = 0
        super().__init__(server.handler, **kwargs)

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def connection_made(self, transport) -> None:
        if self._original_transport is None:  # a new TCP session, not the STARTTLS switch
            self.crm_server.connections += 1
            self.crm_connection = self.crm_server.connections
        super().connection_made(transport)

    async def auth_XOAUTH2(self, _, args: list[str]) -> AuthResult:
        """ "user=" login ^A "auth=Bearer " token ^A ^A, base64 (Google's XOAUTH2)."""
        fields = await self._bearer_fields(args)
        return await self._bearer_result("XOAUTH2", fields.get("user", ""), fields)

    async def auth_OAUTHBEARER(self, _, args: list[str]) -> AuthResult:
        """RFC 7628: "n,a=login," ^A key=value pairs ^A ^A."""
        fields = await self._bearer_fields(args)
        gs2 = fields.pop("", "")
        login = gs2.split("a=", 1)[1].split(",", 1)[0] if "a=" in gs2 else ""
        login = login.replace("=2C", ",").replace("=3D", "=")
        return await self._bearer_result("OAUTHBEARER", login, fields)

    async def _bearer_fields(self, args: list[str]) -> dict[str, str]:
        raw = args[1].encode() if len(args) > 1 else await self.challenge_auth("")
        try:
            text = base64.b64decode(raw, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return {}
        fields: dict[str, str] = {}
        for part in text.split("\x01"):
            key, sep, value = part.partition("=")
            if part.startswith("n,"):
                fields[""] = part
            elif sep:
                fields[key] = value
        return fields

    async def _bearer_result(self, mechanism: str, login: str, fields: dict) -> AuthResult:
        auth = fields.get("auth", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        check = self.crm_server.token_check
        if login and token and check is not None and check(login, token):
            self.crm_server.logins.append((mechanism, login))
            return AuthResult(success=True, handled=False, auth_data=LoginPassword(login, b""))
        # RFC 7628 3.2.2: the error as a challenge, answered by the client with an empty line.
        await self.challenge_auth('{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        server = self.crm_server
        if not arg and self.envelope.rcpt_tos and server._failing(self.session):
            if server.drop == "before_data":
                self.transport.close()
                return
            if server.hang == "before_data":
                await asyncio.sleep(HANG_SECONDS)
            if server.answer_data_command:
                await self.push(server.answer_data_command)
                return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def __init__(self, server: SmtpServer, **kwargs):
        self.crm_server = server
        super().__init__(server.handler, **kwargs)

    def factory(self):
        return _ScriptedSMTP(self.crm_server, **self.SMTP_kwargs)


class SmtpServer:
    def __init__(
        self,
        *,
        tls: str = "none",
        require_starttls: bool = True,
        login: str | None = None,
        password: str | None = None,
        auth_mechanisms: tuple[str, ...] = MECHANISMS,
        auth_require_tls: bool = True,
        idle_timeout: float = 300,
        hostname: str = "localhost",
        token_check=None,
        **options,
    ):
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {TLS_MODES}")
        self.handler = _Handler(self)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls = tls
        self.login = login
        self.password = password if password is not None else ""
        self.token_check = token_check
        self.connections = 0
        self.logins: list[tuple[str, str]] = []
        self._transactions = 0
        for name in _OPTIONS:
            setattr(self, name, None)
        self.script(**options)
        kwargs: dict = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": hostname,
            "timeout": idle_timeout,
            "auth_require_tls": auth_require_tls,
            "auth_exclude_mechanism": [m for m in MECHANISMS if m not in auth_mechanisms]
            + ([] if token_check else list(BEARER_MECHANISMS)),
            "authenticator": self._authenticate,
        }
        if tls == "starttls":
            kwargs.update(tls_context=self._server_context(), require_starttls=require_starttls)
        elif tls == "ssl":
            kwargs["ssl_context"] = self._server_context()
            # aiosmtpd counts only STARTTLS as encryption; implicit TLS is encrypted throughout.
            kwargs["auth_require_tls"] = False
        self.controller = _Controller(self, **kwargs)

    @property
    def has_logins(self) -> bool:
        return self.login is not None or self.token_check is not None

    # --- scripting --------------------------------------------------------------------
    def script(self, **options) -> SmtpServer:
        """Set failure options (see the module docstring) and restart the fail_times count."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown SmtpServer options: {sorted(unknown)}")
        for point in ("drop", "hang"):
            if options.get(point) not in (None, *POINTS):
                raise ValueError(f"{point} must be one of {POINTS}")
        for name, value in options.items():
            setattr(self, name, value)
        self._transactions = 0
        return self

    def _begin_transaction(self) -> int:
        number = self._transactions
        self._transactions += 1
        return number

    def _failing(self, session) -> bool:
        number = getattr(session, "crm_transaction", None)
        return number is not None and (self.fail_times is None or number < self.fail_times)

    def _authenticate(self, smtp, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            self.login is not None
            and auth_data.login == self.login.encode()
            and auth_data.password == self.password.encode()
        )
        if ok:
            self.logins.append((mechanism, self.login))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # --- TLS --------------------------------------------------------------------------
    @staticmethod
    def _server_context() -> ssl.SSLContext:
        certs = certificates()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
        return context

    @staticmethod
    def ssl_context() -> ssl.SSLContext:
        """A client context that verifies certificates and trusts the test CA."""
        return ssl.create_default_context(cafile=str(certificates().ca))

    # --- lifecycle --------------------------------------------------------------------
    @property
    def messages(self) -> list[dict]:
        return self.handler.messages

    def start(self) -> SmtpServer:
        self.controller.start()
        self.connections = 0  # the controller's own readiness probe is not a client
        return self

    def stop(self) -> None:
        self.controller.stop()
