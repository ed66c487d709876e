"""0013: blob files move into the database on PostgreSQL (and back on downgrade), stay files on
SQLite; mail without a Message-ID takes the whole message's hash as its identity. Existing data
stays readable through the store the app then uses."""

from __future__ import annotations

import hashlib

from alembic import command
from sqlalchemy import inspect, text

from crm import storage
from crm.db import make_engine
from crm.migrations import alembic_config
from tests.support import databases
from tests.support.databases import create_database

NOW = "2026-01-01 00:00:00"
WITH_ID = b"Message-ID: <kept@x>\r\nSubject: kept\r\n\r\nbody"
WITHOUT_ID = b"From: alerts@bank.example\r\nSubject: code\r\n\r\nYour code is 1111."
PDF = b"%PDF-1.4 contract"
GONE = "0" * 64  # named by a row, its file lost before the upgrade


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _migrate(url: str, data_dir, revision: str, down: bool = False) -> None:
    cfg = alembic_config(url)
    cfg.attributes["data_dir"] = str(data_dir)
    (command.downgrade if down else command.upgrade)(cfg, revision)


def _seed(conn, files: storage.BlobStore) -> None:
    for blob in (WITH_ID, WITHOUT_ID, PDF):
        files.put(blob)
    files.sync()
    old_identity = "hash:" + _sha(WITHOUT_ID.split(b"\r\n\r\n")[0])
    for id_, identity, message_id, raw in (
        (1, "kept@x", "kept@x", _sha(WITH_ID)),
        (2, old_identity, None, _sha(WITHOUT_ID)),
        (3, "lost@x", "lost@x", GONE),
    ):
        conn.execute(
            text(
                'INSERT INTO emails (id, identity, message_id, raw_sha256, "references", '
                "subject, from_name, body_text, body_html, snippet, address_text, status, "
                "has_attachments, is_auto_reply, is_bounce, size, problems, created_at) VALUES "
                "(:id, :identity, :mid, :raw, '[]', '', '', '', '', '', '', 'Archived', "
                "false, false, false, 0, '[]', :now)"
            ),
            {"id": id_, "identity": identity, "mid": message_id, "raw": raw, "now": NOW},
        )
    conn.execute(
        text(
            "INSERT INTO attachments (id, email_id, position, filename, content_type, size, "
            "sha256, is_inline) VALUES (1, 1, 0, 'c.pdf', 'application/pdf', :size, :sha, false)"
        ),
        {"size": len(PDF), "sha": _sha(PDF)},
    )


def test_0013_moves_blob_files_into_postgresql_and_back_and_keeps_them_on_sqlite(tmp_path):
    url, drop = create_database(tmp_path)
    engine = make_engine(url)
    data_dir = tmp_path / "data"
    files = storage.BlobStore(data_dir)
    on_postgresql = databases.backend() == "postgresql"
    try:
        _migrate(url, data_dir, "0012")
        with engine.begin() as conn:
            _seed(conn, files)
        _migrate(url, data_dir, "0013")
        with engine.connect() as conn:
            identities = conn.execute(text("SELECT id, identity FROM emails ORDER BY id")).all()
            in_table = dict(conn.execute(text("SELECT sha256, data FROM blobs")).tuples().all())
        assert [tuple(r) for r in identities] == [
            (1, "kept@x"),
            (2, "hash:" + _sha(WITHOUT_ID)),  # what the import now computes for it
            (3, "lost@x"),
        ]
        kind = storage.store_kind("", url)
        assert kind == (storage.DATABASE if on_postgresql else storage.FILES)
        store = storage.open_store(kind, tmp_path / "empty-elsewhere", engine)
        if not on_postgresql:
            assert in_table == {}
            store = storage.open_store(kind, data_dir, engine)
        else:
            assert {s: bytes(d) for s, d in in_table.items()} == {
                _sha(b): b for b in (WITH_ID, WITHOUT_ID, PDF)
            }
        for blob in (WITH_ID, WITHOUT_ID, PDF):
            assert store.get(_sha(blob)) == blob
        assert not store.exists(GONE)

        # Back down: on PostgreSQL the table's blobs are written out as files again.
        for blob in (WITH_ID, PDF):
            files.delete(_sha(blob))
        _migrate(url, data_dir, "0012", down=True)
        assert "blobs" not in inspect(engine).get_table_names()
        back = storage.BlobStore(data_dir)
        assert back.exists(_sha(WITHOUT_ID))
        assert back.exists(_sha(WITH_ID)) == on_postgresql
        if on_postgresql:
            assert back.get(_sha(WITH_ID)) == WITH_ID and back.get(_sha(PDF)) == PDF
        _migrate(url, data_dir, "head")
    finally:
        engine.dispose()
        drop()


def test_0013_leaves_blobs_in_files_when_told_so(tmp_path):
    url, drop = create_database(tmp_path)
    engine = make_engine(url)
    data_dir = tmp_path / "data"
    try:
        _migrate(url, data_dir, "0012")
        with engine.begin() as conn:
            _seed(conn, storage.BlobStore(data_dir))
        cfg = alembic_config(url)
        cfg.attributes.update(data_dir=str(data_dir), blob_store="files")
        command.upgrade(cfg, "0013")
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM blobs")) == 0
        assert storage.BlobStore(data_dir).get(_sha(PDF)) == PDF
    finally:
        engine.dispose()
        drop()
