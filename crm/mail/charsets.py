"""Bytes -> text for mail: declared charset, its superset, detection, then UTF-8 with replacement.

Mail clients label text with the charset they meant rather than the one they used: Outlook writes
Windows-1252 and calls it ISO-8859-1, Japanese clients use Microsoft's extensions under the name
ISO-2022-JP, and many send UTF-8 labelled US-ASCII or nothing at all. So a declared charset is
read through its superset first, and a failed decode falls back to detection instead of losing
the text. RFC 2047 encoded words (headers) are decoded here too, with the same fallbacks.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from functools import lru_cache

import charset_normalizer

# Declared label -> codecs to try in order (supersets first). Labels are compared lower-cased.
_SUPERSETS: dict[str, tuple[str, ...]] = {
    "iso-2022-jp": ("iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_2"),
    "csiso2022jp": ("iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_2"),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "ms_kanji": ("cp932",),
    "euc-jp": ("euc_jis_2004", "cp932"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "euc-cn": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "euc-kr": ("cp949",),
    "korean": ("cp949",),
    "iso-8859-8-i": ("iso-8859-8",),
    "iso-8859-6-i": ("iso-8859-6",),
    "tis-620": ("cp874",),
    "windows-874": ("cp874",),
    "iso-8859-11": ("cp874",),
    "unicode-1-1-utf-8": ("utf-8",),
    "x-unicode20utf8": ("utf-8",),
    "utf8": ("utf-8",),
}
# Labels that promise plain Western text; the text is often UTF-8 in fact (tried first when the
# bytes are not ASCII, since Windows-1252 would accept UTF-8 bytes as mojibake).
_WESTERN = {
    "us-ascii",
    "ascii",
    "ansi_x3.4-1968",
    "iso-8859-1",
    "iso8859-1",
    "latin1",
    "latin-1",
    "l1",
    "iso_8859-1",
    "windows-1252",
    "cp1252",
    "x-ansi",
}
# Labels that say nothing about the text.
_MEANINGLESS = {
    "",
    "x-unknown",
    "unknown",
    "unknown-8bit",
    "x-user-defined",
    "default",
    "charset",
    "none",
    "us-ascii-ext",
    "8bit",
    "binary",
    "x-binary",
}

_NOT_ASCII = re.compile(rb"[\x80-\xff]")
# Codecs whose text is 7-bit: ASCII bytes alone do not make them ASCII.
_SEVEN_BIT = {
    "iso2022_jp_ext",
    "iso2022_jp",
    "iso2022_jp_1",
    "iso2022_jp_2",
    "iso2022_jp_3",
    "iso2022_jp_2004",
    "iso2022_kr",
    "utf-7",
    "hz",
}


@lru_cache(maxsize=256)
def codecs_for(label: str | None) -> tuple[str, ...]:
    """The Python codecs to try for a declared charset label; () when it names no text codec."""
    name = (label or "").strip().strip("\"'").strip().lower()
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
    if name in _MEANINGLESS:
        return ()
    if name in _WESTERN:
        return ("utf-8", "cp1252", "iso8859-1")
    found = [_text_codec(c) for c in _SUPERSETS.get(name, (name,))]
    return tuple(dict.fromkeys(c for c in found if c))


def _text_codec(name: str) -> str | None:
    # base64, zlib, rot13 ... are codecs too, but bytes-to-bytes: never decode mail with them.
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    return info.name if info._is_text_encoding else None


def decode(data: bytes, label: str | None) -> tuple[str, str | None]:
    """Text of data in its declared charset, with a note when a fallback was needed."""
    if not data:
        return "", None
    tried = codecs_for(label)
    if not _NOT_ASCII.search(data) and not (tried and tried[0] in _SEVEN_BIT):
        return data.decode("ascii", errors="replace"), None  # ASCII reads alike in all of them
    for codec in tried or ("utf-8",):
        try:
            return data.decode(codec), None
        except UnicodeDecodeError:
            continue
    declared = (label or "").strip()[:40]
    if tried and tried[0] != "utf-8":
        text = data.decode(tried[0], errors="replace")
        if _few_gaps(text):  # a few bad bytes in the right charset beat a wrong guess
            return text, f"some characters in charset '{declared}' could not be read"
    if _mostly_utf8(data):
        text = data.decode("utf-8", errors="replace")
        return text, "some characters could not be read as UTF-8"
    text, guessed = detect(data)
    what = f"charset '{declared}'" + ("" if tried else " (unknown)") if declared else "no charset"
    read_as = f"read as {guessed}" if guessed else "read as UTF-8 with gaps"
    if not tried and guessed:
        return text, None if not declared else f"text in {what} was {read_as}"
    return text, f"text in {what} did not decode; {read_as}"


def _few_gaps(text: str) -> bool:
    return text.count("\ufffd") <= max(2, len(text) // 200)


# Well-formed UTF-8 multi-byte sequences (RFC 3629): their presence makes UTF-8 likely.
_UTF8_SEQ = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _mostly_utf8(data: bytes) -> bool:
    sequences = len(_UTF8_SEQ.findall(data))
    stray = len(_NOT_ASCII.findall(_UTF8_SEQ.sub(b"", data)))
    return sequences > 0 and stray <= max(2, sequences // 20)


# The 8-bit charsets mail really uses, most common first: detection only chooses among these,
# and a tie goes to the earlier one (Windows-1252 over Windows-1250 for French, ...).
_MAIL_CHARSETS = (
    "cp1252",
    "cp1250",
    "cp1251",
    "koi8_r",
    "iso8859_2",
    "cp932",
    "euc_jp",
    "gb18030",
    "cp949",
    "cp950",
    "cp1253",
    "cp1254",
    "cp1257",
    "cp1255",
    "cp1256",
    "koi8_u",
    "cp874",
    "iso8859_15",
)


_CENTRAL_EUROPEAN = {"Czech", "Slovak", "Polish", "Croatian", "Slovene", "Hungarian", "Romanian"}
# Full-width kana: Japanese bytes read as Korean or Chinese never produce them.
_KANA = re.compile("[\u3040-\u30ff]")


def detect(data: bytes) -> tuple[str, str | None]:
    """Detected text and its encoding name; UTF-8 with replacement (and None) when detection fails."""
    japanese = _japanese(data)
    if japanese:
        return japanese
    try:
        matches = list(charset_normalizer.from_bytes(data[:65536], cp_isolation=_MAIL_CHARSETS))
    except Exception:  # noqa: BLE001 - detection is a best effort; never stop a parse
        matches = []
    if not matches:
        return data.decode("utf-8", errors="replace"), None
    least = min(m.chaos for m in matches)
    calm = [m for m in matches if m.chaos <= least + 0.01]
    top = max(m.coherence for m in calm)
    fit = [m for m in calm if m.coherence >= top - 0.01]
    order = list(_MAIL_CHARSETS)
    if any(m.language in _CENTRAL_EUROPEAN for m in fit):  # ties read as Windows-1250 there
        order.remove("cp1252")
        order.insert(order.index("iso8859_2") + 1, "cp1252")
    best = min(fit, key=lambda m: order.index(m.encoding) if m.encoding in order else 99)
    return data.decode(best.encoding, errors="replace"), best.encoding


def _japanese(data: bytes) -> tuple[str, str] | None:
    for codec in ("cp932", "euc_jis_2004"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        wide = sum(1 for c in text if ord(c) > 0x7F)
        if wide and len(_KANA.findall(text)) * 5 >= wide:
            return text, codec
    return None


def header_text(data: bytes, hint: str | None = None) -> str:
    """A raw header value as text: UTF-8 (RFC 6532), else the message's charset, else Windows-1252."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for codec in (*codecs_for(hint), "cp1252"):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


