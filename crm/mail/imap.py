"""IMAP transport: connect to a checked address, list folders, find new UIDs, fetch in batches.

Fetching never alters the mailbox: folders are opened with EXAMINE (read-only) and bodies
are fetched with BODY.PEEK, so no \\Seen flag is set (RFC 3501 6.4.5). imap-tools handles
login and folder commands; FETCH goes through the underlying imaplib client so bytes come
back raw and are parsed once, by our own parser.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Self

from imap_tools import BaseMailBox
from imap_tools.errors import MailboxLoginError
from imap_tools.imap_utf7 import utf7_decode, utf7_encode

from crm.mail.errors import ImapError
from crm.mail.hosts import Endpoint
from crm.mail.xoauth2 import xoauth2

SECURITY = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int


@dataclass(frozen=True)
class FolderInfo:
    """A folder as LIST names it, with its attributes: \\Noselect, \\HasChildren, and the
    special-use ones of RFC 6154 (\\Sent, \\Trash, \\Drafts, \\Junk, \\Archive, \\All, \\Flagged)."""

    name: str
    flags: tuple[str, ...]

    def has(self, flag: str) -> bool:
        """Attributes are case-insensitive (RFC 3501 9: flag-extension is an atom)."""
        return flag.lower() in (f.lower() for f in self.flags)

    @property
    def selectable(self) -> bool:
        return not (self.has("\\Noselect") or self.has("\\NonExistent"))

    @property
    def special_use(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags if f.lower() in _SPECIAL_USE)


SENT = "\\Sent"
# RFC 6154 2, and \\Important of RFC 8457.
_SPECIAL_USE = {
    f.lower()
    for f in (
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        SENT,
        "\\Trash",
        "\\Important",
    )
}


@dataclass(frozen=True)
class HeaderItem:
    uid: int
    size: int
    flags: tuple[str, ...]
    header: bytes


def _pinned(base):
    """An imaplib client class that connects to the checked IP but speaks TLS to the host name."""

    class Pinned(base):
        def __init__(self, endpoint: Endpoint, timeout: float, **kwargs):
            self._connect_ip = endpoint.ip
            super().__init__(endpoint.host, endpoint.port, timeout=timeout, **kwargs)

        def _create_socket(self, timeout):
            sock = socket.create_connection((self._connect_ip, self.port), timeout)
            if base is imaplib.IMAP4_SSL:
                return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
            return sock

    return Pinned


_PlainClient = _pinned(imaplib.IMAP4)
_SslClient = _pinned(imaplib.IMAP4_SSL)


class _Box(BaseMailBox):
    def __init__(self, make_client):
        self._make_client = make_client
        super().__init__()

    def _get_mailbox_client(self):
        return self._make_client()


class ImapLoginRefused(ImapError):
    """The server refused the login name and password, or the OAuth2 access token."""

    plain = "authentication failed"


def _plain_error(exc: BaseException) -> ImapError:
    if isinstance(exc, ImapError):
        return exc
    if isinstance(exc, MailboxLoginError):
        return ImapLoginRefused(str(exc), plain="authentication failed", reply=str(exc))
    if isinstance(exc, ssl.SSLError):
        return ImapError(str(exc), plain="secure connection failed (certificate or TLS settings)")
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return ImapError(str(exc), plain="host unreachable")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ImapError(str(exc), plain="the server did not answer in time")
    if isinstance(exc, (imaplib.IMAP4.abort, EOFError, ConnectionError, OSError)):
        return ImapError(str(exc), plain="the connection to the server was lost")
    return ImapError(str(exc), plain="the mail server answered with an error", reply=str(exc))


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate checks always on; an admin may add their own CA for on-site servers."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class ImapConnection:
    """One logged-in IMAP session. Use as a context manager."""

    def __init__(
        self,
        endpoint: Endpoint,
        security: str,
        login: str,
        password: str,
        timeout: float = 60,
        ssl_context: ssl.SSLContext | None = None,
        access_token: str | None = None,
    ):
        """With an `access_token` (OAuth2 accounts) the login is AUTHENTICATE XOAUTH2 and
        `password` is not used."""
        if security not in SECURITY:
            raise ImapError(plain=f"unknown security {security!r}")
        # Only a connection that uses TLS pays for loading the CA certificates.
        context = (ssl_context or tls_context()) if security != "none" else None
        self.box = None
        try:
            if security == "ssl":
                self.box = _Box(lambda: _SslClient(endpoint, timeout, ssl_context=context))
            else:
                self.box = _Box(lambda: _PlainClient(endpoint, timeout))
                if security == "starttls":
                    self._check(self.box.client.starttls(context))
            if access_token:
                self._login_xoauth2(login, access_token)
            else:
                self.box.login(login, password, initial_folder=None)
        except Exception as exc:
            if self.box is not None:
                self.box.client.shutdown()  # a refused login must not leak the socket
            raise _plain_error(exc) from exc
        self.client = self.box.client
        self._caps: set[str] | None = None

    def _login_xoauth2(self, login: str, token: str) -> None:
        """AUTHENTICATE XOAUTH2. A refusal comes as a challenge carrying a JSON error, which
        is answered with an empty line; imaplib then raises IMAP4.error (not imap-tools'
        MailboxLoginError) and the caller closes the socket."""
        response = xoauth2(login, token).encode()
        try:
            self.box.client.authenticate(
                "XOAUTH2", lambda challenge: b"" if challenge else response
            )
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise ImapLoginRefused(
                str(exc), plain="the mail server did not accept the access token", reply=str(exc)
            ) from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.logout()
        except (imaplib.IMAP4.error, OSError, EOFError):  # the connection may be gone already
            with contextlib.suppress(OSError):
                self.client.shutdown()

    @staticmethod
    def _check(result) -> list:
        typ, data = result
        if typ != "OK":
            reply = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise ImapError(reply, reply=reply)
        return data

    def _call(self, fn, *args):
        try:
            return self._check(fn(*args))
        except ImapError:
            raise
        except Exception as exc:
            raise _plain_error(exc) from exc

    # --- folders -------------------------------------------------------------------
    def folders(self) -> list[str]:
        """Names of all selectable folders on the server (decoded from modified UTF-7)."""
        return [f.name for f in self.folder_list() if f.selectable]

    def sent_folders(self) -> list[str]:
        """The folders the server marks as holding sent mail (the \\Sent special use)."""
        return [f.name for f in self.folder_list() if f.selectable and f.has(SENT)]

    def folder_list(self) -> list[FolderInfo]:
        """Every folder with its attributes, from LIST. A server that announces SPECIAL-USE need
        not show those attributes in a plain LIST (RFC 6154 2); when none shows, it is asked for
        them (LIST ... RETURN (SPECIAL-USE)) and they are added to the plain listing."""
        try:
            infos = _folder_infos(self._check(self.client.list('""', '"*"')))
            if any(f.special_use for f in infos) or "SPECIAL-USE" not in self._capabilities():
                return infos
            uses = {f.name: f.special_use for f in self._list_special_use() or ()}
            return [
                FolderInfo(f.name, f.flags + uses[f.name]) if uses.get(f.name) else f for f in infos
            ]
        except ImapError:
            raise
        except Exception as exc:
            raise _plain_error(exc) from exc

    def _list_special_use(self) -> list[FolderInfo] | None:
        try:
            typ, _data = self.client._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error:  # BAD: the server does not take the extended form after all
            typ = "BAD"
        listed = self.client.untagged_responses.pop("LIST", [])
        return _folder_infos(listed) if typ == "OK" else None

    def _capabilities(self) -> set[str]:
        """What the server announces once logged in (it may differ from the greeting's)."""
        if self._caps is None:
            typ, data = self.client.capability()
            words = b" ".join(d for d in data or [] if isinstance(d, bytes))
            self._caps = {w.upper() for w in words.decode(errors="replace").split()}
            if typ != "OK":
                self._caps = set()
        return self._caps

    def examine(self, folder: str) -> FolderStatus:
        """Open a folder read-only and read its UIDVALIDITY, UIDNEXT and message count."""
        data = self._call(self.client.select, _quote_folder(folder), True)
        messages = int(data[0]) if data and data[0] else 0
        validity = self.client.untagged_responses.get("UIDVALIDITY", [b"0"])[-1]
        uidnext = self.client.untagged_responses.get("UIDNEXT", [b"0"])[-1]
        return FolderStatus(int(validity), int(uidnext), messages)

    def append(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        """Store a message we sent in a folder (Sent), marked seen. The only write this
        module makes, and only for an account whose owner asked for copies of sent mail."""
        moment = imaplib.Time2Internaldate((when or datetime.now(UTC)).timestamp())
        self._call(self.client.append, _quote_folder(folder), "(\\Seen)", moment, raw)

    # --- searching -----------------------------------------------------------------
    def _uid_search(self, *criteria: str) -> list[int]:
        data = self._call(self.client.uid, "SEARCH", *criteria)
        return sorted(int(x) for x in (data[0] or b"").split())

    def uids_since(self, since: date | None, below: int | None = None) -> list[int]:
        """UIDs with INTERNALDATE on or after `since`, optionally only below a UID."""
        criteria = []
        if since:
            criteria += ["SINCE", since.strftime("%d-%b-%Y")]
        if below is not None:
            if below <= 1:
                return []
            criteria += ["UID", f"1:{below - 1}"]
        uids = self._uid_search(*(criteria or ["ALL"]))
        return [u for u in uids if below is None or u < below]

    def uids_above(self, last_uid: int) -> list[int]:
        """UIDs above last_uid. `n:*` always matches the newest message, so filter it."""
        return [u for u in self._uid_search("UID", f"{last_uid + 1}:*") if u > last_uid]

    # --- fetching ------------------------------------------------------------------
    def fetch_headers(self, uids: list[int]) -> dict[int, HeaderItem]:
        """Size, flags and raw header block of each UID (BODY.PEEK: flags stay untouched)."""
        if not uids:
            return {}
        data = self._call(
            self.client.uid, "FETCH", _uid_set(uids), "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER])"
        )
        items = {}
        for meta, literal in _fetch_pairs(data):
            uid = _int_item(meta, b"UID")
            if uid is not None:
                items[uid] = HeaderItem(
                    uid, _int_item(meta, b"RFC822.SIZE") or len(literal), _flags(meta), literal
                )
        return items

    def fetch_bodies(self, uids: list[int]) -> dict[int, bytes]:
        """Whole raw messages of the given UIDs, fetched with BODY.PEEK[]."""
        if not uids:
            return {}
        data = self._call(self.client.uid, "FETCH", _uid_set(uids), "(UID BODY.PEEK[])")
        out = {}
        for meta, literal in _fetch_pairs(data):
            uid = _int_item(meta, b"UID")
            if uid is not None:
                out[uid] = literal
        return out


_ITEM_RE = {}


def _int_item(meta: bytes, name: bytes) -> int | None:
    rx = _ITEM_RE.get(name)
    if rx is None:
        rx = _ITEM_RE[name] = re.compile(rb"\b" + re.escape(name) + rb" (\d+)")
    m = rx.search(meta)
    return int(m.group(1)) if m else None


_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")


def _flags(meta: bytes) -> tuple[str, ...]:
    m = _FLAGS_RE.search(meta)
    return tuple(m.group(1).decode(errors="replace").split()) if m else ()


def _fetch_pairs(data: list):
    """(metadata, literal) per message. Items after a literal (b' UID 5)') belong to it."""
    pairs: list[list] = []
    for item in data:
        if isinstance(item, tuple):
            pairs.append([item[0], item[1]])
        elif isinstance(item, bytes) and pairs and item != b")":
            pairs[-1][0] = pairs[-1][0] + b" " + item
    return [(meta, literal) for meta, literal in pairs]


_LIST_RE = re.compile(
    rb'^\((?P<flags>[^)]*)\) +(?P<delim>NIL|"(?:[^"\\]|\\.)*") +(?P<name>.*)$', re.DOTALL
)


def _folder_infos(data: list) -> list[FolderInfo]:
    """Parse LIST responses: `(flags) delimiter name`, the name an atom, a quoted string or a
    literal (imaplib hands a literal over as a (line, bytes) pair); names are modified UTF-7."""
    out = []
    for item in data:
        if isinstance(item, tuple):
            line, literal = item[0], item[1]
        elif isinstance(item, bytes):
            line, literal = item, None
        else:
            continue
        m = _LIST_RE.match(line.strip())
        if m is None:
            continue
        if literal is not None:
            raw = literal
        else:
            raw = _astring(m.group("name").strip())
        if not raw:
            continue
        flags = tuple(m.group("flags").decode(errors="replace").split())
        out.append(FolderInfo(utf7_decode(raw), flags))
    return out


def _astring(text: bytes) -> bytes:
    """A quoted string unescaped (\\\\ and \\"), or an atom up to the first space."""
    if not text.startswith(b'"'):
        return text.split(b" ", 1)[0]
    out, i = bytearray(), 1
    while i < len(text):
        ch = text[i : i + 1]
        if ch == b"\\" and i + 1 < len(text):
            out += text[i + 1 : i + 2]
            i += 2
            continue
        if ch == b'"':
            break
        out += ch
        i += 1
    return bytes(out)


def _uid_set(uids: list[int]) -> str:
    """Compact UID set: runs become ranges (1:5,8,10:12)."""
    ordered = sorted(set(uids))
    parts, start, prev = [], ordered[0], ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _quote_folder(folder: str) -> str:
    encoded = utf7_encode(folder).decode()
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'
