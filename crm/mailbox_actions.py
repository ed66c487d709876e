"""Bulk actions on a user's mail: read, important, move, trash, and delete for everyone.

Flag and folder actions touch only the acting user's state rows, so two users sharing a mail
keep their own read, trash and folder state. No Flask here; the caller commits.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from crm import mailbox, settings
from crm.models import Attachment, Email, EmailUserState, User
from crm.storage import BlobStore

S = EmailUserState

# action name -> the state columns it sets
FLAGS = {
    "read": {"is_read": True},
    "unread": {"is_read": False},
    "important": {"is_important": True},
    "unimportant": {"is_important": False},
    "trash": {"in_trash": True},
    "restore": {"in_trash": False},
}
ACTIONS = (*FLAGS, "move", "delete")


class ActionError(ValueError):
    """An action the user may not take, or one that makes no sense (unknown folder)."""


def apply(
    session: Session, user: User, action: str, email_ids: list[int], target: str | None = None
) -> int:
    """Run a bulk action on the user's mail; answers how many mail it touched."""
    if not email_ids:
        return 0
    if action in FLAGS:
        return _set(session, user.id, email_ids, FLAGS[action])
    if action == "move":
        return move(session, user, email_ids, target or "")
    if action == "delete":
        return len(delete_permanently(session, user, email_ids))
    raise ActionError(f"unknown action {action!r}")


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
    """Move to Inbox or a folder the user may see (out of Trash too); other targets are refused."""
    if target == "inbox":
        return _set(session, user.id, email_ids, {"folder_id": None, "in_trash": False})
    if target == "trash":
        return _set(session, user.id, email_ids, FLAGS["trash"])
    view = mailbox.resolve(session, user, target)
    if view is None or view.folder is None:
        raise ActionError("no such folder")
    return _set(session, user.id, email_ids, {"folder_id": view.folder.id, "in_trash": False})


def may_delete(session: Session, user: User) -> bool:
    """Admins always; regular users only when the admin allows it (the advice is to use Trash)."""
    return user.is_admin or bool(settings.get(session, "users_may_delete_mail"))


def delete_permanently(session: Session, user: User, email_ids: list[int]) -> dict[int, set[str]]:
    """Remove mail for everyone; answers {email id: blob hashes} to check after the commit."""
    if not may_delete(session, user):
        raise ActionError("deleting mail is not allowed")
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
    # States, recipients, locations and attachment rows go by ON DELETE CASCADE.
    session.execute(
        delete(Email).where(Email.id.in_(blobs)).execution_options(synchronize_session=False)
    )
    session.expire_all()
    return blobs


def drop_unreferenced_blobs(session: Session, store: BlobStore, hashes: set[str]) -> int:
    """After the delete is committed: remove blob files no mail or attachment row still uses."""
    dropped = 0
    for sha in hashes:
        used = session.scalar(
            select(
                exists().where(Email.raw_sha256 == sha) | exists().where(Attachment.sha256 == sha)
            )
        )
        if not used:
            store.path(sha).unlink(missing_ok=True)
            dropped += 1
    return dropped
