"""`flask crm import-csv {accounts|contacts|leads} FILE [--json] [--user USERNAME]`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from crm.models import User
from crm.records import csv_import


def register(group) -> None:
    group.add_command(import_csv_command)


@click.command("import-csv")
@click.argument("kind", type=click.Choice(sorted(csv_import.FIELDS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--user", "username", help="Owner of new records (default: the first admin).")
@with_appcontext
def import_csv_command(kind, file, as_json, username):
    """Import a CSV file; rows matching existing records by e-mail address update them."""
    services = current_app.extensions["crm"]
    with services.session() as session:
        actor = _actor(session, username)
        try:
            table = csv_import.read_table(file.read_bytes())
        except csv_import.UnreadableFile as exc:
            raise click.ClickException(str(exc)) from exc
        report = csv_import.import_table(session, kind, table, actor)
    if as_json:
        counts = {
            "created": report.created,
            "updated": report.updated,
            "rejected": len(report.rejected),
            "rejections": report.as_dict()["rejected"],
        }
        click.echo(json.dumps(counts))
        return
    click.echo(
        f"created: {report.created}\nupdated: {report.updated}\nrejected: {len(report.rejected)}"
    )
    for rejected in report.rejected:
        click.echo(f"  row {rejected.row}: {rejected.reason}")


def _actor(session, username: str | None) -> User:
    stmt = select(User).where(User.is_active.is_(True))
    if username:
        stmt = stmt.where(User.username == username)
    else:
        stmt = stmt.where(User.is_admin.is_(True)).order_by(User.id)
    user = session.scalars(stmt).first()
    if user is None:
        raise click.ClickException(f"no active user {username!r}" if username else "no admin user")
    return user
