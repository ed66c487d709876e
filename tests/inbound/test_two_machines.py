"""One blob store every machine sees (issue 14): mail imported by one process is served, raw
source and attachment, by a web process whose CRM_DATA_DIR is another, empty folder, as on
another machine. Where the database is PostgreSQL the blobs live in it by default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from crm.models import Attachment, Email
from crm.secrets import new_key
from tests.support import databases
from tests.support.dovecot import free_port
from tests.support.mailboxes import make_account

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    databases.backend() != "postgresql",
    reason="SQLite is one machine: its blobs stay files in CRM_DATA_DIR",
)


def _mail() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = "Sam <sam@customer.example>", "rep@example.com"
    msg["Subject"], msg["Message-ID"] = "Contract", "<contract@machines.example>"
    msg.set_content("The signed contract is attached.\n")
    msg.add_attachment(b"%PDF-1.4 signed", "application", "pdf", filename="contract.pdf")
    return msg.as_bytes(policy=policy.SMTP)


def _env(config, data_dir: Path) -> dict:
    """A process of its own machine: the shared database, Redis and keys, its own folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        DATABASE_URL=config.database_url,
        REDIS_URL=config.redis_url,
        SECRET_KEY=config.secret_key,
        CRM_SECRETS_KEY=config.read_or_create_instance_secret("secrets.key", new_key),
        CRM_INSTANCE_DIR=str(data_dir.parent / "instance"),
        CRM_DATA_DIR=str(data_dir),
        CRM_MAIL_HOST_ALLOWLIST=config.mail_host_allowlist,
    )
    return env


def _flask(*args) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


@pytest.fixture
def web_on_another_machine(config, tmp_path):
    """`flask run` on a free loopback port with an empty data folder of its own."""
    data_dir = tmp_path / "web-machine" / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen(
        _flask("run", "--host", "127.0.0.1", "--port", str(port)),
        env=_env(config, data_dir),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/login", timeout=2)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        yield base, data_dir
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def _signed_in(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = browser.post(
        f"{base}/login",
        data={"username": username, "password": "password123", "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303, response.text[:500]
    return browser


def test_mail_imported_on_one_machine_is_served_by_the_web_process_of_another(
    services, config, db, make_user, imap_server, tmp_path, web_on_another_machine
):
    rep = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    raw = _mail()
    imap_server.append(box, raw)
    account = make_account(services, rep, imap_server, box)
    worker_data = tmp_path / "worker-machine" / "data"
    fetched = subprocess.run(
        _flask("crm", "fetch", "--account", str(account), "--json"),
        env=_env(config, worker_data),
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    email = db.scalars(select(Email)).one()
    attachment = db.scalars(select(Attachment)).one()
    base, web_data = web_on_another_machine
    browser = _signed_in(base, "rep")
    original = browser.get(f"{base}/mail/{email.id}/original", timeout=10)
    assert original.status_code == 200
    assert original.content == raw
    pdf = browser.get(f"{base}/mail/{email.id}/attachments/{attachment.id}", timeout=10)
    assert pdf.status_code == 200
    assert pdf.content == b"%PDF-1.4 signed"
    # Neither machine's folder holds them: the database does.
    assert not any(p.is_file() for p in web_data.rglob("*"))
    assert not (worker_data / "blobs").exists()
