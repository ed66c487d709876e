"""Prefilled drafts: a new mail, a reply, a reply to all, a forward; the signature once.

The rules themselves (prefixes, who gets a reply, quoting, References) are pure and live in
crm.mail.replying; this module turns a stored mail into their input and their output into a
DraftInput for the compose form.
"""

from __future__ import annotations

from markupsafe import escape
from sqlalchemy.orm import Session

from crm.mail import replying, sanitize
from crm.mail.compose import Mailbox
from crm.models import Email, EmailAddress, User
from crm.outbound.drafts import DraftInput, keep_cid
from crm.outbound.senders import own_addresses, senders


def _format(boxes) -> str:
    return ", ".join(f'"{b.name}" <{b.address}>' if b.name else b.address for b in boxes)


def original_of(
    session: Session, user: User, email: Email, keep_images: bool = False
) -> replying.Original:
    """The stored mail as the input of the reply rules; `keep_images` keeps its cid: images
    (a forward carries their parts; a reply does not, so it quotes without them)."""

    def boxes(role: str) -> tuple[Mailbox, ...]:
        return tuple(Mailbox(r.name, r.address.address) for r in email.recipients if r.role == role)

    sender_row = session.get(EmailAddress, email.from_address_id) if email.from_address_id else None
    sender = Mailbox(email.from_name, sender_row.address if sender_row else "")
    mine = own_addresses(session, user)
    return replying.Original(
        message_id=f"<{email.message_id}>" if email.message_id else None,
        references=tuple(f"<{r}>" for r in email.references or ()),
        in_reply_to=f"<{email.in_reply_to}>" if email.in_reply_to else None,
        subject=email.subject or "",
        sender=sender,
        reply_to=boxes("reply_to"),
        to=boxes("to"),
        cc=boxes("cc"),
        date=email.date_sent,
        text=email.body_text or "",
        # cid: images stay as they are: a forward carries the inline parts they point at.
        html=sanitize.clean(email.body_html, cid_url=keep_cid if keep_images else _no_image).html
        if email.body_html
        else "",
        is_own=sender.address.lower() in mine,
    )


def _no_image(_content_id: str) -> None:
    return None


def signature_html(user: User) -> str:
    if not (user.signature or "").strip():
        return ""
    return "<p></p><p>-- <br>" + str(escape(user.signature)).replace("\n", "<br>") + "</p>"


def default_from(session: Session, user: User, prefer: str | None = None) -> str:
    """The From to preselect: the address the mail was sent to, else the first allowed."""
    options = senders(session, user)
    if prefer:
        for s in options:
            if s.address.lower() == prefer.lower():
                return s.address
    return options[0].address if options else ""


def new_mail(
    session: Session, user: User, to: str = "", parent=None, subject: str = ""
) -> DraftInput:
    return DraftInput(
        from_address=default_from(session, user),
        to=to,
        subject=subject,
        body=signature_html(user),
        parent_type=parent[0] if parent else None,
        parent_id=parent[1] if parent else None,
    )


def reply(
    session: Session, user: User, email: Email, reply_all: bool, when_text: str
) -> DraftInput:
    original = original_of(session, user, email)
    to, cc = replying.reply_recipients(original, own_addresses(session, user), reply_all)
    in_reply_to, references = replying.reply_references(original)
    addressed = [b.address for b in (*original.to, *original.cc)]
    mine = own_addresses(session, user)
    prefer = next((a for a in addressed if a.lower() in mine), None)
    return DraftInput(
        from_address=default_from(session, user, prefer),
        to=_format(to),
        cc=_format(cc),
        subject=replying.reply_subject(original.subject),
        body=signature_html(user) + replying.quote_html(original, when_text),
        parent_type=email.parent_type,
        parent_id=email.parent_id,
        in_reply_to=(in_reply_to or "").strip("<>") or None,
        references=[r.strip("<>") for r in references],
    )


def forward(session: Session, user: User, email: Email, when_text: str) -> DraftInput:
    original = original_of(session, user, email, keep_images=True)
    return DraftInput(
        from_address=default_from(session, user),
        subject=replying.forward_subject(original.subject),
        body=signature_html(user) + replying.forward_block_html(original, when_text),
        parent_type=email.parent_type,
        parent_id=email.parent_id,
        keep_attachment_ids=[a.id for a in email.attachments],
    )
