"""Mail: one Email per message, per-user state, server locations, recipients, attachments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm import folding
from crm.db import Base, utcnow

STATUS_ARCHIVED = "Archived"
STATUS_SENT = "Sent"
STATUS_DRAFT = "Draft"
# Outgoing mail on its way (queued, scheduled or being sent), refused for good, or handed to
# a server that never answered (it may have been delivered: the user decides).
STATUS_SENDING = "Sending"
STATUS_FAILED = "Failed"
STATUS_UNKNOWN = "Unknown"


def _search_extra(row: dict) -> str:
    return folding.search_extra(row.get("subject"), row.get("body_text"), row.get("address_text"))


def _thread_root(row: dict) -> str | None:
    return next(iter(row.get("references") or []), None) or row.get("in_reply_to")


class Email(Base):
    __tablename__ = "emails"
    __table_args__ = (Index("ix_emails_parent", "parent_type", "parent_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised Message-ID, or "hash:<sha256 of the raw message>" when it has none.
    identity: Mapped[str] = mapped_column(String(512), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998), index=True)
    references: Mapped[list] = mapped_column(JSON, default=list)
    # The first id of References (else In-Reply-To): a thread's mail share it, so the mail that
    # names a newly linked one anywhere in its chain is found through an index (crm.records.linking).
    thread_root: Mapped[str | None] = mapped_column(
        String(998), index=True, default=lambda ctx: _thread_root(ctx.get_current_parameters())
    )
    subject: Mapped[str] = mapped_column(Text, default="")
    from_name: Mapped[str] = mapped_column(String(320), default="")
    from_address_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_addresses.id", ondelete="SET NULL"), index=True
    )
    date_sent: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    snippet: Mapped[str] = mapped_column(String(300), default="")
    # Every address and display name on the mail, space-separated: what search matches people by.
    address_text: Mapped[str] = mapped_column(Text, default="")
    # The words the search index needs besides the text itself (crm.folding.search_extra):
    # computed on insert (bulk inserts too) and when the text changes (below).
    search_extra: Mapped[str] = mapped_column(
        Text, default=lambda ctx: _search_extra(ctx.get_current_parameters())
    )
    status: Mapped[str] = mapped_column(String(10), default=STATUS_ARCHIVED)
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    is_auto_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bounce: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    problems: Mapped[list] = mapped_column(JSON, default=list)
    # The CRM record the mail belongs to, the account derived from it, and why.
    parent_type: Mapped[str | None] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(Integer)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    link_rule: Mapped[str | None] = mapped_column(String(32))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    recipients: Mapped[list[EmailRecipient]] = relationship(
        cascade="all, delete-orphan", order_by="EmailRecipient.position"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        cascade="all, delete-orphan", order_by="Attachment.position"
    )


@event.listens_for(Email, "before_update")
def _text_changed(_mapper, _connection, email: Email) -> None:
    state = sa_inspect(email)
    if any(state.attrs[name].history.has_changes() for name in _SEARCHED):
        email.search_extra = folding.search_extra(
            email.subject, email.body_text, email.address_text
        )


_SEARCHED = ("subject", "body_text", "address_text")


class EmailRecipient(Base):
    """Every address on a mail, by role: from, to, cc, bcc, reply_to."""

    __tablename__ = "email_recipients"
    __table_args__ = (Index("ix_email_recipients_address", "address_id", "email_id"),)
    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(10))
    address_id: Mapped[int] = mapped_column(ForeignKey("email_addresses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(320), default="")
    address: Mapped[EmailAddress] = relationship()  # noqa: F821


class EmailUserState(Base):
    """What one user sees of a mail: folder, read, important, trash; sort key copied for paging."""

    __tablename__ = "email_user_states"
    __table_args__ = (
        UniqueConstraint("email_id", "user_id"),
        Index(
            "ix_email_user_states_list", "user_id", "in_trash", "folder_id", "sort_date", "email_id"
        ),
        # Newest-first lists across folders (PostgreSQL cannot order by the list index when the
        # folder is "IS NULL", the Inbox), and search hits read in the user's order.
        Index("ix_email_user_states_recent", "user_id", "sort_date", "email_id"),
        # Unread counts for the folder pane read only this (most mail is read, so it stays small).
        Index(
            "ix_email_user_states_unread",
            "user_id",
            "folder_id",
            "in_trash",
            "is_outgoing",
            "is_important",
            sqlite_where=text("is_read = 0"),
            postgresql_where=text("is_read = false"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="SET NULL"))
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    is_important: Mapped[bool] = mapped_column(Boolean, default=False)
    in_trash: Mapped[bool] = mapped_column(Boolean, default=False)
    # Mail from one of the user's own addresses: shown in Sent, not Inbox.
    is_outgoing: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_date: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    email: Mapped[Email] = relationship()


class EmailLocation(Base):
    """Where a mail sits on a server: (account, folder, UIDVALIDITY, UID)."""

    __tablename__ = "email_locations"
    __table_args__ = (UniqueConstraint("mail_account_id", "folder", "uidvalidity", "uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mail_account_id: Mapped[int] = mapped_column(ForeignKey("mail_accounts.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("emails.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(500))
    is_inline: Mapped[bool] = mapped_column(Boolean, default=False)
    # Attachments copied to a Case or Task point at the same blob.
    parent_type: Mapped[str | None] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(Integer)


class DeletedMessage(Base):
    """A message deleted for everyone, by identity, for each account that had it: their imports
    skip it, so neither a later fetch nor a reset of the folder brings it back."""

    __tablename__ = "deleted_messages"
    mail_account_id: Mapped[int] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(512), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrustedImageSender(Base):
    """A sender whose remote images one user always wants shown ("always show images")."""

    __tablename__ = "trusted_image_senders"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    address_id: Mapped[int] = mapped_column(
        ForeignKey("email_addresses.id", ondelete="CASCADE"), primary_key=True
    )
