"""Export a user's mail as plain dicts (one per mail they have): the CLI prints them as JSON lines."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from crm.models import RECORD_TYPES, Email, EmailRecipient, EmailUserState, Folder

BATCH = 500


def export_user_mail(session: Session, user_id: int, folder: str | None = None) -> Iterator[dict]:
    """Mail of one user, oldest first; `folder` is Inbox, Sent, Trash or a folder name."""
    folders = dict(session.execute(select(Folder.id, Folder.name)).all())
    stmt = (
        select(EmailUserState)
        .where(EmailUserState.user_id == user_id)
        .order_by(EmailUserState.sort_date, EmailUserState.email_id)
        .options(
            selectinload(EmailUserState.email)
            .selectinload(Email.recipients)
            .selectinload(EmailRecipient.address)
        )
        .execution_options(yield_per=BATCH)
    )
    for state in session.scalars(stmt):
        name = folder_name(state, folders)
        if folder is None or name.lower() == folder.lower():
            yield _row(session, state, name)


def folder_name(state: EmailUserState, folders: dict[int, str]) -> str:
    if state.in_trash:
        return "Trash"
    if state.is_outgoing:
        return "Sent"
    if state.folder_id:
        return folders.get(state.folder_id, "Inbox")
    return "Inbox"


def _row(session: Session, state: EmailUserState, folder: str) -> dict:
    email = state.email
    people = {"from": [], "to": []}
    for rcpt in email.recipients:
        if rcpt.role in people:
            people[rcpt.role].append(rcpt.address.address)
    return {
        "message_id": email.message_id,
        "subject": email.subject,
        "from": people["from"][0] if people["from"] else None,
        "to": people["to"],
        "date": email.date_sent.isoformat() if email.date_sent else None,
        "status": email.status,
        "folder": folder,
        "is_read": state.is_read,
        "is_important": state.is_important,
        "in_trash": state.in_trash,
        "parent_type": email.parent_type,
        "parent_id": email.parent_id,
        "parent_name": _parent_name(session, email),
        "problems": list(email.problems or []),
    }


def _parent_name(session: Session, email: Email) -> str | None:
    model = RECORD_TYPES.get(email.parent_type or "")
    if model is None or email.parent_id is None:
        return None
    record = session.get(model, email.parent_id)
    return record.display_name if record is not None else None
