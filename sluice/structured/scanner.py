"""Where a growing JSON text stands, tracked incrementally without parsing any value.

The scanner reads each byte once, so following a whole response costs time linear in its length. It answers what
partial parsing and repair need and a JSON parser does not say:

- where the top-level value starts and ends inside surrounding prose or code fences;
- what is unfinished at the tail: an open key, an open string value (and the path of the field it belongs to), or a
  bare number / literal that may still grow (`12` of `123`, `tr` of `true`);
- the open containers, so a text whose closers are missing can be closed.

It does not validate: a text that is not JSON gives a meaningless state, and the parser that runs afterwards says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jiter

NONE, KEY, STRING, SCALAR = "none", "key", "string", "scalar"

_STRING_STOP = re.compile(rb'["\\]')
_WHITESPACE = frozenset(b" \t\r\n")
# Bytes that can continue a number or one of the literals true / false / null.
_SCALAR_BYTES = frozenset(b"0123456789+-.eEtrufalsn")
_OPEN = {ord("{"): "object", ord("["): "array"}
_CLOSE = frozenset(b"}]")
_QUOTE, _BACKSLASH, _COLON, _COMMA = ord('"'), ord("\\"), ord(":"), ord(",")


@dataclass
class Frame:
    """One open container. Objects move key → colon → value → comma → key…; arrays value → comma → value…"""

    kind: str
    state: str
    key: str | None = None
    index: int = 0


class JsonScanner:
    def __init__(self, opener: str = "{") -> None:
        self.buffer = bytearray()
        self.opener = opener.encode()
        self.start: int | None = None  # offset of the top-level opener
        self.end: int | None = None  # offset just past the top-level closer
        self.stack: list[Frame] = []
        self.tail = NONE
        self.tail_start = 0  # where the unfinished key / string / scalar began
        self._pos = 0  # next byte to read; may pass the buffer's end by one after a trailing backslash

    def feed(self, data: bytes) -> None:
        self.buffer += data
        self._scan()

    @property
    def closed(self) -> bool:
        return self.end is not None

    def path(self) -> tuple[str | int, ...]:
        """The path of the value being written now (for an open string value: the field it belongs to)."""
        return tuple(frame.index if frame.kind == "array" else (frame.key or "") for frame in self.stack)

    def document(self) -> bytes:
        """The top-level value's bytes so far, without the prose around it."""
        if self.start is None:
            return b""
        return bytes(self.buffer[self.start : self.end])

    def closers(self) -> bytes | None:
        """The bytes that close every open container, if the text stopped at a point where that is all it lacks:
        after a complete value, an opener or a comma (None when it stopped inside a key or a string, or after `:`)."""
        if self.start is None or self.tail in (KEY, STRING):
            return None
        if self.stack and self.stack[-1].kind == "object" and self.stack[-1].state in ("colon", "value"):
            if self.tail != SCALAR:
                return None
        return bytes(ord("}") if frame.kind == "object" else ord("]") for frame in reversed(self.stack))

    def _scan(self) -> None:
        buf, i, n = self.buffer, self._pos, len(self.buffer)
        while i < n and self.end is None:
            if self.start is None:
                found = buf.find(self.opener, i)
                if found < 0:
                    i = n
                    break
                self.start, i = found, found
            if self.tail in (KEY, STRING):
                match = _STRING_STOP.search(buf, i)
                if match is None:
                    i = n
                    break
                i = match.start()
                if buf[i] == _BACKSLASH:
                    i += 2  # skip the escaped byte; `\uXXXX` digits can never be a quote or a backslash
                    continue
                self._string_closed(i)
                i += 1
                continue
            byte = buf[i]
            if self.tail == SCALAR:
                if byte in _SCALAR_BYTES:
                    i += 1
                    continue
                self.tail = NONE
                self._value_done()
            if byte in _WHITESPACE:
                pass
            elif byte in _OPEN:
                self.stack.append(Frame(_OPEN[byte], "key" if byte == ord("{") else "value"))
            elif byte in _CLOSE:
                if self.stack:
                    self.stack.pop()
                if not self.stack:
                    self.end = i + 1
                else:
                    self._value_done()
            elif byte == _QUOTE:
                top = self.stack[-1] if self.stack else None
                self.tail = KEY if top is not None and top.kind == "object" and top.state == "key" else STRING
                self.tail_start = i
            elif byte == _COLON:
                if self.stack:
                    self.stack[-1].state = "value"
            elif byte == _COMMA:
                if self.stack:
                    top = self.stack[-1]
                    top.state = "key" if top.kind == "object" else "value"
                    if top.kind == "array":
                        top.index += 1
            else:
                self.tail, self.tail_start = SCALAR, i
            i += 1
        self._pos = i

    def _string_closed(self, quote: int) -> None:
        if self.tail == KEY:
            raw = bytes(self.buffer[self.tail_start : quote + 1])
            try:
                key = jiter.from_json(raw)
            except ValueError:
                key = raw[1:-1].decode(errors="replace")
            top = self.stack[-1]
            top.key, top.state = str(key), "colon"
            self.tail = NONE
        else:
            self.tail = NONE
            self._value_done()

    def _value_done(self) -> None:
        if self.stack:
            self.stack[-1].state = "comma"
