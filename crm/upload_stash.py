"""Uploads kept between the steps of a wizard (CSV import: upload, map columns, report).

Files live under the data folder, one folder per user, named by a random token; a token is
redeemable only by the user who uploaded, and anything older than a day is swept away.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

MAX_AGE_SECONDS = 24 * 3600


class StashError(ValueError):
    pass


class UploadStash:
    def __init__(self, directory: Path):
        self.root = Path(directory) / "uploads"

    def put(self, user_id: int, data: bytes) -> str:
        """Keep an upload; returns its token."""
        folder = self.root / str(user_id)
        folder.mkdir(parents=True, exist_ok=True)
        self._sweep(folder)
        token = secrets.token_hex(16)
        (folder / f"{token}.data").write_bytes(data)
        return token

    def get(self, user_id: int, token: str) -> bytes:
        return self._read(self._path(user_id, token, "data"))

    def put_report(self, user_id: int, token: str, report: dict) -> None:
        self._path(user_id, token, "json").write_text(json.dumps(report))

    def get_report(self, user_id: int, token: str) -> dict:
        return json.loads(self._read(self._path(user_id, token, "json")))

    def discard(self, user_id: int, token: str) -> None:
        self._path(user_id, token, "data").unlink(missing_ok=True)

    def _path(self, user_id: int, token: str, suffix: str) -> Path:
        # The token becomes a file name, so it must be exactly what put() hands out.
        if not re.fullmatch(r"[0-9a-f]{32}", token or ""):
            raise StashError("the upload has expired; upload the file again")
        return self.root / str(user_id) / f"{token}.{suffix}"

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StashError("the upload has expired; upload the file again") from None

    @staticmethod
    def _sweep(folder: Path) -> None:
        for old in folder.iterdir():
            if time.time() - old.stat().st_mtime > MAX_AGE_SECONDS:
                old.unlink(missing_ok=True)
