"""Addresses: parse header values, normalise, compare.

RFC 5321 makes the local part case-sensitive in theory, but every mail system in use treats it
case-insensitively, so addresses compare by their lower-cased form while the original spelling
is kept for display. Display names are decoded per RFC 2047.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from crm.mail.charsets import decode_words

MAX_NAME = 320  # the width of display-name columns

_ADDR_RE = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+$")


def normalise_address(raw: str | None) -> str | None:
    """The address stripped of brackets and spaces, or None when it is not an address."""
    if not raw:
        return None
    addr = raw.strip().strip("<>").strip()
    if not _ADDR_RE.match(addr) or len(addr) > 320:
        return None
    local, _, domain = addr.rpartition("@")
    return f"{local}@{domain.lower()}"


def parse_address_list(value: str | None) -> list[tuple[str, str]]:
    """[(display name, address)] from a header value; entries without a usable address are dropped."""
    if not value:
        return []
    value = value.replace("\x00", "")
    pairs = _simple_list(value)
    if pairs is None:
        try:
            pairs = getaddresses([value])
        except Exception:  # noqa: BLE001 - a malformed header must never stop an import
            return []
    out = []
    for name, addr in pairs:
        normal = normalise_address(addr)
        if normal:
            out.append((display_name(name), normal))
    return out


# One mailbox in the shapes nearly all mail uses: `addr`, `Name <addr>`, `"Name" <addr>`.
_SIMPLE = re.compile(
    r'\s*(?:(?:"((?:[^"\\]|\\.)*)"|([^",;:<>()@\[\]\\]*?))\s*<([^<>\s",;:()]+)>'
    r'|([^<>\s",;:()]+@[^<>\s",;:()]+))\s*(?:,|$)'
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def _simple_list(value: str) -> list[tuple[str, str]] | None:
    """The list parsed by a regex when every entry is simple; None sends it to getaddresses."""
    pairs = []
    pos = 0
    while pos < len(value):
        m = _SIMPLE.match(value, pos)
        if not m or m.end() == pos:
            return None if value[pos:].strip(" \t,") else pairs
        quoted, plain, bracketed, bare = m.groups()
        name = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else (plain or "")
        pairs.append((name, bracketed or bare))
        pos = m.end()
    return pairs


def display_name(raw: str) -> str:
    """A display name decoded (RFC 2047), unquoted and cut to the column width."""
    name = " ".join(decode_words(raw).replace("\x00", "").split())
    if len(name) > 1 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return name[:MAX_NAME]


def split_name(display_name: str) -> tuple[str, str]:
    """First and last name from a display name ("Last, First" is understood)."""
    name = display_name.strip().strip('"').strip()
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    parts = name.split()
    if not parts:
        return "", ""
    if len(parts) == 1:
        return "", parts[0]
    return " ".join(parts[:-1]), parts[-1]
