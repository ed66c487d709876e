"""Bulk actions on a user's mail: read, important, move, trash, and delete for everyone.

Mail deleted for everyone stays deleted: its identity is kept for each account that had it, and
their imports skip it (crm.inbound.importing), also after a reset of the folder.

Flag and folder actions touch only the acting user's state rows, so two users sharing a mail
keep their own read, trash and folder state. No Flask here; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from crm import settings
from crm.db import utcnow
from crm.mailbox import folders
from crm.models import (
    Attachment,
    DeletedMessage,
    Email,
    EmailLocation,
    EmailUserState,
    OutboxEntry,
    User,
)
from crm.storage import BlobStore

S = EmailUserState

# action name -> the state columns it sets
FLAGS = {
    "read": {"is_read": True},
    "unread": {"is_read": False},
    "important": {"is_important": True},
    "unimportant": {"is_important": False},
}
ACTIONS = (*FLAGS, "trash", "restore", "move", "delete")


class ActionError(ValueError):
    """An action the user may not take, or one that makes no sense (unknown folder)."""


@dataclass(frozen=True)
class Placement:
    """Where one of a user's mails was: its folder (None = Inbox) and whether it was in Trash."""

    email_id: int
    folder_id: int | None
    in_trash: bool


@dataclass(frozen=True)
class Done:
    count: int
    blobs: frozenset[str] = frozenset()  # hashes to check with drop_unreferenced_blobs
    before: tuple[Placement, ...] = ()  # a move or trash: where the mail was, for undo


def apply(
    session: Session, user: User, action: str, email_ids: list[int], target: str | None = None
) -> Done:
    """Run a bulk action on the user's mail; answers how many mail it touched."""
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}")
    if action == "delete":
        removed = delete_permanently(session, user, email_ids)
        return Done(len(removed), frozenset().union(*removed.values()))
    if not email_ids:
        return Done(0)
    if action in FLAGS:
        return Done(_set(session, user.id, email_ids, FLAGS[action]))
    before = tuple(placements(session, user.id, email_ids))
    if action in ("trash", "restore"):
        # crm.mailbox.folders keeps a group folder's trash state shared between its members.
        return Done(folders.set_trash(session, user, email_ids, action == "trash"), before=before)
    return Done(move(session, user, email_ids, target or ""), before=before)


def placements(session: Session, user_id: int, email_ids: list[int]) -> list[Placement]:
    """Where the user's copies of these mails are now (mail they do not have is left out)."""
    stmt = select(S.email_id, S.folder_id, S.in_trash).where(
        S.user_id == user_id, S.email_id.in_(email_ids)
    )
    return [Placement(*row) for row in session.execute(stmt)]


def restore(session: Session, user: User, before: list[Placement]) -> int:
    """Undo a move or trash: put the user's mail back in its folder and Trash state.

    Each step is an ordinary move or trash, with their checks: a folder the user may no longer
    file in (deleted, or a team they left) keeps the mail where it is now.
    """
    now = {p.email_id: p for p in placements(session, user.id, [p.email_id for p in before])}
    wanted = [p for p in before if p.email_id in now]
    by_folder: dict[int | None, list[int]] = {}
    for p in wanted:
        if now[p.email_id].folder_id != p.folder_id:
            by_folder.setdefault(p.folder_id, []).append(p.email_id)
    for folder_id, ids in by_folder.items():
        target = folders.target_folder(session, user, folder_id) if folder_id else None
        if folder_id is None or target is not None:
            folders.move_mail(session, user, ids, target)  # this also takes them out of Trash
    now = {p.email_id: p for p in placements(session, user.id, [p.email_id for p in wanted])}
    for in_trash in (True, False):
        ids = [p.email_id for p in wanted if p.in_trash == in_trash != now[p.email_id].in_trash]
        if ids:
            folders.set_trash(session, user, ids, in_trash)
    return len(wanted)


def _set(session: Session, user_id: int, email_ids: list[int], values: dict) -> int:
    stmt = (
        update(S)
        .where(S.user_id == user_id, S.email_id.in_(email_ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(stmt)
    session.expire_all()
    return result.rowcount


def move(session: Session, user: User, email_ids: list[int], target: str) -> int:
    """Move to Inbox, Trash or a folder the user may file in; other targets are refused."""
    if target == "inbox":
        return folders.move_mail(session, user, email_ids, None)
    if target == "trash":
        return folders.set_trash(session, user, email_ids, True)
    folder = folders.target_folder(session, user, int(target)) if target.isdigit() else None
    if folder is None:
        raise ActionError("no such folder")
    return folders.move_mail(session, user, email_ids, folder)


def may_delete(session: Session, user: User) -> bool:
    """Admins always; regular users only when the admin allows it (the advice is to use Trash)."""
    return user.is_admin or bool(settings.get(session, "users_may_delete_mail"))


def delete_permanently(session: Session, user: User, email_ids: list[int]) -> dict[int, set[str]]:
    """Remove mail for everyone; answers {email id: blob hashes} to check after the commit."""
    if not may_delete(session, user):
        raise ActionError("deleting mail is not allowed")
    if not email_ids:
        return {}
    stmt = select(Email.id, Email.raw_sha256).where(Email.id.in_(email_ids))
    if not user.is_admin:
        stmt = stmt.where(Email.id.in_(select(S.email_id).where(S.user_id == user.id)))
    blobs = {email_id: {raw} if raw else set() for email_id, raw in session.execute(stmt)}
    if not blobs:
        return {}
    attachments = select(Attachment.email_id, Attachment.sha256).where(
        Attachment.email_id.in_(blobs)
    )
    for email_id, sha in session.execute(attachments):
        blobs[email_id].add(sha)
    remember_deleted(session, list(blobs))
    # States, recipients, locations and attachment rows go by ON DELETE CASCADE.
    session.execute(
        delete(Email).where(Email.id.in_(blobs)).execution_options(synchronize_session=False)
    )
    session.expire_all()
    return blobs


def remember_deleted(session: Session, email_ids: list[int]) -> int:
    """Before mail is deleted for everyone: note its identity for every account that had it
    (fetched it, or sent it), so their imports never bring it back. Answers rows added."""
    if not email_ids:
        return 0
    fetched = (
        select(EmailLocation.mail_account_id, Email.identity)
        .join(Email, Email.id == EmailLocation.email_id)
        .where(EmailLocation.email_id.in_(email_ids))
    )
    sent = (
        select(OutboxEntry.mail_account_id, Email.identity)
        .join(Email, Email.id == OutboxEntry.email_id)
        .where(OutboxEntry.email_id.in_(email_ids), OutboxEntry.mail_account_id.is_not(None))
    )
    pairs = set(session.execute(fetched).tuples()) | set(session.execute(sent).tuples())
    if not pairs:
        return 0
    known = select(DeletedMessage.mail_account_id, DeletedMessage.identity).where(
        DeletedMessage.identity.in_({identity for _, identity in pairs})
    )
    pairs -= set(session.execute(known).tuples())
    now = utcnow()
    session.add_all(
        DeletedMessage(mail_account_id=account_id, identity=identity, deleted_at=now)
        for account_id, identity in sorted(pairs)
    )
    session.flush()
    return len(pairs)


def drop_unreferenced_blobs(session: Session, store: BlobStore, hashes: set[str]) -> int:
    """After the delete is committed: remove blobs no mail or attachment row still uses."""
    dropped = 0
    for sha in hashes:
        used = session.scalar(
            select(
                exists().where(Email.raw_sha256 == sha) | exists().where(Attachment.sha256 == sha)
            )
        )
        if not used:
            store.delete(sha)
            dropped += 1
    return dropped
