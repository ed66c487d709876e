"""Who may see what. Every lookup of a record goes through here and answers None when hidden.

Rule (EspoCRM's "team" access level): admins see everything; a user sees records assigned to
them, created by them, or belonging to one of their teams.
"""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from crm.models import User


def visible(stmt: Select, model, user: User) -> Select:
    """Restrict a select over a record model to what `user` may read."""
    if user.is_admin:
        return stmt
    conditions = [model.assigned_user_id == user.id, model.created_by_id == user.id]
    if user.team_ids:
        conditions.append(model.team_id.in_(user.team_ids))
    return stmt.where(or_(*conditions))


def get_visible(session: Session, model, record_id: int, user: User):
    """The record if it exists and the user may read it, else None."""
    stmt = visible(select(model).where(model.id == record_id), model, user)
    return session.scalars(stmt).first()
