"""What the benches share: a throw-away PostgreSQL database, a worker's environment, and the
bare imap-tools fetch every import figure is compared with. Not a test module."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm.config import Config
from tests.support.dovecot import PASSWORD, Dovecot


def fresh_pg_database(server_url: str, prefix: str = "crm_bench") -> tuple[str, Callable]:
    """A new database on `server_url` for one run, and the function that drops it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


def worker_env(config: Config) -> dict:
    """The environment a `python -m workers.worker` process needs to work on `config`."""
    return dict(
        os.environ,
        DATABASE_URL=config.database_url,
        REDIS_URL=config.redis_url,
        CRM_QUEUE=config.queue_name,
        CRM_INSTANCE_DIR=str(config.instance_dir),
        CRM_DATA_DIR=str(config.data_dir),
        SECRET_KEY=config.secret_key,
        CRM_MAIL_HOST_ALLOWLIST=config.mail_host_allowlist,
    )


def bare_imap_tools(server: Dovecot, boxes: Iterable[str]) -> dict:
    """Fetch and parse every INBOX mail of `boxes` with imap-tools alone, reading each part."""
    from imap_tools import MailBoxUnencrypted

    started, count = time.perf_counter(), 0
    for box in boxes:
        with MailBoxUnencrypted(server.host, server.port).login(
            box, PASSWORD, initial_folder=None
        ) as mailbox:
            mailbox.folder.set("INBOX", readonly=True)
            for msg in mailbox.fetch(mark_seen=False, bulk=200):
                _ = (msg.subject, msg.from_, msg.to, msg.date, msg.text, msg.html)
                for att in msg.attachments:
                    _ = (att.filename, att.content_type, att.payload)
                count += 1
    seconds = time.perf_counter() - started
    return {"messages": count, "seconds": round(seconds, 2), "rate": round(count / seconds, 1)}
