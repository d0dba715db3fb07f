"""Credentials inside log text are masked; the rest of the line is kept."""

from sluice.observability.redact import redact


def test_credentials_in_urls_headers_and_text_are_masked() -> None:
    line = (
        '"GET /v1/ws?channel_id=c1&token=eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImNoIn0.c2lnbmF0dXJlLXZhbHVl" 101 '
        "POST /v1/callback/c1?token=cbt_abcdefghijklmnop Authorization: Bearer sk_sluice_0123456789abcdef "
        "secret whsec_QUJDREVGR0hJSktMTU5PUA== key sk-proj-0123456789 https://x.test/v1?key=AIzaSy0123456789"
    )
    masked = redact(line)
    for secret in ("eyJhbGci", "cbt_abc", "sk_sluice_0123", "whsec_QUJD", "sk-proj", "AIzaSy"):
        assert secret not in masked, secret
    assert "channel_id=c1&token=[redacted]" in masked and "/v1/callback/c1?token=[redacted]" in masked


def test_ordinary_text_is_untouched() -> None:
    text = "webhook msg_123 attempt 2: 500; request 9f1c attempts=3 tokens_out=12"
    assert redact(text) == text
