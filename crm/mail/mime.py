"""The MIME tree of a message as a flat list of leaf parts, walked iteratively within bounds.

Two readers give the same leaves: fast-mail-parser (Rust, ~20x the standard library) for the
common case, and the standard library's compat32 parser with explicit decoding for what the fast
one gets wrong (bad base64, file names it garbles). The walk is an explicit stack with bounded
depth, part count and decoded size, so hostile nesting cannot exhaust the interpreter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import collapse_rfc2231_value
from typing import TypeVar

import fast_mail_parser

from crm.mail.charsets import decode_words, header_text

MAX_DEPTH = 20
MAX_PARTS = 500
MAX_DECODED = 50 * 1024 * 1024


@dataclass
class Part:
    """One leaf of the MIME tree: transfer-decoded bytes and what its headers say about them."""

    content_type: str  # lower-cased type/subtype
    charset: str | None
    filename: str
    content_id: str | None  # without angle brackets
    disposition: str | None  # lower-cased token: "inline", "attachment", or None
    payload: bytes


class Suspicious(Exception):
    """The fast reader produced something the careful one reads better."""


Node = TypeVar("Node")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
# A UTF-8 lead byte followed by a continuation byte, both read as Latin-1: "Ã©" for "é".
_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]")


def read_parts(raw: bytes, notes: list[str]) -> tuple[list[Part], bool]:
    """The leaves of raw's MIME tree, and whether the careful reader had to be used."""
    fast_notes: list[str] = []
    try:
        parts = fast_parts(raw, fast_notes)
    except Exception:  # noqa: BLE001 - any doubt about the fast reader means the careful one
        return careful_parts(raw, notes), True
    notes.extend(fast_notes)
    return parts, False


def fast_parts(raw: bytes, notes: list[str]) -> list[Part]:
    """Leaves read by fast-mail-parser; raises on anything the careful reader should redo."""
    root = fast_mail_parser.parse_email_tree(raw, mode="lazy")
    parts: list[Part] = []
    budget = _Budget(notes)
    for node in bounded_walk(root, _fast_children, notes):
        filename = node.filename or ""
        if node.content_type.lower().startswith("multipart/"):
            raise Suspicious("a multipart without parts: compat32 keeps its raw body")
        if "=?" in filename or "\ufffd" in filename or _MOJIBAKE.search(filename):
            raise Suspicious(filename)
        headers = {k.lower(): v[0] for k, v in node.headers.items() if v}
        size = node.encoded_size or 0
        payload = node.content if budget.allows(size) else b""
        parts.append(
            Part(
                content_type=(node.content_type or "text/plain").lower(),
                charset=_charset_of(headers.get("content-type", "")),
                filename=filename,
                content_id=_bare_id(node.content_id),
                disposition=(node.disposition or "").lower() or None,
                payload=payload or b"",
            )
        )
    notes.extend(budget.notes)
    return parts


def _fast_children(node):
    # message/rfc822 stays one leaf: it is kept whole, as an attached .eml
    return None if node.is_message or not node.children else node.children


def careful_parts(raw: bytes, notes: list[str]) -> list[Part]:
    """Leaves read by the standard library (compat32), decoding everything explicitly."""
    root = message_from_bytes(raw, policy=compat32)
    parts: list[Part] = []
    budget = _Budget(notes)
    for node in bounded_walk(root, _careful_children, notes):
        try:
            parts.append(_careful_part(node, budget))
        except Exception as exc:  # noqa: BLE001 - one bad part must not lose the others
            notes.append(
                f"A {node.get_content_type()} part could not be read ({exc.__class__.__name__})"
            )
    notes.extend(budget.notes)
    return parts


def _careful_children(node: Message):
    if node.get_content_maintype() == "message":  # rfc822 is kept whole; delivery-status too
        return None
    payload = node.get_payload()
    return payload if node.is_multipart() and isinstance(payload, list) and payload else None


def _careful_part(node: Message, budget: _Budget) -> Part:
    content_type = node.get_content_type()
    if node.is_multipart():  # message/*: compat32 parsed the body into header blocks
        blocks = node.get_payload()
        payload = b"".join(b.as_bytes() for b in blocks if isinstance(b, Message))
    else:
        size = len(str(node.get_payload()) or "")
        payload = node.get_payload(decode=True) if budget.allows(size) else b""
    charset = node.get_param("charset")
    if isinstance(charset, tuple):
        charset = collapse_rfc2231_value(charset)
    return Part(
        content_type=content_type,
        charset=_unescape(charset) if charset else None,
        filename=_careful_filename(node),
        content_id=_bare_id(_unescape(node.get("Content-ID") or "")),
        disposition=node.get_content_disposition(),
        payload=payload if isinstance(payload, bytes) else b"",
    )


def _careful_filename(node: Message) -> str:
    # get_filename joins RFC 2231 continuations before decoding, so split characters survive
    name = node.get_filename() or ""
    return decode_words(_unescape(name)) if name else ""


def _unescape(value: str) -> str:
    """compat32 keeps raw 8-bit header bytes as surrogate escapes: read them as header text."""
    value = str(value)
    if value.isascii():
        return value
    try:
        return header_text(value.encode("ascii", "surrogateescape"))
    except UnicodeEncodeError:
        return value


def bounded_walk(
    root: Node, children: Callable[[Node], list | None], notes: list[str]
) -> Iterator[Node]:
    """Leaves in document order, depth-first with an explicit stack, within depth and count."""
    stack = [(root, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            notes.append(f"More than {MAX_PARTS} MIME parts: the rest were not read")
            return
        kids = children(node)
        if kids is None:
            yield node
        elif depth >= MAX_DEPTH:
            _note_once(notes, f"MIME parts nested deeper than {MAX_DEPTH} levels were not read")
        else:
            stack.extend((kid, depth + 1) for kid in reversed(kids))


class _Budget:
    """Decoded bytes kept so far; past MAX_DECODED further payloads are dropped with a note."""

    def __init__(self, notes: list[str]):
        self.used = 0
        self.notes: list[str] = []

    def allows(self, size: int) -> bool:
        self.used += size
        if self.used <= MAX_DECODED:
            return True
        _note_once(self.notes, f"Parts beyond {MAX_DECODED // 2**20} MB were not kept")
        return False


def _note_once(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _charset_of(content_type: str) -> str | None:
    m = _CHARSET.search(content_type)
    return m.group(1) if m else None


def _bare_id(value: str | None) -> str | None:
    token = (value or "").strip().strip("<>").strip()
    return token[:500] or None
