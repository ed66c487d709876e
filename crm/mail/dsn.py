"""Delivery status notifications: who a bounce or a delay warning is about, and which mail.

`read_report(raw)` reads a message and, when it is a delivery report, returns its recipients
(address, action, status, diagnostic) and the Message-ID of the mail it reports on. Never raises:
a message that is no report, or that cannot be read, gives None.

Standard reports (RFC 3464) carry a message/delivery-status part (RFC 6533: also
message/global-delivery-status) with a per-message block and one block per recipient
(Final-Recipient, Action, Status, Diagnostic-Code), and the failed mail as message/rfc822
or its headers as text/rfc822-headers. Older and home-grown MTAs send plain text instead:
the same fields written into the text, qmail's "<address>:" paragraphs, Exim's indented
"The following address(es) failed:" list and its X-Failed-Recipients header, and the failed
mail attached or copied below a "copy of the message" line. Those are read only from machine
senders (MAILER-DAEMON, postmaster, a null Return-Path) whose mail says it is about delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm.mail import charsets, mime
from crm.mail.address import normalise_address, parse_address_list
from crm.mail.headers import Head, clean, read_headers
from crm.mail.parse import ParsedMail, header_block, normalise_message_id

FAILED, DELAYED = "failed", "delayed"
ACTIONS = (FAILED, DELAYED, "delivered", "relayed", "expanded")
MAX_RECIPIENTS = 200
MAX_DIAGNOSTIC = 1000
MAX_TEXT = 256 * 1024  # of a report's own words: more is no report a server writes

_STATUS_PARTS = {"message/delivery-status", "message/global-delivery-status"}
_COPY_PARTS = {"message/rfc822", "message/global"}
_HEADER_PARTS = {"text/rfc822-headers", "message/global-headers", "text/rfc822-header"}
_MACHINE_LOCALS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient of the reported mail and what became of it."""

    address: str  # Final-Recipient (else Original-Recipient), as written
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str = ""  # RFC 3463 code "5.1.1", or "" when the report gives none
    diagnostic: str = ""  # the remote server's words, without the "smtp;" type
    original: str = ""  # Original-Recipient, when the report names one
    remote_mta: str = ""

    @property
    def is_hard(self) -> bool:
        """A permanent failure: the address does not take mail (5.x.x and action failed)."""
        return self.action == FAILED and self.status.startswith("5.")

    @property
    def is_delay(self) -> bool:
        return self.action == DELAYED


@dataclass(frozen=True)
class DeliveryReport:
    recipients: tuple[RecipientStatus, ...]
    original_message_id: str | None = None  # normalised like ParsedMail.message_id
    original_subject: str = ""  # the returned copy's subject, when it came along
    reporting_mta: str = ""
    standard: bool = True  # an RFC 3464 delivery-status part, not text read by rule of thumb

    @property
    def kind(self) -> str:
        """What the report says overall: "bounce" when delivery failed for anyone, "delay" for
        a warning only, else "other" (a success report). Unreadable recipients: a bounce."""
        actions = {r.action for r in self.recipients}
        if FAILED in actions or not actions:
            return "bounce"
        return "delay" if DELAYED in actions else "other"


def read_report(raw: bytes) -> DeliveryReport | None:
    """The delivery report in `raw`, or None when it is none (never raises)."""
    try:
        return _read(bytes(raw or b""))
    except Exception:  # noqa: BLE001 - a hostile or broken message is simply not a report
        return None


def might_be_report(mail: ParsedMail) -> bool:
    """Whether read_report is worth reading the raw message for: the parse found a report, or
    a part of one, or the mail comes from a machine sender (a cheap test on parsed headers)."""
    if mail.is_bounce or any(a.content_type in _STATUS_PARTS for a in mail.attachments):
        return True
    if (mail.header("Return-Path") or "").replace(" ", "") == "<>":
        return True
    if mail.header("X-Failed-Recipients"):
        return True
    if mail.from_ is None:
        return (mail.header("From") or "<>").replace(" ", "").endswith("<>")
    return mail.from_[1].rsplit("@", 1)[0].lower() in _MACHINE_LOCALS


# --- reading ---------------------------------------------------------------------------------


