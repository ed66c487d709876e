"""Replying and forwarding: subjects, recipients, thread headers and quoted bodies (pure).

Subject prefixes are the ones mail clients write in their users' languages, as listed in
Wikipedia's "List of email subject abbreviations" (Abbreviations in other languages), plus the
Chinese Outlook forms 答复 and 转发. Single letters from that list (Italian R and I, Hungarian
V) are left out: they too easily begin an ordinary subject. So are French REF (English "Ref:"
starts new subjects) and VS as a forward (Danish and Norwegian), which is Finnish for a reply.
Thread headers follow RFC 5322 3.6.4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from html import escape

from crm.mail.address import normalise_address
from crm.mail.compose import Mailbox, bracketed_id, html_to_text
from crm.mail.sanitize import text_to_html

REPLY_PREFIXES = (
    "Re",  # Latin "in re", RFC 5322 3.6.5; English, Spanish, French Canadian, Romanian ...
    "AW",  # German Antwort
    "SV",  # Danish, Norwegian, Swedish, Icelandic Svar
    "VS",  # Finnish Vastaus
    "Odp",  # Polish Odpowiedź, Czech Odpověď
    "Antw",  # Dutch Antwoord
    "Atb",  # Welsh Ateb, Latvian Atbilde
    "Ynt",  # Turkish Yanıt
    "Odg",  # Croatian, Serbian, Slovene Odgovor
    "Res",  # Portuguese Resposta
    "RIF",  # Italian Riferimento
    "Bls",  # Indonesian Balas
    "ΑΠ",  # Greek Απάντηση
    "ΣΧΕΤ",  # Greek Σχετικό
    "השב",  # Hebrew
    "תשובה",  # Hebrew
    "رد",  # Arabic
    "回复",  # Simplified Chinese
    "回覆",  # Traditional Chinese
    "答复",  # Simplified Chinese (Outlook)
)
FORWARD_PREFIXES = (
    "Fwd",  # English
    "Fw",  # English (Outlook)
    "WG",  # German Weitergeleitet
    "TR",  # French Transféré
    "RV",  # Spanish Reenviado
    "Doorst",  # Dutch Doorsturen
    "VL",  # Finnish Välitetty
    "VB",  # Swedish Vidarebefordrat
    "Enc",  # Portuguese Encaminhado
    "PD",  # Polish Przekazanie dalej
    "TOV",  # Hungarian Továbbítás
    "FS",  # Icelandic Framsent
    "İLT",  # Turkish İlet
    "ILT",  # the same, as ASCII
    "YML",  # Welsh Ymlaen
    "Trs",  # Indonesian Terusan
    "ΠΡΘ",  # Greek Προωθημένο
    "הועבר",  # Hebrew
    "转发",  # Simplified Chinese
    "轉寄",  # Traditional Chinese
)
REFERENCES_KEPT = 20  # besides the thread's first id


def _prefix_pattern(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    # "Re:", "RE :", "Re[2]:", "Re(2):", "Re^2:", and the full-width colon of CJK clients
    names = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"\s*(?:{names})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]", re.IGNORECASE)


_REPLY = _prefix_pattern(REPLY_PREFIXES)
_FORWARD = _prefix_pattern(FORWARD_PREFIXES)


def reply_subject(subject: str) -> str:
    """ "Re: " + subject, unless the subject already starts with a reply prefix."""
    subject = subject.strip()
    return subject if _REPLY.match(subject) else f"Re: {subject}"


def forward_subject(subject: str) -> str:
    """ "Fwd: " + subject, unless the subject already starts with a forward prefix."""
    subject = subject.strip()
    return subject if _FORWARD.match(subject) else f"Fwd: {subject}"


@dataclass(frozen=True)
class Original:
    """The message replied to or forwarded, as the caller read it."""

    message_id: str | None
    references: tuple[str, ...]
    in_reply_to: str | None
    subject: str
    sender: Mailbox
    reply_to: tuple[Mailbox, ...]
    to: tuple[Mailbox, ...]
    cc: tuple[Mailbox, ...]
    date: datetime | None
    text: str
    html: str  # already sanitised by the caller
    is_own: bool  # sent by the replying user


def reply_recipients(
    original: Original, own_addresses: set[str], reply_all: bool
) -> tuple[tuple[Mailbox, ...], tuple[Mailbox, ...]]:
    """(To, Cc) of a reply, the way mail clients answer.

    To is Reply-To when there is one, else the sender; answering one's own sent mail writes to
    its recipients again. Reply all copies the original To and Cc (on one's own mail, its Cc).
    Own addresses are dropped (from To too, unless nobody would be left), nobody is named
    twice, and the order is kept.
    """
    own = {_key(address) for address in own_addresses}
    if original.is_own:
        to, others = original.to, original.cc
    else:
        to, others = original.reply_to or (original.sender,), original.to + original.cc
    to = _unique(to, own) or _unique(to, set())
    cc = _unique(others, own | {_key(box.address) for box in to}) if reply_all else ()
    return to, cc


def _key(address: str) -> str:
    return (normalise_address(address) or address.strip()).lower()


def _unique(boxes: tuple[Mailbox, ...], excluded: set[str]) -> tuple[Mailbox, ...]:
    kept: dict[str, Mailbox] = {}
    for box in boxes:
        key = _key(box.address)
        if key and key not in excluded:
            kept.setdefault(key, box)
    return tuple(kept.values())


def reply_references(original: Original) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) for a reply, ids in angle brackets (RFC 5322 3.6.4).

    References are the original's References (or its In-Reply-To when it has none) and then
    its Message-ID, each once. A long chain keeps its first id and the last REFERENCES_KEPT,
    the trimming RFC 5322 suggests; ids that are not message ids are left out.
    """
    parent = bracketed_id(original.message_id)
    chain = original.references or ((original.in_reply_to,) if original.in_reply_to else ())
    ids = [i for i in (bracketed_id(ref) for ref in (*chain, parent)) if i]
    ids = list(dict.fromkeys(ids))
    if len(ids) > REFERENCES_KEPT + 1:
        ids = ids[:1] + ids[-REFERENCES_KEPT:]
    return parent, tuple(ids)


# --- quoting -------------------------------------------------------------------------------------


def quote_text(original: Original, when_text: str) -> str:
    """ "On <when>, <name> wrote:" and the original text with "> " before each line.

    Already quoted lines get one more ">" and empty lines a bare ">" (RFC 3676 4.5).
    """
    who = original.sender.name.strip() or original.sender.address
    intro = f"On {when_text}, {who} wrote:" if when_text else f"{who} wrote:"
    lines = _body_text(original).split("\n")
    return "\n".join([intro, *(_quote_line(line) for line in lines)]) if lines[0] else intro


def _quote_line(line: str) -> str:
    if not line:
        return ">"
    return ">" + line if line.startswith(">") else "> " + line


def _body_text(original: Original) -> str:
    text = original.text or html_to_text(original.html)
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


def quote_html(original: Original, when_text: str) -> str:
    """The intro as a paragraph and the original in <blockquote type="cite">; names and the
    date escaped, the original HTML as the caller sanitised it (or its text, escaped)."""
    who = _mailbox_html(original.sender)
    intro = f"On {escape(when_text)}, {who} wrote:" if when_text else f"{who} wrote:"
    return f'<p>{intro}</p><blockquote type="cite">{_body_html(original)}</blockquote>'


def _mailbox_html(box: Mailbox) -> str:
    name = box.name.strip()
    return f"{escape(name)} &lt;{escape(box.address)}&gt;" if name else escape(box.address)


def _body_html(original: Original) -> str:
    if original.html:
        return original.html
    text = original.text.replace("\r\n", "\n").replace("\r", "\n")
    return str(text_to_html(text)).replace("\n", "<br>\n")


# --- forwarding ----------------------------------------------------------------------------------

FORWARD_LINE = "---------- Forwarded message ---------"


def forward_block_text(original: Original, when_text: str) -> str:
    """The header block mail clients put above a forwarded message, then its text."""
    fields = [f"{label}: {value}" for label, value in _forward_fields(original, when_text)]
    return "\n".join([FORWARD_LINE, *fields]) + "\n\n" + _body_text(original)


def forward_block_html(original: Original, when_text: str) -> str:
    """forward_block_text as HTML: the fields escaped, then the original's (sanitised) HTML."""
    fields = [f"{label}: {escape(value)}" for label, value in _forward_fields(original, when_text)]
    return f"<div>{'<br>'.join([FORWARD_LINE, *fields])}</div><br>{_body_html(original)}"


def _forward_fields(original: Original, when_text: str) -> list[tuple[str, str]]:
    fields = [("From", _mailbox_text(original.sender))]
    if when_text:
        fields.append(("Date", when_text))
    fields.append(("Subject", original.subject))
    for label, boxes in (("To", original.to), ("Cc", original.cc)):
        if boxes:
            fields.append((label, ", ".join(_mailbox_text(box) for box in boxes)))
    return fields


def _mailbox_text(box: Mailbox) -> str:
    name = box.name.strip()
    return f"{name} <{box.address}>" if name else box.address
