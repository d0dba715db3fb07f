import pytest

from sluice.tokens import TokenError, TokenSigner

SECRET = "a-secret-key-long-enough-for-hmac-sha256"


def test_ws_token_round_trip_and_scope() -> None:
    signer = TokenSigner(SECRET)
    claims = signer.read_ws_token(signer.ws_token("chan", "proj"))
    assert claims["ch"] == "chan" and claims["scope"] == "channel:read"
    assert claims["exp"] - claims["iat"] == 900


def test_expired_tampered_and_foreign_tokens_are_refused() -> None:
    signer = TokenSigner(SECRET)
    with pytest.raises(TokenError) as expired:
        signer.read_ws_token(signer.ws_token("chan", "proj", ttl=-1))
    assert expired.value.expired
    token = signer.ws_token("chan", "proj")
    with pytest.raises(TokenError):
        signer.read_ws_token(token[:-2] + ("xx" if not token.endswith("xx") else "yy"))
    with pytest.raises(TokenError):
        TokenSigner("another-secret-key-long-enough-for-hmac").read_ws_token(token)
