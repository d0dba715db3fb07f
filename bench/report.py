"""Turn bench/results/*.json into the results section of docs/performance.md and docs/performance.png.

    .venv/bin/python bench/report.py

The section between the `<!-- results -->` markers of docs/performance.md is replaced; the rest of the page is prose
kept by hand. The chart is drawn by matplotlib from a bench-only virtual environment (bench/.venv-chart, created on
first use), so the project's own environment does not carry a plotting library.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "performance.md"
CHART = HERE.parent / "docs" / "performance.png"
CHART_VENV = HERE / ".venv-chart"
START, END = "<!-- results -->", "<!-- /results -->"
TARGETS_START, TARGETS_END = "<!-- targets -->", "<!-- /targets -->"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def overhead_tables(data: dict[str, Any]) -> list[str]:
    lines = []
    for mode, title in (
        ("sync", "Non-streaming"),
        ("sync_paced", "Non-streaming, paced"),
        ("stream", "Streaming"),
        ("stream_paced", "Streaming, paced"),
        ("tools", "Streaming a tool call"),
        ("tools_paced", "Streaming a tool call, paced"),
    ):
        if mode not in data:
            continue
        stream = mode.startswith(("stream", "tools"))
        how = (
            f"open loop at {data[mode]['rate']:g} requests/s"
            if mode.endswith("paced")
            else "closed loop: each connection sends as soon as it has its answer"
        )
        pieces = "argument pieces, `tools` in the request" if mode.startswith("tools") else "chunks"
        lines += [
            f"**{title}** `POST /v1/chat/completions` ({data['chunks']} {pieces}, {how}, medians of "
            f"{data['repeats']} runs; + = added over the direct call, same run)",
            "",
        ]
        head = "| conc | target | p50 ms | p99 ms | +p50 ms | +p99 ms |" + (" TTFT p50 | +TTFT p50 |" if stream else "")
        lines += [head + " req/s | errors |", "|" + "---|" * (head.count("|") + 1)]
        for level, row in data[mode].items():
            if level == "rate":
                continue
            for name, v in row.items():
                extra = v.get("overhead", {})
                cells = [
                    level,
                    name,
                    _f(v["p50_ms"]),
                    _f(v["p99_ms"]),
                    _f(extra.get("p50_ms")),
                    _f(extra.get("p99_ms")),
                ]
                if stream:
                    cells += [_f(v["ttft_p50_ms"]), _f(extra.get("ttft_p50_ms"))]
                cells += [_f(v["rps"], 0), str(v["errors"])]
                lines.append("| " + " | ".join(cells) + " |")
            if "litellm" in row and row["litellm"]["rps"]:
                s, lt = row["sluice"], row["litellm"]
                ratio = s["rps"] / lt["rps"] if lt["rps"] else None
                p99 = (
                    lt["overhead"]["p99_ms"] / s["overhead"]["p99_ms"]
                    if s["overhead"]["p99_ms"] and lt["overhead"]["p99_ms"]
                    else None
                )
                lines.append(
                    f"| {level} | *Sluice / LiteLLM* | | | | p99 overhead: LiteLLM {_f(p99, 1)}x |"
                    + (" | |" if stream else "")
                    + f" **{_f(ratio, 1)}x** | |"
                )
        lines.append("")
    return lines


def embeddings_table(data: dict[str, Any]) -> list[str]:
    lines = [
        f"**Embeddings** `POST /v1/embeddings` ({data['inputs']} inputs x {data['dimensions']} dimensions, closed "
        f"loop, medians of {data['repeats']} runs; + = added over the direct call, same run)",
        "",
        "| encoding | conc | target | p50 ms | p99 ms | +p50 ms | +p99 ms | req/s | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for encoding in ("base64", "float"):
        for level, row in data.get(encoding, {}).items():
            for name, v in row.items():
                extra = v.get("overhead", {})
                lines.append(
                    f"| {encoding} | {level} | {name} | {_f(v['p50_ms'])} | {_f(v['p99_ms'])} | "
                    f"{_f(extra.get('p50_ms'))} | {_f(extra.get('p99_ms'))} | {_f(v['rps'], 0)} | {v['errors']} |"
                )
    return [*lines, ""]


def agent_apis_table(data: dict[str, Any]) -> list[str]:
    lines = [
        f"**The agent APIs** beside Chat Completions: the same question streamed ({data['chunks']} chunks) through "
        f"`/v1/chat/completions`, `/v1/messages` and `/v1/responses` to the same upstream (closed loop, medians of "
        f"{data['repeats']} runs; + = added over the direct call, same run)",
        "",
        "| conc | target | p50 ms | p99 ms | +p50 ms | TTFT p50 | +TTFT p50 | req/s | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level, row in data.get("stream", {}).items():
        for name, v in row.items():
            extra = v.get("overhead", {})
            lines.append(
                f"| {level} | {name} | {_f(v['p50_ms'])} | {_f(v['p99_ms'])} | {_f(extra.get('p50_ms'))} | "
                f"{_f(v['ttft_p50_ms'])} | {_f(extra.get('ttft_p50_ms'))} | {_f(v['rps'], 0)} | {v['errors']} |"
            )
    return [*lines, ""]


def budgets_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "**Budgets and rate limits** (scenario 9): the same non-streamed completion with a key that has a budget, rpm "
        f"and tpm and with one that has none, same gateway (closed loop, medians of {data['repeats']} runs; + = what "
        "the limits add, same run; target: +p50 <= 0.1 ms)",
        "",
        "| conc | key | p50 ms | p99 ms | req/s | gateway CPU µs/request | +p50 ms | +CPU µs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for level, row in data.get("sync", {}).items():
        for name, v in row.items():
            added = v.get("added", {})
            lines.append(
                f"| {level} | {name} | {_f(v['p50_ms'])} | {_f(v['p99_ms'])} | {_f(v['rps'], 0)} | {v['cpu_us']} | "
                f"{_f(added.get('p50_ms'))} | {added.get('cpu_us', '')} |"
            )
    return [*lines, ""]


def cancel_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "**Cancel** (scenario 10): `POST /v1/requests/{id}/cancel` mid-stream, one request at a time; ms from the "
        "cancel sent to its answer, to the upstream connection closed (as the fake provider saw it) and to the "
        "`error` `cancelled` event on the WebSocket; and a streamed chat completion's client hanging up → the "
        "upstream closed",
        "",
        "| setup | measured | errors | answer p50 / p99 | upstream closed p50 / p99 | terminal event p50 / p99 |",
        "|---|---|---|---|---|---|",
    ]
    setups = [
        ("one instance", data.get("single")),
        ("two instances on Redis, cancel sent to the other", data.get("two_instances")),
        ("one instance, client hangs up", data.get("single_hangup")),
    ]
    for name, row in setups:
        if not row:
            continue
        cells = [
            f"{_f(row[key]['p50'])} / {_f(row[key]['p99'])}" if key in row else "-"
            for key in ("answer_ms", "upstream_closed_ms", "terminal_event_ms")
        ]
        lines.append(f"| {name} | {row['measured']} | {row['errors']} | {' | '.join(cells)} |")
    return [*lines, ""]


def continuation_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "**Continuation** (scenario 11): answers cut at a random character on the primary, continued by a backup of "
        "the same type; exact = the delivered text equals the answer (a structured one also validates), one "
        "terminal event",
        "",
        "| provider type | cuts | prefill | instruction | reset | failed | exact |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [*data["by_provider"].items(), ("**all**", data["total"])]
    for name, row in rows:
        lines.append(
            f"| {name} | {row['cuts']} | {row['prefill']} | {row['instruction']} | {row['reset']} | "
            f"{row['failed']} | {row['exact']} |"
        )
    return [*lines, ""]


def async_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "**Async** `POST /v1/ai/async` → WebSocket (ms; direct = the mock streamed directly, same run)",
        "",
        "| conc | 202 p50 | first delta p50 | p90 | p99 | terminal p50 | direct TTFT p50 | +first delta p50 |"
        " req/s | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level, row in data.items():
        s, d = row["sluice"], row["direct"]
        lines.append(
            f"| {level} | {_f(s['submit_to_202_ms']['p50'])} | {_f(s['submit_to_first_delta_ms']['p50'])} | "
            f"{_f(s['submit_to_first_delta_ms']['p90'])} | {_f(s['submit_to_first_delta_ms']['p99'])} | "
            f"{_f(s['submit_to_terminal_ms']['p50'])} | {_f(d['ttft_ms']['p50'])} | "
            f"{_f(row['overhead_first_delta_p50_ms'])} | {_f(s['rps'], 0)} | {s['errors']} |"
        )
    return [*lines, ""]


def fanout_table(data: dict[str, Any]) -> list[str]:
    lines = [
        f"**Fan-out**: {data['channels']} channels, {data['chunks']} deltas each, {data['pace_ms']:g} ms apart; "
        "merge reads: the provider's `merge_reads` (on: deltas read together are one event; off: one event per "
        "upstream chunk)",
        "",
        "| transport | subscribers | merge reads | connected | finished | RSS KB / idle connection | events delivered |"
        " seconds | events/s | tokens/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in [*data["runs"], *data.get("sse_runs", []), *data.get("per_token_runs", [])]:
        lines.append(
            f"| {'SSE' if r.get('transport') == 'sse' else 'WebSocket'} | "
            f"{r['subscribers']:,} | {'on' if r.get('merge_reads', True) else 'off'} | "
            f"{r['connected']:,} | {r['finished']:,} | "
            f"{_f(r['rss_per_idle_connection_kb'], 1)} | {r['events_delivered']:,} | "
            f"{_f(r['delivery_seconds'])} | {_f(r['events_per_second'], 0)} | "
            f"{_f(r.get('tokens_per_second'), 0)} |"
        )
    return [*lines, ""]


def targets_table(
    overhead: dict[str, Any] | None,
    async_ws: dict[str, Any] | None,
    fanout: dict[str, Any] | None,
    budgets: dict[str, Any] | None = None,
    cancel: dict[str, Any] | None = None,
) -> list[str]:
    """Each target of the performance issue beside the figure measured in the latest run."""
    rows: list[tuple[str, float | None, str, bool | None]] = []

    def add(name: str, value: float | None, unit: str, ok: bool | None) -> None:
        rows.append((name, value, unit, ok))

    sync = (overhead or {}).get("sync", {}).get("64", {})
    if sync.get("sluice"):
        s = sync["sluice"]
        add(
            "non-streaming overhead p50 <= 1 ms, closed loop conc 64",
            s["overhead"]["p50_ms"],
            "ms",
            _le(s["overhead"]["p50_ms"], 1),
        )
        add(
            "non-streaming overhead p99 <= 5 ms, closed loop conc 64",
            s["overhead"]["p99_ms"],
            "ms",
            _le(s["overhead"]["p99_ms"], 5),
        )
        add("requests/s at conc 64 >= 1,000", s["rps"], "req/s", _ge(s["rps"], 1000))
        if sync.get("litellm"):
            lt = sync["litellm"]
            times = _div(s["rps"], lt["rps"])
            add("requests/s >= 20x LiteLLM's (conc 64)", times, "x", _ge(times, 20))
            ratio = _div(lt["overhead"]["p99_ms"], s["overhead"]["p99_ms"])
            add("p99 overhead <= 1/20 of LiteLLM's (conc 64): LiteLLM's / Sluice's", ratio, "x", _ge(ratio, 20))
    paced = (overhead or {}).get("sync_paced", {})
    for level, row in paced.items():
        if level != "rate" and row.get("sluice"):
            extra = row["sluice"]["overhead"]
            how = f"paced {paced['rate']:g} req/s over {level} connections"
            add(f"non-streaming overhead p50 <= 1 ms, {how}", extra["p50_ms"], "ms", _le(extra["p50_ms"], 1))
            add(f"non-streaming overhead p99 <= 5 ms, {how}", extra["p99_ms"], "ms", _le(extra["p99_ms"], 5))
    stream_paced = (overhead or {}).get("stream_paced", {})
    for level, row in stream_paced.items():
        if level != "rate" and row.get("sluice"):
            value = row["sluice"]["overhead"]["ttft_p50_ms"]
            add(
                f"streaming TTFT overhead p50 <= 2 ms, paced {stream_paced['rate']:g} req/s over {level} connections",
                value,
                "ms",
                _le(value, 2),
            )
    one = (overhead or {}).get("sync", {}).get("1", {})
    if one.get("sluice"):
        add(
            "non-streaming overhead p50 at conc 1 (no target; for reference)",
            one["sluice"]["overhead"]["p50_ms"],
            "ms",
            None,
        )
    for level in ("1", "64"):
        stream = (overhead or {}).get("stream", {}).get(level, {})
        if stream.get("sluice"):
            value = stream["sluice"]["overhead"]["ttft_p50_ms"]
            add(f"streaming TTFT overhead p50 <= 2 ms, closed loop conc {level}", value, "ms", _le(value, 2))
    if async_ws and "1" in async_ws:
        value = async_ws["1"]["overhead_first_delta_p50_ms"]
        add("async submit -> first WebSocket delta overhead p50 <= 10 ms (conc 1)", value, "ms", _le(value, 10))
    for run in (fanout or {}).get("runs", []):
        if run["subscribers"] >= 5000:
            add(
                f"{run['subscribers']:,} concurrent WebSocket streams (finished)",
                run["finished"],
                "",
                run["finished"] >= run["subscribers"],
            )
            per_token = [r for r in fanout.get("per_token_runs", []) if r["subscribers"] == run["subscribers"]]
            if per_token:
                rate = per_token[0]["events_per_second"]
                add(
                    "events/s delivered >= 50,000 (one event per upstream chunk: `merge_reads: false`)",
                    rate,
                    "events/s",
                    _ge(rate, 50000),
                )
            add(
                "events/s delivered with `merge_reads` on (the default: fewer, larger events when behind)",
                run["events_per_second"],
                "events/s",
                None,
            )
            add(
                "tokens/s delivered (upstream chunks; no target, see the fan-out note)",
                run.get("tokens_per_second"),
                "tokens/s",
                None,
            )
            add(
                "RSS per idle connection <= 40 KB",
                run["rss_per_idle_connection_kb"],
                "KB",
                _le(run["rss_per_idle_connection_kb"], 40),
            )
    budget_one = (budgets or {}).get("sync", {}).get("1", {}).get("limited", {}).get("added", {})
    if "p50_ms" in budget_one:
        value = budget_one["p50_ms"]
        add("budget + rpm + tpm check adds p50 <= 0.1 ms (conc 1, embedded default)", value, "ms", _le(value, 0.1))
    for setup, label in (("single", "one instance"), ("two_instances", "two instances on Redis")):
        closed = (cancel or {}).get(setup, {}).get("upstream_closed_ms", {})
        if closed.get("p99") is not None:
            add(f"cancel closes the upstream within 1 s, p99 ({label})", closed["p99"], "ms", _le(closed["p99"], 1000))
    lines = ["| target | measured | met |", "|---|---|---|"]
    for name, value, unit, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {name} | {_f(value)} {unit} | {mark} |")
    return [*lines, ""]


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _ge(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def replace_section(text: str, start: str, end: str, lines: list[str]) -> str:
    if start not in text:
        text += f"\n{start}\n{end}\n"
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    return before + start + "\n" + "\n".join(lines) + end + after


def chart(overhead: dict[str, Any]) -> bool:
    """Requests/s and added p50 latency by concurrency, per target (non-streaming)."""
    if "sync" not in overhead:
        return False
    python = CHART_VENV / "bin" / "python"
    if not python.exists():
        venv.create(CHART_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "matplotlib==3.10.7"], check=True)
    script = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
data, out = json.loads(sys.argv[1]), sys.argv[2]
levels = list(data)
targets = [t for t in ("direct", "sluice", "litellm") if t in data[levels[0]]]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
colors = {"direct": "tab:gray", "sluice": "tab:blue", "litellm": "tab:orange"}
for t in targets:
    left.plot(levels, [data[l][t]["rps"] for l in levels], marker="o", label=t, color=colors[t])
    if t != "direct":
        right.plot(levels, [data[l][t]["overhead"]["p50_ms"] for l in levels], marker="o", label=t, color=colors[t])
left.set(title="Non-streaming requests/s (higher is better)", xlabel="concurrency", ylabel="requests/s", yscale="log")
right.set(title="Added p50 latency over direct (lower is better)", xlabel="concurrency", ylabel="ms", yscale="log")
for axis in (left, right):
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
fig.tight_layout()
fig.savefig(out, dpi=110)
"""
    subprocess.run([str(python), "-c", script, json.dumps(overhead["sync"]), str(CHART)], check=True)
    return True


