"""E-mail addresses as first-class rows, linked to any record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow


class EmailAddress(Base):
    """One row per address; `lower` makes it case-insensitively unique, `address` keeps spelling."""

    __tablename__ = "email_addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    lower: Mapped[str] = mapped_column(String(320), unique=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the holder last subscribed again through an opt-out link; cleared by the next opt-out.
    subscribed_again_at: Mapped[datetime | None] = mapped_column(DateTime)
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    links: Mapped[list[EmailAddressLink]] = relationship(
        back_populates="address", cascade="all, delete-orphan"
    )

    # What opting out and in mean, wherever it is done (the unsubscribe page's buttons, the
    # record page's box): opting out ends an earlier subscribing again; taking an opt-out back
    # dates it, and doing it again keeps the first date.
    def opt_out(self) -> None:
        self.opted_out, self.subscribed_again_at = True, None

    def subscribe_again(self) -> None:
        if self.opted_out:
            self.opted_out, self.subscribed_again_at = False, utcnow()


class EmailAddressLink(Base):
    """Which record (user, contact, lead, account) holds an address; one is primary per record."""

    __tablename__ = "email_address_links"
    __table_args__ = (
        UniqueConstraint("address_id", "entity_type", "entity_id"),
        Index("ix_email_address_links_entity", "entity_type", "entity_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int] = mapped_column(Integer)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[EmailAddress] = relationship(back_populates="links")
