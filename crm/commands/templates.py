"""`flask crm render-template`: a template rendered exactly as compose renders it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from crm.commands.context import app_services, user_or_fail
from crm.models import RECORD_TYPES, EmailTemplate, User
from crm.templating import context, handlebars, library
from crm.templating.rendering import TemplateText, render_template, text_of

TEMPLATE_ERROR_STATUS = 2


def register(group) -> None:
    group.add_command(render_template_command)


@click.command("render-template")
@with_appcontext
@click.option("--id", "template_id", type=int, help="A stored template's id.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Template text in a file (.html or .htm: HTML, else plain text).")  # fmt: skip
@click.option("--subject", help="The subject (a file's; replaces a stored template's).")
@click.option("--parent", help="TYPE:ID of the record the mail belongs to, e.g. Account:12.")
@click.option("--to", "to_address", help="The first recipient's address.")
@click.option("--user", "username", help="Who renders it (default: the template's owner).")
@click.option("--json", "as_json", is_flag=True)
def render_template_command(template_id, path, subject, parent, to_address, username, as_json):
    """Print the rendered subject, body and warnings; a template error exits with status 2."""
    if bool(template_id) == bool(path):
        raise click.UsageError("give exactly one of --id and --file")
    with app_services().session() as session:
        template = session.get(EmailTemplate, template_id) if template_id else None
        if template_id and template is None:
            raise click.ClickException(f"no template {template_id}")
        user = _user(session, username, template)
        if template is not None and library.get_usable(session, user, template.id) is None:
            raise click.ClickException(f"{user.username} may not use template {template_id}")
        text = _text(template, path, subject)
        record = _parent(session, parent)
        try:
            rendered = render_template(
                session, text, user=user, parent=record, to_address=to_address
            )
        except handlebars.TemplateError as exc:
            _fail(exc, as_json)
    if as_json:
        click.echo(json.dumps({"subject": rendered.subject, "body": rendered.body,
                               "is_html": rendered.is_html, "warnings": list(rendered.warnings)}))  # fmt: skip
        return
    click.echo(f"Subject: {rendered.subject}\n\n{rendered.body}")
    for warning in rendered.warnings:
        click.echo(f"warning: {warning}", err=True)


def _user(session, username: str | None, template: EmailTemplate | None) -> User:
    if username:
        return user_or_fail(session, username)
    if template is not None and template.owner is not None:
        return template.owner
    raise click.ClickException("name the user to render as with --user")


def _text(template: EmailTemplate | None, path: str | None, subject: str | None) -> TemplateText:
    if template is not None:
        text = text_of(template)
        if subject is None:
            return text
        return TemplateText(subject, text.body, text.is_html)
    file = Path(path)
    is_html = file.suffix.lower() in (".html", ".htm")
    return TemplateText(subject or "", file.read_text(encoding="utf-8"), is_html)


def _parent(session, parent: str | None):
    if not parent:
        return None
    kind, _, record_id = parent.partition(":")
    if kind not in RECORD_TYPES or not record_id.isdigit():
        raise click.ClickException("--parent must be TYPE:ID, e.g. Account:12")
    record = context.record_of(session, kind, int(record_id))
    if record is None:
        raise click.ClickException(f"no {kind} {record_id}")
    return record


def _fail(exc: handlebars.TemplateError, as_json: bool):
    if as_json:
        error = {"message": exc.message, "line": exc.line, "column": exc.column}
        click.echo(json.dumps({"error": error}))
    else:
        click.echo(f"template error: {library.position_text(exc)}", err=True)
    sys.exit(TEMPLATE_ERROR_STATUS)
