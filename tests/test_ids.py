"""Request ids from the buffered OS randomness: valid UUID4 text, never repeated, and a forked child draws its own."""

from __future__ import annotations

import os
import uuid

from sluice.ids import new_request_id


def test_ids_are_uuid4_text_and_unique_across_many_refills() -> None:
    ids = [new_request_id() for _ in range(5000)]  # ~20 refills of the buffer
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_a_forked_child_does_not_reuse_the_parents_buffer() -> None:
    new_request_id()  # the buffer holds ids the parent has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave without running the test runner's exit handlers
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != new_request_id()
