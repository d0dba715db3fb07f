"""Runtime settings, read once from the environment (DESIGN.md §8) and overridable by CLI flags."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("production", "development")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".sluice")
    database_url: str | None = None
    redis_url: str | None = None
    config_path: Path | None = None
    config_poll_interval: float = 1.0  # seconds between looks at the config file for changes; 0: on SIGHUP only
    env: str = "production"
    public_url: str | None = None
    secret_key: str | None = None
    master_key: str | None = None
    ws_token_ttl: float = 15 * 60
    heartbeat_interval: float = 15.0
    retention_seconds: float = 3600.0
    max_body_bytes: int = 1_000_000
    worker_concurrency: int = 64
    # A request whose run stopped this many times without finishing (its instance crashed, was killed or restarted,
    # or lost the job's lease) is failed with `job_crashed` instead of being run again (a poison job).
    job_max_crashes: int = 3
    rate_limit: str | None = None  # per API key, e.g. "600/min" (see `rate_limit_window`); None: no limit
    max_concurrent_streams: int | None = None  # per API key; None: no limit
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "SLUICE_DATA_DIR" in env:
            values["data_dir"] = Path(env["SLUICE_DATA_DIR"])
        for name, key in (
            ("database_url", "SLUICE_DATABASE_URL"),
            ("redis_url", "SLUICE_REDIS_URL"),
            ("public_url", "SLUICE_PUBLIC_URL"),
            ("secret_key", "SLUICE_SECRET_KEY"),
            ("master_key", "SLUICE_MASTER_KEY"),
            ("rate_limit", "SLUICE_RATE_LIMIT"),
        ):
            if env.get(key):
                values[name] = env[key]
        if env.get("SLUICE_CONFIG"):
            values["config_path"] = Path(env["SLUICE_CONFIG"])
        if env.get("SLUICE_ENV"):
            values["env"] = env["SLUICE_ENV"]
        for name, key, kind in (
            ("ws_token_ttl", "SLUICE_WS_TOKEN_TTL", float),
            ("heartbeat_interval", "SLUICE_HEARTBEAT_INTERVAL", float),
            ("config_poll_interval", "SLUICE_CONFIG_POLL_INTERVAL", float),
            ("retention_seconds", "SLUICE_RETENTION_SECONDS", float),
            ("max_body_bytes", "SLUICE_MAX_BODY_BYTES", int),
            ("worker_concurrency", "SLUICE_WORKER_CONCURRENCY", int),
            ("job_max_crashes", "SLUICE_JOB_MAX_CRASHES", int),
            ("max_concurrent_streams", "SLUICE_MAX_CONCURRENT_STREAMS", int),
        ):
            if env.get(key):
                values[name] = kind(env[key])
        extra = _webhook_extra(env)
        if extra:
            values["extra"] = extra
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if settings.env not in ENVIRONMENTS:
            raise ValueError(f"SLUICE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {settings.env!r}")
        settings.rate_limit_window  # noqa: B018 - refuse a malformed SLUICE_RATE_LIMIT at start, not per request
        if settings.max_concurrent_streams is not None and settings.max_concurrent_streams < 1:
            raise ValueError("SLUICE_MAX_CONCURRENT_STREAMS must be at least 1 (unset it for no limit)")
        if settings.job_max_crashes < 1:
            raise ValueError("SLUICE_JOB_MAX_CRASHES must be at least 1 (a request's first run must be able to start)")
        return settings

    @property
    def rate_limit_window(self) -> tuple[int, float] | None:
        """`rate_limit` as (requests, window seconds): "600/min", "10/s", "5000/hour", "100/30s"; None: no limit."""
        if not self.rate_limit:
            return None
        count, _, unit = self.rate_limit.strip().partition("/")
        seconds = _RATE_UNITS.get(unit.strip().lower())
        if seconds is None and unit.strip()[:-1].isdigit() and unit.strip().endswith("s"):
            seconds = float(unit.strip()[:-1])
        if not count.strip().isdigit() or int(count) < 1 or not seconds:
            raise ValueError(
                f"SLUICE_RATE_LIMIT must look like '600/min', '10/s', '5000/hour' or '100/30s', not {self.rate_limit!r}"
            )
        return int(count), seconds

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: `sqlite:///…` and `postgresql://…` are mapped to their async drivers."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'sluice.db').resolve()}"
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def ws_base_url(self) -> str:
        base = self.base_url
        return (
            "wss://" + base.removeprefix("https://")
            if base.startswith("https://")
            else "ws://" + base.removeprefix("http://")
        )

    def with_secret_key(self) -> Settings:
        """Fill in `secret_key`: from the environment, else a key kept in the data directory (created once)."""
        if self.secret_key:
            return self
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return replace(self, secret_key=path.read_text().strip())


def _webhook_extra(env: Any) -> dict[str, Any]:
    """`SLUICE_WEBHOOK_*` tuning of webhook delivery (read by `sluice.delivery`)."""
    extra: dict[str, Any] = {}
    if env.get("SLUICE_WEBHOOK_RETRY_SCHEDULE"):
        extra["webhook_retry_schedule"] = [float(part) for part in env["SLUICE_WEBHOOK_RETRY_SCHEDULE"].split(",")]
    for name in ("timeout", "jitter", "dead_letter_days"):
        if env.get(f"SLUICE_WEBHOOK_{name.upper()}"):
            extra[f"webhook_{name}"] = float(env[f"SLUICE_WEBHOOK_{name.upper()}"])
    if env.get("SLUICE_WEBHOOK_ALLOW_PRIVATE_URLS", "").lower() in ("1", "true", "yes"):
        extra["webhook_allow_private_urls"] = True
    return extra
