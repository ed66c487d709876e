"""Opt-out and opt-in through signed links: unsubscribe, subscribe again, confirm an address.

A link carries a token `{kind}{address id}-{recipient id}-{signature}`: the kind ("u"
unsubscribe, "c" confirm), the address and the mass mail recipient it was made for (0 when
none), signed with an HMAC-SHA256 (128 bits of it) under a key derived from the app secret.
Ids alone cannot be guessed into a working link, and a link never expires: an unsubscribe
link in a mail from years ago must still work (RFC 8058 asks for a lasting URI).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import settings
from crm.db import utcnow
from crm.models import AddressConfirmation, EmailAddress, MassMailRecipient
from crm.records.linking import session_key

UNSUBSCRIBE = "u"
CONFIRM = "c"
_SIG_HEX = 32
_TOKEN_RE = re.compile(r"^([uc])(\d{1,18})-(\d{1,18})-([0-9a-f]{32})$")


@dataclass(frozen=True)
class Token:
    kind: str
    address_id: int
    recipient_id: int  # 0: not made for a mass mail recipient


def _signature(key: str, kind: str, address_id: int, recipient_id: int) -> str:
    derived = hashlib.sha256(b"crm opt-out token v1\0" + key.encode()).digest()
    message = f"{kind}.{address_id}.{recipient_id}".encode()
    return hmac.new(derived, message, hashlib.sha256).hexdigest()[:_SIG_HEX]


def make_token(key: str, kind: str, address_id: int, recipient_id: int = 0) -> str:
    if not key:
        raise ValueError("no app secret to sign links with")
    sig = _signature(key, kind, address_id, recipient_id)
    return f"{kind}{address_id}-{recipient_id}-{sig}"


def read_token(key: str, token: str, kind: str) -> Token | None:
    """The token's content when it is one of ours, of this kind, with a valid signature."""
    match = _TOKEN_RE.match(token or "")
    if match is None or not key or match.group(1) != kind:
        return None
    address_id, recipient_id = int(match.group(2)), int(match.group(3))
    expected = _signature(key, kind, address_id, recipient_id)
    if not hmac.compare_digest(expected, match.group(4)):
        return None
    return Token(kind, address_id, recipient_id)


def site_url(session: Session) -> str:
    """The configured public address without a trailing slash; "" when none is set."""
    return (settings.get(session, "site_url") or "").rstrip("/")


def unsubscribe_url(session: Session, address_id: int, recipient_id: int = 0) -> str:
    token = make_token(session_key(session), UNSUBSCRIBE, address_id, recipient_id)
    return f"{site_url(session)}/campaigns/unsubscribe/{token}"


def confirm_url(session: Session, address_id: int, recipient_id: int = 0) -> str:
    token = make_token(session_key(session), CONFIRM, address_id, recipient_id)
    return f"{site_url(session)}/campaigns/opt-in/{token}"


def address_of(session: Session, token: str, kind: str) -> tuple[Token, EmailAddress] | None:
    """The token and its address, or None for a forged, altered or stale link."""
    found = read_token(session_key(session), token, kind)
    if found is None:
        return None
    address = session.get(EmailAddress, found.address_id)
    return (found, address) if address is not None else None


def opt_out(session: Session, token: Token, address: EmailAddress) -> None:
    """Mark the address opted out, and the recipient row the link was made for (the caller
    commits). Doing it twice changes nothing; an earlier subscribing again is over."""
    address.opt_out()
    recipient = session.get(MassMailRecipient, token.recipient_id) if token.recipient_id else None
    if recipient is not None and recipient.address_id == address.id and not recipient.opted_out_at:
        recipient.opted_out_at = utcnow()


def subscribe_again(session: Session, address: EmailAddress) -> None:
    """Take the opt-out back and note when (the caller commits); a second click keeps the date."""
    address.subscribe_again()


def confirm(session: Session, token: Token, address: EmailAddress) -> None:
    """Record that the holder confirmed the address (opt-in); confirming again keeps the date."""
    if session.get(AddressConfirmation, address.id) is not None:
        return
    recipient = session.get(MassMailRecipient, token.recipient_id) if token.recipient_id else None
    mass_mail_id = recipient.mass_mail_id if recipient is not None else None
    session.add(AddressConfirmation(address_id=address.id, mass_mail_id=mass_mail_id))
    session.flush()


def is_confirmed(session: Session, address_id: int) -> bool:
    stmt = select(AddressConfirmation.address_id).where(
        AddressConfirmation.address_id == address_id
    )
    return session.scalar(stmt) is not None
