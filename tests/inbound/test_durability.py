"""A committed row never names bytes that are not durable (issue 14).

Every fsync, syncfs and rename is recorded (also in the forked parse helper: into a file, one
line per call), and at every commit of the import the rows about to be committed are checked:
each blob they name is in the database already (the database store), or (the file store) its
file was fsynced and then its directory, or its file was renamed to its address between two
syncfs of the filesystem. Both ways of the file store are run, and the check is shown to catch
an import that leaves the sync out.
"""

from __future__ import annotations

import os
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import event, select, text

from crm import storage
from crm.models import Attachment, Email
from tests.support import databases
from tests.support.mailboxes import fetch, make_account

KINDS = ["files", "database"] if databases.backend() == "postgresql" else ["files"]


def mail_with_attachment(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = "Sam <sam@customer.example>", "rep@example.com"
    msg["Subject"], msg["Message-ID"] = f"Invoice {i}", f"<inv{i}@durable.example>"
    msg.set_content(f"Invoice number {i} attached.\n")
    msg.add_attachment(f"%PDF-1.4 invoice {i}".encode(), "application", "pdf", filename=f"{i}.pdf")
    return msg.as_bytes(policy=policy.SMTP)  # CRLF, as the server keeps it


@pytest.fixture(params=KINDS)
def config(request, config):
    config.blob_store = request.param
    return config


class FsyncLog:
    """os.fsync, os.replace, the store's syncfs and its put wrapped: each call appends a line
    to a file (forked children too): `fsync PATH`, `rename SRC DST`, `syncfs`, `put SHA`."""

    def __init__(self, path: Path, monkeypatch, really: bool = True):
        self.path = path
        real_fsync, real_replace, real_syncfs = os.fsync, os.replace, storage.sync_filesystem
        real_put = storage.BlobStore.put

        def fsync(fd):
            if really:
                real_fsync(fd)
            self._log(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")

        def replace(src, dst):
            real_replace(src, dst)
            self._log(f"rename {src} {dst}")

        def syncfs(directory):
            if really:
                real_syncfs(directory)
            self._log("syncfs")

        def put(store, data):
            sha = real_put(store, data)
            self._log(f"put {sha}")
            return sha

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(storage.BlobStore, "put", put)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(storage, "sync_filesystem", syncfs)

    def _log(self, line: str) -> None:
        out = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(out, f"{line}\n".encode())  # one write per line with O_APPEND: whole lines
        finally:
            os.close(out)

    def order(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []


def _named_blobs(connection) -> set[str]:
    """Every blob the rows of this transaction name (uncommitted ones included)."""
    raw = connection.execute(select(Email.raw_sha256).where(Email.raw_sha256.is_not(None)))
    return set(raw.scalars()) | set(connection.execute(select(Attachment.sha256)).scalars())


def _not_durable(services, log: FsyncLog, shas: set[str]) -> list[str]:
    if services.blobs.kind == storage.DATABASE:
        with services.engine.connect() as other:  # what a crash right now would keep
            stored = set(other.execute(text("SELECT sha256 FROM blobs")).scalars())
        return sorted(shas - stored)
    order = log.order()
    return sorted(sha for sha in shas if not _file_durable(services.blobs.path(sha), order))


def _file_durable(target: Path, order: list[str]) -> bool:
    if not target.exists():
        return False
    fsynced = [i for i, line in enumerate(order) if line.startswith(f"fsync {target.parent}/.")]
    file_at = [i for i in fsynced if Path(order[i][6:]).name.startswith(f".{target.name}.")]
    dir_at = [i for i, line in enumerate(order) if line == f"fsync {target.parent}"]
    if file_at and dir_at and max(dir_at) > min(file_at):
        return True
    # Or: written, then a syncfs, then renamed to its address, then a syncfs.
    renamed = [i for i, line in enumerate(order) if line.endswith(f" {target}")]
    puts = [i for i, line in enumerate(order) if line == f"put {target.name}"]
    syncs = [i for i, line in enumerate(order) if line == "syncfs"]
    for r in renamed:
        written = max((p for p in puts if p < r), default=None)
        if written is not None and any(written < i < r for i in syncs) and max(syncs) > r:
            return True
    return False


@pytest.fixture
def commit_checks(services, tmp_path, monkeypatch):
    """Before each commit's COMMIT goes to the database: the blobs its rows name that are not
    durable (the importer's session commits through the engine's connection)."""
    log = FsyncLog(tmp_path / "fsync.log", monkeypatch)
    found: list[list[str]] = []

    def check(connection):
        found.append(_not_durable(services, log, _named_blobs(connection)))

    event.listen(services.engine, "commit", check)
    yield found
    event.remove(services.engine, "commit", check)


def _import(services, make_user, imap_server, n=24):
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append_many(box, [mail_with_attachment(i) for i in range(n)])
    account = make_account(services, uid, imap_server, box)
    # Several batches in one job: the helper process parses (and writes file blobs) in parallel.
    return fetch(services, account, batch_size=8)


@pytest.mark.parametrize("sync_way", ["syncfs", "each file"])
def test_every_commit_of_an_import_names_only_durable_blobs(
    services, db, make_user, imap_server, commit_checks, monkeypatch, sync_way
):
    if sync_way == "syncfs" and storage._SYNCFS is None:
        pytest.skip("syncfs is Linux's")
    # A batch here has 16 blobs (8 mails, an attachment each): either side of the threshold.
    monkeypatch.setattr(storage, "SYNCFS_FROM", 1 if sync_way == "syncfs" else 10**6)
    summary = _import(services, make_user, imap_server)
    assert summary.imported == 24
    assert len(db.scalars(select(Attachment)).all()) == 24
    assert commit_checks and all(not_durable == [] for not_durable in commit_checks)
    email = db.scalars(select(Email).where(Email.subject == "Invoice 3")).one()
    assert b"Invoice number 3" in services.blobs.get(email.raw_sha256)


@pytest.mark.parametrize("config", ["files"], indirect=True)
def test_the_check_catches_an_import_whose_blobs_are_not_fsynced(
    services, make_user, imap_server, commit_checks, monkeypatch
):
    """The blob files renamed to their addresses but never synced, as before issue 14."""
    monkeypatch.setattr(storage, "_fsync_file", lambda path: None)
    monkeypatch.setattr(storage, "_fsync_dir", lambda path: None)
    monkeypatch.setattr(storage, "sync_filesystem", lambda directory: None)
    _import(services, make_user, imap_server, n=10)
    assert any(not_durable for not_durable in commit_checks)


def test_a_file_cut_short_by_a_crash_is_written_again(services, db, make_user, imap_server):
    """A blob file of the right name but not the whole content (written before this store,
    then a power cut) is not taken for the blob."""
    if services.blobs.kind != storage.FILES:
        pytest.skip("the file store")
    raw = mail_with_attachment(1)
    target = services.blobs.path(storage.digest_of(raw))
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    uid = make_user("rep", ["rep@example.com"])
    box = imap_server.new_user()
    imap_server.append(box, raw)
    fetch(services, make_account(services, uid, imap_server, box))
    email = db.scalars(select(Email)).one()
    assert email.raw_sha256 == storage.digest_of(raw)
    assert services.blobs.get(email.raw_sha256) == raw
