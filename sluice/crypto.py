"""Provider credentials at rest: a Fernet token (AES-128-CBC + HMAC-SHA256) of a JSON object.

The Fernet key is derived from `SLUICE_SECRET_KEY` with HKDF under its own `info` label, so the same secret that
signs tokens never serves directly as an encryption key, and rotating the secret makes old credentials unreadable
(they must be entered again), which the admin API reports instead of failing requests silently.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"sluice/provider-credentials/v1"


class CredentialsUnreadable(Exception):
    """The stored token was encrypted under another secret key (or was altered)."""


class CredentialCipher:
    def __init__(self, secret_key: str, *, info: bytes = _INFO) -> None:
        # `info` separates uses (provider credentials, webhook secrets): one key never decrypts the other's data.
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(values)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            return orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise CredentialsUnreadable("stored credentials cannot be decrypted with this SLUICE_SECRET_KEY") from exc
