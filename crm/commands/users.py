"""`flask crm create-user` and `flask crm ensure-admin`."""

from __future__ import annotations

import json
import secrets

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from crm.models import User
from crm.records.users import UserError, create_user


def register(group) -> None:
    group.add_command(create_user_command)
    group.add_command(ensure_admin_command)


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--password", required=True)
@click.option("--email", "emails", multiple=True)
@click.option("--admin", is_flag=True)
@click.option("--team", "teams", multiple=True)
@click.option("--name", default="")
def create_user_command(username, password, emails, admin, teams, name):
    """Create a user (the first --email is the primary address)."""
    services = current_app.extensions["crm"]
    try:
        with services.session() as session:
            user = create_user(session, username, password, list(emails), admin, list(teams), name)
            click.echo(json.dumps({"id": user.id}))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("ensure-admin")
@with_appcontext
@click.option("--url", default="http://127.0.0.1:5000/")
def ensure_admin_command(url):
    """Create an `admin` user on first start and print how to sign in."""
    services = current_app.extensions["crm"]
    with services.session() as session:
        if session.scalars(select(User).where(User.is_admin.is_(True))).first():
            click.echo(f"Mail CRM: open {url} and sign in with your admin account.")
            return
        password = secrets.token_urlsafe(12)
        create_user(session, "admin", password, [], True, [], "Administrator")
    path = services.config.instance_dir / "admin-credentials.txt"
    path.write_text(f"user: admin\npassword: {password}\n")
    path.chmod(0o600)
    click.echo(f"Mail CRM: open {url} and sign in as admin / {password} (also in {path})")
