"""A header section as (name, value) pairs in order: our own split, cheaper than email's.

Values stay undecoded (RFC 2047 words intact), so address lists can be split before display names
are decoded. Raw 8-bit values are read as UTF-8 (RFC 6532) first, then in the message's charset.
"""

from __future__ import annotations

import re

from crm.mail import charsets

MAX_HEADERS = 1000
MAX_HEADER_VALUE = 65536
_HEADER_LINE = re.compile(rb"([!-9;-~]+)[ \t]*:[ \t]*(.*)", re.DOTALL)
_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:+-]+)""", re.IGNORECASE)


class Head:
    """The header section: raw (undecoded) values in order, plus notes about reading it."""

    def __init__(self, fields: list[tuple[str, str]], notes: list[str]):
        self.fields = fields
        self.notes = notes
        self._by_name: dict[str, list[str]] = {}
        for name, value in fields:
            self._by_name.setdefault(name.lower(), []).append(value)

    def first(self, name: str) -> str | None:
        values = self._by_name.get(name.lower())
        return values[0] if values else None

    def joined(self, name: str) -> str:
        return ", ".join(self._by_name.get(name.lower(), ()))


def read_headers(block: bytes) -> Head:
    """Unfold (RFC 5322 2.2.3) and split a header block; 8-bit values read as UTF-8 first."""
    hint_match = _CHARSET_PARAM.search(block)
    hint = hint_match.group(1).decode("ascii") if hint_match else None
    fields: list[tuple[str, str]] = []
    notes: list[str] = []
    stray = 0
    for line in _unfolded(block):
        m = _HEADER_LINE.match(line)
        if not m:
            stray += not line.startswith(b"From ")  # an mbox separator is not a defect
            continue
        value = m.group(2)
        text = value.decode("ascii") if value.isascii() else charsets.header_text(value, hint)
        if len(text) > MAX_HEADER_VALUE:
            notes.append(f"The {clean(m.group(1).decode())[:60]} header was cut to 64 KB")
            text = text[:MAX_HEADER_VALUE]
        fields.append((m.group(1).decode("ascii"), clean(text.rstrip())))
    if len(fields) > MAX_HEADERS:
        notes.append(f"Only the first {MAX_HEADERS} of {len(fields)} headers were kept")
        fields = fields[:MAX_HEADERS]
    if stray:
        notes.append(f"{stray} line(s) in the header section were not headers")
    if not fields:
        notes.append("The message has no readable headers")
    return Head(fields, notes)


def _unfolded(block: bytes) -> list[bytes]:
    lines: list[bytes] = []
    for line in block.splitlines():
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += line
        elif line.strip():
            lines.append(line)
    return lines


_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean(text: str) -> str:
    """Text PostgreSQL accepts: no NUL bytes, no lone surrogates (utf-7 can produce them)."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)
