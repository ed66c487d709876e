"""The app's long-lived services built from a Config: database, blobs, secrets, Redis.

Both the web app and the workers build one of these; nothing here imports Flask or RQ.
"""

from __future__ import annotations

import contextlib
import secrets as _secrets
from functools import cached_property

from redis import Redis
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from crm.config import Config, StartupError
from crm.db import make_engine, make_session_factory
from crm.secrets import SecretBox, new_key
from crm.storage import open_store, store_kind


def _engine(url: str):
    try:
        return make_engine(url)
    except (ArgumentError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
        raise StartupError(f"DATABASE_URL {_shown(url)} cannot be used: {exc}") from exc


def _shown(url: str) -> str:
    """The URL without its password, for an error message."""
    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return "(not a URL)"


def _blob_store_kind(config: Config) -> str:
    try:
        return store_kind(config.blob_store, config.database_url)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc


class Services:
    def __init__(self, config: Config):
        self.config = config
        self.engine = _engine(config.database_url)
        self.Session = make_session_factory(self.engine)
        # Domain code that signs or verifies (thread tokens) reads the key lazily from its session.
        self.Session.configure(info={"secret_key": self.secret_key})
        self.blobs = open_store(_blob_store_kind(config), config.data_dir, self.engine)
        # A committed row never names bytes that are not durable: blobs written since the last
        # commit are synced before the next one, whoever wrote them (web, worker, command).
        event.listen(self.Session, "before_commit", lambda _session: self.blobs.sync())

    @cached_property
    def secret_box(self) -> SecretBox:
        key = self.config.secrets_key or self.config.read_or_create_instance_secret(
            "secrets.key", new_key
        )
        return SecretBox(key)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.config.redis_url)

    @contextlib.contextmanager
    def session(self):
        """A session that commits on success and rolls back on error."""
        session: Session = self.Session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def secret_key(self) -> str:
        return self.config.secret_key or self.config.read_or_create_instance_secret(
            "secret_key", lambda: _secrets.token_hex(32)
        )

    def dispose(self) -> None:
        self.engine.dispose()
