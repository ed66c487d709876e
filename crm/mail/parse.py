"""Raw bytes -> ParsedMail, our one parse seam. Never raises: problems are recorded instead.

Headers are read by our own split (every header, in order, 8-bit values read as UTF-8 first);
the MIME tree comes from crm.mail.mime (fast reader, careful fallback) and text from
crm.mail.charsets. Everything textual is cleaned of NUL bytes, which PostgreSQL rejects.
"""

from __future__ import annotations

import hashlib
import html as html_entities
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from crm.mail import charsets, mime
from crm.mail.address import parse_address_list
from crm.mail.headers import Head, read_headers
from crm.mail.headers import clean as _clean

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

Address = tuple[str, str]  # (display name, address)


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str | None = None  # without angle brackets
    is_inline: bool = False
    charset: str | None = None  # a text attachment's declared charset (its bytes are kept as is)


@dataclass(frozen=True)
class ParsedMail:
    identity: str  # normalised Message-ID, or "hash:<sha256 of the raw message>"
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
_HAS_SPACE = re.compile(r"\s")


def normalise_message_id(value: str | None) -> str | None:
    """Strip angle brackets and whitespace, lower-case the domain (RFC 5322 3.6.4 msg-id)."""
    if not value:
        return None
    m = _MSGID_RE.search(value)
    token = m.group(1) if m else value.strip().strip("<>").strip()
    if not token or _HAS_SPACE.search(token):
        return None
    local, at, domain = token.rpartition("@")
    return f"{local}@{domain.lower()}" if at else token


_EMPTY_LINE = re.compile(rb"\n\r?\n")


def header_block(raw: bytes) -> bytes:
    """The raw header section (up to the first empty line, CRLF or LF)."""
    m = _EMPTY_LINE.search(raw)
    return raw[: m.start()].rstrip(b"\r") if m else raw


def identity_for(message_id: str | None, raw: bytes) -> str:
    """The normalised Message-ID; without one, the hash of the whole message: only
    byte-identical copies are the same mail (an automated sender's mails can share every
    header, RFC 5322 3.6.4 makes Message-ID optional)."""
    if message_id:
        return message_id[:500]
    return "hash:" + hashlib.sha256(raw).hexdigest()


def parse(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedMail:
    """Parse a whole message; above max_bytes only the headers (with a problem note)."""
    raw = bytes(raw or b"")
    try:
        head = read_headers(header_block(raw))
        if len(raw) > max_bytes:
            note = f"Message is larger than {max_bytes // 2**20} MB: only its headers were imported"
            return _mail(raw, head, Body(), [note], header_only=True)
        return _mail(raw, head, read_body(raw), [])
    except Exception as exc:  # noqa: BLE001 - a message that cannot be parsed is still imported
        return _unreadable(raw, exc)


def parse_headers(raw_headers: bytes) -> ParsedMail:
    """Parse a header block alone (for filters that run before the body is downloaded)."""
    raw = bytes(raw_headers or b"")
    try:
        return _mail(raw, read_headers(header_block(raw)), Body(), [], header_only=True)
    except Exception as exc:  # noqa: BLE001 - as parse(): never raise
        return _unreadable(raw, exc)


def message_id_of(raw_headers: bytes) -> str | None:
    """The normalised Message-ID of a header block, as `parse_headers` gives it, without
    decoding the other fields (the importer sorts a batch by identity before anything else)."""
    try:
        head = read_headers(header_block(bytes(raw_headers or b"")))
        return _clean_id(normalise_message_id(head.first("Message-ID")))
    except Exception:  # noqa: BLE001 - the careful path decides, and never raises
        return parse_headers(raw_headers).message_id


# --- body ----------------------------------------------------------------------------------------


@dataclass
class Body:
    """What the MIME parts hold, reduced to the contract's fields."""

    text: str = ""
    html: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    has_delivery_status: bool = False
    notes: list[str] = field(default_factory=list)


_DELIVERY_STATUS = {"message/delivery-status", "message/global-delivery-status"}
_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
}