def _read(raw: bytes) -> DeliveryReport | None:
    head = read_headers(header_block(raw))
    content_type = (head.first("Content-Type") or "").lower()
    if "multipart/report" in content_type and "disposition-notification" in content_type:
        return None  # a read receipt (RFC 8098), not about delivery
    parts, _ = mime.read_parts(raw, [])
    status_parts = [p for p in parts if p.content_type in _STATUS_PARTS]
    standard = bool(status_parts) or (
        "multipart/report" in content_type and "delivery-status" in content_type
    )
    texts = [_text(p) for p in parts if p.content_type == "text/plain" and not _is_copy(p)]
    before, after = _split_at_copy("\n\n".join(texts)[: 4 * MAX_TEXT])
    before = before[:MAX_TEXT]
    copy = _returned_copy(parts, after)
    if not standard and not _looks_like_nonstandard(head, before):
        return None
    recipients: list[RecipientStatus] = []
    reporting = ""
    for part in status_parts:
        found, mta = _status_blocks(_text(part))
        recipients += found
        reporting = reporting or mta
    if not recipients:
        found, mta = _status_blocks(before)  # the fields written into the text
        recipients += found
        reporting = reporting or mta
    if not recipients:
        recipients = _from_text(head, before, copy)
    message_id = _original_id(copy, before, head)
    if not standard and not recipients and not message_id:
        return None
    delayed = _says_delayed(head, before)
    recipients = recipients[:MAX_RECIPIENTS]
    recipients = [_completed(r, delayed, before, len(recipients)) for r in recipients]
    return DeliveryReport(
        recipients=tuple(_unique(recipients)[:MAX_RECIPIENTS]),
        original_message_id=message_id,
        original_subject=_subject(copy),
        reporting_mta=reporting,
        standard=standard,
    )


def _text(part: mime.Part) -> str:
    decoded, _note = charsets.decode(part.payload, part.charset or "utf-8")
    return clean(decoded).replace("\r\n", "\n").replace("\r", "\n")


def _is_copy(part: mime.Part) -> bool:
    return part.disposition == "attachment" or bool(part.filename)


def _field(head: Head, name: str) -> str:
    return clean(charsets.decode_words(head.first(name) or "")).strip()


# --- RFC 3464 fields -------------------------------------------------------------------------

_BLANK = re.compile(r"\n[ \t]*\n")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY_CODE = re.compile(r"(?<![\d.])([245])\d\d(?![\d.])")


def _status_blocks(text: str) -> tuple[list[RecipientStatus], str]:
    """Recipient blocks of a delivery-status body (or of text written like one)."""
    recipients = []
    reporting = ""
    for block in _BLANK.split(text.strip()):
        head = read_headers(block.encode("utf-8", "replace"))
        reporting = reporting or _typed(_field(head, "Reporting-MTA"))
        final = _address(_field(head, "Final-Recipient"))
        original = _address(_field(head, "Original-Recipient"))
        if not (final or original):
            continue
        action = _field(head, "Action").split()[:1]
        recipients.append(
            RecipientStatus(
                address=final or original,
                action=action[0].lower() if action else "",
                status=_code(_field(head, "Status")),
                diagnostic=_typed(_field(head, "Diagnostic-Code"))[:MAX_DIAGNOSTIC],
                original=original if original and original != final else "",
                remote_mta=_typed(_field(head, "Remote-MTA")),
            )
        )
        if len(recipients) >= MAX_RECIPIENTS:
            break
    return recipients, reporting


def _typed(value: str) -> str:
    """A typed field ("rfc822; a@b", "smtp; 550 ...", "dns; mx.example") without its type."""
    kind, semi, rest = value.partition(";")
    if semi and re.fullmatch(r"\s*[A-Za-z0-9-]{1,20}\s*", kind):
        return " ".join(rest.split())
    return " ".join(value.split())


def _address(value: str) -> str:
    value = _typed(value)
    if not value:
        return ""
    found = normalise_address(value.split()[0])
    if found is None:
        pairs = parse_address_list(value)
        found = pairs[0][1] if pairs else None
    return found or ""


def _code(value: str) -> str:
    m = _STATUS.search(value or "")
    return ".".join(m.groups()) if m else ""


def _code_in(text: str) -> str:
    """The status a server's words give: an RFC 3463 code, else a reply code's class."""
    code = _code(text)
    if code:
        return code
    m = _REPLY_CODE.search(text or "")
    return f"{m.group(1)}.0.0" if m else ""


def _completed(r: RecipientStatus, delayed: bool, text: str, count: int) -> RecipientStatus:
    """Fill in what the report left out: the status from the diagnostic (or, for a report
    about one recipient, from its text), the action from the status and the wording."""
    status = r.status or _code_in(r.diagnostic) or (_code(text) if count == 1 else "")
    action = r.action if r.action in ACTIONS else ""
    if not action:
        if status.startswith("2."):
            action = "delivered"
        elif status.startswith("5."):
            action = FAILED
        else:
            action = DELAYED if delayed else FAILED
    return RecipientStatus(r.address, action, status, r.diagnostic, r.original, r.remote_mta)


