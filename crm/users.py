"""Users and teams: creating them and setting their addresses (admins only, by policy)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import addressbook
from crm.models import Team, User
from crm.passwords import hash_password


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
    user = User(username=username, name=name, password_hash=hash_password(password), is_admin=is_admin)
    user.teams = [team_named(session, t) for t in teams]
    session.add(user)
    session.flush()
    if emails:
        addressbook.set_addresses(session, "User", user.id, list(emails))
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    user.password_hash = hash_password(password)
    user.session_version = (user.session_version or 1) + 1


def user_addresses(session: Session, user_id: int) -> list[str]:
    """Lower-cased addresses the admin put on the user's record."""
    return [link.address.lower for link in addressbook.addresses_of(session, "User", user_id)]