def read_body(raw: bytes) -> Body:
    """Bodies and attachments: the first text/plain and text/html that are not attachments."""
    notes: list[str] = []
    parts, _ = mime.read_parts(raw, notes)
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[ParsedAttachment] = []
    for part in parts:
        if part.content_type.startswith("multipart/"):  # no boundary found: keep the raw text
            if not part.payload.strip():
                continue
            notes.append("The MIME structure is broken: the body is shown as plain text")
            part.content_type = "text/plain"
        if part.content_type in ("text/plain", "text/html") and not _is_attachment(part):
            decoded, note = charsets.decode(part.payload, part.charset)
            decoded = _clean(decoded).replace("\r\n", "\n").replace("\r", "\n")
            (texts if part.content_type == "text/plain" else htmls).append(decoded)
            if note:
                notes.append(note[:1].upper() + note[1:])
        else:
            attachments.append(_attachment(part, len(attachments) + 1))
    html = "".join(htmls)
    # Later inline text parts (Apple Mail splits a body around inline images) are kept, joined.
    text = "\n\n".join(texts) if texts else html_to_text(html)
    return Body(
        text,
        html,
        tuple(attachments),
        any(p.content_type in _DELIVERY_STATUS for p in parts),
        notes,
    )


def _is_attachment(part: mime.Part) -> bool:
    return part.disposition == "attachment" or bool(part.filename)


def _attachment(part: mime.Part, position: int) -> ParsedAttachment:
    name = _safe_filename(part.filename) or _default_name(part, position)
    return ParsedAttachment(
        filename=name,
        content_type=_clean(part.content_type)[:200] or "application/octet-stream",
        payload=part.payload,
        content_id=_clean(part.content_id) if part.content_id else None,
        is_inline=part.content_id is not None and part.disposition != "attachment",
        charset=_clean(part.charset).lower()[:40] or None
        if part.charset and part.content_type.startswith("text/")
        else None,
    )


def _safe_filename(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if len(name) <= 255:
        return name
    stem, dot, ext = name.rpartition(".")
    return stem[: 254 - len(ext)] + dot + ext if dot and len(ext) <= 20 else name[:255]


def _default_name(part: mime.Part, position: int) -> str:
    if part.content_type == "message/rfc822":
        inner = read_headers(header_block(part.payload)).first("Subject") or ""
        subject = _safe_filename(charsets.decode_words(inner).replace("/", "-"))[:120]
        return (subject or "message") + ".eml"
    ext = _EXTENSIONS.get(part.content_type) or mimetypes.guess_extension(part.content_type)
    return f"part{position}{ext or '.bin'}"


_INVISIBLE = re.compile(r"<!--|<(script|style|title)\b[^<>]*>", re.IGNORECASE)
_BREAK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h[1-6]|/table|/blockquote)\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[!/?]?[A-Za-z][^<>]*>|<!--[^<>]*-->")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


def html_to_text(html: str) -> str:
    """Readable text from HTML for snippets and search: a tag strip, not a renderer."""
    if not html:
        return ""
    html = html[: 5 * 2**20]
    text = _TAG.sub("", _BREAK.sub("\n", _visible(html)))
    lines = (" ".join(line.split()) for line in html_entities.unescape(text).splitlines())
    return _clean(_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip())


def _visible(html: str) -> str:
    """html without comments, scripts, styles and titles; str.find keeps hostile input linear."""
    lower = html.lower()
    kept: list[str] = []
    pos = 0
    while m := _INVISIBLE.search(html, pos):
        kept.append(html[pos : m.start()])
        closing = "-->" if m.group(1) is None else "</" + m.group(1).lower()
        end = lower.find(closing, m.end())
        close = html.find(">", end) if end != -1 else -1
        pos = close + 1 if close != -1 else len(html)
    kept.append(html[pos:])
    return " ".join(kept)


# --- assembling ----------------------------------------------------------------------------------

_MSGID_ANY = re.compile(r"<([^<>\s]+)>")
_MACHINE_SENDERS = ("mailer-daemon", "postmaster")


