"""SMTP transport: send composed messages through an account's server, over a checked address.

Like the IMAP transport it connects to the address `crm.mail.hosts` checked (`endpoint.ip`) but
speaks TLS to, and verifies the certificate against, the name the user gave (`endpoint.host`).
Certificates are always verified.

Failures come in three kinds, so a caller knows whether sending again is safe:

- `SmtpTemporary`: a 4xx answer, or the connection failed or was lost before the final "." of
  the message was written. The server has not taken the message; retrying is safe.
- `SmtpPermanent`: a 5xx answer (sender, every recipient, the data, or the login refused) or a
  setting that cannot work (no STARTTLS, a certificate that does not verify). Do not retry.
- `SmtpUnknown`: the whole message, final "." included, was written, and then the connection
  was lost or timed out before the server answered. It may have been delivered: never retry
  automatically, or recipients may get it twice.

smtplib does the talking, but not `sendmail()`: it cannot tell those last two cases apart. We
drive MAIL, RCPT and our own DATA phase, which records when the final dot has been written.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.base64mime import body_encode
from typing import Self

from crm.mail.errors import MailError, SmtpError
from crm.mail.hosts import Endpoint
from crm.mail.xoauth2 import xoauth2

SECURITY = ("ssl", "starttls", "none")

_CHUNK = 64 * 1024  # the socket timeout then bounds each chunk, not the whole upload
_MAX_CHALLENGES = 5


@dataclass(frozen=True)
class SmtpSettings:
    endpoint: Endpoint
    security: str  # one of SECURITY
    login: str = ""
    password: str = field(default="", repr=False)
    auth: bool = True
    timeout: float = 30
    helo: str | None = None  # the name we give in EHLO; None: this machine's FQDN (smtplib's)
    # OAuth2 accounts log in with AUTH XOAUTH2 and this bearer token instead of a password;
    # `renew_token` gives a fresh one when the server refuses it (revoked or expired early).
    access_token: str = field(default="", repr=False)
    renew_token: Callable[[], str] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Refusal:
    address: str
    code: int
    reply: str  # the server's words, code first: "550 5.1.1 No such user"


@dataclass(frozen=True)
class Delivery:
    accepted: tuple[str, ...]
    refused: tuple[Refusal, ...]
    reply: str  # the server's final answer to DATA, e.g. "250 2.0.0 Ok: queued as 4F3A"


class _SmtpFailure(SmtpError):
    """`code` is the server's reply code (None when it never answered), `reply` its words,
    `refused` the per-recipient refusals when every recipient was refused."""

    def __init__(
        self,
        message: str = "",
        *,
        plain: str | None = None,
        reply: str | None = None,
        code: int | None = None,
        refused: tuple[Refusal, ...] = (),
    ):
        super().__init__(message or reply or "", plain=plain, reply=reply)
        self.code = code
        self.refused = refused


class SmtpTemporary(_SmtpFailure):
    plain = "the mail server could not take the message just now; it can be sent again later"


class SmtpPermanent(_SmtpFailure):
    plain = "the mail server refused the message"


class SmtpUnknown(_SmtpFailure):
    plain = (
        "the connection was lost after the message was handed to the mail server, before it "
        "confirmed; it may have been delivered, so check before sending it again"
    )


class _StaleConnection(Exception):
    """A reused connection turned out to be closed before anything of this message was sent."""


# --- replies and errors ------------------------------------------------------------------


def _words(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join([str(code), *lines] if code > 0 else lines)


def _answer(code: int, message: bytes | str, plain: str, temporary: str | None = None):
    """The error for a refusing reply: 4xx temporary, 5xx permanent, anything else (a reply
    that makes no sense at that point) temporary, since nothing has been accepted yet."""
    reply = _words(code, message)
    if 500 <= code < 600:
        return SmtpPermanent(reply, plain=plain, reply=reply, code=code)
    if 400 <= code < 500:
        return SmtpTemporary(reply, plain=temporary, reply=reply, code=code)
    return SmtpTemporary(
        reply,
        plain="the mail server gave an answer that could not be understood",
        reply=reply,
        code=code if code > 0 else None,
    )


def _timed_out(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, TimeoutError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _lost(exc: BaseException, *, after_dot: bool) -> _SmtpFailure:
    """A connection that failed mid-session: unknown outcome once the final dot was written."""
    timed_out = _timed_out(exc)
    if after_dot:
        if timed_out:
            plain = (
                "the mail server did not confirm the message in time; it may have been "
                "delivered, so check before sending it again"
            )
            return SmtpUnknown(str(exc), plain=plain)
        return SmtpUnknown(str(exc))
    if timed_out:
        return SmtpTemporary(str(exc), plain="the mail server did not answer in time")
    return SmtpTemporary(str(exc), plain="the connection to the mail server was lost")


def _connect_error(exc: BaseException) -> _SmtpFailure:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _answer(
            exc.smtp_code,
            exc.smtp_error,
            plain="the mail server did not accept the login name or password",
            temporary="the mail server could not check the login just now; try again later",
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _answer(
            exc.smtp_code, exc.smtp_error, plain="the mail server refused the connection"
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _lost(exc, after_dot=False)
    if isinstance(exc, smtplib.SMTPException):  # e.g. "No suitable authentication method"
        return SmtpPermanent(
            str(exc), plain="the mail server offers no login method this program can use"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SmtpPermanent(
            str(exc),
            plain=(
                "the mail server's certificate could not be verified (not trusted, expired, or "
                "made for another host name)"
            ),
            reply=exc.verify_message,
        )
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return SmtpTemporary(str(exc), plain="the connection to the mail server was lost")
    if isinstance(exc, ssl.SSLError):
        return SmtpPermanent(
            str(exc),
            plain="a secure connection could not be set up (check the security setting and port)",
        )
    if isinstance(exc, TimeoutError):
        return SmtpTemporary(str(exc), plain="the mail server did not answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return SmtpTemporary(str(exc), plain="the mail server refused the connection (port closed)")
    if isinstance(exc, OSError):
        return SmtpTemporary(str(exc), plain="the mail server could not be reached")
    return SmtpPermanent(str(exc), plain="the connection to the mail server failed")


def _check_address(address: str, *, sender: bool = False) -> None:
    """No line breaks or brackets (they would be SMTP command injection), ASCII only (no
    SMTPUTF8 here); the null sender "<>" is allowed for MAIL FROM."""
    ok = (
        isinstance(address, str)
        and (address or sender)
        and address.isascii()
        and address.isprintable()
        and not any(c in address for c in "<> ")
    )
    if not ok:
        raise SmtpPermanent(
            f"invalid address {address!r}",
            plain=f"{address!r} is not an address that can be sent to",
        )


# --- the smtplib client, pinned ----------------------------------------------------------


class _Client(smtplib.SMTP):
    """smtplib.SMTP that connects to the checked IP, speaks TLS to the host name (implicit TLS
    when given a context), logs in with UTF-8 credentials and has a DATA phase that records
    when the final dot has been written."""

    def __init__(self, endpoint: Endpoint, timeout: float, helo: str | None, implicit_tls):
        self._endpoint = endpoint
        self._implicit_tls = implicit_tls
        self.dot_sent = False
        super().__init__(local_hostname=helo, timeout=timeout)  # no host: does not connect
        self._host = endpoint.host  # what starttls() checks the certificate against

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((self._endpoint.ip, port), timeout, self.source_address)
        if self._implicit_tls is None:
            return sock
        try:
            return self._implicit_tls.wrap_socket(sock, server_hostname=self._endpoint.host)
        except BaseException:
            sock.close()
            raise

    def auth(self, mechanism, authobject, *, initial_response_ok=True):
        """smtplib's, but credentials are sent as UTF-8 (RFC 4616) instead of ASCII only."""
        mechanism = mechanism.upper()
        initial = authobject() if initial_response_ok else None
        if initial is not None:
            response = body_encode(initial.encode("utf-8"), eol="")
            code, resp = self.docmd("AUTH", f"{mechanism} {response}")
            self._auth_challenge_count = 1
        else:
            code, resp = self.docmd("AUTH", mechanism)
            self._auth_challenge_count = 0
        while code == 334:
            self._auth_challenge_count += 1
            if self._auth_challenge_count > _MAX_CHALLENGES:
                raise smtplib.SMTPException(f"server AUTH loops: {code} {resp!r}")
            challenge = base64.decodebytes(resp)
            code, resp = self.docmd(body_encode(authobject(challenge).encode("utf-8"), eol=""))
        if code in (235, 503):
            return code, resp
        raise smtplib.SMTPAuthenticationError(code, resp)

    def data_command(self) -> tuple[int, bytes]:
        self.dot_sent = False
        self.putcmd("data")
        return self.getreply()

    def data_body(self, message: bytes) -> tuple[int, bytes]:
        """Send the message (CRLF line ends, dot-stuffed by smtplib.quotedata; latin-1 maps
        every byte to itself) and the final dot, then read the reply."""
        payload = smtplib.quotedata(message.decode("latin-1")).encode("latin-1")
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        payload += b".\r\n"
        view = memoryview(payload)
        for start in range(0, len(view), _CHUNK):
            self.send(view[start : start + _CHUNK])
        self.dot_sent = True
        return self.getreply()


