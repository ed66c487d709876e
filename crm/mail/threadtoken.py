"""Thread tokens: our outgoing Message-IDs name the record a conversation belongs to.

Format (RFC 5322 3.6.4 msg-id, a dot-atom left part): `<crm.{code}.{id}.{random}.{sig}@{domain}>`.
`sig` is an HMAC-SHA256 over code, id and random part, so a reply can only claim a parent that
we really wrote to; a forged or altered id is ignored. The random part keeps every Message-ID
unique. The key is derived from the app secret, under a purpose label so it is never the
secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TYPE_CODES = {
    "Account": "a",
    "Contact": "c",
    "Lead": "l",
    "Opportunity": "o",
    "Case": "s",
    "Task": "t",
}
_TYPES_BY_CODE = {code: name for name, code in TYPE_CODES.items()}
_SIG_HEX = 32  # 128 bits of the HMAC: plenty against forging, short enough for a header
_TOKEN_RE = re.compile(r"^crm\.([a-z])\.(\d{1,18})\.([0-9a-f]{16})\.([0-9a-f]{32})@", re.IGNORECASE)


def _signature(key: str, code: str, record_id: int, nonce: str) -> str:
    derived = hashlib.sha256(b"crm thread token v1\0" + key.encode()).digest()
    message = f"{code}.{record_id}.{nonce}".encode()
    return hmac.new(derived, message, hashlib.sha256).hexdigest()[:_SIG_HEX]


def make_message_id(key: str, parent_type: str, parent_id: int, domain: str) -> str:
    """A fresh Message-ID (with angle brackets) that carries the parent record, signed."""
    code = TYPE_CODES[parent_type]
    nonce = secrets.token_hex(8)
    sig = _signature(key, code, int(parent_id), nonce)
    return f"<crm.{code}.{int(parent_id)}.{nonce}.{sig}@{domain.strip().lower()}>"


def parse_token(key: str, message_id: str | None) -> tuple[str, int] | None:
    """(parent_type, parent_id) when the id is one of our tokens with a valid signature."""
    if not message_id or not key:
        return None
    match = _TOKEN_RE.match(message_id.strip().strip("<>").strip())
    if match is None:
        return None
    code, raw_id, nonce, sig = (g.lower() for g in match.groups())
    parent_type = _TYPES_BY_CODE.get(code)
    if parent_type is None:
        return None
    expected = _signature(key, code, int(raw_id), nonce)
    if not hmac.compare_digest(expected, sig):
        return None
    return parent_type, int(raw_id)