def _mail(
    raw: bytes, head: Head, body: Body, notes: list[str], header_only: bool = False
) -> ParsedMail:
    message_id = _clean_id(normalise_message_id(head.first("Message-ID")))
    from_ = next(iter(parse_address_list(head.first("From"))), None)
    date, date_note = _date(head.first("Date"))
    subject, subject_note = _subject(head.first("Subject"))
    problems = [*head.notes, *(n for n in (date_note, subject_note) if n), *body.notes, *notes]
    return ParsedMail(
        identity=identity_for(message_id, raw),
        message_id=message_id,
        subject=subject,
        from_=from_,
        to=tuple(parse_address_list(head.joined("To"))),
        cc=tuple(parse_address_list(head.joined("Cc"))),
        bcc=tuple(parse_address_list(head.joined("Bcc"))),
        reply_to=tuple(parse_address_list(head.joined("Reply-To"))),
        date=date,
        in_reply_to=next(iter(_ids(head.first("In-Reply-To"))), None),
        references=_references(head.first("References")),
        text=body.text,
        html=body.html,
        attachments=body.attachments,
        headers=tuple((k, _clean(charsets.decode_words(v))) for k, v in head.fields),
        is_auto_reply=is_auto_reply(head),
        is_bounce=is_bounce(head, from_, body.has_delivery_status),
        size=len(raw),
        header_only=header_only,
        problems=tuple(dict.fromkeys(_clean(p) for p in problems)),
    )


def _subject(value: str | None) -> tuple[str, str | None]:
    subject = _clean(charsets.decode_words(value or "")).replace("\t", " ").strip()
    if len(subject) > 998:  # RFC 5322 2.1.1 line limit; longer ones are hostile
        return subject[:998], f"The subject was {len(subject)} characters long and was shortened"
    return subject, None


def _date(value: str | None) -> tuple[datetime | None, str | None]:
    if not value:
        return None, None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, f"The Date header could not be read: {value[:80]}"
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed, None


def _ids(value: str | None) -> list[str]:
    """Normalised message ids in a header, in order; bare tokens when there are no brackets."""
    if not value:
        return []
    tokens = _MSGID_ANY.findall(value) or value.replace(",", " ").split()
    ids = (_clean_id(normalise_message_id(f"<{t}>")) for t in tokens)
    return list(dict.fromkeys(i for i in ids if i))


def _references(value: str | None) -> tuple[str, ...]:
    ids = _ids(value)
    # Keep the thread root and the most recent ancestors when a chain is absurdly long.
    return tuple(ids if len(ids) <= 200 else ids[:1] + ids[-199:])


def _clean_id(value: str | None) -> str | None:
    return _clean(value)[:998] or None if value else None


def is_auto_reply(head: Head) -> bool:
    """RFC 3834 Auto-Submitted other than "no", X-Autoreply / X-Autorespond, bulk precedence."""
    submitted = (head.first("Auto-Submitted") or "").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return True
    if head.first("X-Autoreply") is not None or head.first("X-Autorespond") is not None:
        return True
    precedence = (head.first("Precedence") or "").strip().lower()
    return precedence in ("bulk", "junk", "list", "auto_reply")


def is_bounce(head: Head, from_: Address | None, has_delivery_status: bool) -> bool:
    """A delivery status report (RFC 3464), or a DSN part from MAILER-DAEMON or a null sender."""
    content_type = (head.first("Content-Type") or "").lower()
    if "multipart/report" in content_type and "delivery-status" in content_type:
        return True
    if not has_delivery_status:
        return False
    sender = (from_[1] if from_ else head.first("From") or "").lower()
    if sender.split("@")[0].strip("<> ") in _MACHINE_SENDERS:
        return True
    return (head.first("Return-Path") or "").replace(" ", "") == "<>"


def _unreadable(raw: bytes, exc: Exception) -> ParsedMail:
    found = _MSGID_RAW.search(header_block(raw)[:1_000_000])
    message_id = None
    if found:
        message_id = _clean_id(normalise_message_id(found.group(1).decode("ascii", "replace")))
    note = f"This message could not be parsed ({exc.__class__.__name__}); its raw source is kept"
    return ParsedMail(
        identity=identity_for(message_id, raw),
        message_id=message_id,
        size=len(raw),
        problems=(note,),
    )


_MSGID_RAW = re.compile(rb"(?im)^message-id[ \t]*:[ \t\r\n]*(<[^<>\s]+>)")


def snippet(text: str, length: int = 200) -> str:
    """The first words of a body, whitespace collapsed, for list rows."""
    return " ".join(text.split())[:length]