def _unique(recipients: list[RecipientStatus]) -> list[RecipientStatus]:
    seen, out = set(), []
    for r in recipients:
        key = (r.address.lower(), r.action, r.status)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


# --- the returned message --------------------------------------------------------------------

_COPY_MARKERS = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*)?(?:"
    r"below this line is a copy of the message"
    r"|this is a copy of the message"
    r"|the header of the original message is following"
    r"|original message follows"
    r"|-*[ \t]*original message[ \t]*-*"
    r"|the (?:text|body|headers?) of (?:the|your) (?:original )?message"
    r"|returned message"
    r"|undelivered message headers?:?"
    r")\b.*$",
    re.IGNORECASE | re.MULTILINE,
)
_MESSAGE_ID_LINE = re.compile(
    r"^[ \t]*message-id[ \t]*:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE
)


def _split_at_copy(text: str) -> tuple[str, str]:
    """The report's own words, and the copy of the failed mail quoted below them (if any)."""
    m = _COPY_MARKERS.search(text)
    return (text[: m.start()], text[m.end() :].lstrip("\n")) if m else (text, "")


def _returned_copy(parts: list[mime.Part], inline_copy: str) -> Head | None:
    """The headers of the failed mail: an attached message, attached headers, or a copy in the
    text below the report's words."""
    for kinds in (_COPY_PARTS, _HEADER_PARTS):
        for part in parts:
            if part.content_type in kinds and part.payload.strip():
                head = read_headers(header_block(part.payload.lstrip(b"\r\n")))
                if head.first("Message-ID") or head.first("Subject") or head.first("To"):
                    return head
    if inline_copy.strip():
        block = header_block(inline_copy.strip("\n").encode("utf-8", "replace"))
        head = read_headers(block)
        if head.first("Message-ID") or head.first("To"):
            return head
    return None


def _original_id(copy: Head | None, text: str, head: Head) -> str | None:
    """The failed mail's Message-ID: from its copy, from a header line quoted in the report's
    text, else from the report's own In-Reply-To (some providers set it)."""
    candidates = [copy.first("Message-ID") if copy else None]
    found = _MESSAGE_ID_LINE.search(text)
    candidates.append(found.group(1) if found else None)
    candidates.append(head.first("In-Reply-To"))
    own = normalise_message_id(head.first("Message-ID"))
    for value in candidates:
        message_id = normalise_message_id(value)
        if message_id and message_id != own:
            return clean(message_id)[:998]
    return None


def _subject(copy: Head | None) -> str:
    if copy is None:
        return ""
    return " ".join(clean(charsets.decode_words(copy.first("Subject") or "")).split())[:998]


# --- plain-text bounces ----------------------------------------------------------------------

