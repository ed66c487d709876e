"""The blob stores: which one a configuration means, and what each keeps (crm/storage.py)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from crm import storage
from crm.config import StartupError
from crm.services import Services
from tests.support import databases


@pytest.mark.parametrize(
    ("setting", "url", "kind"),
    [
        ("", "sqlite:///x.sqlite3", storage.FILES),
        ("", "postgresql+psycopg://h/db", storage.DATABASE),
        ("files", "postgresql+psycopg://h/db", storage.FILES),
        ("database", "postgresql+psycopg://h/db", storage.DATABASE),
    ],
)
def test_the_store_follows_the_database_unless_told(setting, url, kind):
    assert storage.store_kind(setting, url) == kind


@pytest.mark.parametrize("setting", ["s3", "database"])
def test_a_store_that_cannot_work_stops_the_app_with_the_reason(config, setting):
    if setting == "database" and databases.backend() == "postgresql":
        pytest.skip("the database store works on PostgreSQL")
    with pytest.raises(StartupError, match="CRM_BLOB_STORE"):
        Services(dataclasses.replace(config, blob_store=setting))


def test_a_file_blob_is_readable_at_once_and_at_its_address_after_the_sync(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    store = storage.BlobStore(tmp_path)
    sha = store.put(b"raw mail")
    assert sha == storage.digest_of(b"raw mail")
    assert store.get(sha) == b"raw mail" and store.exists(sha)
    assert not store.path(sha).exists() and synced == []  # not durable yet: not at its address
    assert store.put(b"raw mail") == sha and store.sync() == 1
    assert store.path(sha).read_bytes() == b"raw mail"
    # The file, its directory and the three directories made for it (and their parents).
    assert len(synced) == 1 + 4
    assert storage.BlobStore(tmp_path).get(sha) == b"raw mail"  # another process's store
    assert store.sync() == 0
    store.delete(sha)
    assert not store.exists(sha)


def test_the_services_sync_file_blobs_before_every_commit(services, db):
    if services.blobs.kind != storage.FILES:
        pytest.skip("the file store")
    sha = services.blobs.put(b"attachment")
    assert not services.blobs.path(sha).exists()
    db.commit()
    assert services.blobs.path(sha).read_bytes() == b"attachment"


@pytest.mark.skipif(databases.backend() != "postgresql", reason="the database store")
def test_a_database_blob_is_committed_when_put_returns(services):
    assert services.blobs.kind == storage.DATABASE
    shas = services.blobs.put_many([b"one", b"two", b"one"])
    other = storage.DatabaseBlobStore(services.engine)  # any connection, any machine
    assert [other.get(s) for s in shas] == [b"one", b"two", b"one"]
    assert other.exists(shas[1])
    other.delete(shas[1])
    assert not services.blobs.exists(shas[1])
    with pytest.raises(FileNotFoundError):
        services.blobs.get(shas[1])
