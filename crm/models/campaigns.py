"""Target lists, mass mail and its recipients, and confirmed (opted-in) addresses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow

# Record types a target list may hold: the ones with e-mail addresses.
MEMBER_TYPES = ("Contact", "Lead", "Account")

# A mass mail's life: a draft is edited; a running one queues a batch whenever one is due; a
# paused one queues nothing and its mail still queued in the outbox is held until resumed;
# complete means every recipient was queued or skipped (its last mail may still wait in the
# outbox: it shows as Sending, crm.campaigns.progress); a cancelled one queues nothing ever
# again and its mail still queued in the outbox is cancelled (crm.campaigns.outbox_rows).
DRAFT = "draft"
RUNNING = "running"
PAUSED = "paused"
COMPLETE = "complete"
CANCELLED = "cancelled"
STATUSES = (DRAFT, RUNNING, PAUSED, COMPLETE, CANCELLED)

# What a mass mail is for: news to its lists, or asking for confirmation of addresses.
PURPOSE_MASS_MAIL = "mass_mail"
PURPOSE_OPT_IN = "opt_in"

# A recipient row's own state. "queued" is refined when read: sent, failed or bounced, from
# the outbox row and delivery reports of its mail (crm.campaigns.progress).
PENDING = "pending"
QUEUED = "queued"
OPTED_OUT = "opted_out"
INVALID = "invalid"
FAILED = "failed"


class TargetList(Base):
    __tablename__ = "target_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    # Members whose address is not confirmed (opt-in) get no mass mail sent to this list.
    requires_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TargetListMember(Base):
    __tablename__ = "target_list_members"
    __table_args__ = (
        UniqueConstraint("list_id", "entity_type", "entity_id"),
        Index("ix_target_list_members_entity", "entity_type", "entity_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("target_lists.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MassMail(Base):
    __tablename__ = "mass_mails"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(10), default=PURPOSE_MASS_MAIL)
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_templates.id", ondelete="SET NULL")
    )
    # The template's text as it was when the mass mail started: every recipient gets the same.
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    is_html: Mapped[bool] = mapped_column(Boolean, default=False)
    mail_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="SET NULL")
    )
    from_name: Mapped[str] = mapped_column(String(320), default="")
    start_at: Mapped[datetime | None] = mapped_column(DateTime)
    per_hour: Mapped[int] = mapped_column(Integer, default=1000)
    batch_size: Mapped[int] = mapped_column(Integer, default=100)
    # When the next batch may be queued; each mail of a batch is due 3600/per_hour s later.
    next_batch_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    lists: Mapped[list[MassMailList]] = relationship(cascade="all, delete-orphan")


class MassMailList(Base):
    """A target list a mass mail goes to, or (excluded) whose addresses it never mails."""

    __tablename__ = "mass_mail_lists"
    mass_mail_id: Mapped[int] = mapped_column(
        ForeignKey("mass_mails.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("target_lists.id", ondelete="CASCADE"), primary_key=True
    )
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)


class MassMailRecipient(Base):
    """One address a mass mail goes to (once, however many lists hold it) and what became of it."""

    __tablename__ = "mass_mail_recipients"
    __table_args__ = (
        UniqueConstraint("mass_mail_id", "address_id"),
        Index("ix_mass_mail_recipients_state", "mass_mail_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    mass_mail_id: Mapped[int] = mapped_column(ForeignKey("mass_mails.id", ondelete="CASCADE"))
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    reason: Mapped[str] = mapped_column(Text, default="")
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("emails.id", ondelete="SET NULL"), index=True
    )
    queued_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when the recipient used this mail's opt-out link.
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime)


class AddressConfirmation(Base):
    """An address whose holder confirmed (opt-in) that it may receive mass mail."""

    __tablename__ = "address_confirmations"
    address_id: Mapped[int] = mapped_column(
        ForeignKey("email_addresses.id", ondelete="CASCADE"), primary_key=True
    )
    confirmed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    mass_mail_id: Mapped[int | None] = mapped_column(
        ForeignKey("mass_mails.id", ondelete="SET NULL")
    )
