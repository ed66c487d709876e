"""What every command needs: the app's services and a user named on the command line."""

from __future__ import annotations

import click
from flask import current_app

from crm.models import User
from crm.records.users import user_named


def app_services():
    return current_app.extensions["crm"]


def user_or_fail(session, username: str) -> User:
    user = user_named(session, username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    return user
