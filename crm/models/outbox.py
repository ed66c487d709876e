"""The outbox: one row per mail handed over for sending, and what each recipient's server said."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow

# The life of an outbox row. Only "queued" rows are picked up; "sending" rows belong to the
# worker holding the lease; the last four are final (an unknown outcome is the user's to settle).
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNKNOWN = "unknown"
CANCELLED = "cancelled"
STATES = (QUEUED, SENDING, SENT, FAILED, UNKNOWN, CANCELLED)
FINAL = (SENT, FAILED, UNKNOWN, CANCELLED)

# How far a sending row got: "data" is written (and committed) before the DATA command, so a
# worker killed after that point leaves a row the sweeper marks unknown instead of resending.
PHASE_CONNECT = "connect"
PHASE_DATA = "data"


class OutboxEntry(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The SMTP account chosen when the mail was handed over (personal, group or system).
    mail_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="SET NULL"), index=True
    )
    from_address: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(10), default=QUEUED)
    phase: Mapped[str] = mapped_column(String(10), default=PHASE_CONNECT)
    # Not before: the undo delay or the scheduled time; then the retry backoff.
    due_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    scheduled: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Which worker's batch holds a sending row: a row swept back and taken by another worker
    # is never sent by the first one too.
    claim: Mapped[str | None] = mapped_column(String(32))
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    recipients: Mapped[list[OutboxRecipient]] = relationship(
        cascade="all, delete-orphan", order_by="OutboxRecipient.position"
    )


class OutboxRecipient(Base):
    """One envelope recipient: accepted, or refused with the server's reply."""

    __tablename__ = "outbox_recipients"
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str] = mapped_column(Text, default="")
