"""Durations as config files write them: `300`, `300s`, `5m`, `1h`, `250ms` → seconds."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(value: Any, where: str = "") -> float:
    """Seconds in `value`; a ValueError (prefixed with `where`, the config path, when given) if it is no duration."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.fullmatch(str(value)) if not isinstance(value, bool) else None
    if not match:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}expected a duration such as 30s, 5m or 250ms, not {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]
