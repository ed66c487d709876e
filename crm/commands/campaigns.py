"""`flask crm mass-mail create|start|pause|resume|cancel|status`: a mass mail from a script.

The commands call the same domain functions as the pages and print the state the pages show
(crm.campaigns.progress): a complete mass mail whose last mails still wait in the outbox says
Sending. The periodic job (workers.jobs.run_mass_mails) queues the batches of a started mass
mail; a start or resume here also queues that job at once.
"""

from __future__ import annotations

import json
from datetime import datetime

import click
from flask.cli import with_appcontext

from crm.campaigns import mass_mail, progress
from crm.campaigns.mass_mail import MassMailError
from crm.commands.context import app_services, user_or_fail
from crm.models import MassMail, User
from crm.queue import mail_queue

MASS_MAIL_JOB = "workers.jobs.run_mass_mails"


def register(group) -> None:
    mass = click.Group("mass-mail", help="Mass mail: create, start, pause, resume, cancel, status.")
    for command in (create, start, pause, resume, cancel, status):
        mass.add_command(command)
    group.add_command(mass)


@click.command("create")
@with_appcontext
@click.option("--user", "username", required=True, help="Who sends it (the template's user).")
@click.option("--name", required=True)
@click.option("--template", "template_id", type=int, required=True, help="Template id.")
@click.option("--account", "account_id", type=int, required=True, help="Allowed account id.")
@click.option("--list", "list_ids", type=int, multiple=True, required=True, help="Target list id.")
@click.option("--exclude", "excluded_ids", type=int, multiple=True, help="Excluded list id.")
@click.option("--per-hour", type=int, default=mass_mail.DEFAULT_PER_HOUR, show_default=True)
@click.option("--start-at", help="UTC time, YYYY-MM-DDTHH:MM; empty: when started.")
@click.option("--from-name", default="")
@click.option("--opt-in", is_flag=True, help="An opt-in request to unconfirmed addresses.")
@click.option("--json", "as_json", is_flag=True)
def create(username, name, template_id, account_id, list_ids, excluded_ids, per_hour, start_at,
           from_name, opt_in, as_json):  # fmt: skip
    """Create a draft; prints its id."""
    values = {"name": name, "template_id": template_id, "mail_account_id": account_id,
              "list_ids": list(list_ids), "excluded_ids": list(excluded_ids),
              "per_hour": per_hour, "start_at": _time(start_at), "from_name": from_name,
              "purpose": "opt_in" if opt_in else "mass_mail"}  # fmt: skip
    with app_services().session() as session:
        user = user_or_fail(session, username)
        try:
            found = mass_mail.save(session, user, values)
        except MassMailError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(json.dumps({"id": found.id, "status": found.status}) if as_json else found.id)


def _time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=None)
    except ValueError as exc:
        raise click.ClickException("--start-at must be YYYY-MM-DDTHH:MM (UTC)") from exc


def _act(mass_mail_id: int, action, queue_job: bool) -> None:
    services = app_services()
    with services.session() as session:
        found = session.get(MassMail, mass_mail_id)
        if found is None:
            raise click.ClickException(f"no mass mail {mass_mail_id}")
        try:
            said = action(session, found)
        except MassMailError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(
            f"mass mail {found.id}: {_label(session, found)}" + (f", {said}" if said else "")
        )
    if queue_job:
        queue = mail_queue(services.redis, services.config.queue_name)
        queue.enqueue(MASS_MAIL_JOB, job_timeout=600, result_ttl=300, failure_ttl=86400)


def _label(session, found: MassMail) -> str:
    """The state as the pages show it, not the stored status."""
    return progress.STATE_LABELS[progress.states(session, [found])[found.id]]


@click.command("start")
@with_appcontext
@click.argument("mass_mail_id", type=int)
def start(mass_mail_id):
    """Fix the text, write the recipients, and run from the start time."""

    def _start(session, found):
        creator = session.get(User, found.created_by_id) if found.created_by_id else None
        if creator is None:
            raise MassMailError("the mass mail has no user to send it as")
        return f"{mass_mail.start(session, found, creator)} recipients"

    _act(mass_mail_id, _start, queue_job=True)


@click.command("pause")
@with_appcontext
@click.argument("mass_mail_id", type=int)
def pause(mass_mail_id):
    """Queue no further batches and hold the mail waiting in the outbox until resumed."""

    def _pause(session, found):
        held = mass_mail.pause(session, found)
        return f"{held} mails waiting in the outbox held" if held else ""

    _act(mass_mail_id, _pause, queue_job=False)


@click.command("resume")
@with_appcontext
@click.argument("mass_mail_id", type=int)
def resume(mass_mail_id):
    """Queue batches again; held mail is due again from now, at the mass mail's rate."""
    _act(mass_mail_id, lambda session, found: mass_mail.resume(session, found), queue_job=True)


@click.command("cancel")
@with_appcontext
@click.argument("mass_mail_id", type=int)
def cancel(mass_mail_id):
    """Stop for good: recipients not yet queued are never mailed and mail waiting in the outbox
    is cancelled (mail a worker is sending right now still goes)."""

    def _cancel(session, found):
        cancelled = mass_mail.cancel(session, found)
        sending = mass_mail.still_sending(session, found).sending
        going = f", {sending} being sent right now will still go" if sending else ""
        return f"{cancelled} queued mails will not be sent{going}"

    _act(mass_mail_id, _cancel, queue_job=False)


@click.command("status")
@with_appcontext
@click.argument("mass_mail_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def status(mass_mail_id, as_json):
    """The mass mail's state (as its page shows it) and how many recipients are in each status;
    --json also gives the stored status (complete while its last mails may still be sending)."""
    with app_services().session() as session:
        found = session.get(MassMail, mass_mail_id)
        if found is None:
            raise click.ClickException(f"no mass mail {mass_mail_id}")
        shown = progress.progress(session, found)
        result = {"id": found.id, "name": found.name, "status": found.status,
                  "state": shown.state, "state_label": shown.label, "expected": shown.expected,
                  "total": shown.total, "done": shown.done, "counts": shown.counts,
                  "last_error": found.last_error}  # fmt: skip
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{found.name}: {shown.label}, {_done(shown)}")
    for key, label in progress.LABELS.items():
        if shown.counts[key]:
            click.echo(f"  {label}: {shown.counts[key]}")
    if result["last_error"]:
        click.echo(f"  {result['last_error']}")


def _done(shown: progress.Progress) -> str:
    if shown.state == "draft":  # as the page: what its lists hold now, never 0 of 0
        return f"{shown.expected or 0} recipients on the target lists now"
    return f"{shown.done} of {shown.total} done"
