"""Delivery reports: a bounce or delay warning, the mail it reports on, and each recipient's fate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow

KIND_BOUNCE = "bounce"  # delivery failed for at least one recipient
KIND_DELAY = "delay"  # a warning only: the server keeps trying
KIND_OTHER = "other"  # a success report (delivered, relayed, expanded)


class DeliveryReport(Base):
    """A stored mail that is a delivery status notification (crm.mail.dsn), and its original.

    The original is found by the Message-ID the report names; until that mail is stored the
    id waits in `original_message_id` and the import links it when it arrives.
    """

    __tablename__ = "delivery_reports"
    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(10), default=KIND_BOUNCE)
    original_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    original_email_id: Mapped[int | None] = mapped_column(
        ForeignKey("emails.id", ondelete="SET NULL"), index=True
    )
    # The returned copy's subject, for a report whose original is not (yet) stored.
    original_subject: Mapped[str] = mapped_column(Text, default="")
    reporting_mta: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    recipients: Mapped[list[DeliveryReportRecipient]] = relationship(
        cascade="all, delete-orphan", order_by="DeliveryReportRecipient.position"
    )


class DeliveryReportRecipient(Base):
    """One recipient of the reported mail: action (failed, delayed, ...), status, server's words."""

    __tablename__ = "delivery_report_recipients"
    report_id: Mapped[int] = mapped_column(
        ForeignKey("delivery_reports.email_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    original_recipient: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    remote_mta: Mapped[str] = mapped_column(String(255), default="")

    @property
    def is_hard(self) -> bool:
        return self.action == "failed" and self.status.startswith("5.")

    @property
    def is_delay(self) -> bool:
        return self.action == "delayed"
