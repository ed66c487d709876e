"""Outgoing mail: a frozen message value, checked, then built into RFC 5322 bytes.

The MIME tree comes from the standard library (`email.message`, SMTP policy, CRLF) with 7-bit
bodies only: quoted-printable or base64, so no server needs 8BITMIME (RFC 6152). The top-level
headers are encoded (RFC 2047) and folded here instead: CPython's folder misplaces the white
space between encoded words (python/cpython#144156; a long Czech subject loses spaces), and a
subject must arrive exactly as it was typed. Before anything is built every header value is
checked: a CR or LF in a value would start a header of its own, a `Bcc:` say (RFC 5322 2.2).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser

from crm.mail import charsets
from crm.mail.address import normalise_address
from crm.mail.errors import MailError

POLICY = SMTP.clone(linesep="\r\n", cte_type="7bit")
LINE = 78  # RFC 5322 2.1.1: lines SHOULD stay within 78 characters, MUST within 998


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None  # with or without angle brackets
    inline: bool = False  # shown in the HTML through cid: (RFC 2392); needs content_id and html


@dataclass(frozen=True)
class OutgoingMessage:
    sender: Mailbox
    to: tuple[Mailbox, ...]
    cc: tuple[Mailbox, ...] = ()
    bcc: tuple[Mailbox, ...] = ()
    reply_to: tuple[Mailbox, ...] = ()
    subject: str = ""
    text: str = ""
    html: str = ""
    attachments: tuple[OutgoingAttachment, ...] = ()
    message_id: str = ""  # with angle brackets; one is made from the sender's domain when empty
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: datetime | None = None  # naive means UTC; now when None
    extra_headers: tuple[tuple[str, str], ...] = ()  # e.g. ("Auto-Submitted", "auto-replied")


class HeaderInjection(MailError):
    """A header value that would break out of its header, or is not what its field holds."""

    plain = "the message has a header that cannot be sent"

    def __init__(self, field: str, problem: str = "contains a line break or control character"):
        super().__init__(f"{field} {problem}", plain=f"The {field} {problem}.")
        self.field = field


class InvalidAddress(HeaderInjection):
    """An address field holding something that is not an address we can send to."""


# --- checks --------------------------------------------------------------------------------------

# CR, LF and NUL (RFC 5322 2.2), with the other C0 controls, DEL and the Unicode line breaks,
# which some folders (str.splitlines) would turn into line breaks of their own. Tab is allowed.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 3.6.8 ftext
# Headers the message sets itself: an extra header must never add a second From, or a Bcc.
_OWN_HEADERS = {
    "date",
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
}
_ID_TOKEN = re.compile(r"[!-;=?-~]{1,900}")  # printable ASCII without <, > or space
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def check_headers(message: OutgoingMessage) -> None:
    """Raise HeaderInjection naming the first field whose value cannot be sent as it is."""
    for field, value in _header_values(message):
        if _UNSAFE.search(value):
            raise HeaderInjection(field)
    for field, box in _mailboxes(message):
        header_address(box.address, field)
    if message.message_id and bracketed_id(message.message_id) is None:
        raise HeaderInjection("Message-ID", "is not a message id")
    if message.in_reply_to and bracketed_id(message.in_reply_to) is None:
        raise HeaderInjection("In-Reply-To", "is not a message id")
    if any(bracketed_id(ref) is None for ref in message.references):
        raise HeaderInjection("References", "holds something that is not a message id")
    for attachment in message.attachments:
        if attachment.content_id and bracketed_id(attachment.content_id) is None:
            raise HeaderInjection("attachment Content-ID", "is not a content id")
    for name, _ in message.extra_headers:
        if not _FIELD_NAME.fullmatch(name):
            raise HeaderInjection(f"header name {name!r}", "is not a header name")
        if name.lower() in _OWN_HEADERS:
            raise HeaderInjection(name, "is set by the message itself")


def _header_values(message: OutgoingMessage):
    yield "Subject", message.subject
    for field, box in _mailboxes(message):
        yield field, box.name
        yield field, box.address
    yield "Message-ID", message.message_id
    yield "In-Reply-To", message.in_reply_to or ""
    for ref in message.references:
        yield "References", ref
    for name, value in message.extra_headers:
        yield "header name", name
        yield name, value
    for attachment in message.attachments:
        yield "attachment filename", attachment.filename
        yield "attachment content type", attachment.content_type
        yield "attachment Content-ID", attachment.content_id or ""


def _mailboxes(message: OutgoingMessage):
    yield "From", message.sender
    for field, boxes in (
        ("To", message.to),
        ("Cc", message.cc),
        ("Bcc", message.bcc),
        ("Reply-To", message.reply_to),
    ):
        for box in boxes:
            yield field, box


def header_address(raw: str, field: str = "address") -> str:
    """The address as it goes into a header and the SMTP envelope: ASCII, the domain in IDNA.

    A non-ASCII local part would need SMTPUTF8 (RFC 6531), which we do not send.
    """
    address = normalise_address(raw)
    if address is None:
        raise InvalidAddress(field, f"has {raw!r}, which is not an email address")
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise InvalidAddress(field, f"has {raw!r}, whose name part is not ASCII")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidAddress(field, f"has {raw!r}, whose domain is not valid") from None
    if not _DOT_ATOM.fullmatch(local):  # RFC 5322 3.4.1: anything else is a quoted string
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}"


def bracketed_id(value: str | None) -> str | None:
    """A message id in angle brackets (given with or without), or None when it is not one."""
    token = (value or "").strip()
    if token.startswith("<") and token.endswith(">"):
        token = token[1:-1].strip()
    return f"<{token}>" if _ID_TOKEN.fullmatch(token) else None


def envelope_recipients(message: OutgoingMessage) -> list[str]:
    """RCPT TO addresses: To, Cc and Bcc, each once (compared case-insensitively), in order."""
    seen: dict[str, str] = {}
    for field, boxes in (("To", message.to), ("Cc", message.cc), ("Bcc", message.bcc)):
        for box in boxes:
            address = header_address(box.address, field)
            seen.setdefault(address.lower(), address)
    return list(seen.values())


# --- headers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Folded:
    """A header encoded and folded here. EmailPolicy stores a value with a matching `name` as
    it is and folds it by calling its `fold` (documented in email.policy.EmailPolicy)."""

    name: str
    folded: str  # "Name: value", continuation lines joined with CRLF, no final CRLF
    value: str  # readable, for str()

    def fold(self, *, policy) -> str:
        return self.folded + policy.linesep

    def __str__(self) -> str:
        return self.value


def _fold(name: str, pieces: list[tuple[str, str]], value: str | None = None) -> _Folded:
    """pieces are (white space before, token); lines break before white space (RFC 5322 2.2.3).

    The first token follows "Name: " on its line whatever white space it came with (readers
    drop it, and CPython keeps a line break right after the colon as a leading space).
    """
    lines: list[str] = []
    line = f"{name}:"
    for index, (space, token) in enumerate(pieces):
        space = " " if index == 0 else space
        if index and space and len(line) + len(space) + len(token) > LINE:
            lines.append(line)
            line = ""
        line += space + token
    lines.append(line)
    unfolded = "".join(space + token for space, token in pieces).strip()
    return _Folded(name, "\r\n".join(lines), unfolded if value is None else value)


# RFC 2047 5(3): the characters a Q-encoded word may hold as themselves, even inside a phrase.
_Q_PLAIN = re.compile(r"[A-Za-z0-9!*+\-/]")
_WORD = 75  # an encoded word has at most 75 characters (section 2)
_PIECES = re.compile(r"\S+\s*|\s+")


def encoded_words(text: str, first: int = 75) -> list[str]:
    """text as RFC 2047 words (Q or B, whichever is shorter), split only between characters.

    White space is encoded inside the words: between two adjacent encoded words it is dropped
    by every decoder (section 6.2), so none of the text's own spaces may stand there. Words
    end after a space where they can, so a reader that keeps that space (CPython's phrase
    parser does) at worst doubles a space instead of splitting a word. `first` is the room for
    the first word, when it has to share its line with the header's name.
    """
    q = _chunks(text, "q", first)
    b = _chunks(text, "b", first)
    return q if len("".join(q)) <= len("".join(b)) else b


def _chunks(text: str, kind: str, first: int) -> list[str]:
    words: list[str] = []
    current = ""

    def fits(candidate: str) -> bool:
        room = (_WORD if words else first) - len("=?utf-8?q??=")
        return len(_encode(candidate, kind)) <= room

    for piece in _PIECES.findall(text):
        if current and fits(current + piece):
            current += piece
            continue
        if current:
            words.append(current)
        current = ""
        for char in piece:  # a piece too long for one word is split between characters
            if current and not fits(current + char):
                words.append(current)
                current = ""
            current += char
    return [f"=?utf-8?{kind}?{_encode(word, kind)}?=" for word in [*words, current] if word]


def _encode(text: str, kind: str) -> str:
    if kind == "b":
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    return "".join(_q_char(char) for char in text)


def _q_char(char: str) -> str:
    if char == " ":
        return "_"
    if _Q_PLAIN.match(char):
        return char
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


_SPACES = re.compile(r"( +)")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 3.2.3 atext


def _plain_text_word(word: str) -> bool:
    # "=?" would be read as the start of an encoded word; very long words cannot be folded.
    return word.isascii() and "=?" not in word and len(word) <= 900


def _plain_phrase_word(word: str) -> bool:
    return _plain_text_word(word) and _ATOM.fullmatch(word) is not None


def _mixed(text: str, plain: Callable[[str], bool], first: int) -> list[tuple[str, str]]:
    """(space before, token) pieces: plain words as they are, each run of others encoded.

    An encoded run keeps the spaces inside it; the spaces around it stand in the header as
    they were, where they still count (RFC 2047 6.2: only space between encoded words goes).
    """
    parts = _SPACES.split(text)  # word, spaces, word, ...
    segments: list[list] = []  # [spaces before, text, needs encoding]
    for index in range(0, len(parts), 2):
        word, before = parts[index], parts[index - 1] if index else ""
        encode = bool(word) and not plain(word)
        if encode and segments and segments[-1][2]:
            segments[-1][1] += before + word
        elif word:
            segments.append([before, word, encode])
    pieces: list[tuple[str, str]] = []
    for before, segment, encode in segments:
        if not encode:
            pieces.append((before, segment))
            continue
        head, *rest = encoded_words(segment, first if not pieces else _WORD)
        pieces += [(before, head), *((" ", word) for word in rest)]
    return pieces


def _first_room(name: str) -> int:
    """Room for a first encoded word on the line "Name: ..." (at least 20 characters)."""
    return max(20, min(_WORD, LINE - len(name) - 2))


def _unstructured(name: str, text: str) -> _Folded:
    """Subject and the like (RFC 5322 3.2.5 unstructured, RFC 2047 5(1))."""
    return _fold(name, _mixed(text, _plain_text_word, _first_room(name)), text)


def _phrase(name: str, first: int = _WORD) -> list[tuple[str, str]]:
    """A display name (RFC 5322 3.2.5 phrase): atoms, one quoted string, or with encoded words."""
    name = name.strip()
    if name.isascii() and "=?" not in name and len(name) <= 200:
        if not name or all(_ATOM.fullmatch(word) for word in name.split(" ")):
            return [(" ", word) for word in name.split(" ") if word]
        return [(" ", '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')]
    return _mixed(name, _plain_phrase_word, first)


def _address_list(name: str, boxes: tuple[Mailbox, ...]) -> _Folded:
    pieces: list[tuple[str, str]] = []
    shown: list[str] = []
    for index, box in enumerate(boxes):
        address = header_address(box.address, name)
        phrase = _phrase(box.name, _first_room(name) if index == 0 else _WORD)
        tokens = [*phrase, (" ", f"<{address}>")] if phrase else [(" ", address)]
        tokens[0] = (" ", tokens[0][1])  # each mailbox may start a line
        if index < len(boxes) - 1:
            tokens[-1] = (tokens[-1][0], tokens[-1][1] + ",")
        pieces += tokens
        shown.append(f"{box.name.strip()} <{address}>" if box.name.strip() else address)
    return _fold(name, pieces, ", ".join(shown))


def _ids(name: str, ids: list[str]) -> _Folded:
    return _fold(name, [(" ", i) for i in ids])


def _headers(message: OutgoingMessage) -> list[_Folded]:
    date = message.date or datetime.now(UTC)
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    sender_domain = header_address(message.sender.address, "From").rpartition("@")[2]
    message_id = bracketed_id(message.message_id) or make_msgid(domain=sender_domain)
    headers = [
        _fold("Date", [(" ", format_datetime(date))]),
        _address_list("From", (message.sender,)),
    ]
    if message.to or message.cc:
        if message.to:
            headers.append(_address_list("To", message.to))
        if message.cc:
            headers.append(_address_list("Cc", message.cc))
    else:  # RFC 5322 3.6.3: an empty group keeps Bcc-only recipients unnamed
        headers.append(_fold("To", [(" ", "undisclosed-recipients:;")]))
    if message.reply_to:
        headers.append(_address_list("Reply-To", message.reply_to))
    if message.subject:
        headers.append(_unstructured("Subject", message.subject))
    headers.append(_ids("Message-ID", [message_id]))
    if message.in_reply_to:
        headers.append(_ids("In-Reply-To", [bracketed_id(message.in_reply_to) or ""]))
    if message.references:
        refs = list(dict.fromkeys(bracketed_id(ref) or "" for ref in message.references))
        headers.append(_ids("References", refs))
    headers += [_unstructured(name, value) for name, value in message.extra_headers]
    return headers


# --- body ----------------------------------------------------------------------------------------


def to_bytes(message: OutgoingMessage) -> bytes:
    """The message as CRLF bytes ready for SMTP DATA; never with a Bcc header.

    Tree: text/plain alone; with HTML multipart/alternative (plain text first, made from the
    HTML when empty); inline images put the HTML in multipart/related (RFC 2387); any other
    attachment puts it all in multipart/mixed. Bodies come back with CRLF read as LF and a
    line break at the end.
    """
    check_headers(message)
    root = EmailMessage(policy=POLICY)
    for header in _headers(message):
        root[header.name] = header
    root["MIME-Version"] = "1.0"
    body = _tree(message)
    for name, value in body.items():
        root[name] = value
    root.set_payload(body.get_payload())
    return root.as_bytes()


def _tree(message: OutgoingMessage) -> MIMEPart:
    def shown_inline(attachment: OutgoingAttachment) -> bool:
        return bool(message.html and attachment.inline and attachment.content_id)

    if message.html:
        html: MIMEPart = _text_part(message.html, "html")
        inline = [_file_part(a, "inline") for a in message.attachments if shown_inline(a)]
        if inline:
            html = _multipart("related", [html, *inline])
        text = _text_part(message.text or html_to_text(message.html), "plain")
        body = _multipart("alternative", [text, html])
    else:
        body = _text_part(message.text, "plain")
    files = [_file_part(a, "attachment") for a in message.attachments if not shown_inline(a)]
    return _multipart("mixed", [body, *files]) if files else body


def _text_part(text: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=POLICY)
    part.set_content(text, subtype=subtype, charset="utf-8")
    return part


def _multipart(subtype: str, parts: list[MIMEPart]) -> MIMEPart:
    container = MIMEPart(policy=POLICY)
    container["Content-Type"] = f"multipart/{subtype}"  # the generator adds a fresh boundary
    for part in parts:
        container.attach(part)
    return container


_MEDIA_TYPE = re.compile(r"([a-z0-9][a-z0-9!#$&^_.+-]{0,126})/([a-z0-9][a-z0-9!#$&^_.+-]{0,126})")
_LONG_LINE = re.compile(rb"[^\r\n]{999}")


def _file_part(attachment: OutgoingAttachment, disposition: str) -> MIMEPart:
    """An attachment in base64, with its Content-Disposition written here (see _disposition)."""
    media = _MEDIA_TYPE.fullmatch(attachment.content_type.split(";")[0].strip().lower())
    maintype, subtype = media.groups() if media else ("application", "octet-stream")
    cid = bracketed_id(attachment.content_id) if disposition == "inline" else None
    if maintype == "message":
        part = _message_part(attachment.data, subtype)
    else:
        if maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        params = {}
        if maintype == "text":
            params = {"charset": text_charset(attachment.content_type, attachment.data)}
        part = MIMEPart(policy=POLICY)
        part.set_content(attachment.data, maintype, subtype, cid=cid, params=params)
    part["Content-Disposition"] = _disposition(disposition, attachment.filename.strip())
    return part


_CHARSET_PARAM = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]{1,40})\"?", re.IGNORECASE)
# Python's codec names as MIME labels them (RFC 2978's registry), for detected charsets.
_MIME_NAMES = {
    "cp932": "shift_jis", "euc_jp": "euc-jp", "cp949": "euc-kr", "cp950": "big5",
    "koi8_r": "koi8-r", "koi8_u": "koi8-u", "gb18030": "gb18030",
}  # fmt: skip


def text_charset(content_type: str, data: bytes) -> str:
    """The charset a text attachment is labelled with: the one it came with, else what its
    bytes are (US-ASCII, UTF-8, or the detected 8-bit charset). The bytes are sent as they
    are; without the label a forwarded ISO-8859-2 note reads as mojibake."""
    declared = _CHARSET_PARAM.search(content_type)
    if declared:
        return declared.group(1).lower()
    if data.isascii():
        return "us-ascii"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    _text, codec = charsets.detect(data)
    if codec is None:
        return "utf-8"
    if codec.startswith(("cp125", "cp874")):
        return "windows-" + codec[2:]
    if codec.startswith("iso8859_"):
        return "iso-8859-" + codec.removeprefix("iso8859_")
    return _MIME_NAMES.get(codec, codec.replace("_", "-"))


def _message_part(data: bytes, subtype: str) -> MIMEPart:
    """A message/* attachment as it is: RFC 2046 5.2.1 allows it no base64, so 7-bit only."""
    part = MIMEPart(policy=POLICY)
    if not data.isascii() or _LONG_LINE.search(data):  # 8-bit mail goes as an opaque file
        part.set_content(data, "application", "octet-stream")
        return part
    part["Content-Type"] = f"message/{subtype}"
    part["Content-Transfer-Encoding"] = "7bit"
    part.set_payload(b"\r\n".join(data.splitlines()).decode("ascii") + "\r\n")
    return part


_PRINTABLE = re.compile(r"[ -~]{1,60}")
_ATTR_CHAR = re.compile(r"[A-Za-z0-9!#$&+.^_`|~-]")  # RFC 5987 attr-char, as RFC 2231 needs


def _disposition(disposition: str, filename: str) -> _Folded:
    """Content-Disposition (RFC 2183) with filename="..." when short and plain, else RFC 2231
    percent-encoded UTF-8, split into numbered continuations when long (section 3). Quotes and
    backslashes go percent-encoded too: readers unescape them unreliably in a quoted string."""
    pieces = [(" ", disposition)]
    if filename and _PRINTABLE.fullmatch(filename) and not set(filename) & set('"\\'):
        pieces.append((" ", f'filename="{filename}"'))
    elif filename:
        chunks = _percent_chunks(filename, 60)
        if len(chunks) == 1:
            pieces.append((" ", f"filename*=utf-8''{chunks[0]}"))
        else:
            start = ("utf-8''",) + ("",) * (len(chunks) - 1)
            for number, (prefix, chunk) in enumerate(zip(start, chunks, strict=True)):
                pieces.append((" ", f"filename*{number}*={prefix}{chunk}"))
    pieces = [(space, token + ";") for space, token in pieces[:-1]] + pieces[-1:]
    return _fold("Content-Disposition", pieces)


def _percent_chunks(text: str, size: int) -> list[str]:
    """text percent-encoded as UTF-8, in chunks of at most size characters, split between
    characters (a continuation must not cut a %XX escape, RFC 2231 4.1)."""
    chunks = [""]
    for char in text:
        code = char if _ATTR_CHAR.match(char) else "".join(f"%{b:02X}" for b in char.encode())
        if len(chunks[-1]) + len(code) > size:
            chunks.append("")
        chunks[-1] += code
    return chunks


# --- HTML to text --------------------------------------------------------------------------------

_BLOCKS = {
    "address",
    "article",
    "aside",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figure",
    "footer",
    "form",
    "header",
    "main",
    "nav",
    "section",
    "table",
    "tr",
}
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "ul", "ol", "hr"}
_HIDDEN = {"script", "style", "title", "template", "noscript"}  # what a browser never shows
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
MAX_HTML = 5 * 2**20


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: paragraphs and <br> as line breaks, list items as "- "
    (numbered in <ol>), links as "text (url)", quotes with "> " as RFC 3676 quotes them."""
    if not html:
        return ""
    reader = _TextReader()
    reader.feed(html[:MAX_HTML])
    reader.close()
    return reader.result()


class _TextReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []  # (quote depth, text)
        self.line: list[str] = []
        self.line_depth = 0
        self.depth = 0  # blockquote nesting
        self.blank = False  # a blank line is due before the next text
        self.hidden = 0
        self.pre = 0
        self.lists: list[list[int]] = []  # per open list: [next number] for <ol>, [] for <ul>
        self.links: list[tuple[str, int]] = []  # (href, length of the text before the link)
        self.link_text: list[str] = []

    # text

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            first, *rest = data.replace("\r\n", "\n").split("\n")
            self._add(first)
            for piece in rest:
                self._end_line(keep_empty=True)
                self._add(piece)
            return
        text = _WHITESPACE.sub(" ", data.replace("\xa0", " "))
        if not self.line or self.line[-1].endswith(" "):
            text = text.lstrip(" ")
        self._add(text)

    def _add(self, text: str) -> None:
        if not text:
            return
        if not self.line:
            self._start_line()
        self.line.append(text)
        if self.links:
            self.link_text.append(text)

    def _start_line(self) -> None:
        if self.blank and self.lines and self.lines[-1][1]:
            self.lines.append((min(self.depth, self.lines[-1][0]), ""))
        self.blank = False
        self.line_depth = self.depth

    def _end_line(self, keep_empty: bool = False) -> None:
        text = "".join(self.line).rstrip()
        if text or keep_empty:
            if not self.line:
                self._start_line()
            self.lines.append((self.line_depth, text))
        self.line = []

    def _block(self, blank: bool) -> None:
        self._end_line()
        self.blank = self.blank or blank

    # tags

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif self.hidden:
            return
        elif tag == "br":
            self._end_line(keep_empty=True)
        elif tag == "li":
            self._list_item()
        elif tag in ("ul", "ol"):
            self._block(blank=not self.lists)
            self.lists.append([1] if tag == "ol" else [])
        elif tag == "blockquote":
            self._block(blank=True)
            self.depth += 1
        elif tag in ("td", "th"):
            if self.line and not self.line[-1].endswith(" "):
                self.line.append("  ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.link_text)))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.handle_data(f"[{alt}]")
        elif tag == "hr":
            self._block(blank=True)
            self._add("----")
            self._block(blank=True)
        elif tag in _PARAGRAPHS or tag in _BLOCKS:
            self._block(blank=tag in _PARAGRAPHS)
            if tag == "pre":
                self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif self.hidden:
            return
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._block(blank=not self.lists)
        elif tag == "blockquote":
            self._block(blank=True)
            self.depth = max(0, self.depth - 1)
        elif tag == "a" and self.links:
            self._end_link()
        elif tag == "li":
            self._block(blank=False)
        elif tag in _PARAGRAPHS or tag in _BLOCKS:
            self._block(blank=tag in _PARAGRAPHS)
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def _list_item(self) -> None:
        self._block(blank=False)
        numbering = self.lists[-1] if self.lists else []
        marker = f"{numbering[0]}. " if numbering else "- "
        if numbering:
            numbering[0] += 1
        self._add("  " * max(0, len(self.lists) - 1) + marker)

    def _end_link(self) -> None:
        href, start = self.links.pop()
        text = "".join(self.link_text[start:]).strip()
        if not self.links:
            self.link_text = []
        url = href.strip()
        if not url or url.startswith("#") or url.lower().startswith("javascript:"):
            return
        shown = url[7:] if url.lower().startswith("mailto:") else url
        if text in (url, shown):
            return
        if not text:
            self.handle_data(shown)
            return
        self._add(f"({shown})" if self.line and self.line[-1].endswith(" ") else f" ({shown})")

    def result(self) -> str:
        self._end_line()
        out = [_quoted(depth, text) for depth, text in self.lines]
        return "\n".join(out).strip("\n")


def _quoted(depth: int, text: str) -> str:
    if not depth:
        return text
    return ">" * depth + (" " + text if text else "")
