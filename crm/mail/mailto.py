"""mailto: links (RFC 6068): addresses in the path, cc, bcc, subject and body as hfields.

Section 2 decides what is percent-encoded: everything outside the URI's own characters,
non-ASCII as UTF-8 octets, "%" itself, the gen-delims but "@" (in an address only its last "@"
stays: `"not@me"@example.org` becomes `%22not%40me%22@example.org`), and "&", ";" and "=";
in an address "," too, which separates addresses. Values keep the qchar delimiters. Line breaks
in a body are CRLF, %0D%0A (section 5). "+" is always encoded: form decoding reads it as a
space.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

# Safe as they are: RFC 3986 unreserved (always kept by quote) and these sub-delims.
_ADDRESS_SAFE = "!$'()*"  # local part and domain: no "," (list separator), ";", "=", "&", "+"
_VALUE_SAFE = "!$'()*,;:@"  # RFC 6068 qchar: unreserved / pct-encoded / some-delims, minus "+"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def mailto_url(
    to: Sequence[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    subject: str = "",
    body: str = "",
) -> str:
    """A mailto: URL; hfields cc, bcc, subject and body in that order, only when not empty."""
    fields = [
        (name, value)
        for name, value in (
            ("cc", _addresses(cc)),
            ("bcc", _addresses(bcc)),
            ("subject", _value(subject)),
            ("body", _value(_LINE_BREAK.sub("\r\n", body))),
        )
        if value
    ]
    query = "&".join(f"{name}={value}" for name, value in fields)
    return f"mailto:{_addresses(to)}" + (f"?{query}" if query else "")


def _addresses(addresses: Sequence[str]) -> str:
    return ",".join(_address(a.strip()) for a in addresses if a and a.strip())


def _address(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at:
        return quote(address, safe=_ADDRESS_SAFE)
    return f"{quote(local, safe=_ADDRESS_SAFE)}@{quote(domain, safe=_ADDRESS_SAFE)}"


def _value(text: str) -> str:
    return quote(text, safe=_VALUE_SAFE)
