"""The `sluice` command line."""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from sluice.cli.demo import demo
from sluice.cli.fake_provider import fake_provider
from sluice.cli.forward import forward
from sluice.settings import Settings

# Young-generation threshold, then how many young and middle collections run before an older one (docs/performance.md).
DEFAULT_GC_THRESHOLDS = "50000,20,100"

app = typer.Typer(help="Sluice: a self-hosted AI gateway.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.command()(demo)
app.command()(forward)
app.command("fake-provider")(fake_provider)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Where the SQLite file and secret key live.")]
ConfigPath = Annotated[Path | None, typer.Option("--config", help="YAML file of providers and workflows.")]


def _settings(data_dir: Path | None = None, config: Path | None = None, **overrides: Any) -> Settings:
    return Settings.from_env(None, data_dir=data_dir, config_path=config, **overrides)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    config: ConfigPath = None,
    data_dir: DataDir = None,
    access_log: Annotated[bool, typer.Option(help="Log every HTTP request.")] = False,
) -> None:
    """Run the gateway: API, WebSocket/SSE streaming and workers in one process."""
    import uvicorn

    from sluice.api.app import create_app
    from sluice.api.wsframes import SERVER_OPTIONS

    settings = _settings(data_dir, config, host=host, port=port)
    app = create_app(settings, reload_on_sighup=True)  # SIGHUP reloads the config file (docs/configuration.md)
    _tune_gc()
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        loop="uvloop" if os.name != "nt" else "asyncio",
        http="httptools",
        timeout_graceful_shutdown=5,
        **SERVER_OPTIONS,
    )


def _tune_gc() -> None:
    """Run the cyclic garbage collector less often, and never over what start-up built.

    A request allocates thousands of short-lived objects, nearly all freed by reference counting; at Python's default
    threshold (700 allocations) the collector still ran several times per request, walking every young object, and
    took ~10% of the gateway's CPU (docs/performance.md). Cycles are still collected, just in larger batches.
    """
    value = os.environ.get("SLUICE_GC_THRESHOLDS") or DEFAULT_GC_THRESHOLDS
    try:
        thresholds = [int(part) for part in value.split(",")]
        if len(thresholds) != 3 or min(thresholds) < 1:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(
            f"SLUICE_GC_THRESHOLDS must be three positive integers like {DEFAULT_GC_THRESHOLDS}, not {value!r}"
        ) from None
    gc.collect()
    gc.freeze()  # the imports, the app, the catalog: alive for the whole process, no use scanning them again
    gc.set_threshold(*thresholds)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema (serve does this too, at start)."""
    from sluice.store.database import create_engine
    from sluice.store.database import migrate as run_migrations

    async def main() -> None:
        engine = create_engine(_settings(data_dir).resolved_database_url)
        try:
            await run_migrations(engine)
        finally:
            await engine.dispose()

    asyncio.run(main())
    typer.echo("schema is up to date", err=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key, e.g. the app that uses it.")],
    admin: Annotated[bool, typer.Option(help="Also grant admin rights.")] = False,
    budget_usd: Annotated[float | None, typer.Option(min=0, help="What its requests may cost, USD.")] = None,
    budget_period: Annotated[str, typer.Option(help="The budget's period: total, daily or monthly (UTC).")] = "total",
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute (input + output).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key for the default project, with its budget and limits (docs/spend.md), and print it (it is
    shown only this once)."""
    from sluice.spend.limits import PERIODS
    from sluice.store import Store

    if budget_period not in PERIODS:
        raise typer.BadParameter(f"one of {', '.join(PERIODS)}, not {budget_period!r}", param_hint="--budget-period")
    from sluice.store.database import create_engine
    from sluice.store.database import migrate as run_migrations

    async def main() -> str:
        store = Store(create_engine(_settings(data_dir).resolved_database_url))
        try:
            await run_migrations(store.engine)
            project_id = await store.ensure_project()
            limits = {"budget_usd": budget_usd, "budget_period": budget_period, "rpm": rpm, "tpm": tpm}
            plaintext, _ = await store.create_api_key(project_id, name, admin=admin, limits=limits)
            return plaintext
        finally:
            await store.aclose()

    typer.echo(asyncio.run(main()))


@app.command()
def chat(
    message: Annotated[str, typer.Argument(help="What to say.")],
    workflow: Annotated[str, typer.Option(help="Workflow to run.")] = "demo",
    url: Annotated[str, typer.Option(envvar="SLUICE_URL", help="The gateway's base URL.")] = "http://127.0.0.1:8080",
    api_key: Annotated[str | None, typer.Option(envvar="SLUICE_API_KEY", help="API key or SLUICE_MASTER_KEY.")] = None,
) -> None:
    """Send a message to a workflow and stream its answer to the terminal, token by token."""
    from sluice.cli.chat import run_chat

    key = api_key or os.environ.get("SLUICE_MASTER_KEY")
    if not key:
        typer.echo("pass --api-key (or set SLUICE_API_KEY); create one with: sluice keys create --name cli", err=True)
        raise typer.Exit(2)
    raise typer.Exit(asyncio.run(run_chat(url, key, workflow, message)))
