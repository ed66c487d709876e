"""`flask crm send`, `flask crm outbox run|list`, `flask crm send-test`: the UI's outbox."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import click
from flask.cli import with_appcontext

from crm.campaigns import outbox_rows
from crm.commands.context import app_services, user_or_fail
from crm.db import utcnow
from crm.mail.errors import MailError
from crm.models import Email, MailAccount
from crm.outbound import drafts, outbox, replies
from crm.outbound.drafts import DraftError, DraftInput, Upload
from crm.outbound.senders import SendRefused
from crm.outbound.sending import deliver_all_due, send_test_mail
from crm.queue import enqueue_send, mail_queue


def register(group) -> None:
    group.add_command(send)
    box = click.Group("outbox", help="The outbox: deliver what is due, list every row.")
    box.add_command(run)
    box.add_command(list_rows)
    group.add_command(box)
    group.add_command(send_test)


@click.command("send")
@with_appcontext
@click.option("--user", "username", required=True)
@click.option("--from", "sender", required=True)
@click.option("--to", "to", multiple=True, required=True)
@click.option("--cc", multiple=True)
@click.option("--bcc", multiple=True)
@click.option("--subject", required=True)
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--attach", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--parent", help="TYPE:ID of the record the mail belongs to.")
@click.option("--reply-to-mail", type=int, help="Id of the mail this one answers.")
@click.option("--json", "as_json", is_flag=True)
def send(
    username, sender, to, cc, bcc, subject, text_file, html_file, attach, parent,
    reply_to_mail, as_json,
):  # fmt: skip
    """Queue a mail through the outbox, exactly as the UI does; prints its id and status."""
    if bool(text_file) == bool(html_file):
        raise click.ClickException("give exactly one of --text-file and --html-file")
    body_path = Path(html_file or text_file)
    services = app_services()
    with services.session() as session:
        user = user_or_fail(session, username)
        draft = DraftInput(
            from_address=sender,
            to=", ".join(to),
            cc=", ".join(cc),
            bcc=", ".join(bcc),
            subject=subject,
            body=body_path.read_text(encoding="utf-8"),
            is_html=bool(html_file),
            uploads=[_upload(Path(p)) for p in attach],
        )
        _answering(session, user, draft, reply_to_mail)
        if parent:
            kind, _, record_id = parent.partition(":")
            if not record_id.isdigit():
                raise click.ClickException("--parent must be TYPE:ID, e.g. Account:12")
            draft.parent_type, draft.parent_id = kind, int(record_id)
        try:
            email = drafts.save(session, services.blobs, user, draft)
            handed = outbox.submit(session, services.blobs, user, email, now=utcnow())
        except (DraftError, SendRefused) as exc:
            raise click.ClickException(str(exc)) from exc
    enqueue_send(
        mail_queue(services.redis, services.config.queue_name), handed.entry_id, handed.due_at
    )
    result = {
        "id": handed.email_id,
        "outbox_id": handed.entry_id,
        "status": "queued",
        "due_at": handed.due_at.isoformat(),
        "message_id": f"<{handed.message_id}>",
    }
    click.echo(json.dumps(result) if as_json else _line(result))


def _answering(session, user, draft: DraftInput, email_id: int | None) -> None:
    if not email_id:
        return
    email = session.get(Email, email_id)
    if email is None:
        raise click.ClickException(f"no mail {email_id}")
    answer = replies.reply(session, user, email, False, "")
    draft.in_reply_to, draft.references = answer.in_reply_to, answer.references
    draft.parent_type, draft.parent_id = email.parent_type, email.parent_id


def _upload(path: Path) -> Upload:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Upload(path.name, kind, path.read_bytes())


def _line(result: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in result.items())


@click.command("run")
@with_appcontext
@click.option("--json", "as_json", is_flag=True)
def run(as_json):
    """Deliver what is due now in this process (as a burst worker would)."""
    services = app_services()
    outcomes = deliver_all_due(services)
    for o in outcomes:
        row = {"email_id": o.email_id, "outbox_id": o.entry_id, "state": o.state, "reply": o.reply,
               "refused": [{"address": a, "code": c, "reply": r} for a, c, r in o.refused]}  # fmt: skip
        click.echo(json.dumps(row) if as_json else _line(row))
    if not outcomes and not as_json:
        click.echo("nothing due")


@click.command("list")
@with_appcontext
@click.option("--json", "as_json", is_flag=True)
def list_rows(as_json):
    """Every outbox row: its mail, state, due time (or held by a paused mass mail), attempts,
    last reply, refused recipients."""
    services = app_services()
    with services.session() as session:
        for entry in outbox.rows(session):
            row = {
                "outbox_id": entry.id,
                "email_id": entry.email_id,
                "state": entry.state,
                "attempts": entry.attempts,
                "due_at": _iso(outbox.shown_due(entry)),
                "held": outbox.is_held(entry),
                "last_reply": entry.last_reply,
                "refused": [
                    {"address": r.address, "code": r.code, "reply": r.reply}
                    for r in entry.recipients
                    if r.state == "refused"
                ],
            }
            click.echo(json.dumps(row) if as_json else _listed(row))


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def _listed(row: dict) -> str:
    """The text line: a held row says so where the due time goes (it has none)."""
    held = row.pop("held")
    row["due_at"] = outbox_rows.HELD_LABEL if held else row["due_at"] or "-"
    return _line(row)


@click.command("send-test")
@with_appcontext
@click.option("--account", "account_id", type=int, required=True)
@click.option("--to", "to", required=True)
def send_test(account_id, to):
    """Send a test mail through one account's SMTP server; prints the server's reply."""
    services = app_services()
    with services.session() as session:
        account = session.get(MailAccount, account_id)
        if account is None or not account.smtp_host:
            raise click.ClickException(f"account {account_id} has no SMTP settings")
        try:
            click.echo(send_test_mail(services, session, account, to))
        except MailError as exc:
            words = getattr(exc, "reply", None) or getattr(exc, "plain", None) or str(exc)
            raise click.ClickException(words) from exc
