"""Folders: a user's own folders and the admins' group folders, and moving mail between them.

A mail's place is per user (`EmailUserState.folder_id`, NULL = Inbox). A group folder is shared:
filing a mail there gives every member of the folder's teams a copy in that folder, and what
happens to it there is shared too: trashing or restoring it, or taking it out of the group folder
("archiving" it, which returns the other members' copies to their Inbox), applies to all members.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from crm.models import (
    Email,
    EmailAddressLink,
    EmailFilter,
    EmailUserState,
    Folder,
    MailAccount,
    Team,
    User,
)

MAX_NAME = 100


class FolderError(ValueError):
    pass


# --- lookups, scoped to what the user may see ---------------------------------------------


def personal_folders(session: Session, user_id: int) -> list[Folder]:
    stmt = select(Folder).where(Folder.user_id == user_id, Folder.is_group.is_(False))
    return list(session.scalars(stmt.order_by(Folder.position, Folder.id)))


def group_folders(session: Session) -> list[Folder]:
    """Every group folder (the admins' view)."""
    stmt = select(Folder).where(Folder.is_group.is_(True)).order_by(Folder.name, Folder.id)
    return list(session.scalars(stmt))


def visible_group_folders(session: Session, user: User) -> list[Folder]:
    """Group folders shared with one of the user's teams (admins see them all)."""
    if user.is_admin:
        return group_folders(session)
    if not user.team_ids:
        return []
    stmt = (
        select(Folder)
        .where(Folder.is_group.is_(True), Folder.teams.any(Team.id.in_(user.team_ids)))
        .order_by(Folder.name, Folder.id)
    )
    return list(session.scalars(stmt))


def own_folder(session: Session, user: User, folder_id: int) -> Folder | None:
    folder = session.get(Folder, folder_id)
    if folder is None or folder.is_group or folder.user_id != user.id:
        return None
    return folder


def group_folder(session: Session, folder_id: int) -> Folder | None:
    folder = session.get(Folder, folder_id)
    return folder if folder is not None and folder.is_group else None


def target_folder(session: Session, user: User, folder_id: int) -> Folder | None:
    """A folder the user may file mail in: one of their own, or a group folder they see."""
    folder = session.get(Folder, folder_id)
    if folder is None:
        return None
    if folder.is_group:
        return folder if user.is_admin or {t.id for t in folder.teams} & user.team_ids else None
    return folder if folder.user_id == user.id else None


# --- personal folders ------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise FolderError("A folder needs a name.")
    if len(name) > MAX_NAME:
        raise FolderError(f"A folder name has at most {MAX_NAME} characters.")
    return name


def _check_unique(siblings: Iterable[Folder], name: str, folder: Folder | None = None) -> None:
    if any(f.name.casefold() == name.casefold() and f is not folder for f in siblings):
        raise FolderError(f"There is already a folder named {name!r}.")


def create_folder(
    session: Session, user_id: int, name: str, skip_notifications: bool = False
) -> Folder:
    """A new personal folder, placed last."""
    name = _clean_name(name)
    siblings = personal_folders(session, user_id)
    _check_unique(siblings, name)
    position = max((f.position for f in siblings), default=-1) + 1
    folder = Folder(
        user_id=user_id, name=name, position=position, skip_notifications=skip_notifications
    )
    session.add(folder)
    session.flush()
    return folder


def update_folder(session: Session, folder: Folder, name: str, skip_notifications: bool) -> None:
    """Rename a personal folder and set its "skip notifications" flag."""
    name = _clean_name(name)
    _check_unique(personal_folders(session, folder.user_id), name, folder)
    folder.name = name
    folder.skip_notifications = skip_notifications


def shift_folder(session: Session, folder: Folder, step: int) -> None:
    """Move a personal folder one place up (step -1) or down (+1)."""
    siblings = personal_folders(session, folder.user_id)
    index = siblings.index(folder)
    other = index + step
    if 0 <= other < len(siblings):
        siblings[index], siblings[other] = siblings[other], siblings[index]
    _renumber(siblings)


def reorder_folders(session: Session, user_id: int, folder_ids: list[int]) -> None:
    """Put the user's folders in the given order (ids not given keep their order, after)."""
    siblings = personal_folders(session, user_id)
    rank = {folder_id: i for i, folder_id in enumerate(folder_ids)}
    siblings.sort(key=lambda f: (rank.get(f.id, len(rank)), f.position, f.id))
    _renumber(siblings)


def _renumber(folders: list[Folder]) -> None:
    for position, folder in enumerate(folders):
        folder.position = position


def delete_folder(session: Session, folder: Folder) -> None:
    """Delete a folder (personal or group): its mail returns to the Inbox, its filters go."""
    session.execute(
        update(EmailUserState).where(EmailUserState.folder_id == folder.id).values(folder_id=None)
    )
    session.execute(delete(EmailFilter).where(EmailFilter.folder_id == folder.id))
    owner = (
        MailAccount.is_group.is_(True) if folder.is_group else MailAccount.user_id == folder.user_id
    )
    for account in session.scalars(select(MailAccount).where(owner)):
        if account.target_folder_id == folder.id:
            account.target_folder_id = None
        kept = {k: v for k, v in (account.folder_map or {}).items() if v != folder.id}
        if kept != (account.folder_map or {}):
            account.folder_map = kept
    session.delete(folder)
    session.flush()


# --- group folders ---------------------------------------------------------------------------


def _teams(session: Session, team_ids: Iterable[int]) -> list[Team]:
    ids = {int(t) for t in team_ids}
    return list(session.scalars(select(Team).where(Team.id.in_(ids)))) if ids else []


def create_group_folder(
    session: Session, name: str, team_ids: Iterable[int], skip_notifications: bool = False
) -> Folder:
    name = _clean_name(name)
    _check_unique(group_folders(session), name)
    folder = Folder(is_group=True, name=name, skip_notifications=skip_notifications)
    folder.teams = _teams(session, team_ids)
    session.add(folder)
    session.flush()
    return folder


def update_group_folder(
    session: Session, folder: Folder, name: str, team_ids: Iterable[int], skip_notifications: bool
) -> None:
    """Rename, re-share and flag a group folder; new members get the mail already in it."""
    name = _clean_name(name)
    _check_unique(group_folders(session), name, folder)
    folder.name = name
    folder.skip_notifications = skip_notifications
    folder.teams = _teams(session, team_ids)
    session.flush()
    filed = select(EmailUserState.email_id).where(EmailUserState.folder_id == folder.id)
    file_in_group_folder(session, folder, set(session.scalars(filed.distinct())))


def group_members(session: Session, folder: Folder) -> set[int]:
    """Active members of the folder's teams."""
    team_ids = [t.id for t in folder.teams]
    if not team_ids:
        return set()
    stmt = select(User.id).where(User.is_active.is_(True), User.teams.any(Team.id.in_(team_ids)))
    return set(session.scalars(stmt))


def file_in_group_folder(
    session: Session, folder: Folder, email_ids: Iterable[int], in_trash: bool = False
) -> None:
    """Put the mail in the group folder for every member, creating the copies they lack."""
    email_ids = set(email_ids)
    members = group_members(session, folder)
    if not email_ids or not members:
        return
    states = session.scalars(
        select(EmailUserState).where(
            EmailUserState.email_id.in_(email_ids), EmailUserState.user_id.in_(members)
        )
    )
    have = set()
    for state in states:
        state.folder_id, state.in_trash = folder.id, in_trash
        have.add((state.email_id, state.user_id))
    _add_copies(session, folder, email_ids, members, have, in_trash)
    session.flush()


def _add_copies(session, folder, email_ids, members, have, in_trash) -> None:
    missing = [(e, u) for e in email_ids for u in members if (e, u) not in have]
    if not missing:
        return
    emails = {e.id: e for e in session.scalars(select(Email).where(Email.id.in_(email_ids)))}
    own = _own_address_ids(session, members)
    for email_id, user_id in missing:
        email = emails[email_id]
        session.add(
            EmailUserState(
                email_id=email_id,
                user_id=user_id,
                folder_id=folder.id,
                in_trash=in_trash,
                is_outgoing=email.from_address_id in own.get(user_id, ()),
                sort_date=email.date_sent or email.created_at,
            )
        )


def _own_address_ids(session: Session, user_ids: set[int]) -> dict[int, set[int]]:
    stmt = select(EmailAddressLink.entity_id, EmailAddressLink.address_id).where(
        EmailAddressLink.entity_type == "User", EmailAddressLink.entity_id.in_(user_ids)
    )
    own: dict[int, set[int]] = {}
    for user_id, address_id in session.execute(stmt):
        own.setdefault(user_id, set()).add(address_id)
    return own


# --- moving mail -----------------------------------------------------------------------------


def _states(session: Session, user: User, email_ids: Iterable[int]) -> list[EmailUserState]:
    ids = {int(i) for i in email_ids}
    if not ids:
        return []
    stmt = select(EmailUserState).where(
        EmailUserState.user_id == user.id, EmailUserState.email_id.in_(ids)
    )
    return list(session.scalars(stmt))


def _group_ids(session: Session, folder_ids: set[int | None]) -> set[int]:
    ids = {i for i in folder_ids if i is not None}
    if not ids:
        return set()
    stmt = select(Folder.id).where(Folder.id.in_(ids), Folder.is_group.is_(True))
    return set(session.scalars(stmt))


def move_mail(session: Session, user: User, email_ids: Iterable[int], target: Folder | None) -> int:
    """Move the user's copies of these mails to a folder (None = Inbox); returns how many.

    Mail the user does not have is left alone. Moving into a group folder shares the mail with
    the folder's members; moving it out of one takes it out for every member.
    """
    states = _states(session, user, email_ids)
    target_id = target.id if target is not None else None
    groups = _group_ids(session, {s.folder_id for s in states})
    for state in states:
        if state.folder_id in groups and state.folder_id != target_id:
            _archive_for_members(session, state.email_id, state.folder_id)
        state.folder_id, state.in_trash = target_id, False
    if target is not None and target.is_group:
        file_in_group_folder(session, target, {s.email_id for s in states})
    session.flush()
    return len(states)


def _archive_for_members(session: Session, email_id: int, folder_id: int) -> None:
    session.execute(
        update(EmailUserState)
        .where(EmailUserState.email_id == email_id, EmailUserState.folder_id == folder_id)
        .values(folder_id=None)
        .execution_options(synchronize_session="fetch")
    )


def set_trash(session: Session, user: User, email_ids: Iterable[int], in_trash: bool) -> int:
    """Trash or restore the user's copies; in a group folder, every member's copy follows."""
    states = _states(session, user, email_ids)
    groups = _group_ids(session, {s.folder_id for s in states})
    for state in states:
        state.in_trash = in_trash
        if state.folder_id in groups:
            session.execute(
                update(EmailUserState)
                .where(
                    EmailUserState.email_id == state.email_id,
                    EmailUserState.folder_id == state.folder_id,
                )
                .values(in_trash=in_trash)
                .execution_options(synchronize_session="fetch")
            )
    session.flush()
    return len(states)


def mail_counts(session: Session, folder_ids: list[int]) -> dict[int, int]:
    """How many mail copies each folder holds (for the management page)."""
    if not folder_ids:
        return {}
    stmt = (
        select(EmailUserState.folder_id, func.count(EmailUserState.email_id.distinct()))
        .where(EmailUserState.folder_id.in_(folder_ids), EmailUserState.in_trash.is_(False))
        .group_by(EmailUserState.folder_id)
    )
    return dict(session.execute(stmt).all())
