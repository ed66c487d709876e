"""Render a template for one mail: placeholders, then Handlebars when the mail has a record.

The one path compose, the preview, the command line and mass mail share. Placeholders are
found once per template version (cached) and replaced by marks; Handlebars (validated by
crm.templating.handlebars, compiled once and cached there) runs over the marked text with plain
data; the marks then get the formatted values, escaped in HTML. Values are inserted last, so
text from a record is never read as template syntax.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime

from markupsafe import escape
from sqlalchemy.orm import Session

from crm.mail import sanitize
from crm.models import EmailTemplate, User
from crm.templating import context, handlebars, placeholders
from crm.templating.placeholders import Parsed

PURPOSES = ("compose", "mass_mail", "opt_in")
CACHE_SIZE = 512


@dataclass(frozen=True)
class TemplateText:
    """What is rendered: a stored template's text or a file's."""

    subject: str
    body: str
    is_html: bool
    version_key: str = ""  # identifies this text for caches; "" = a hash of the text


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str  # HTML (sanitised like composed mail) or plain text
    is_html: bool
    warnings: tuple[str, ...]  # unresolved placeholders, specials used out of place, ...


def text_of(template: EmailTemplate) -> TemplateText:
    """A stored template's text, keyed by its id and last change."""
    changed = template.updated_at.isoformat() if template.updated_at else ""
    return TemplateText(
        template.subject or "", template.body or "", template.is_html, f"{template.id}:{changed}"
    )


_cache: dict[tuple, tuple[Parsed, Parsed]] = {}
_cache_lock = threading.Lock()


def parsed(text: TemplateText) -> tuple[Parsed, Parsed]:
    """The subject's and body's placeholders, found once per template version."""
    key = (text.version_key, text.is_html) if text.version_key else _hash(text)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        # Checked as written, so an error's line and column are those its author sees.
        handlebars.check(text.subject)
        handlebars.check(text.body)
        found = (placeholders.parse(text.subject), placeholders.parse(text.body))
        with _cache_lock:
            if len(_cache) >= CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[key] = found
    return found


def _hash(text: TemplateText) -> tuple:
    digest = hashlib.sha256(f"{text.subject}\0{text.body}".encode()).hexdigest()
    return (digest, text.is_html)


def check(text: TemplateText) -> None:
    """Raise handlebars.TemplateError when the subject or body cannot be rendered."""
    parsed(text)


def render_template(
    session: Session,
    text: TemplateText,
    *,
    user: User,
    parent=None,
    to_address: str | None = None,
    purpose: str = "compose",
    links: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Rendered:
    """Subject and body for one mail; raises handlebars.TemplateError for its author to fix."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    subject, body = parsed(text)
    found = context.sources(session, user, parent, to_address)
    hb_context = context.handlebars_context(found, user) if found.parent is not None else None
    warnings = list(found.warnings)
    values = _Values(found.views, user, purpose, links or {}, now, warnings)
    rendered_subject = _one(subject, hb_context, values, html=False, warnings=warnings)
    rendered_body = _one(body, hb_context, values, html=text.is_html, warnings=warnings)
    if text.is_html:
        rendered_body = sanitize.clean(rendered_body, cid_url=lambda cid: f"cid:{cid}").html
    return Rendered(
        " ".join(rendered_subject.split()),
        rendered_body,
        text.is_html,
        tuple(dict.fromkeys(warnings)),
    )


def _one(part: Parsed, hb_context, values: _Values, *, html: bool, warnings: list) -> str:
    if hb_context is not None:
        marked = handlebars.render(part.text, hb_context, html=html)
    else:
        marked = part.text
        if "{{" in marked:
            warnings.append("Handlebars expressions ({{...}}) apply only to mail with a record.")
    return placeholders.fill(marked, [values.of(token, html) for token in part.tokens], part.tokens)


class _Values:
    """Each placeholder's text for this mail, with a warning for each that gives nothing."""

    def __init__(self, views, user, purpose, links, now, warnings: list):
        self.views, self.user, self.purpose, self.links = views, user, purpose, links
        self.clock = placeholders.clock_values(user, now)
        self.warnings = warnings

    def of(self, token: str, html: bool) -> str | None:
        if token in placeholders.PURPOSE_LINKS:
            value = placeholders.purpose_value(token, self.purpose, self.links, html)
            if value is None:
                self.warnings.append(placeholders.purpose_warning(token))
                return ""
            return value
        if token in self.clock:
            return self.clock[token]
        text = placeholders.format_value(placeholders.lookup(self.views, token), self.user)
        if not text:
            self.warnings.append(f"{{{token}}} gave nothing and was left as written.")
            return None
        return str(escape(text)) if html else text