def main() -> None:
    sections: list[str] = []
    overhead, async_ws, fanout = load("overhead"), load("async_ws"), load("fanout")
    tools, embeddings, agent_apis = load("tools"), load("embeddings"), load("agent_apis")
    if overhead:
        sections += overhead_tables(overhead)
    if tools:
        sections += overhead_tables(tools)
    if embeddings:
        sections += embeddings_table(embeddings)
    if agent_apis:
        sections += agent_apis_table(agent_apis)
    budgets, cancel, continuation = load("budgets"), load("cancel"), load("continuation")
    if budgets:
        sections += budgets_table(budgets)
    if cancel:
        sections += cancel_table(cancel)
    if continuation:
        sections += continuation_table(continuation)
    if async_ws is not None:
        sections += async_table(async_ws)
    if fanout is not None:
        sections += fanout_table(fanout)
    if overhead and chart(overhead):
        sections += ["![Requests/s and added latency by concurrency](performance.png)", ""]
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    text = replace_section(text, START, END, sections)
    text = replace_section(text, TARGETS_START, TARGETS_END, targets_table(overhead, async_ws, fanout, budgets, cancel))
    DOC.write_text(text)
    print(f"updated {DOC}" + (f" and {CHART}" if overhead else ""))


if __name__ == "__main__":
    main()
    sys.exit(0)