_FAILURE_WORDS = re.compile(
    r"undeliver|undelivered|not (?:yet )?been delivered|could ?n[o']t be delivered"
    r"|was not delivered|wasn't able to deliver|unable to deliver|delivery (?:has )?failed"
    r"|delivery (?:status )?notification|delivery failure|failure notice|returned mail"
    r"|mail delivery (?:failed|system|subsystem)|non-?delivery|permanent error"
    r"|delivery (?:is )?delayed|message delayed|delayed \d+ (?:hours|minutes)"
    r"|following address(?:\(es\)|es)? failed",
    re.IGNORECASE,
)
_DELAY_WORDS = re.compile(
    r"\(delay\)|delivery (?:is )?delayed|message delayed|delayed \d+ (?:hours|minutes)"
    r"|has not yet been delivered|not been delivered yet|will (?:continue|keep) trying"
    r"|will retry|still trying|no action is required on your part"
    r"|could not send message for past",
    re.IGNORECASE,
)
_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:[ \t]*(.*)$", re.MULTILINE)
_EXIM_LIST = re.compile(
    r"(?:following address(?:\(es\)|es)? failed"
    r"|address(?:\(es\)|es)? to which the message has not yet been delivered (?:is|are))"
    r"[^\n]*\n",
    re.IGNORECASE,
)
_INDENTED_ADDRESS = re.compile(r"^([ \t]{1,8})<?([^<>\s@]+@[^<>\s]+?)>?[ \t]*:?[ \t]*$")
_ANY_ADDRESS = re.compile(r"[^<>\s@\"'(),;:\[\]]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _machine_sender(head: Head) -> bool:
    if (head.first("Return-Path") or "").replace(" ", "") == "<>":
        return True
    raw_from = head.first("From") or ""
    pairs = parse_address_list(raw_from)
    if not pairs:
        return raw_from.replace(" ", "").endswith("<>") or not raw_from.strip()
    local = pairs[0][1].rsplit("@", 1)[0].lower()
    return local in _MACHINE_LOCALS


def _looks_like_nonstandard(head: Head, text: str) -> bool:
    """A plain-text bounce: from a machine sender, and about delivery."""
    if not _machine_sender(head):
        return False
    if head.first("X-Failed-Recipients"):
        return True
    return bool(_FAILURE_WORDS.search(_field(head, "Subject")) or _FAILURE_WORDS.search(text))


def _says_delayed(head: Head, text: str) -> bool:
    return bool(_DELAY_WORDS.search(_field(head, "Subject")) or _DELAY_WORDS.search(text))


def _from_text(head: Head, text: str, copy: Head | None) -> list[RecipientStatus]:
    """Recipients of a plain-text bounce: qmail paragraphs, Exim's indented list, the
    X-Failed-Recipients header, else the returned mail's recipients the text names."""
    found = _qmail(text) or _exim(text)
    named = {r.address.lower() for r in found}
    for _name, addr in parse_address_list(head.joined("X-Failed-Recipients"))[:MAX_RECIPIENTS]:
        if addr.lower() not in named:
            named.add(addr.lower())
            found.append(RecipientStatus(addr, "", diagnostic=_diagnostic_near(text, addr)))
    if found or copy is None:
        return found
    sent_to = {
        addr.lower(): addr
        for name in ("To", "Cc", "Bcc")
        for _n, addr in parse_address_list(copy.joined(name))
    }
    mentioned = dict.fromkeys(a.lower() for a in _ANY_ADDRESS.findall(text))
    named_and_sent = [a for a in mentioned if a in sent_to][:MAX_RECIPIENTS]
    return [
        RecipientStatus(sent_to[a], "", diagnostic=_diagnostic_near(text, a))
        for a in named_and_sent
    ]


def _qmail(text: str) -> list[RecipientStatus]:
    """qmail: "<address>:" then the server's words, up to the next blank line."""
    out = []
    for m in _QMAIL_RECIPIENT.finditer(text):
        addr = normalise_address(m.group(1))
        if not addr:
            continue
        if len(out) >= MAX_RECIPIENTS:
            break
        paragraph = text[m.end() : m.end() + 2 * MAX_DIAGNOSTIC]
        end = _BLANK.search(paragraph)
        words = (m.group(2) + " " + paragraph[: end.start() if end else len(paragraph)]).strip()
        out.append(RecipientStatus(addr, "", diagnostic=" ".join(words.split())[:MAX_DIAGNOSTIC]))
    return out


def _exim(text: str) -> list[RecipientStatus]:
    """Exim: after "The following address(es) failed:", each address indented on its own line
    with the server's words indented deeper below it."""
    listed = _EXIM_LIST.search(text)
    if not listed:
        return []
    out: list[RecipientStatus] = []
    current: tuple[str, int, list[str]] | None = None
    for line in text[listed.end() :].split("\n"):
        if len(out) >= MAX_RECIPIENTS:
            break
        m = _INDENTED_ADDRESS.match(line)
        indent = len(line) - len(line.lstrip(" \t"))
        if m and (current is None or indent <= current[1]):
            if current:
                out.append(_exim_recipient(current))
            current = (m.group(2), indent, [])
        elif current and line.strip() and indent > current[1]:
            current[2].append(line.strip())
        elif current and not line.strip():
            continue
        elif line.strip():
            break  # the prose after the list
    if current:
        out.append(_exim_recipient(current))
    return [r for r in out if r.address]


def _exim_recipient(entry: tuple[str, int, list[str]]) -> RecipientStatus:
    addr, _indent, words = entry
    return RecipientStatus(
        normalise_address(addr) or "", "", diagnostic=" ".join(" ".join(words).split())[:1000]
    )


def _diagnostic_near(text: str, address: str) -> str:
    """The line naming an address and the one after it: a server's answer is usually there."""
    lower = text.lower()
    at = lower.find(address.lower())
    if at < 0:
        return ""
    start = lower.rfind("\n", 0, at) + 1
    end = lower.find("\n", at)
    end = len(text) if end < 0 else lower.find("\n", end + 1)
    words = text[start : end if end >= 0 else len(text)]
    return " ".join(words.split())[:MAX_DIAGNOSTIC] if _code_in(words) else ""
