"""Mail filters: global, per account, per user inbox."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base


class EmailFilter(Base):
    __tablename__ = "email_filters"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # "global" (admin), "account" (one mail account), "inbox" (one user's whole inbox).
    scope: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    mail_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="CASCADE"), index=True
    )
    from_pattern: Mapped[str] = mapped_column(String(320), default="")
    to_pattern: Mapped[str] = mapped_column(String(320), default="")
    include_cc: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_pattern: Mapped[str] = mapped_column(String(500), default="")
    body_any: Mapped[list] = mapped_column(JSON, default=list)
    body_all: Mapped[list] = mapped_column(JSON, default=list)
    # "ignore" or "move".
    action: Mapped[str] = mapped_column(String(10), default="ignore")
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    mark_read: Mapped[bool] = mapped_column(Boolean, default=False)
    skip_notification: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
