"""E-mail templates: subject and body with placeholders, shared with teams or by an admin."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow
from crm.models.users import Team, User

email_template_teams = Table(
    "email_template_teams",
    Base.metadata,
    Column("template_id", ForeignKey("email_templates.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class EmailTemplate(Base):
    """A template its owner edits; teams listed may use it, an admin-shared one everybody may."""

    __tablename__ = "email_templates"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    subject: Mapped[str] = mapped_column(String(998), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    is_html: Mapped[bool] = mapped_column(Boolean, default=True)
    category: Mapped[str] = mapped_column(String(100), default="", index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Meant to be used once (a mass mail's text): hidden from the compose picker.
    one_off: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Shared by an admin with every user (only admins may set it).
    is_shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    owner: Mapped[User | None] = relationship()
    teams: Mapped[list[Team]] = relationship(secondary=email_template_teams)
    attachments: Mapped[list[TemplateAttachment]] = relationship(
        back_populates="template",
        cascade="all, delete-orphan",
        order_by="TemplateAttachment.position",
    )


class TemplateAttachment(Base):
    """A file that goes with every mail written from the template (a blob, like mail's)."""

    __tablename__ = "email_template_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("email_templates.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    template: Mapped[EmailTemplate] = relationship(back_populates="attachments")
