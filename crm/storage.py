"""Content-addressed blob stores for raw mail and attachments.

Two stores with one interface (put / put_many / get / exists / delete / sync):

- `BlobStore`, files under CRM_DATA_DIR: one machine, no set-up (the SQLite default).
- `DatabaseBlobStore`, the `blobs` table: every worker and web process that reaches the
  database reads every blob (the PostgreSQL default).

The rule both keep: a committed row never points at bytes that are not durable. The file store
writes each blob to a temporary name and makes the batch durable in `sync()`: the files' bytes,
then their renames to their addresses (on Linux one `syncfs` of the store's filesystem for each,
elsewhere an fsync of each file and of each directory touched); the services call `sync()`
before every commit of their sessions, and the importer once per batch before its commit. So a
file at its address is always whole, and a row that names it is committed only after it is.
The database store commits a batch of blobs in one transaction of its own before it returns.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from crm.models.blobs import Blob

FILES, DATABASE = "files", "database"
KINDS = (FILES, DATABASE)

# Where syncfs is missing: fsyncs issued together let the filesystem journal commit them as
# one group, so a batch pays about one journal commit instead of one per file.
_SYNC_THREADS = 16


def _load_syncfs():
    """libc's syncfs(2) on Linux, else None. One call makes everything written to a filesystem
    durable: a batch of hundreds of blobs in as many directories costs two calls instead of a
    file and a directory fsync for each (measured: 15-25 ms against 90-250 ms per 300 blobs)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()
# Smaller batches (a web request's upload) fsync their own files: syncfs also flushes whatever
# else is pending on the filesystem, which costs more than a few files when a database shares it.
SYNCFS_FROM = 16


def sync_filesystem(directory: Path) -> None:
    """syncfs(2) of the filesystem holding `directory`: its data and metadata are on disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(directory))
    finally:
        os.close(fd)


def store_kind(setting: str, database_url: str) -> str:
    """Which store a configuration means: the setting, else the database on PostgreSQL and
    files on SQLite (ValueError for a setting that cannot work)."""
    on_postgresql = database_url.startswith("postgresql")
    if not setting:
        return DATABASE if on_postgresql else FILES
    if setting not in KINDS:
        raise ValueError(f"CRM_BLOB_STORE must be one of {', '.join(KINDS)}, not {setting!r}")
    if setting == DATABASE and not on_postgresql:
        # A blob's own transaction would wait for SQLite's single writer: the caller's.
        raise ValueError("CRM_BLOB_STORE=database needs PostgreSQL; SQLite keeps blobs in files")
    return setting


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs as files under `root`, durable once `sync()` has returned."""

    kind = FILES

    def __init__(self, root: Path):
        self.root = Path(root)
        self._made_dirs: set[Path] = set()  # an import writes thousands of blobs into few dirs
        self._lock = threading.Lock()  # web threads share one store
        self._pending: dict[Path, Path] = {}  # address -> temporary file written, not yet synced
        self._new_dirs: set[Path] = set()  # made since the last sync: their parents need a sync

    def path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Write bytes once under their SHA-256 (durable at the next `sync()`); the hash."""
        digest = digest_of(data)
        target = self.path(digest)
        with self._lock:
            if target in self._pending or _whole(target, len(data)):
                return digest
        self._make_dir(target.parent)
        tmp = target.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        with self._lock:
            if target in self._pending:  # another thread wrote it meanwhile
                tmp.unlink(missing_ok=True)
            else:
                self._pending[target] = tmp
        return digest

    def put_many(self, blobs: list[bytes]) -> list[str]:
        return [self.put(data) for data in blobs]

    def sync(self) -> int:
        """Make every blob written since the last sync durable at its address; how many."""
        with self._lock:
            pending, self._pending = self._pending, {}
            new_dirs, self._new_dirs = self._new_dirs, set()
        if not pending and not new_dirs:
            return 0
        if _SYNCFS is not None and len(pending) >= SYNCFS_FROM:
            self._sync_filesystem_twice(pending)
        else:
            _sync_each(pending, new_dirs)
        return len(pending)

    def _sync_filesystem_twice(self, pending: dict[Path, Path]) -> None:
        sync_filesystem(self.root)  # the bytes, under their temporary names
        for target, tmp in pending.items():
            os.replace(tmp, target)
        sync_filesystem(self.root)  # the renames, and the directories made for them

    def get(self, sha256: str) -> bytes:
        target = self.path(sha256)
        with self._lock:
            tmp = self._pending.get(target)
        return (tmp or target).read_bytes()

    def exists(self, sha256: str) -> bool:
        target = self.path(sha256)
        with self._lock:
            if target in self._pending:
                return True
        return target.exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def _make_dir(self, directory: Path) -> None:
        if directory in self._made_dirs:
            return
        levels = (self.root, directory.parent.parent, directory.parent, directory)
        missing = [d for d in levels if not d.is_dir()]
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._new_dirs.update(missing)
            self._made_dirs.add(directory)


def _whole(target: Path, size: int) -> bool:
    """Stored already, and not a file a crash cut short (blobs written before this store
    synced them could be)."""
    try:
        return target.stat().st_size == size
    except FileNotFoundError:
        return False


def _sync_each(pending: dict[Path, Path], new_dirs: set[Path]) -> None:
    """fsync each file, rename it to its address, fsync each directory touched."""
    with ThreadPoolExecutor(min(_SYNC_THREADS, len(pending) or 1)) as pool:
        list(pool.map(_fsync_file, pending.values()))
        for target, tmp in pending.items():
            os.replace(tmp, target)
        dirs = {t.parent for t in pending} | {d.parent for d in new_dirs}
        list(pool.map(_fsync_dir, sorted(dirs)))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DatabaseBlobStore:
    """Blobs in the `blobs` table, each put committed in a transaction of its own before it
    returns (so before any row that names it); `put_many` commits a batch at once."""

    kind = DATABASE

    def __init__(self, engine: Engine):
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert(Blob.__table__).on_conflict_do_nothing(
            index_elements=["sha256"]
        )

    def put(self, data: bytes) -> str:
        return self.put_many([data])[0]

    def put_many(self, blobs: list[bytes]) -> list[str]:
        """Store a batch of blobs in one transaction; their hashes, in order."""
        digests = [digest_of(data) for data in blobs]
        rows = {d: {"sha256": d, "size": len(b), "data": b} for d, b in zip(digests, blobs)}
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self._insert, list(rows.values()))
        return digests

    def sync(self) -> int:
        return 0  # every put is committed already

    def get(self, sha256: str) -> bytes:
        with self.engine.connect() as conn:
            data = conn.scalar(select(Blob.data).where(Blob.sha256 == sha256))
        if data is None:
            raise FileNotFoundError(f"blob {sha256} is not in the database")
        return bytes(data)

    def exists(self, sha256: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(Blob.size).where(Blob.sha256 == sha256)) is not None

    def delete(self, sha256: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(Blob).where(Blob.sha256 == sha256))


Blobs = BlobStore | DatabaseBlobStore  # what callers hold: either store, one interface


def open_store(kind: str, data_dir: Path, engine: Engine) -> Blobs:
    return DatabaseBlobStore(engine) if kind == DATABASE else BlobStore(data_dir)
