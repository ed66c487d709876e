"""Raw bytes -> ParsedMail, our one parse seam. Never raises: problems are recorded instead.

(Contract only; the implementation follows in its own commit.)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

Address = tuple[str, str]  # (display name, address)


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None  # without angle brackets
    is_inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    identity: str  # normalised Message-ID, or "hash:<sha256 of the raw header block>"
    message_id: str | None = None  # normalised: no angle brackets, domain lower-cased
    subject: str = ""
    from_: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    date: datetime | None = None  # naive UTC
    in_reply_to: str | None = None  # normalised like message_id
    references: tuple[str, ...] = ()  # normalised, oldest first
    text: str = ""
    html: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # decoded (name, value) pairs, in order
    is_auto_reply: bool = False
    is_bounce: bool = False
    size: int = 0
    header_only: bool = False  # body not parsed (size cap, or a header-only fetch)
    problems: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def normalise_message_id(value: str | None) -> str | None:
    """Strip angle brackets and whitespace, lower-case the domain (RFC 5322 3.6.4 msg-id)."""
    if not value:
        return None
    m = _MSGID_RE.search(value)
    token = m.group(1) if m else value.strip().strip("<>").strip()
    if not token or any(c.isspace() for c in token):
        return None
    local, at, domain = token.rpartition("@")
    return f"{local}@{domain.lower()}" if at else token


def header_block(raw: bytes) -> bytes:
    """The raw header section (up to the first empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = raw.find(sep)
        if idx != -1:
            return raw[:idx]
    return raw


def identity_for(message_id: str | None, raw: bytes) -> str:
    if message_id:
        return message_id[:500]
    return "hash:" + hashlib.sha256(header_block(raw)).hexdigest()


def parse(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMail:
    """Parse a whole message; above max_bytes only the headers (with a problem note)."""
    raise NotImplementedError


def parse_headers(raw_headers: bytes) -> ParsedMail:
    """Parse a header block alone (for filters that run before the body is downloaded)."""
    raise NotImplementedError


def snippet(text: str, length: int = 200) -> str:
    return " ".join(text.split())[:length]
