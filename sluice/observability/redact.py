"""Last line of defence for logs: credentials that reach a log line anyway (a URL with `?token=…` in an access log,
a bearer header in a library's debug message, a key inside an exception) are masked before the line is written.

The code never logs secrets on purpose; this catches the ones that arrive inside text Sluice does not control.
"""

from __future__ import annotations

import re

MASK = "[redacted]"

_PATTERNS = (
    # query parameters that carry credentials: the ws_token, the callback token, provider keys (e.g. Gemini's ?key=)
    re.compile(r"(?i)([?&](?:token|key|api_key|apikey|access_token|secret)=)[^&\s\"']+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"()\b(?:sk_sluice_|cbt_|whsec_|sk-)[A-Za-z0-9_+/=-]{8,}"),  # Sluice's and OpenAI-style key shapes
    re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # any JWT (the ws_token)
)


def redact(text: str) -> str:
    """`text` with every credential-looking part replaced by `[redacted]` (the part naming it is kept)."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + MASK, text)
    return text
