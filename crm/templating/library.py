"""The templates a user may use and edit: create, change, delete, list, pick.

Who may use a template: its owner, members of the teams it lists, everybody when an admin
shared it, and admins. Who may edit it: its owner and admins. One-off templates (a mass mail's
text, used once) are listed on the templates page but never offered in the compose picker.
A template whose Handlebars does not validate is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from crm import folding
from crm.models import RECORD_TYPES, EmailTemplate, Team, TemplateAttachment, User
from crm.models.templates import email_template_teams
from crm.records.access import visible
from crm.templating import handlebars

STATES = ("active", "inactive", "all")
MAX_NAME = 255
PREVIEW_TYPES = ("Account", "Contact", "Lead", "Opportunity", "Case")


class TemplateFormError(ValueError):
    """Input a template cannot hold; `errors` maps a field to a message for its author."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class TemplateInput:
    """The template form, as plain values."""

    name: str = ""
    subject: str = ""
    body: str = ""
    is_html: bool = True
    category: str = ""
    is_active: bool = True
    one_off: bool = False
    is_shared: bool = False
    team_ids: list[int] = field(default_factory=list)
    keep_attachment_ids: list[int] | None = None  # None: keep them all
    uploads: list[Upload] = field(default_factory=list)


def usable(stmt: Select, user: User) -> Select:
    """Restrict a select over templates to those the user may use."""
    if user.is_admin:
        return stmt
    shared_with_team = select(email_template_teams.c.template_id).where(
        email_template_teams.c.team_id.in_(user.team_ids or {0})
    )
    return stmt.where(
        or_(
            EmailTemplate.owner_id == user.id,
            EmailTemplate.is_shared.is_(True),
            EmailTemplate.id.in_(shared_with_team),
        )
    )


def may_edit(user: User, template: EmailTemplate) -> bool:
    return user.is_admin or template.owner_id == user.id


def get_usable(session: Session, user: User, template_id: int) -> EmailTemplate | None:
    """The template if the user may use it, else None."""
    stmt = usable(select(EmailTemplate).where(EmailTemplate.id == template_id), user)
    return session.scalars(stmt).first()


def get_editable(session: Session, user: User, template_id: int) -> EmailTemplate | None:
    template = get_usable(session, user, template_id)
    return template if template is not None and may_edit(user, template) else None


def listing(
    session: Session, user: User, query: str = "", category: str = "", state: str = "active"
) -> list[EmailTemplate]:
    """The templates page: what the user may use, by name, category and active state."""
    stmt = usable(select(EmailTemplate), user).order_by(EmailTemplate.name, EmailTemplate.id)
    if category:
        stmt = stmt.where(EmailTemplate.category == category)
    if state == "active":
        stmt = stmt.where(EmailTemplate.is_active.is_(True))
    elif state == "inactive":
        stmt = stmt.where(EmailTemplate.is_active.is_(False))
    found = list(session.scalars(stmt))
    wanted = folding.key(query) if query.strip() else ""
    return [t for t in found if wanted in folding.key(t.name)] if wanted else found


def picker(session: Session, user: User) -> list[EmailTemplate]:
    """What compose offers: active templates the user may use, one-off ones left out."""
    stmt = usable(select(EmailTemplate), user).where(
        EmailTemplate.is_active.is_(True), EmailTemplate.one_off.is_(False)
    )
    return list(session.scalars(stmt.order_by(EmailTemplate.category, EmailTemplate.name)))


def categories(session: Session, user: User) -> list[str]:
    stmt = usable(select(EmailTemplate.category).distinct(), user)
    return sorted(c for c in session.scalars(stmt) if c)


def teams_for(session: Session, user: User) -> list[Team]:
    """Teams a template may be shared with: the user's own (all teams for an admin)."""
    if user.is_admin:
        return list(session.scalars(select(Team).order_by(Team.name)))
    return sorted(user.teams, key=lambda t: t.name)


