"""The `flask crm` command group for admins and scripts."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

crm_cli = AppGroup("crm", help="Mail CRM administration.")


def init_app(app: Flask) -> None:
    from crm.commands import register_commands

    register_commands(crm_cli)
    app.cli.add_command(crm_cli)


__all__ = ["click", "crm_cli"]
