"""The CRM records mail gets linked to."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from crm import folding
from crm.db import Base, utcnow


class RecordMixin:
    """Ownership columns every record has; visibility is decided from them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    assigned_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    description: Mapped[str] = mapped_column(Text, default="")
    # The list search's text (the SEARCHED columns), case and accents folded in Python
    # (crm.folding.key), because SQLite's lower() and LIKE fold ASCII only; kept in step below.
    search_key: Mapped[str] = mapped_column(Text, default="")
    SEARCHED: ClassVar[tuple[str, ...]] = ("name",)


@event.listens_for(RecordMixin, "before_insert", propagate=True)
@event.listens_for(RecordMixin, "before_update", propagate=True)
def _keep_search_key(_mapper, _connection, record) -> None:
    record.search_key = folding.key(*(getattr(record, name) for name in record.SEARCHED))


def name_key(name: str) -> str:
    """What two names are compared by: Unicode case folding, NFKC, runs of spaces as one.

    Computed here rather than by the database's lower(): SQLite's folds ASCII only, so
    "ÉLECTRICITÉ" and "électricité" differed there and the CSV import made a copy per row.
    """
    return " ".join(unicodedata.normalize("NFKC", name or "").casefold().split())[:255]


class Account(RecordMixin, Base):
    __tablename__ = "accounts"
    entity_type = "Account"
    SEARCHED = ("name", "website", "phone")
    name: Mapped[str] = mapped_column(String(255), index=True)
    # name_key(name), kept in step by the validator below; accounts are found by name through it.
    name_key: Mapped[str] = mapped_column(String(255), index=True, default="")
    website: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    contacts: Mapped[list[Contact]] = relationship(back_populates="account")

    @validates("name")
    def _keep_name_key(self, _key: str, value: str) -> str:
        self.name_key = name_key(value)
        return value

    @property
    def display_name(self) -> str:
        return self.name


class PersonMixin:
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="", index=True)
    phone: Mapped[str] = mapped_column(String(64), default="")

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or "(no name)"


class Contact(PersonMixin, RecordMixin, Base):
    __tablename__ = "contacts"
    entity_type = "Contact"
    SEARCHED = ("first_name", "last_name", "phone")
    title: Mapped[str] = mapped_column(String(100), default="")
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    account: Mapped[Account | None] = relationship(back_populates="contacts")


class Lead(PersonMixin, RecordMixin, Base):
    __tablename__ = "leads"
    entity_type = "Lead"
    SEARCHED = ("first_name", "last_name", "account_name", "phone")
    STATUSES = ("New", "Assigned", "In Process", "Converted", "Recycled", "Dead")
    status: Mapped[str] = mapped_column(String(20), default="New")
    account_name: Mapped[str] = mapped_column(String(255), default="")
    converted_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    converted_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )

    @property
    def is_converted(self) -> bool:
        return self.status == "Converted"


opportunity_contacts = Table(
    "opportunity_contacts",
    Base.metadata,
    Column("opportunity_id", ForeignKey("opportunities.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
)


class Opportunity(RecordMixin, Base):
    __tablename__ = "opportunities"
    entity_type = "Opportunity"
    STAGES = (
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
        "Closed Won",
        "Closed Lost",
    )
    name: Mapped[str] = mapped_column(String(255), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    stage: Mapped[str] = mapped_column(String(32), default="Prospecting")
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    close_date: Mapped[date | None] = mapped_column(Date)
    account: Mapped[Account | None] = relationship()
    contacts: Mapped[list[Contact]] = relationship(secondary=opportunity_contacts)

    @property
    def display_name(self) -> str:
        return self.name


class Case(RecordMixin, Base):
    __tablename__ = "cases"
    entity_type = "Case"
    STATUSES = ("New", "Assigned", "Pending", "Closed", "Rejected", "Duplicate")
    number: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="New")
    priority: Mapped[str] = mapped_column(String(20), default="Normal")
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    # The group account whose mail created the case ([#number] matching is scoped to it).
    inbound_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="SET NULL")
    )
    account: Mapped[Account | None] = relationship()
    contact: Mapped[Contact | None] = relationship()

    @property
    def display_name(self) -> str:
        return f"[#{self.number}] {self.name}"


class Task(RecordMixin, Base):
    __tablename__ = "tasks"
    entity_type = "Task"
    STATUSES = ("Not Started", "Started", "Completed", "Canceled", "Deferred")
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="Not Started")
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    parent_type: Mapped[str | None] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(Integer)
    email_id: Mapped[int | None] = mapped_column(ForeignKey("emails.id", ondelete="SET NULL"))

    @property
    def display_name(self) -> str:
        return self.name


RECORD_TYPES: dict[str, type] = {
    "Account": Account,
    "Contact": Contact,
    "Lead": Lead,
    "Opportunity": Opportunity,
    "Case": Case,
    "Task": Task,
}
