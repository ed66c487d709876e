"""Reading a mail: who it is from and to, its body made safe, and how to serve its files.

No Flask here: the blueprint passes in what it knows of the request (our origin, URL makers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.orm import Session

from crm.mail import sanitize
from crm.mailbox import listing
from crm.models import Attachment, Email, TrustedImageSender, User

# Types an attachment may be served as; everything else is application/octet-stream, whatever
# the mail claimed. No HTML, no SVG, no XML: those run script when opened from our origin.
SAFE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
}
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
ROLES = ("from", "to", "cc", "bcc", "reply_to")


@dataclass(frozen=True)
class Body:
    srcdoc: str | None  # a whole document for <iframe sandbox srcdoc>, when the mail has HTML
    remote_images: int  # remote images withheld


def people(email: Email) -> dict[str, list[tuple[str, str]]]:
    """(name, address) per role, in header order."""
    found: dict[str, list[tuple[str, str]]] = {role: [] for role in ROLES}
    for r in email.recipients:
        found.setdefault(r.role, []).append((r.name, r.address.address))
    return found


def trusts_sender(session: Session, user_id: int, email: Email) -> bool:
    """Whether the user chose "always show images" for this mail's sender."""
    if email.from_address_id is None:
        return False
    return session.get(TrustedImageSender, (user_id, email.from_address_id)) is not None


def trust_sender(session: Session, user_id: int, email: Email) -> None:
    if email.from_address_id is not None and not trusts_sender(session, user_id, email):
        session.add(TrustedImageSender(user_id=user_id, address_id=email.from_address_id))


def body(
    email: Email, origin: str, attachment_url: Callable[[int], str], allow_remote: bool
) -> Body:
    """The HTML body cleaned and wrapped in its own strict document, or None for text mail."""
    if not email.body_html:
        return Body(None, 0)
    by_cid = {
        a.content_id.strip("<>"): a.id
        for a in email.attachments
        if a.content_id and safe_type(a.content_type) in INLINE_IMAGE_TYPES
    }

    def cid_url(cid: str) -> str | None:
        return attachment_url(by_cid[cid]) if cid in by_cid else None

    cleaned = sanitize.clean(email.body_html, cid_url=cid_url, allow_remote=allow_remote)
    return Body(sanitize.document(cleaned.html, origin, allow_remote), cleaned.remote_images)


def safe_type(content_type: str | None) -> str:
    """Our own type for an attachment: an allow-listed one, else application/octet-stream."""
    base = (content_type or "").split(";")[0].strip().lower()
    return base if base in SAFE_TYPES else "application/octet-stream"


def content_disposition(filename: str, inline: bool = False) -> str:
    """RFC 6266: an ASCII fallback `filename` plus the exact name as RFC 5987 `filename*`."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", filename or "").strip() or "attachment"
    fallback = re.sub(r"[^A-Za-z0-9 !#$&+,.=@^_`{}~()\[\]-]", "_", name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def inline_image(session: Session, user_id: int, email_id: int, attachment_id: int):
    """The inline image a signed link names, when its user is active and may read the mail,
    and the attachment is one of that mail's images: else None. Returns (attachment, type)."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    email = listing.readable(session, user, email_id)
    att: Attachment | None = (
        next((a for a in email.attachments if a.id == attachment_id), None) if email else None
    )
    if att is None or safe_type(att.content_type) not in INLINE_IMAGE_TYPES:
        return None
    return att, safe_type(att.content_type)
