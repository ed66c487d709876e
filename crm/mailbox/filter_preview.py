"""Preview and "apply to existing mail" of a filter: the mail it would have seen, matched.

What a filter looks at:
  - inbox filter: the user's mail that is not in Trash, not their own outgoing mail and not in a
    group folder (group folders are sorted by their members together, not by one user's filter);
  - account filter: the mail imported from that account;
  - global filter: all mail.
Applying an Ignore filter moves the matched mail to Trash (inbox filters: the user's copy;
account and global filters: every user's copy, since the mail would not have been imported;
account filters leave mail that also came in through another account, which it would have);
applying a Move filter files the mail in the filter's folder.

Header criteria narrow the candidates in SQL; the match itself is the importer's, in Python.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, selectinload

from crm.mail.filters import IGNORE, MOVE, CompiledFilter, MailView
from crm.mail.parse import ParsedMail
from crm.mailbox import folders
from crm.models import (
    Email,
    EmailAddress,
    EmailFilter,
    EmailLocation,
    EmailRecipient,
    EmailUserState,
    Folder,
    User,
)

CHUNK = 500


def _like(pattern: str) -> str | None:
    """A LIKE pattern for a prefilter; None when SQL case folding may differ from Python's."""
    pattern = pattern.strip()
    if not pattern.isascii():
        return None
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _address_like(pattern: str):
    return select(EmailAddress.id).where(EmailAddress.lower.like(pattern.lower(), escape="\\"))


def _prefilter(stmt, row: EmailFilter):
    """Narrow candidates in SQL on header criteria; matching itself stays in Python."""
    if like := _like(row.from_pattern or ""):
        stmt = stmt.where(
            or_(
                Email.from_address_id.in_(_address_like(like)),
                Email.from_name.ilike(like, escape="\\"),
            )
        )
    if like := _like(row.to_pattern or ""):
        roles = ("to", "cc") if row.include_cc else ("to",)
        stmt = stmt.where(
            exists().where(
                EmailRecipient.email_id == Email.id,
                EmailRecipient.role.in_(roles),
                or_(
                    EmailRecipient.address_id.in_(_address_like(like)),
                    EmailRecipient.name.ilike(like, escape="\\"),
                ),
            )
        )
    if like := _like(row.subject_pattern or ""):
        stmt = stmt.where(Email.subject.ilike(like, escape="\\"))
    return stmt


def _candidates(session: Session, row: EmailFilter):
    """Ids of the mail the filter looks at, newest first."""
    if row.scope == "inbox":
        group = select(Folder.id).where(Folder.is_group.is_(True))
        stmt = (
            select(Email.id)
            .join(EmailUserState, EmailUserState.email_id == Email.id)
            .where(
                EmailUserState.user_id == row.user_id,
                EmailUserState.in_trash.is_(False),
                EmailUserState.is_outgoing.is_(False),
                or_(EmailUserState.folder_id.is_(None), EmailUserState.folder_id.not_in(group)),
            )
        )
    elif row.scope == "account":
        located = select(EmailLocation.email_id).where(
            EmailLocation.mail_account_id == row.mail_account_id
        )
        stmt = select(Email.id).where(Email.id.in_(located))
    else:
        stmt = select(Email.id)
    stmt = _prefilter(stmt, row).order_by(Email.date_sent.desc(), Email.id.desc())
    return session.scalars(stmt).all()


def as_parsed(email: Email) -> ParsedMail:
    """A stored mail in the shape filters match against."""

    def pairs(role):
        return tuple((r.name or "", r.address.address) for r in email.recipients if r.role == role)

    senders = pairs("from")
    return ParsedMail(
        identity=email.identity,
        subject=email.subject or "",
        from_=(email.from_name or senders[0][0], senders[0][1]) if senders else None,
        to=pairs("to"),
        cc=pairs("cc"),
        text=email.body_text or "",
        html=email.body_html or "",
    )


def matching_mail(session: Session, row: EmailFilter) -> Iterator[Email]:
    """The existing mail the filter matches, newest first, loaded in chunks."""
    compiled = CompiledFilter.of(row)
    if compiled.is_empty:
        return
    ids = _candidates(session, row)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        stmt = (
            select(Email)
            .where(Email.id.in_(chunk))
            .options(selectinload(Email.recipients).selectinload(EmailRecipient.address))
        )
        loaded = {e.id: e for e in session.scalars(stmt)}
        for email_id in chunk:
            if compiled.matches(MailView(as_parsed(loaded[email_id]))):
                yield loaded[email_id]


def preview(session: Session, row: EmailFilter, limit: int = 50) -> tuple[list[Email], bool]:
    """Up to `limit` matched mails, and whether there are more."""
    found = []
    for email in matching_mail(session, row):
        if len(found) == limit:
            return found, True
        found.append(email)
    return found, False


def apply_to_existing(session: Session, user: User, row: EmailFilter) -> int:
    """Do to existing mail what the filter does at import; returns how many mails matched."""
    ids = [email.id for email in matching_mail(session, row)]
    for start in range(0, len(ids), CHUNK):
        _apply(session, user, row, ids[start : start + CHUNK])
    session.flush()
    return len(ids)


def _apply(session: Session, user: User, row: EmailFilter, ids: list[int]) -> None:
    if row.scope == "inbox":
        _apply_inbox(session, user, row, ids)
    elif row.action == MOVE and row.folder_id:
        folders.file_in_group_folder(session, session.get(Folder, row.folder_id), ids)
    else:
        if row.scope == "account":
            ids = _only_from_account(session, row.mail_account_id, ids)
        session.execute(
            update(EmailUserState).where(EmailUserState.email_id.in_(ids)).values(in_trash=True)
        )


def _only_from_account(session: Session, account_id: int, ids: list[int]) -> list[int]:
    """Mail that also came in through another account would still have been imported: an
    account filter leaves it (and so other users' copies of it) alone."""
    elsewhere = select(EmailLocation.email_id).where(
        EmailLocation.email_id.in_(ids), EmailLocation.mail_account_id != account_id
    )
    return sorted(set(ids) - set(session.scalars(elsewhere)))


def _apply_inbox(session: Session, user: User, row: EmailFilter, ids: list[int]) -> None:
    if row.action == IGNORE:
        folders.set_trash(session, user, ids, True)
    elif row.folder_id:
        folders.move_mail(session, user, ids, session.get(Folder, row.folder_id))
    if row.mark_read:
        session.execute(
            update(EmailUserState)
            .where(EmailUserState.user_id == user.id, EmailUserState.email_id.in_(ids))
            .values(is_read=True)
        )
