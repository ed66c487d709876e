"""`flask crm account add`, `flask crm fetch`, `flask crm export`: same code path as the worker."""

from __future__ import annotations

import json
import os
import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import configure_mappers

from crm.accounts.manage import AccountError, create_account
from crm.commands.context import app_services, user_or_fail
from crm.inbound.sync import Budget, SyncSummary, sync_account
from crm.mailbox.export import export_user_mail
from crm.models import MailAccount
from crm.records.users import team_named


def register(group) -> None:
    account = click.Group("account", help="Mail accounts.")
    account.add_command(add_account)
    group.add_command(account)
    group.add_command(fetch)
    group.add_command(export)
    group.add_command(scheduler)


@click.command("add")
@with_appcontext
@click.option("--user", "username", required=True)
@click.option("--email", required=True)
@click.option("--host", default="", help="IMAP host; leave out for an SMTP-only account.")
@click.option("--port", type=int, default=993)
@click.option("--security", type=click.Choice(["ssl", "starttls", "none"]), default="ssl")
@click.option("--login", default="")
@click.option("--password-env", help="Name of the variable holding the IMAP password.")
@click.option("--folders", default="INBOX", help="Comma-separated IMAP folders.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--group", "is_group", is_flag=True)
@click.option("--team", "teams", multiple=True)
@click.option("--smtp-host", default="")
@click.option("--smtp-port", type=int, default=587)
@click.option("--smtp-security", type=click.Choice(["ssl", "starttls", "none"]), default="starttls")
@click.option("--smtp-login", default="", help="SMTP login (default: the IMAP login).")
@click.option("--smtp-password-env", help="Variable holding the SMTP password (default: IMAP's).")
@click.option("--store-sent", is_flag=True, help="APPEND each sent mail to the IMAP Sent folder.")
@click.option("--sent-folder", default="Sent")
def add_account(
    username, email, host, port, security, login, password_env, folders, since, is_group, teams,
    smtp_host, smtp_port, smtp_security, smtp_login, smtp_password_env, store_sent, sent_folder,
):  # fmt: skip
    """Add a personal (or --group) IMAP and/or SMTP account; prints {"id": N}."""
    password = _env_secret(password_env) if password_env else ""
    if host and not password_env:
        raise click.ClickException("--password-env is required with --host")
    if not host and not smtp_host:
        raise click.ClickException("give --host (IMAP), --smtp-host, or both")
    if store_sent and not host:
        raise click.ClickException("--store-sent needs --host: the copy goes to an IMAP folder")
    smtp = {
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "smtp_auth": bool(smtp_login or smtp_password_env or login),
        "smtp_login": smtp_login,
        "smtp_password": _env_secret(smtp_password_env) if smtp_password_env else "",
        "store_sent": store_sent,
        "sent_folder": sent_folder,
    }
    services = app_services()
    try:
        with services.session() as session:
            user = user_or_fail(session, username)
            team_ids = [team_named(session, t).id for t in teams]
            account = create_account(
                session,
                services.secret_box,
                user_id=user.id,
                email=email,
                host=host,
                port=port,
                security=security,
                login=login,
                password=password,
                folders=[f.strip() for f in folders.split(",") if f.strip()],
                since=since.date() if since else None,
                is_group=is_group,
                team_ids=team_ids,
                add_all_team_users=is_group and bool(team_ids),
                smtp=smtp if smtp_host else None,
            )
            click.echo(json.dumps({"id": account.id}))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc


def _env_secret(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise click.ClickException(f"environment variable {name} is not set")
    return value


@click.command("fetch")
@with_appcontext
@click.option("--account", "account_id", type=int, help="Only this account (default: all active).")
@click.option("--json", "as_json", is_flag=True)
def fetch(account_id, as_json):
    """Run the sync to completion in the foreground."""
    # As the worker does before its first job (workers/worker.py): the mappers are configured
    # once per process, not inside the first sync's time.
    configure_mappers()
    services = app_services()
    with services.session() as session:
        ids = (
            [account_id]
            if account_id
            else list(
                session.scalars(
                    select(MailAccount.id)
                    .where(MailAccount.is_active.is_(True))
                    .order_by(MailAccount.id)
                )
            )
        )
    totals = {"seen": 0, "imported": 0, "duplicates": 0, "skipped": 0, "failed": 0, "seconds": 0.0}
    errors = {}
    show_progress = sys.stderr.isatty() and not as_json
    for aid in ids:
        summary = _fetch_one(services, aid, show_progress)
        for key in totals:
            totals[key] += getattr(summary, key)
        if summary.error:
            errors[aid] = summary.error
    totals["seconds"] = round(totals["seconds"], 3)
    if as_json:
        click.echo(json.dumps({**totals, "errors": errors}))
    else:
        click.echo(", ".join(f"{k}: {v}" for k, v in totals.items()))
        for aid, err in errors.items():
            click.echo(f"account {aid}: {err}", err=True)
    if errors:
        sys.exit(1)


def _fetch_one(services, account_id: int, show_progress: bool):
    """Run bounded syncs back to back until the account is done (the worker's code path)."""
    total = SyncSummary()

    def progress(part: SyncSummary) -> None:
        if show_progress:
            click.echo(
                f"\raccount {account_id}: {total.seen + part.seen} seen, "
                f"{total.imported + part.imported} imported",
                err=True,
                nl=False,
            )

    while True:
        part = sync_account(services, account_id, Budget(max_seconds=60), progress=progress)
        if part.busy:
            part.error = "another sync of this account is running"
        for key in ("seen", "imported", "duplicates", "skipped", "failed", "seconds"):
            setattr(total, key, getattr(total, key) + getattr(part, key))
        if part.error or part.done:
            total.error = part.error
            if show_progress:
                click.echo(err=True)
            return total


@click.command("export")
@with_appcontext
@click.option("--user", "username", required=True)
@click.option("--folder")
def export(username, folder):
    """Print the user's mail as JSON lines."""
    services = app_services()
    with services.session() as session:
        user = user_or_fail(session, username)
        for row in export_user_mail(session, user.id, folder):
            click.echo(json.dumps(row, ensure_ascii=False))


@click.command("scheduler")
@with_appcontext
@click.option("--poll", default=5, help="Seconds between checks for due jobs.")
def scheduler(poll):
    """Run the rq-scheduler process with the declared periodic jobs."""
    import logging

    from workers.schedule import run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(message)s")
    run_forever(app_services(), poll_seconds=poll)
