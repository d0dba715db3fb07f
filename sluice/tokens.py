"""Signed tokens a browser may hold: the read-only `ws_token`, and the `cancel_token` of one request.

A `ws_token` is an HS256 JWT signed with SLUICE_SECRET_KEY, expiring, with scope `channel:read`, so it is refused by
every API route (they take API keys only) and by every channel but its own.

A `cancel_token` (in the `cancel_url` returned at submit) can do one thing: cancel its own request. It is an HMAC of
the request id, so checking it costs no lookup; it does not expire, since it stops mattering once the request ended.
Your backend hands it to the page only if the user may stop the answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import jwt

WS_SCOPE = "channel:read"
CANCEL_PREFIX = "cct_"
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

    def cancel_token(self, request_id: str) -> str:
        """The token that cancels `request_id` (and nothing else)."""
        digest = hmac.new(self._key.encode(), f"sluice/cancel/v1:{request_id}".encode(), hashlib.sha256).digest()
        return CANCEL_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def is_cancel_token(self, request_id: str, token: str) -> bool:
        return hmac.compare_digest(self.cancel_token(request_id).encode(), token.encode())
