"""Signed, expiring tokens: the browser's read-only `ws_token`, scoped to one channel.

HS256 JWTs signed with SLUICE_SECRET_KEY. A `ws_token` carries scope `channel:read`, so it is refused by every API
route (they take API keys only) and by every channel but its own.
"""

from __future__ import annotations

import time

import jwt

WS_SCOPE = "channel:read"
_ALGORITHM = "HS256"


class TokenError(Exception):
    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class TokenSigner:
    def __init__(self, secret_key: str, *, ws_token_ttl: float = 900) -> None:
        self._key = secret_key
        self.ws_token_ttl = ws_token_ttl

    def ws_token(self, channel_id: str, project_id: str, *, ttl: float | None = None, key_id: str | None = None) -> str:
        issued = int(time.time())
        claims: dict[str, str | int] = {
            "scope": WS_SCOPE,
            "ch": channel_id,
            "proj": project_id,
            "iat": issued,
            "exp": issued + int(ttl if ttl is not None else self.ws_token_ttl),
        }
        if key_id is not None:  # the API key whose request this is: its stream limit covers the token's streams
            claims["kid"] = key_id
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def read_ws_token(self, token: str) -> dict[str, str]:
        """The token's claims; raises `TokenError` if it is tampered, expired or not a channel token."""
        try:
            claims = jwt.decode(token, self._key, algorithms=[_ALGORITHM], options={"require": ["exp", "scope", "ch"]})
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the ws_token has expired; ask your backend for a new one", expired=True) from exc
        except jwt.PyJWTError as exc:
            raise TokenError("the ws_token is not valid") from exc
        if claims.get("scope") != WS_SCOPE:
            raise TokenError("this token does not grant channel access")
        return claims
