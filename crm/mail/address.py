"""Addresses: parse header values, normalise, compare.

RFC 5321 makes the local part case-sensitive in theory, but every mail system in use treats it
case-insensitively, so addresses compare by their lower-cased form while the original spelling
is kept for display. Display names are decoded per RFC 2047.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import getaddresses

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


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; keep the raw value when they are broken."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - a broken header must never stop an import
        return value


def parse_address_list(value: str | None) -> list[tuple[str, str]]:
    """[(display name, address)] from a header value; entries without a usable address are dropped."""
    if not value:
        return []
    out = []
    for name, addr in getaddresses([value]):
        normal = normalise_address(addr)
        if normal:
            out.append((decode_words(name).strip(), normal))
    return out


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
