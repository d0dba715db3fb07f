"""Every Redis key and channel name the Redis broker uses, in one place (arq style).

All names start with the deployment's prefix (default `sluice:`), so several deployments or test runs can share one
Redis, and "this deployment's data was lost" can be told apart from "another deployment's was".
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "sluice:"
GROUP = "workers"  # the one consumer group on the job stream: every instance's worker is a consumer in it


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    # Keys that one Lua script touches together share a {hash tag}, so the scripts stay valid on Redis Cluster.

    @property
    def jobs(self) -> str:
        """Stream of jobs (`r` = request id), read through the consumer group `GROUP`."""
        return f"{self.prefix}{{jobs}}"

    def job(self, request_id: str) -> str:
        """String marker "this request is held by the job stream" (value: the entry id); stops double enqueues."""
        return f"{self.prefix}{{jobs}}:{request_id}"

    def log(self, channel_id: str) -> str:
        """Stream of the channel's events; entry id `<seq>-0`, fields `t` (type) and `d` (the event's JSON)."""
        return f"{self.prefix}ch:{{{channel_id}}}:log"

    def meta(self, channel_id: str) -> str:
        """Hash beside the log: `next` (the seq the next event gets), `first` (the floor), `done` (terminal seen)."""
        return f"{self.prefix}ch:{{{channel_id}}}:meta"

    def notify(self, channel_id: str) -> str:
        """Pub/sub channel: the seq of every event appended to the channel's log (wakes subscribers anywhere)."""
        return f"{self.prefix}notify:{channel_id}"

    @property
    def cancels(self) -> str:
        """Pub/sub channel every instance listens to: the cancels announced (`{"r": request, "p": project, "why"}`)."""
        return f"{self.prefix}cancel"

    @property
    def epoch(self) -> str:
        """A random value written once; when it is missing, Redis lost this deployment's data (flush, restart)."""
        return f"{self.prefix}epoch"

    def breaker(self, name: str) -> str:
        """Shared circuit-breaker state of one provider."""
        return f"{self.prefix}breaker:{name}"

    def rate(self, key: str) -> str:
        """Hit counter of one fixed window: the window's index is appended (`…rate:{key}:<index>`)."""
        return f"{self.prefix}rate:{{{key}}}"

    def slots(self, key: str) -> str:
        """Sorted set of the held slots of `key` (member: token, score: when the slot expires)."""
        return f"{self.prefix}slots:{{{key}}}"

    # Budgets and per-minute limits (`sluice.spend`): one hash tag, as one script checks a key's and its project's.

    def budget(self, budget_key: str) -> str:
        """Hash of one budget in one period: `spent` (nano-USD), `held` (the sum of the holds), `h:<request id>`."""
        return f"{self.prefix}{{spend}}:budget:{budget_key}"

    def holds(self, budget_key: str) -> str:
        """Sorted set of the budget's holds (member: request id, score: when the hold expires)."""
        return f"{self.prefix}{{spend}}:holds:{budget_key}"

    def minute(self, limit: str, scope: str) -> str:
        """Counter of one minute window of `rpm` or `tpm`: the window's index is appended."""
        return f"{self.prefix}{{spend}}:{limit}:{scope}"

    @property
    def pattern(self) -> str:
        """SCAN pattern for every key of this deployment."""
        return f"{self.prefix}*"
