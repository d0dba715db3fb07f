"""Errors a broker raises to its callers."""

from __future__ import annotations


class LogLost(Exception):
    """The channel's log is no longer held for this writer: the broker lost its data (Redis flushed or restarted
    without persistence), or this instance no longer holds the job whose run is writing.

    The run that gets it stops; the request stays unfinished in the store and runs again from the start, with a
    `reset` first, on whichever instance picks up the re-queued job.
    """
