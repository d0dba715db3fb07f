"""Server-Sent Events parsing, free of I/O: lines in, channel events out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

from sluice.client._models import ChannelEvent


class SSEDecoder:
    """Feed lines (without the newline); an event comes out at each blank line that ends one."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> ChannelEvent | None:
        if line == "":
            if not self._data:
                return None
            payload, self._data = "\n".join(self._data), []
            body = json.loads(payload)
            if not isinstance(body, dict) or "type" not in body:
                return None
            return ChannelEvent.from_json(body)
        if line.startswith(":"):
            return None  # a comment: the gateway's heartbeat
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None  # `id:` repeats the seq that is in the data; `retry:` is for EventSource


def decode_lines(lines: Iterator[str]) -> Iterator[ChannelEvent]:
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event


async def adecode_lines(lines: AsyncIterator[str]) -> AsyncIterator[ChannelEvent]:
    decoder = SSEDecoder()
    async for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
