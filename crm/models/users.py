"""Users, teams and personal preferences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow

team_members = Table(
    "team_members",
    Base.metadata,
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    members: Mapped[list[User]] = relationship(secondary=team_members, back_populates="teams")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Preferences.
    signature: Mapped[str] = mapped_column(Text, default="")
    use_external_client: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which answer button the mail page puts first: Reply all instead of Reply.
    reply_all_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    date_format: Mapped[str] = mapped_column(String(32), default="%Y-%m-%d")
    # The mail lists show one row per conversation (thread) instead of one per mail.
    mail_as_conversations: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members")
    # Bumped when the password changes, so old sessions stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)

    # flask-login protocol, kept here so blueprints need no wrapper class.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def display_name(self) -> str:
        return self.name or self.username

    @property
    def team_ids(self) -> set[int]:
        return {t.id for t in self.teams}
