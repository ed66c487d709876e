"""Settings read from the environment (and a `.env` file), one typed field per setting."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv


def _instance_dir() -> Path:
    return Path(
        os.environ.get("CRM_INSTANCE_DIR", Path(__file__).resolve().parent.parent / "instance")
    )


class StartupError(Exception):
    """The app cannot start with this configuration; the message says why, in one line."""


# Hosting platforms hand out postgres:// and postgresql:// URLs; SQLAlchemy reads the first as
# an unknown dialect and the second as psycopg2, which is not installed. Both mean psycopg 3.
_POSTGRES_SCHEMES = ("postgres://", "postgresql://")


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL for a DATABASE_URL, PostgreSQL always through psycopg 3."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


@dataclass
class Config:
    # Where the SQLite file, the secrets key and other local state live by default.
    instance_dir: Path = field(default_factory=_instance_dir)
    # SQLAlchemy URL; SQLite in the instance folder unless told otherwise.
    database_url: str = ""
    # Redis for RQ jobs, the scheduler and the login rate limiter.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Signs sessions and CSRF tokens; generated into the instance folder when unset.
    secret_key: str = ""
    # Raw mail and attachments, content-addressed (the file blob store).
    data_dir: Path = Path()
    # Where blobs live: "database" (every machine reaches them; the default on PostgreSQL) or
    # "files" under data_dir (one machine; the default on SQLite). Empty: by the database.
    blob_store: str = ""
    # Key for secrets at rest (32 bytes, urlsafe base64); instance file when unset.
    secrets_key: str = ""
    # host:port entries that may resolve to private or loopback addresses (tests, on-site servers).
    mail_host_allowlist: str = ""
    # Extra CA certificates (PEM file) trusted for mail servers, e.g. an on-site CA.
    mail_ca_file: str = ""
    # Limit on login attempts per client address.
    login_rate_limit: str = "10 per minute"
    # Name of the RQ queue that carries fetch and send jobs.
    queue_name: str = "mail"
    # A fetch that has not reported progress (one per batch) for this long lost its worker:
    # another may take the account over. Longer than a batch can take; tests shorten it.
    sync_lease_seconds: int = 300
    # Send session and remember cookies over HTTPS only; turn on behind TLS (off for `make run`).
    secure_cookies: bool = False
    testing: bool = False

    def __post_init__(self) -> None:
        self.instance_dir = Path(self.instance_dir)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.instance_dir / 'crm.sqlite3'}"
        self.database_url = sqlalchemy_url(self.database_url)
        if self.data_dir == Path():
            self.data_dir = self.instance_dir / "data"
        self.data_dir = Path(self.data_dir)

    @classmethod
    def from_env(cls, **overrides) -> Config:
        """Build the configuration from the environment; keyword arguments win."""
        load_dotenv(override=False)
        env = os.environ
        values = {
            "instance_dir": _instance_dir(),
            "database_url": env.get("DATABASE_URL", ""),
            "redis_url": env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "secret_key": env.get("SECRET_KEY", ""),
            "data_dir": Path(env["CRM_DATA_DIR"]) if env.get("CRM_DATA_DIR") else Path(),
            "blob_store": env.get("CRM_BLOB_STORE", "").strip().lower(),
            "secrets_key": env.get("CRM_SECRETS_KEY", ""),
            "mail_host_allowlist": env.get("CRM_MAIL_HOST_ALLOWLIST", ""),
            "mail_ca_file": env.get("CRM_MAIL_CA_FILE", ""),
            "login_rate_limit": env.get("CRM_LOGIN_RATE_LIMIT", "10 per minute"),
            "queue_name": env.get("CRM_QUEUE", "mail"),
            "sync_lease_seconds": int(env.get("CRM_SYNC_LEASE_SECONDS") or 300),
            "secure_cookies": env.get("CRM_SECURE_COOKIES", "").lower()
            in ("1", "true", "yes", "on"),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def sync_lease(self) -> timedelta:
        return timedelta(seconds=self.sync_lease_seconds)

    def read_or_create_instance_secret(self, name: str, make) -> str:
        """A secret kept in a 0600 file of the instance folder, created on first use."""
        path = self.instance_dir / name
        if path.exists():
            return path.read_text().strip()
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        value = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
