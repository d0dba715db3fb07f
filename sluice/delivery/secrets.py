"""Webhook signing secrets at rest: sealed with a key of their own derived from SLUICE_SECRET_KEY (`crypto`)."""

from __future__ import annotations

import logging

from sluice.crypto import CredentialCipher, CredentialsUnreadable
from sluice.delivery.signing import SECRET_PREFIX

log = logging.getLogger("sluice.webhooks")


class SecretBox:
    """The `SecretSealer` of `sluice.store.deliveries.WebhookStore`."""

    def __init__(self, cipher: CredentialCipher) -> None:
        self.cipher = cipher

    def seal(self, secret: str) -> str:
        return self.cipher.encrypt({"secret": secret})

    def open(self, stored: str) -> str | None:
        if stored.startswith(SECRET_PREFIX):
            return stored  # written before secrets were sealed
        try:
            return str(self.cipher.decrypt(stored)["secret"])
        except CredentialsUnreadable:
            log.warning("a webhook signing secret cannot be decrypted with this SLUICE_SECRET_KEY; it is skipped")
            return None
