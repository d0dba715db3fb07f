"""Request ids: random UUID4 text, drawn from a buffer of OS randomness.

`uuid.uuid4()` asks the OS for 16 random bytes each time; on the pass-through path that system call was ~3 % of the
gateway's CPU per request (docs/performance.md). The bytes are the same CSPRNG output, fetched 4 KiB at a time; a
forked child starts with a fresh buffer, so two processes never hand out the same ids.
"""

from __future__ import annotations

import os
import uuid

_BATCH = 16 * 256
_buffer = b""
_offset = _BATCH


def new_request_id() -> str:
    global _buffer, _offset
    if _offset >= len(_buffer):
        _buffer, _offset = os.urandom(_BATCH), 0
    raw = _buffer[_offset : _offset + 16]
    _offset += 16
    return str(uuid.UUID(bytes=raw, version=4))


def _forget_buffer() -> None:
    global _buffer, _offset
    _buffer, _offset = b"", _BATCH


os.register_at_fork(after_in_child=_forget_buffer)