# RFC 2047 section 2: =?charset?encoding?encoded-text?=
_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_SPACE_ONLY = re.compile(r"[ \t\r\n]*")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words, keeping all text outside them exactly (spaces included).

    Whitespace between two adjacent encoded words is dropped (RFC 2047 section 6.2), and adjacent
    words in one charset are joined before decoding, so a character split across two words
    survives. Unknown charsets fall back like body text.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    pos = 0
    for m in _WORD.finditer(value):
        between = value[pos : m.start()]
        charset = m.group(1)
        adjacent = pending and _SPACE_ONLY.fullmatch(between)
        if not (adjacent and charset.lower() == pending_charset.lower()):
            if pending:
                out.append(decode(b"".join(pending), pending_charset)[0])
                pending = []
            if not adjacent:
                out.append(between)
        pending.append(_word_bytes(m.group(2), m.group(3)))
        pending_charset = charset
        pos = m.end()
    if pending:
        out.append(decode(b"".join(pending), pending_charset)[0])
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, text: str) -> bytes:
    raw = text.encode("ascii", errors="replace")
    if encoding in "qQ":
        return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))
    raw = _NOT_BASE64.sub(b"", raw)
    if len(raw) % 4 == 1:  # a lone trailing sextet carries no whole byte
        raw = raw[:-1]
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return b""
