"""Mail accounts on the test Dovecot, raw test messages, and running a sync to the end."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import format_datetime, make_msgid

from crm.accounts.manage import create_account
from crm.inbound.sync import Budget, SyncSummary, sync_account
from tests.support.dovecot import PASSWORD

LONG_AGO = date(2000, 1, 1)


def make_account(
    services,
    user_id,
    imap_server,
    imap_user,
    *,
    folders=("INBOX",),
    since=LONG_AGO,
    email=None,
    is_group=False,
    **kwargs,
) -> int:
    """A mail account of `user_id` reading `imap_user`'s mailbox on the test Dovecot."""
    with services.session() as session:
        account = create_account(
            session,
            services.secret_box,
            user_id=user_id,
            email=email or f"{imap_user}@example.com",
            host=imap_server.host,
            port=imap_server.port,
            security="none",
            login=imap_user,
            password=PASSWORD,
            folders=list(folders),
            since=since,
            is_group=is_group,
            **{k: v for k, v in kwargs.items() if k in ("team_ids", "name", "add_all_team_users")},
        )
        for key, value in kwargs.items():
            if key not in ("team_ids", "name", "add_all_team_users"):
                setattr(account, key, value)
        return account.id


def fetch(services, account_id, batch_size=50, max_rounds=1000) -> SyncSummary:
    """Run syncs until the account is fully imported; the totals of all rounds."""
    total = SyncSummary()
    for _ in range(max_rounds):
        part = sync_account(services, account_id, Budget(batch_size=batch_size, max_batches=20))
        for key in ("seen", "imported", "duplicates", "skipped", "failed"):
            setattr(total, key, getattr(total, key) + getattr(part, key))
        total.error = part.error
        if part.error or part.done:
            total.done = part.done
            return total
    raise AssertionError("sync did not finish")


def raw_message(
    subject="Hello",
    from_="Sam Sender <sam@customer.example>",
    to="rep@example.com",
    body="Hello there.\n",
    message_id=None,
    date=None,
    cc=None,
    in_reply_to=None,
    references=None,
    headers=None,
) -> bytes:
    """A small, well-formed RFC 5322 message."""
    when = date or datetime.now(UTC)
    lines = [
        f"From: {from_}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: {message_id or make_msgid(domain='test.example')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if message_id is False:
        lines = [x for x in lines if not x.startswith("Message-ID")]
    if cc:
        lines.append(f"Cc: {cc}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()
