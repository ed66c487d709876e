"""Secrets at rest (mail passwords, OAuth tokens): AES-256-GCM bound to their row.

The associated data names the table, the row's random scope and the field, so a ciphertext
copied to another row or field fails to decrypt. The key lives outside the database.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"


class SecretError(Exception):
    pass


def new_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


class SecretBox:
    def __init__(self, key_b64: str):
        key = base64.urlsafe_b64decode(key_b64)
        if len(key) != 32:
            raise SecretError("the secrets key must be 32 bytes, urlsafe base64")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())

    def open(self, blob: bytes, bound_to: str) -> str:
        if not blob or blob[:1] != VERSION:
            raise SecretError("unknown secret format")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], bound_to.encode()).decode()
        except InvalidTag as exc:
            raise SecretError("secret does not belong to this record or the key changed") from exc
