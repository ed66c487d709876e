"""Users and teams: creating them and setting their addresses (admins only, by policy)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.mail.address import normalise_address
from crm.models import Team, User
from crm.passwords import hash_password
from crm.records import addressbook


class UserError(ValueError):
    pass


def team_named(session: Session, name: str, create: bool = True) -> Team | None:
    team = session.scalars(select(Team).where(Team.name == name)).first()
    if team is None and create:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def create_user(
    session: Session,
    username: str,
    password: str,
    emails: list[str] = (),
    is_admin: bool = False,
    teams: list[str] = (),
    name: str = "",
) -> User:
    """A new user with hashed password, addresses (first is primary) and teams."""
    username = username.strip()
    if not username:
        raise UserError("a user name is required")
    if session.scalars(select(User).where(User.username == username)).first():
        raise UserError(f"user {username!r} already exists")
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    user = User(
        username=username, name=name, password_hash=hash_password(password), is_admin=is_admin
    )
    user.teams = [team_named(session, t) for t in teams]
    session.add(user)
    session.flush()
    if emails:
        set_user_addresses(session, user, list(emails))
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    user.password_hash = hash_password(password)
    user.session_version = (user.session_version or 1) + 1


def update_user(session: Session, user: User, actor: User, changes: dict) -> None:
    """Apply an admin's edit: name, username, active, admin, teams, addresses, new password."""
    username = changes.get("username", user.username).strip()
    if not username:
        raise UserError("a user name is required")
    clash = session.scalars(select(User).where(User.username == username, User.id != user.id))
    if clash.first():
        raise UserError(f"user {username!r} already exists")
    if user.id == actor.id and not (
        changes.get("is_active", True) and changes.get("is_admin", True)
    ):
        raise UserError("you cannot deactivate yourself or remove your own admin rights")
    user.username, user.name = username, changes.get("name", user.name).strip()
    user.is_active = changes.get("is_active", user.is_active)
    user.is_admin = changes.get("is_admin", user.is_admin)
    if "team_ids" in changes:
        user.teams = list(session.scalars(select(Team).where(Team.id.in_(changes["team_ids"]))))
    if changes.get("password"):
        set_password(user, changes["password"])
    if "emails" in changes:
        set_user_addresses(session, user, changes["emails"])
    session.flush()


def set_user_addresses(session: Session, user: User, emails: list[str]) -> None:
    """Give the user exactly these addresses (first primary); each may belong to one user only."""
    bad = [e for e in emails if normalise_address(e) is None]
    if bad:
        raise UserError("not an e-mail address: " + ", ".join(bad))
    lowers = [normalise_address(e).lower() for e in emails]
    for lower, entity_type, entity_id in addressbook.holders(session, lowers):
        if entity_type == "User" and entity_id != user.id:
            owner = session.get(User, entity_id)
            raise UserError(
                f"{lower} already belongs to {owner.username if owner else 'another user'}"
            )
    addressbook.set_addresses(session, "User", user.id, emails)


def create_team(session: Session, name: str) -> Team:
    name = name.strip()
    if not name:
        raise UserError("a team name is required")
    if team_named(session, name, create=False):
        raise UserError(f"team {name!r} already exists")
    return team_named(session, name)


def rename_team(session: Session, team: Team, name: str) -> None:
    name = name.strip()
    if not name:
        raise UserError("a team name is required")
    other = team_named(session, name, create=False)
    if other is not None and other.id != team.id:
        raise UserError(f"team {name!r} already exists")
    team.name = name
    session.flush()


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def active_users(session: Session) -> list[User]:
    """Who a task can be assigned to, by name."""
    stmt = select(User).where(User.is_active).order_by(User.name, User.username)
    return list(session.scalars(stmt))


def user_named(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def all_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))
