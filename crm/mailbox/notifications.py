"""In-app notifications: one place that creates them, and a user's list of them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.db import utcnow
from crm.models import Notification


def notify(session: Session, user_id: int, kind: str, text: str, **data) -> Notification:
    note = Notification(user_id=user_id, kind=kind, text=text, data=data)
    session.add(note)
    return note


def unread_count(session: Session, user_id: int) -> int:
    stmt = select(func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return session.scalar(stmt) or 0


def mark_all_read(session: Session, user_id: int) -> None:
    for note in session.scalars(
        select(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ):
        note.read_at = utcnow()


def latest(session: Session, user_id: int, limit: int = 100) -> list[Notification]:
    stmt = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def mark_read(session: Session, user_id: int, note_id: int) -> Notification | None:
    """Mark one of the user's notifications read; None when it is not theirs."""
    stmt = select(Notification).where(Notification.id == note_id, Notification.user_id == user_id)
    note = session.scalars(stmt).first()
    if note is not None:
        note.read_at = note.read_at or utcnow()
    return note
