"""Blob bytes kept in the database (the blob store on PostgreSQL, crm/storage.py)."""

from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base


class Blob(Base):
    """Raw mail or an attachment, content-addressed: every machine that reaches the database
    reads it, and the commit that writes it makes it durable."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
