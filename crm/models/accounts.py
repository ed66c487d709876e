"""IMAP/SMTP mail accounts, their per-folder cursors and sync runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import Base, utcnow

# A sync that has not reported progress for this long is presumed dead (worker killed). Both the
# claim and the status shown to users read it, so it lives with the claim's columns.
STALE_CLAIM = timedelta(minutes=5)

mail_account_teams = Table(
    "mail_account_teams",
    Base.metadata,
    Column("mail_account_id", ForeignKey("mail_accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class MailAccount(Base):
    """A personal or group (shared) mailbox; `user_id` is the owner or the assigned user."""

    __tablename__ = "mail_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    email_address: Mapped[str] = mapped_column(String(320))
    imap_host: Mapped[str] = mapped_column(String(255), default="")
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_security: Mapped[str] = mapped_column(String(10), default="ssl")
    imap_login: Mapped[str] = mapped_column(String(320), default="")
    imap_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Associated data of the at-rest cipher: binds a ciphertext to this row.
    secret_scope: Mapped[str] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    monitored_folders: Mapped[list] = mapped_column(JSON, default=lambda: ["INBOX"])
    # IMAP folder -> CRM folder id, for mail that should not land in the target folder.
    folder_map: Mapped[dict] = mapped_column(JSON, default=dict)
    fetch_since: Mapped[date | None] = mapped_column(Date)
    target_folder_id: Mapped[int | None] = mapped_column(
        ForeignKey("folders.id", ondelete="SET NULL")
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Sending. An account with no IMAP host is SMTP-only; one with no SMTP host cannot send.
    smtp_host: Mapped[str] = mapped_column(String(255), default="", server_default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=587, server_default="587")
    smtp_security: Mapped[str] = mapped_column(
        String(10), default="starttls", server_default="starttls"
    )
    smtp_auth: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    smtp_login: Mapped[str] = mapped_column(String(320), default="", server_default="")
    smtp_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Keep a copy of each sent mail in the IMAP Sent folder (APPEND); a fetch of that folder
    # finds it by Message-ID and stores nothing twice.
    store_sent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sent_folder: Mapped[str] = mapped_column(String(255), default="Sent", server_default="Sent")
    # Group accounts.
    add_all_team_users: Mapped[bool] = mapped_column(Boolean, default=False)
    create_case: Mapped[bool] = mapped_column(Boolean, default=False)
    case_distribution: Mapped[str] = mapped_column(String(20), default="direct")
    case_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # Answer mail that opens a new case (RFC 3834 rules in crm.outbound.autoreply).
    auto_reply: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    auto_reply_subject: Mapped[str] = mapped_column(String(255), default="", server_default="")
    auto_reply_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The member who got the last case under round-robin; the next one after them is next.
    case_last_assignee_id: Mapped[int | None] = mapped_column(Integer)
    teams: Mapped[list[Team]] = relationship(secondary=mail_account_teams)  # noqa: F821
    # How IMAP and SMTP log in: "password", or "oauth2" (XOAUTH2 with a provider's token).
    auth_method: Mapped[str] = mapped_column(
        String(10), default="password", server_default="password"
    )
    oauth_provider: Mapped[str | None] = mapped_column(String(20))
    # Sealed like the passwords (crm.secrets), bound to this row and field.
    oauth_access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    oauth_refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    oauth_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Who is refreshing the token right now (a conditional UPDATE takes it; see crm.accounts.oauth).
    oauth_refresh_claim: Mapped[str | None] = mapped_column(String(32))
    oauth_refresh_claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set when the provider refused the grant: fetch and send stop until the owner reconnects.
    oauth_reauth_reason: Mapped[str | None] = mapped_column(Text)
    oauth_reauth_since: Mapped[datetime | None] = mapped_column(DateTime)
    # Sync bookkeeping, read by the status panel.
    sync_state: Mapped[str] = mapped_column(String(10), default="idle")
    sync_claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_since: Mapped[datetime | None] = mapped_column(DateTime)
    error_notified_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cursors: Mapped[list[FolderCursor]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )


class FolderCursor(Base):
    """How far one IMAP folder of one account has been imported."""

    __tablename__ = "folder_cursors"
    __table_args__ = (UniqueConstraint("mail_account_id", "folder"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mail_account_id: Mapped[int] = mapped_column(ForeignKey("mail_accounts.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    # Highest UID imported in a contiguous run from the top (incremental fetch starts above it).
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # Backfill below the first cursor runs newest first; `backfill_below` is the lowest done UID.
    backfill_below: Mapped[int | None] = mapped_column(BigInteger)
    since: Mapped[date | None] = mapped_column(Date)
    server_messages: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    account: Mapped[MailAccount] = relationship(back_populates="cursors")


class SyncRun(Base):
    """One fetch job's progress and outcome (the UI polls this row)."""

    __tablename__ = "sync_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    mail_account_id: Mapped[int] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(12), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    rate: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