def create(session: Session, blobs, user: User, data: TemplateInput) -> EmailTemplate:
    """A new template owned by the user; the caller commits."""
    template = EmailTemplate(owner_id=user.id)
    _apply(session, blobs, user, template, data)
    session.add(template)
    session.flush()
    return template


def update(session: Session, blobs, user: User, template: EmailTemplate, data: TemplateInput):
    """Change a template the user may edit; raises TemplateFormError, changing nothing."""
    _apply(session, blobs, user, template, data)
    session.flush()


def delete(session: Session, template: EmailTemplate) -> None:
    """Delete a template (its attachments' blobs stay until the blob sweep)."""
    session.delete(template)


def _apply(session: Session, blobs, user: User, template: EmailTemplate, data: TemplateInput):
    errors = validate(data)
    teams = _teams(session, user, data.team_ids)
    if len(teams) != len(set(data.team_ids)):
        errors["teams"] = "choose teams you belong to"
    if errors:
        raise TemplateFormError(errors)
    template.name, template.subject, template.body = data.name.strip(), data.subject, data.body
    template.is_html, template.category = data.is_html, data.category.strip()
    template.is_active, template.one_off = data.is_active, data.one_off
    if user.is_admin:  # only an admin shares with everybody; a user's edit keeps it as it was
        template.is_shared = data.is_shared
    template.teams = teams
    _attach(blobs, template, data)


def validate(data: TemplateInput) -> dict[str, str]:
    """Errors by field: a name is needed, the subject is one line, Handlebars must validate."""
    errors = {}
    if not data.name.strip():
        errors["name"] = "give the template a name"
    elif len(data.name.strip()) > MAX_NAME:
        errors["name"] = f"at most {MAX_NAME} characters"
    if any(ch in data.subject for ch in "\r\n\0"):
        errors["subject"] = "the subject may not contain line breaks"
    for part in ("subject", "body"):
        try:
            handlebars.check(getattr(data, part))
        except handlebars.TemplateError as exc:
            errors.setdefault(part, position_text(exc))
    return errors


def position_text(exc: handlebars.TemplateError) -> str:
    """A template error as its author reads it: where (when known), then what. An error raised
    while rendering has no position."""
    if exc.line is None or exc.column is None:
        return exc.message
    return f"line {exc.line}, column {exc.column}: {exc.message}"


def _teams(session: Session, user: User, team_ids: list[int]) -> list[Team]:
    allowed = {t.id: t for t in teams_for(session, user)}
    return [allowed[i] for i in dict.fromkeys(team_ids) if i in allowed]


def _attach(blobs, template: EmailTemplate, data: TemplateInput) -> None:
    keep = data.keep_attachment_ids
    kept = [a for a in template.attachments if keep is None or a.id in keep]
    fresh = [
        TemplateAttachment(
            filename=up.filename, content_type=up.content_type, size=len(up.data),
            sha256=blobs.put(up.data),
        )
        for up in data.uploads
    ]  # fmt: skip
    template.attachments = kept + fresh
    for i, attachment in enumerate(template.attachments):
        attachment.position = i


def input_of(template: EmailTemplate) -> TemplateInput:
    """A stored template as form values (to show it for editing)."""
    return TemplateInput(
        name=template.name, subject=template.subject, body=template.body,
        is_html=template.is_html, category=template.category, is_active=template.is_active,
        one_off=template.one_off, is_shared=template.is_shared,
        team_ids=[t.id for t in template.teams],
    )  # fmt: skip


def preview_choices(session: Session, user: User, kind: str, limit: int = 200) -> list:
    """Records of one type the user may read, to render a preview against (newest first)."""
    model = RECORD_TYPES.get(kind)
    if model is None or kind not in PREVIEW_TYPES:
        return []
    stmt = visible(select(model), model, user).order_by(model.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def preview_parent(session: Session, user: User, kind: str | None, record_id: int | None):
    """The record chosen for a preview, if the user may read it."""
    if kind not in PREVIEW_TYPES or not record_id:
        return None
    model = RECORD_TYPES[kind]
    return session.scalars(visible(select(model).where(model.id == record_id), model, user)).first()
