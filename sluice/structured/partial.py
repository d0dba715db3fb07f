"""The object parsed so far while a structured answer streams in, for `partial` channel events.

Rules (docs/structured-outputs.md):

- A free-text string field (`reply`) grows as its tokens arrive; jiter's `trailing-strings` mode keeps the open string,
  and drops an unfinished escape until it is complete, so the decoded text only ever grows.
- Enum strings, numbers, booleans and null appear only once complete: the text is cut just before such an unfinished
  value, so a browser never sees `12` of `123` or `posi` of `positive`.
- Coalescing: a fast stream does not produce one event per token. An object is emitted when it changed and at least
  `interval` seconds passed since the last emit, or when `max_bytes` of text arrived since then (a burst); what was
  held back is returned by `flush()`. With the defaults (40 ms, 2 KiB) a browser gets at most ~25 updates a second —
  smooth to the eye, which cannot follow faster text — and a burst never delays text by more than 2 KiB.
- Cost: the scanner reads each byte once; the whole prefix is re-parsed only when an emit is due, so the number of
  parses is bounded by the emit rate, not the token count (jiter parses a 4 KB object in a few microseconds).

The class does no I/O and takes its clock as an argument, so it is tested without sockets or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jiter

from sluice.structured.scanner import KEY, SCALAR, STRING, JsonScanner

DEFAULT_INTERVAL = 0.040
DEFAULT_MAX_BYTES = 2048


class PartialStream:
    """Feed raw text deltas; get the object parsed so far when it changed and an emit is due."""

    def __init__(
        self,
        schema: dict[str, Any] | None,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schema = schema or {}
        self.interval = interval
        self.max_bytes = max_bytes
        self.clock = clock
        self.scanner = JsonScanner("[" if self.schema.get("type") == "array" else "{")
        self.last: Any = None  # the object last returned
        self._last_emit: float | None = None
        self._unsent = 0  # bytes fed since the last emit
        self._growable: dict[tuple[str | int, ...], bool] = {}

    def feed(self, text: str) -> Any:
        """The object so far if it changed and an emit is due, else None (held back for a later feed or `flush`)."""
        data = text.encode()
        self.scanner.feed(data)
        self._unsent += len(data)
        now = self.clock()
        due = self._last_emit is None or now - self._last_emit >= self.interval or self._unsent >= self.max_bytes
        if not due:
            return None
        return self._emit(now)

    def seed(self, text: str) -> None:
        """Take `text` as already shown (the answer so far, before a continuation): later feeds grow from it."""
        data = text.encode()
        self.scanner.feed(data)
        self._unsent += len(data)

    def flush(self) -> Any:
        """What coalescing held back: the object so far if it differs from the last one returned, else None."""
        if self._unsent == 0:
            return None
        return self._emit(self.clock())

    def current(self) -> Any:
        """The object parsed from everything fed so far, under the rules above (None before the JSON starts)."""
        scanner = self.scanner
        if scanner.start is None:
            return None
        end = len(scanner.buffer) if scanner.end is None else scanner.end
        if scanner.end is None and scanner.tail in (KEY, SCALAR):
            end = scanner.tail_start
        elif scanner.end is None and scanner.tail == STRING and not self._grows(scanner.path()):
            end = scanner.tail_start
        try:
            return jiter.from_json(bytes(scanner.buffer[scanner.start : end]), partial_mode="trailing-strings")
        except ValueError:
            return None

    def _emit(self, now: float) -> Any:
        parsed = self.current()
        if not parsed or parsed == self.last:  # nothing yet (None, `{}`) or no change
            return None
        self.last, self._last_emit, self._unsent = parsed, now, 0
        return parsed

    def _grows(self, path: tuple[str | int, ...]) -> bool:
        """Whether the string value at `path` may be shown while it is still open: free text, not an enum/const."""
        key = tuple("*" if isinstance(step, int) else step for step in path)
        if key not in self._growable:
            self._growable[key] = any(_free_text(s) for s in _schemas_at(self.schema, self.schema, path))
        return self._growable[key]


def _free_text(schema: dict[str, Any]) -> bool:
    if "enum" in schema or "const" in schema:
        return False
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind) or kind is None


def _schemas_at(root: dict[str, Any], schema: Any, path: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Every subschema that may describe the value at `path` (following anyOf/oneOf/allOf and local $refs)."""
    if not isinstance(schema, dict):
        return []
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        return _schemas_at(root, target, path)
    branches = [b for key in ("anyOf", "oneOf", "allOf") for b in schema.get(key, [])]
    if branches:
        return [found for branch in branches for found in _schemas_at(root, branch, path)]
    if not path:
        return [schema]
    step, rest = path[0], path[1:]
    if isinstance(step, int):
        prefix = schema.get("prefixItems")
        child = prefix[step] if isinstance(prefix, list) and step < len(prefix) else schema.get("items", {})
    else:
        properties = schema.get("properties") or {}
        child = properties.get(step, schema.get("additionalProperties", {}))
    return _schemas_at(root, child, rest)
