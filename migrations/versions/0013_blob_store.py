"""Blobs durable and reachable from every machine (issue 14)

The `blobs` table holds raw mail and attachments where the database is PostgreSQL (unless
CRM_BLOB_STORE=files): the upgrade copies the files under CRM_DATA_DIR that mail and attachment
rows name into it, the downgrade writes them back as files (the files are left in place by the
upgrade, so going back loses nothing either way). On SQLite blobs stay files.

Mail without a Message-ID is now identified by the hash of the whole message, which is the
hash its raw blob is stored under: its identity becomes "hash:" + raw_sha256. The downgrade
keeps the new identities (they stay unique; the old header hashes cannot be told from the
rows alone).

Revision ID: 0013
Revises: 0012
"""

import hashlib
import logging
import os
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

CHUNK = 200  # blobs per round trip: bounded memory whatever the mailbox size

blobs = sa.table(
    "blobs",
    sa.column("sha256", sa.String),
    sa.column("size", sa.Integer),
    sa.column("data", sa.LargeBinary),
)


def upgrade():
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.execute(
        "UPDATE emails SET identity = 'hash:' || raw_sha256 "
        "WHERE message_id IS NULL AND identity LIKE 'hash:%' AND raw_sha256 IS NOT NULL"
    )
    data_dir = _blobs_in_database()
    if data_dir is not None:
        _files_to_table(op.get_bind(), data_dir)


def downgrade():
    data_dir = _blobs_in_database()
    if data_dir is not None:
        _table_to_files(op.get_bind(), data_dir)
    op.drop_table("blobs")


def _blobs_in_database() -> Path | None:
    """The data folder when this database keeps the blobs (PostgreSQL, unless told files)."""
    if op.get_bind().dialect.name != "postgresql":
        return None
    data_dir, kind = _settings()
    return None if kind == "files" else data_dir


def _settings() -> tuple[Path, str]:
    """CRM_DATA_DIR and CRM_BLOB_STORE: given by the caller (tests), else the app's, else the
    environment's."""
    attributes = op.get_context().config.attributes
    if "data_dir" in attributes:
        return Path(attributes["data_dir"]), attributes.get("blob_store", "")
    try:
        from flask import current_app

        config = current_app.config["CRM_CONFIG"]
    except (RuntimeError, KeyError):
        from crm.config import Config

        config = Config.from_env()
    return Path(config.data_dir), config.blob_store


def _path(data_dir: Path, sha: str) -> Path:
    return data_dir / "blobs" / sha[:2] / sha[2:4] / sha


def _named_hashes(conn) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT raw_sha256 FROM emails WHERE raw_sha256 IS NOT NULL "
            "UNION SELECT sha256 FROM attachments"
        )
    )
    return sorted(rows.scalars())


def _files_to_table(conn, data_dir: Path) -> None:
    hashes, copied, missing = _named_hashes(conn), 0, []
    for start in range(0, len(hashes), CHUNK):
        rows = []
        for sha in hashes[start : start + CHUNK]:
            try:
                data = _path(data_dir, sha).read_bytes()
            except FileNotFoundError:
                missing.append(sha)
                continue
            if hashlib.sha256(data).hexdigest() != sha:
                missing.append(sha)  # a file cut short: not worth keeping under this name
                continue
            rows.append({"sha256": sha, "size": len(data), "data": data})
        if rows:
            conn.execute(blobs.insert(), rows)
            copied += len(rows)
    log.info("0013: %d blobs copied from %s into the database", copied, data_dir)
    if missing:
        log.warning("0013: %d named blobs not found whole under %s", len(missing), data_dir)


def _table_to_files(conn, data_dir: Path) -> None:
    hashes = list(conn.execute(sa.select(blobs.c.sha256).order_by(blobs.c.sha256)).scalars())
    touched: set[Path] = set()
    for start in range(0, len(hashes), CHUNK):
        chunk = hashes[start : start + CHUNK]
        rows = conn.execute(
            sa.select(blobs.c.sha256, blobs.c.data).where(blobs.c.sha256.in_(chunk))
        )
        for sha, data in rows:
            target = _path(data_dir, sha)
            if target.exists() and target.stat().st_size == len(data):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            touched.add(target.parent)
    # The table goes in this transaction: the files must be durable before it commits.
    for directory in sorted(touched | {d.parent for d in touched} | {data_dir / "blobs"}):
        if directory.is_dir():
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    log.info("0013: %d blobs written back to %s", len(hashes), data_dir)
