"""Crash safety: kill -9 at named points of the pipeline, and connections cut mid-transfer.
After each, a rerun leaves exactly the server's set of mail, with no duplicates."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from crm.inbound.faults import POINTS
from crm.models import Email, EmailLocation, EmailUserState, MailAccount
from tests.support.mailboxes import fetch, make_account, raw_message
from tests.support.proxy import CuttingProxy

N = 12


def _seed(imap_server, box, n=N):
    body = "Line of text for a body that is long enough to span several packets.\n" * 40
    imap_server.append_many(
        box,
        [
            raw_message(subject=f"c{i}", body=body, message_id=f"<c{i}@crash.example>")
            for i in range(n)
        ],
    )


def _assert_exactly_server_set(db, n=N):
    db.rollback()
    ids = list(db.scalars(select(Email.message_id)))
    assert sorted(ids) == sorted(f"c{i}@crash.example" for i in range(n))
    assert db.scalar(select(func.count()).select_from(EmailLocation)) == n
    assert db.scalar(select(func.count()).select_from(EmailUserState)) == n


def _cli_env(config):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=config.database_url,
        CRM_INSTANCE_DIR=str(config.instance_dir),
        CRM_DATA_DIR=str(config.data_dir),
        REDIS_URL=config.redis_url,
        SECRET_KEY=config.secret_key,
        CRM_MAIL_HOST_ALLOWLIST=config.mail_host_allowlist,
    )
    return env


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_at_each_point_then_rerun_imports_exactly_once(
    point, services, config, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    _seed(imap_server, box)
    account = make_account(services, uid, imap_server, box)
    env = _cli_env(config) | {"CRM_FAULT_CRASH_AT": point}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "app",
            "crm",
            "fetch",
            "--account",
            str(account),
            "--json",
        ],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    # The killed worker left its claim behind; a later sync takes over a stale claim.
    with services.session() as s:
        s.get(MailAccount, account).sync_claimed_at = None
    summary = fetch(services, account, batch_size=5)
    assert summary.error is None and summary.failed == 0
    _assert_exactly_server_set(db)


@pytest.mark.parametrize("cut_after", [40, 300, 2_000, 9_000, 30_000])
def test_connection_cut_at_byte_offsets_then_rerun_imports_exactly_once(
    cut_after, services, db, make_user, imap_server
):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    _seed(imap_server, box)
    with CuttingProxy(imap_server.port, cut_after) as proxy:
        account = make_account(services, uid, imap_server, box, imap_port=proxy.port)
        broken = fetch(services, account, batch_size=4)
    assert broken.error is not None
    with services.session() as s:
        s.get(MailAccount, account).imap_port = imap_server.port
    summary = fetch(services, account, batch_size=4)
    assert summary.error is None
    _assert_exactly_server_set(db)