def _login_xoauth2(client: _Client, s: SmtpSettings) -> None:
    """AUTH XOAUTH2; once more with a renewed token if the server refuses the first.

    smtplib's auth() takes a 503 ("already authenticated" or "bad sequence") as success: only
    235 is. A refusal first comes as a 334 challenge (a JSON error) answered with an empty line."""
    token = s.access_token
    for attempt in (1, 2):
        try:
            code, resp = client.auth(
                "XOAUTH2",
                lambda challenge=None, token=token: (
                    xoauth2(s.login, token) if challenge is None else ""
                ),
            )
        except smtplib.SMTPAuthenticationError as exc:
            if attempt == 1 and s.renew_token is not None and 500 <= exc.smtp_code < 600:
                token = s.renew_token()
                continue
            raise
        if code != 235:
            raise smtplib.SMTPAuthenticationError(code, resp)
        return


# --- the connection ----------------------------------------------------------------------


class SmtpConnection:
    """One SMTP session (reopened when lost), reused for many messages. A context manager:
    entering connects, secures and logs in; leaving says QUIT."""

    def __init__(self, settings: SmtpSettings, ssl_context: ssl.SSLContext | None = None):
        if settings.security not in SECURITY:
            raise SmtpPermanent(plain=f"unknown security setting {settings.security!r}")
        self.settings = settings
        # Loading the system CAs costs tens of milliseconds: only for a connection that uses TLS.
        if ssl_context is None and settings.security != "none":
            ssl_context = ssl.create_default_context()
        self.ssl_context = ssl_context
        self.greeting = ""
        self._client: _Client | None = None
        self._dirty = False  # a transaction failed: RSET (or reconnect) before the next one
        self._closed = False

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        self._closed = False
        if self._client is None:
            self._client = self._connect()

    def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):  # gone already, or refuses to say goodbye
            pass
        finally:
            client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._dirty = False
        if client is not None:
            client.close()

    # --- connecting --------------------------------------------------------------------
    def _connect(self) -> _Client:
        s = self.settings
        implicit = self.ssl_context if s.security == "ssl" else None
        client = _Client(s.endpoint, s.timeout, s.helo, implicit)
        try:
            code, message = client.connect(s.endpoint.host, s.endpoint.port)
            if code != 220:
                raise _answer(code, message, plain="the mail server refused the connection")
            self.greeting = _words(code, message)
            client.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                if not client.has_extn("starttls"):
                    raise SmtpPermanent(
                        "STARTTLS not offered",
                        plain=(
                            "the mail server does not offer STARTTLS, so the connection cannot "
                            "be secured; check the port and the security setting"
                        ),
                    )
                client.starttls(context=self.ssl_context)
                client.ehlo_or_helo_if_needed()
            if s.auth:
                if not client.has_extn("auth"):
                    where = " on an unencrypted connection" if s.security == "none" else ""
                    raise SmtpPermanent(
                        "AUTH not offered",
                        plain=f"the mail server does not offer a login{where}",
                    )
                if s.access_token:
                    _login_xoauth2(client, s)
                else:
                    client.login(s.login, s.password)
        except MailError:  # ours, or the token renewal's (the account must be reconnected)
            client.close()
            raise
        except Exception as exc:
            client.close()
            raise _connect_error(exc) from exc
        self._dirty = False
        return client

    def _ready(self) -> tuple[_Client, bool]:
        """The client to send with, and whether it is a reused session."""
        if self._closed:
            raise RuntimeError("this SmtpConnection is closed")
        if self._client is not None and self._dirty:
            try:
                code, _ = self._client.rset()
            except OSError:
                code = -1
            if code == 250:
                self._dirty = False
            else:
                self._drop()
        if self._client is None:
            self._client = self._connect()
            return self._client, False
        return self._client, True

    # --- sending -----------------------------------------------------------------------
    def send(self, message: bytes, mail_from: str, recipients: Sequence[str]) -> Delivery:
        recipients = [recipients] if isinstance(recipients, str) else list(recipients)
        _check_address(mail_from, sender=True)
        for rcpt in recipients:
            _check_address(rcpt)
        if not recipients:
            raise SmtpPermanent("no recipients", plain="the message has no recipients")
        for attempt in (1, 2):
            client, reused = self._ready()
            try:
                return self._transaction(
                    client, message, mail_from, recipients, stale_ok=reused and attempt == 1
                )
            except _StaleConnection:
                self._drop()  # closed while idle: one fresh connection, nothing was sent
            except _SmtpFailure as exc:
                self._dirty = True
                if exc.code == 421:  # the server is closing this session
                    self._drop()
                raise
            except OSError as exc:  # SMTPServerDisconnected, timeouts, TLS and socket errors
                after_dot = client.dot_sent
                self._drop()
                raise _lost(exc, after_dot=after_dot) from exc
        raise AssertionError("unreachable")

    def _transaction(self, client, message, mail_from, recipients, *, stale_ok) -> Delivery:
        client.dot_sent = False
        try:
            code, reply = client.mail(mail_from)
        except OSError as exc:
            if stale_ok:
                raise _StaleConnection from exc
            raise
        if code == 421 and stale_ok:
            raise _StaleConnection
        if code == 530 or (code != 250 and b"5.7.0" in (reply or b"")[:12]):
            raise _answer(
                code,
                reply,
                plain="the mail server wants a login before it takes mail: turn on the login "
                "(authentication) for this account",
            )
        if code != 250:
            raise _answer(code, reply, plain="the mail server refused the sender address")
        accepted: list[str] = []
        refused: list[Refusal] = []
        for rcpt in recipients:
            code, reply = client.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            elif code == 421:
                raise _answer(code, reply, plain="the mail server closed the session")
            else:
                refused.append(Refusal(rcpt, code, _words(code, reply)))
        if not accepted:
            words = "; ".join(f"{r.address}: {r.reply}" for r in refused)
            codes = {r.code for r in refused}
            kind = SmtpTemporary if all(400 <= c < 500 for c in codes) else SmtpPermanent
            raise kind(
                words,
                plain="the mail server refused every recipient",
                reply=words,
                code=codes.pop() if len(codes) == 1 else None,
                refused=tuple(refused),
            )
        code, reply = client.data_command()
        if code != 354:
            raise _answer(code, reply, plain="the mail server refused the message")
        code, reply = client.data_body(message)
        if 200 <= code < 300:
            return Delivery(tuple(accepted), tuple(refused), _words(code, reply))
        if 400 <= code < 600:
            raise _answer(code, reply, plain="the mail server refused the message")
        words = _words(code, reply)
        raise SmtpUnknown(
            words,
            plain=(
                "the mail server's answer to the message could not be understood; it may have "
                "been delivered, so check before sending it again"
            ),
            reply=words,
            code=code if code > 0 else None,
        )

    def noop(self) -> str:
        """NOOP, to check or keep the session alive; returns the server's reply."""
        client, _reused = self._ready()
        try:
            code, reply = client.noop()
        except OSError as exc:
            self._drop()
            raise _lost(exc, after_dot=False) from exc
        if code != 250:
            raise _answer(code, reply, plain="the mail server refused the NOOP command")
        return _words(code, reply)

    def _summary(self) -> str:
        s, client = self.settings, self._client
        where = f"{s.endpoint.host}:{s.endpoint.port}"
        if s.endpoint.ip != s.endpoint.host:
            where += f" ({s.endpoint.ip})"
        version = client.sock.version() if isinstance(client.sock, ssl.SSLSocket) else None
        secured = {
            "ssl": f"encrypted with TLS ({version})",
            "starttls": f"encrypted with STARTTLS ({version})",
            "none": "not encrypted",
        }[s.security]
        login = f"logged in as {s.login}" if s.auth else "no login"
        return f"Connected to {where}, {secured}, {login}. The server said: {self.greeting}"


def test_connection(settings: SmtpSettings, ssl_context: ssl.SSLContext | None = None) -> str:
    """Connect, secure, log in and QUIT; a one-line summary, or one of the errors above."""
    with SmtpConnection(settings, ssl_context) as conn:
        return conn._summary()


test_connection.__test__ = False  # not a pytest test, whoever imports it
