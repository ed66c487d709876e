"""User folders and group folders."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base

folder_teams = Table(
    "folder_teams",
    Base.metadata,
    Column("folder_id", ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class Folder(Base):
    """A personal folder (user_id set) or a group folder (is_group, shared with teams)."""

    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    skip_notifications: Mapped[bool] = mapped_column(Boolean, default=False)
    teams: Mapped[list[Team]] = relationship(secondary=folder_teams)  # noqa: F821
