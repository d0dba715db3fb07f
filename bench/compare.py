"""A git revision against the working tree, measured in the same run, interleaved: the 5 % rule.

    bench/compare [--base REV] [--current REV] [--rounds 3] [--quick] [--only SCENARIO...]
                  [--json bench/results/compare.json]

When to use which:
- `bench/run` measures the absolute figures of docs/performance.md (LiteLLM included) and rewrites its results
  section. Runs on different days or under different load are not comparable with each other.
- `bench/compare` answers "did my change slow anything down?". Rule: no change may slow an existing figure by more
  than 5 %, measured before and after in the same run. The default base is `origin/main` (or `HEAD` when there is no
  such ref), so uncommitted work is compared with the committed code. Once the work is committed, pass the commit
  it started from: `bench/compare --base <sha of main before the work>`. `--base HEAD` on a clean tree compares the
  code with itself and shows the noise floor (`--base HEAD --current HEAD` does so whatever the working tree holds).
  `--quick` takes about 5 minutes, the default about 15 (2 cores).

How: the gateway files of REV (`git archive`) and of the working tree (a copy taken at the start, so edits made
while it runs do not leak into later rounds) go to a temporary directory. Each round runs every scenario once per
side, in alternating order (base first in odd rounds, current first in even ones, so drift and "second run" effects
hit both sides). Only the gateway differs: the bench scripts are always this tree's, and they start the gateway as
`python -m sluice serve` with the environment inherited, so `PYTHONPATH=<side's copy>` picks the side's code. The
scripts run from an empty directory: `-m` puts the working directory first on `sys.path`, and from the repository
root it would shadow `PYTHONPATH` with the working tree. A probe checks once per side which `sluice/__init__.py`
the gateway process really imported. Both sides use .venv's installed dependencies.

Each table shows, per figure, the medians of the rounds for base and current, current/base, the range of the
per-round ratios (round i's current over round i's base: its spread is the noise) and a flag. SLOWER: the figure is
more than 5 % worse in the medians and worse in every round; `slower?`: in the medians only, which on this machine
is often noise (p99 above all): rerun with more --rounds. `direct` rows call the mock upstream without Sluice: they
do not depend on the gateway's code, so their ratios are the noise too (`noise` when they moved by more than 5 %).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GATEWAY_PATHS = ["sluice", "clients", "examples", "pyproject.toml"]  # what `sluice serve` reads from its tree
THRESHOLD = 0.05
NOISY = 0.1  # other work taking more than this share of the cores makes a run unreliable
Better = Literal["higher", "lower", "control", "info"]  # control: does not depend on the gateway; info: no flag
Figure = tuple[str, float | None, Better]
Extract = Callable[[dict[str, Any]], list[Figure]]

# The probe's sitecustomize: a thread that notes which `sluice` package the process imports (not atexit: uvicorn
# re-raises SIGTERM after its graceful shutdown, so the gateway never runs its atexit hooks).
PROBE_SITE = """import os, sys, threading, time
def _watch():
    for _ in range(600):
        module = sys.modules.get("sluice")
        if getattr(module, "__file__", None):
            with open(os.environ["SLUICE_COMPARE_PROBE"], "a") as out:
                out.write(module.__file__ + "\\n")
            return
        time.sleep(0.05)
threading.Thread(target=_watch, daemon=True).start()
"""
PROBE_CLIENT = f"""import sys
sys.path.insert(0, {str(HERE)!r})
import httpx
from _servers import mock_upstream, sluice_gateway
with mock_upstream() as upstream, sluice_gateway(upstream) as (url, key):
    httpx.get(url + "/readyz").raise_for_status()
"""


def _get(data: Any, *path: str) -> float | None:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data if isinstance(data, int | float) else None


def overhead_figures(mode: str) -> Extract:
    """Scenarios 1 (sync) and 2 (stream) of overhead.py: through Sluice, its overhead, and the direct call."""

    def extract(data: dict[str, Any]) -> list[Figure]:
        stream = mode in ("stream", "tools")
        figures: list[Figure] = []
        for section, prefix in ((mode, "c"), (f"{mode}_paced", "paced c")):
            for level, row in data.get(section, {}).items():
                if level == "rate":
                    continue
                at = f"{prefix}{level}"
                if section == mode:
                    figures.append((f"{at} sluice req/s", _get(row, "sluice", "rps"), "higher"))
                figures += [
                    (f"{at} sluice p50 ms", _get(row, "sluice", "p50_ms"), "lower"),
                    (f"{at} sluice p99 ms", _get(row, "sluice", "p99_ms"), "lower"),
                ]
                if stream:
                    figures.append((f"{at} sluice TTFT p50 ms", _get(row, "sluice", "ttft_p50_ms"), "lower"))
                figures += [
                    (f"{at} +p50 ms over direct", _get(row, "sluice", "overhead", "p50_ms"), "lower"),
                    (f"{at} +p99 ms over direct", _get(row, "sluice", "overhead", "p99_ms"), "lower"),
                ]
                if stream:
                    figures.append((f"{at} +TTFT p50 ms", _get(row, "sluice", "overhead", "ttft_p50_ms"), "lower"))
                if section == mode:
                    figures.append((f"{at} direct req/s", _get(row, "direct", "rps"), "control"))
                figures.append((f"{at} direct p50 ms", _get(row, "direct", "p50_ms"), "control"))
        return figures

    return extract


def embeddings_figures(encoding: str) -> Extract:
    """Scenario 7 (embeddings.py): through Sluice, its overhead, and the direct call, for one encoding_format."""

    def extract(data: dict[str, Any]) -> list[Figure]:
        figures: list[Figure] = []
        for level, row in data.get(encoding, {}).items():
            at = f"c{level}"
            figures += [
                (f"{at} sluice req/s", _get(row, "sluice", "rps"), "higher"),
                (f"{at} sluice p50 ms", _get(row, "sluice", "p50_ms"), "lower"),
                (f"{at} sluice p99 ms", _get(row, "sluice", "p99_ms"), "lower"),
                (f"{at} +p50 ms over direct", _get(row, "sluice", "overhead", "p50_ms"), "lower"),
                (f"{at} +p99 ms over direct", _get(row, "sluice", "overhead", "p99_ms"), "lower"),
                (f"{at} direct req/s", _get(row, "direct", "rps"), "control"),
                (f"{at} direct p50 ms", _get(row, "direct", "p50_ms"), "control"),
            ]
        return figures

    return extract


def agent_apis_figures(data: dict[str, Any]) -> list[Figure]:
    """Scenario 8 (agent_apis.py): streaming through Chat Completions, Messages and Responses, and the direct call."""
    figures: list[Figure] = []
    for level, row in data.get("stream", {}).items():
        at = f"c{level}"
        for api in ("chat", "messages", "responses"):
            figures += [
                (f"{at} {api} req/s", _get(row, api, "rps"), "higher"),
                (f"{at} {api} p50 ms", _get(row, api, "p50_ms"), "lower"),
                (f"{at} {api} TTFT p50 ms", _get(row, api, "ttft_p50_ms"), "lower"),
                (f"{at} {api} +p50 ms over direct", _get(row, api, "overhead", "p50_ms"), "lower"),
            ]
        figures.append((f"{at} direct p50 ms", _get(row, "direct", "p50_ms"), "control"))
    return figures


def budgets_figures(data: dict[str, Any]) -> list[Figure]:
    """Scenario 9 (budgets.py): a key with a budget and rate limits beside one without, and what they add."""
    figures: list[Figure] = []
    for level, row in data.get("sync", {}).items():
        at = f"c{level}"
        figures += [
            (f"{at} limited req/s", _get(row, "limited", "rps"), "higher"),
            (f"{at} limited p50 ms", _get(row, "limited", "p50_ms"), "lower"),
            (f"{at} +p50 ms of the limits", _get(row, "limited", "added", "p50_ms"), "info"),
            (f"{at} +CPU µs of the limits", _get(row, "limited", "added", "cpu_us"), "info"),
            (f"{at} unlimited p50 ms", _get(row, "unlimited", "p50_ms"), "lower"),
        ]
    return figures


def async_ws_figures(data: dict[str, Any]) -> list[Figure]:
    figures: list[Figure] = []
    for level, row in data.items():
        at = f"c{level}"
        figures += [
            (f"{at} submit->202 p50 ms", _get(row, "sluice", "submit_to_202_ms", "p50"), "lower"),
            (f"{at} submit->delta p50 ms", _get(row, "sluice", "submit_to_first_delta_ms", "p50"), "lower"),
            (f"{at} submit->delta p90 ms", _get(row, "sluice", "submit_to_first_delta_ms", "p90"), "lower"),
            (f"{at} submit->delta p99 ms", _get(row, "sluice", "submit_to_first_delta_ms", "p99"), "lower"),
            (f"{at} submit->end p50 ms", _get(row, "sluice", "submit_to_terminal_ms", "p50"), "lower"),
            (f"{at} +delta p50 ms", _get(row, "overhead_first_delta_p50_ms"), "lower"),
            (f"{at} +end p50 ms", _get(row, "overhead_terminal_p50_ms"), "lower"),
            (f"{at} req/s", _get(row, "sluice", "rps"), "higher"),
            (f"{at} direct TTFT p50 ms", _get(row, "direct", "ttft_ms", "p50"), "control"),
        ]
    return figures


def fanout_figures(data: dict[str, Any]) -> list[Figure]:
    figures: list[Figure] = []
    for key, how in (("runs", ""), ("sse_runs", " SSE"), ("per_token_runs", " per-token")):
        for run in data.get(key, []):
            at = f"{run['subscribers']} subs{how}"
            figures += [
                (f"{at} events/s", _get(run, "events_per_second"), "higher"),
                (f"{at} tokens/s", _get(run, "tokens_per_second"), "higher"),
                (f"{at} delivery s", _get(run, "delivery_seconds"), "lower"),
                (f"{at} KB/idle conn", _get(run, "rss_per_idle_connection_kb"), "lower"),
                (f"{at} connect s", _get(run, "connect_seconds"), "info"),  # not on the page; 10 ms steps
                (f"{at} frames/sub", _get(run, "frames_per_subscriber"), "info"),
            ]
    return figures


def _errors(where: str, values: dict[str, Any]) -> list[str]:
    examples = values.get("error_examples") or [""]
    return [f"{where}: {values['errors']} errors, e.g. {examples[0][:120]}"] if values.get("errors") else []


def problems(script: str, data: dict[str, Any]) -> list[str]:
    """Errors a run reported (its figures are then suspect)."""
    found = []
    if script in ("overhead.py", "embeddings.py", "agent_apis.py", "budgets.py"):
        for target, ok in (data.get("tools_verified") or {}).items():
            if not ok:
                found.append(f"tools: the answer through {target} has no tool call (the tools were not passed on)")
        for section, rows in data.items():
            for level, row in rows.items() if isinstance(rows, dict) else ():
                for target, values in row.items() if isinstance(row, dict) else ():
                    if isinstance(values, dict):
                        found += _errors(f"{section} c{level} {target}", values)
    elif script == "async_ws.py":
        for level, row in data.items():
            for target in ("direct", "sluice"):
                found += _errors(f"c{level} {target}", row[target])
    elif script == "fanout.py":
        for run in data.get("runs", []) + data.get("sse_runs", []) + data.get("per_token_runs", []):
            if run["finished"] < run["subscribers"]:
                found.append(f"{run['subscribers']} subs: {run['connected']} connected, {run['finished']} finished")
    return found


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    quick: list[str]
    full: list[str]
    tables: list[tuple[str, Extract]]  # (title, figures) of each table printed from this script's JSON
    # Added after the base may have been cut: when the base's gateway fails every request of it (it lacks the
    # endpoint or the feature), its base figures are left empty and its errors noted apart, not counted as errors.
    new: bool = False


# Every run is bounded by time, not by a request count (loadgen's default cap of 3000 ends most overhead.py runs in
# about a second, so a faster side would be measured over a shorter run). The default takes overhead.py's figures as
# the median of 3 short repeats (not 1 long run): a dip of the machine then spoils one repeat, not the figure.
SCENARIOS = [
    Scenario(
        "overhead",
        "overhead.py",
        ["--concurrency", "1", "64", "--repeats", "1", "--seconds", "1.25", "--requests", "1000000"],
        ["--concurrency", "1", "64", "--repeats", "3", "--seconds", "1.3", "--requests", "1000000"],
        [
            ("overhead.py, non-streaming (scenario 1)", overhead_figures("sync")),
            ("overhead.py, streaming (scenario 2)", overhead_figures("stream")),
        ],
    ),
    Scenario(
        "async_ws",
        "async_ws.py",
        ["--concurrency", "1", "--requests", "1000000", "--seconds", "2"],
        ["--concurrency", "1", "16", "--requests", "1000000", "--seconds", "5"],
        [("async_ws.py, submit -> WebSocket (scenario 3)", async_ws_figures)],
    ),
    Scenario(
        "fanout",
        "fanout.py",
        ["--subscribers", "1000"],
        ["--subscribers", "1000", "5000"],
        [("fanout.py, WebSocket and SSE fan-out (scenario 4)", fanout_figures)],
    ),
    Scenario(
        "tools",
        "overhead.py",
        ["--mode", "tools", "--concurrency", "1", "64", "--repeats", "1", "--seconds", "1.25", "--requests", "1000000"],
        ["--mode", "tools", "--concurrency", "1", "64", "--repeats", "3", "--seconds", "1.3", "--requests", "1000000"],
        [("overhead.py --mode tools, streaming a tool call (scenario 6)", overhead_figures("tools"))],
        new=True,
    ),
    Scenario(
        "embeddings",
        "embeddings.py",
        # base64 only (what the `openai` package asks for): bench/run measures float too.
        [
            "--encoding",
            "base64",
            "--concurrency",
            "1",
            "64",
            "--repeats",
            "1",
            "--seconds",
            "1.25",
            "--requests",
            "1000000",
        ],
        [
            "--encoding",
            "base64",
            "--concurrency",
            "1",
            "64",
            "--repeats",
            "3",
            "--seconds",
            "1.3",
            "--requests",
            "1000000",
        ],
        [("embeddings.py, encoding_format base64 (scenario 7)", embeddings_figures("base64"))],
        new=True,
    ),
    Scenario(
        "agent_apis",
        "agent_apis.py",
        ["--concurrency", "1", "64", "--repeats", "1", "--seconds", "1.25", "--requests", "1000000"],
        ["--concurrency", "1", "64", "--repeats", "3", "--seconds", "1.3", "--requests", "1000000"],
        [("agent_apis.py, streaming through each API (scenario 8)", agent_apis_figures)],
        new=True,
    ),
    Scenario(
        "budgets",
        "budgets.py",
        ["--concurrency", "1", "64", "--repeats", "1", "--seconds", "1.25", "--requests", "1000000"],
        ["--concurrency", "1", "64", "--repeats", "3", "--seconds", "1.3", "--requests", "1000000"],
        [("budgets.py, a key with a budget + rpm + tpm vs one without (scenario 9)", budgets_figures)],
        new=True,
    ),
]


def lacks_scenario(data: dict[str, Any]) -> bool:
    """Every request through one of Sluice's targets failed (and some were sent), or its answer lacked what the
    scenario measures (a tool call): the gateway does not have what the scenario uses (e.g. an endpoint)."""
    if (data.get("tools_verified") or {}).get("sluice") is False:
        return True
    rows = [row for section in data.values() if isinstance(section, dict) for row in section.values()]
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for target, values in row.items() if isinstance(row, dict) else ():
            if target != "direct" and isinstance(values, dict) and "rps" in values:
                runs.setdefault(target, []).append(values)
    return any(all(v.get("errors") and not v.get("rps") for v in found) for found in runs.values())


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def default_base() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "origin/main^{commit}"], cwd=ROOT, capture_output=True, text=True
    )
    return "origin/main" if found.returncode == 0 else "HEAD"


def export_revision(sha: str, target: Path) -> None:
    present = git("ls-tree", "--name-only", sha, "--", *GATEWAY_PATHS).splitlines()  # an old REV may lack some
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha, "--", *present], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def snapshot_working_tree(target: Path) -> None:
    """Copy the working tree's gateway files (tracked and untracked, not ignored) as they are now."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *GATEWAY_PATHS)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not there
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def changed_files(sha: str, current_sha: str | None) -> list[str]:
    if current_sha is not None:
        return git("diff", "--name-only", sha, current_sha, "--", *GATEWAY_PATHS).splitlines()
    changed = git("diff", "--name-only", sha, "--", *GATEWAY_PATHS).splitlines()
    return changed + git("ls-files", "--others", "--exclude-standard", "--", *GATEWAY_PATHS).splitlines()


def side_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def probe(tree: Path, workdir: Path, probe_dir: Path) -> str:
    """The `sluice/__init__.py` a gateway started by the bench scripts' own code imports for this side."""
    out = probe_dir / f"{tree.name}.txt"
    env = {**side_env(tree), "PYTHONPATH": f"{probe_dir}{os.pathsep}{tree}", "SLUICE_COMPARE_PROBE": str(out)}
    subprocess.run([sys.executable, "-c", PROBE_CLIENT], cwd=workdir, env=env, check=True, timeout=120)
    seen = set(out.read_text().split()) if out.exists() else set()
    if len(seen) != 1:
        raise SystemExit(f"probe of {tree.name}: the gateway imported {sorted(seen) or 'nothing'}")
    return seen.pop()


def run_scenario(scenario: Scenario, tree: Path, workdir: Path, quick: bool, label: str) -> dict[str, Any]:
    out = workdir / f"{scenario.name}-{label}.json"
    command = [
        sys.executable,
        str(HERE / scenario.script),
        *(scenario.quick if quick else scenario.full),
        "--json",
        str(out),
    ]
    done = subprocess.run(command, cwd=workdir, env=side_env(tree), capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(
            f"{scenario.script} failed for {label} (exit {done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return json.loads(out.read_text())


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(current: float | None, base: float | None) -> float | None:
    return current / base if current is not None and base else None


def flag(better: Better, ratio: float | None, paired: list[float]) -> str:
    """SLOWER: the medians differ by more than 5 % the wrong way and so does every round (slower?: not every round)."""
    if ratio is None or better == "info":
        return ""
    moved = abs(ratio - 1) > THRESHOLD
    if better == "control":
        return "noise" if moved else "(control)"
    if not moved:
        return ""
    if (ratio > 1) == (better == "higher"):
        return "faster"
    every_round = all((r < 1) if better == "higher" else (r > 1) for r in paired)
    return "SLOWER" if every_round else "slower?"


def summarise(runs: dict[str, list[dict[str, Any]]], extract: Extract) -> list[dict[str, Any]]:
    """One row per figure: each side's values over the rounds, medians, ratio, per-round ratios, flag."""
    per_side = {side: [extract(data) for data in found] for side, found in runs.items()}
    rows = []
    for index, (label, _, better) in enumerate(per_side["base"][0]):
        base = [figures[index][1] for figures in per_side["base"]]
        current = [figures[index][1] for figures in per_side["current"]]
        ratio = _ratio(_median(current), _median(base))
        paired = [r for r in map(_ratio, current, base) if r is not None]
        rows.append(
            {
                "figure": label,
                "better": better,
                "base": base,
                "current": current,
                "base_median": _median(base),
                "current_median": _median(current),
                "ratio": ratio,
                "round_ratios": paired,
                "flag": flag(better, ratio, paired),
            }
        )
    return rows


def _num(value: float | None) -> str:
    return f"{'-':>11}" if value is None else f"{value:11.1f}" if abs(value) >= 1000 else f"{value:11.3f}"


def print_table(title: str, rows: list[dict[str, Any]], rounds: int, others: dict[str, list[float]]) -> None:
    shares = ", ".join(f"{side} {'/'.join(f'{share:.0%}' for share in found)}" for side, found in others.items())
    print(f"\n{title}: medians of {rounds} rounds (other work took of the cores: {shares})")
    print(f"{'figure':34} {'base':>11} {'current':>11} {'cur/base':>8}  {'per round':11}  flag")
    for row in rows:
        ratio = f"{row['ratio']:8.3f}" if row["ratio"] is not None else f"{'-':>8}"
        paired = row["round_ratios"]
        spread = f"{min(paired):.2f}-{max(paired):.2f}" if paired else "-"
        print(
            f"{row['figure']:34} {_num(row['base_median'])} {_num(row['current_median'])} {ratio}  "
            f"{spread:11}  {row['flag']}"
        )


def cpu_counters() -> tuple[float, float, float]:
    """(wall clock s, CPU s the whole machine was busy (steal included), CPU s of this process and its children)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    # Children count once waited for, and so do theirs: every bench script waits for its gateway and mock.
    own = sum(
        r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    return time.monotonic(), busy, own


def others_share(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """The share of all cores that other work (other processes, the hypervisor's steal) took between two counters."""
    wall, busy, own = (b - a for a, b in zip(before, after, strict=True))
    return round(max(busy - own, 0.0) / max(wall * (os.cpu_count() or 1), 1e-9), 3)


def idle_check(seconds: float = 2.0) -> float:
    before = cpu_counters()
    time.sleep(seconds)
    return others_share(before, cpu_counters())


def prepare(tmp: Path, sha: str, current_sha: str | None) -> tuple[dict[str, Path], Path, dict[str, str]]:
    """Both sides' gateway files, an empty working directory, and which `sluice` each side's gateway imports."""
    trees = {"base": tmp / "base", "current": tmp / "current"}
    workdir, probe_dir = tmp / "work", tmp / "probe"
    for directory in (*trees.values(), workdir, probe_dir):
        directory.mkdir()
    export_revision(sha, trees["base"])
    if current_sha:
        export_revision(current_sha, trees["current"])
    else:
        snapshot_working_tree(trees["current"])
    (probe_dir / "sitecustomize.py").write_text(PROBE_SITE)
    imports = {}
    for side, tree in trees.items():
        imports[side] = probe(tree, workdir, probe_dir)
        if Path(imports[side]).resolve() != (tree / "sluice" / "__init__.py").resolve():
            raise SystemExit(f"the {side} gateway imported {imports[side]}, not {tree}/sluice")
        print(f"probe: the {side} gateway imports {imports[side]}", file=sys.stderr)
    return trees, workdir, imports


@dataclass
class Measured:
    runs: dict[str, dict[str, list[dict[str, Any]]]]  # scenario -> side -> each round's JSON
    others: dict[str, dict[str, list[float]]]  # scenario -> side -> each round's share of the cores other work took
    errors: list[str]
    lacking: set[str] = field(default_factory=set)  # new scenarios the base's gateway cannot run


def measure(trees: dict[str, Path], workdir: Path, rounds: int, quick: bool, scenarios: list[Scenario]) -> Measured:
    """Every scenario, `rounds` times per side, the order of the sides alternating."""
    found = Measured(
        {s.name: {"base": [], "current": []} for s in scenarios},
        {s.name: {"base": [], "current": []} for s in scenarios},
        [],
    )
    started = time.monotonic()
    for index in range(rounds):
        for scenario in scenarios:
            for side in ("base", "current") if index % 2 == 0 else ("current", "base"):
                before = cpu_counters()
                data = run_scenario(scenario, trees[side], workdir, quick, f"{side}-{index + 1}")
                others = others_share(before, cpu_counters())
                found.runs[scenario.name][side].append(data)
                found.others[scenario.name][side].append(others)
                lacking = scenario.new and side == "base" and lacks_scenario(data)
                if lacking and scenario.name not in found.lacking:
                    print(f"  the base cannot run {scenario.name}: its figures are current only", file=sys.stderr)
                    found.lacking.add(scenario.name)
                for problem in [] if lacking else problems(scenario.script, data):
                    found.errors.append(f"round {index + 1} {scenario.script} {side}: {problem}")
                    print(f"  ! {found.errors[-1]}", file=sys.stderr)
                print(
                    f"round {index + 1}/{rounds} {scenario.script:12} {side:7} {time.monotonic() - before[0]:5.1f} s"
                    f"  (total {time.monotonic() - started:4.0f} s)  other work: {others:.0%} of the cores",
                    file=sys.stderr,
                )
    return found


def print_summary(rows: list[dict[str, Any]], measured: Measured, busy_before: float, seconds: int) -> None:
    print()
    for mark, what in (("SLOWER", "and in every round"), ("slower?", "but not in every round")):
        flagged = [f"{row['figure']} ({row['ratio']:.3f})" for row in rows if row["flag"] == mark]
        print(
            f"{mark}: {len(flagged)} figure(s) more than {THRESHOLD:.0%} worse in the medians {what}"
            + (f": {'; '.join(flagged)}" if flagged else "")
        )
    noise = [row["figure"] for row in rows if row["flag"] == "noise"]
    if noise:
        print(
            f"{len(noise)} control figure(s) (direct calls, no Sluice) moved by more than {THRESHOLD:.0%}: "
            f"{', '.join(noise)}"
        )
    if measured.lacking:
        print(f"new scenario(s) the base cannot run (current figures only): {', '.join(sorted(measured.lacking))}")
    if measured.errors:
        print(
            f"{len(measured.errors)} run(s) had errors, their figures do not compare:\n  "
            + "\n  ".join(measured.errors)
        )
    shares = [share for sides in measured.others.values() for found in sides.values() for share in found]
    print(
        f"{seconds} s; other work took {busy_before:.0%} of the cores before, {statistics.mean(shares):.0%} on "
        f"average during the runs, {max(shares):.0%} at most"
    )
    if max(shares) > NOISY:
        print(
            f"runs with other work above {NOISY:.0%} of the cores: the machine was busy, the ratios are not reliable "
            "(see each round's share in the progress lines); rerun when it is quiet"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=None, help="git revision to compare with (default: origin/main, else HEAD)")
    parser.add_argument("--current", default=None, help="a git revision instead of the working tree (e.g. HEAD)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every scenario per side (default 3)")
    parser.add_argument("--quick", action="store_true", help="shorter runs: ~5 minutes instead of ~15")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[s.name for s in SCENARIOS],
        help="these scenarios only (e.g. to rerun the figures a noisy run flagged)",
    )
    parser.add_argument("--json", type=Path, default=HERE / "results" / "compare.json")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    scenarios = [s for s in SCENARIOS if not args.only or s.name in args.only]
    base_rev = args.base or default_base()
    sha = git("rev-parse", "--verify", f"{base_rev}^{{commit}}")
    current_sha = git("rev-parse", "--verify", f"{args.current}^{{commit}}") if args.current else None
    changed = changed_files(sha, current_sha)
    current = f"{args.current} = {current_sha[:12]}" if current_sha else f"the working tree of {ROOT}"
    print(f"base: {base_rev} = {sha[:12]}; current: {current}", file=sys.stderr)
    if changed:
        listed = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "")
        print(f"gateway files that differ from the base: {len(changed)} ({listed})", file=sys.stderr)
    else:
        print("no gateway file differs from the base: this run measures the noise floor", file=sys.stderr)
    if "pyproject.toml" in changed:
        print("pyproject.toml differs: both sides still run with .venv's installed packages", file=sys.stderr)
    busy_before = idle_check()
    print(
        f"other work before the run: {busy_before:.0%} of {os.cpu_count()} cores"
        + (" (something else is running: expect more noise)" if busy_before > NOISY else ""),
        file=sys.stderr,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sluice-compare-") as tmp:
        trees, workdir, imports = prepare(Path(tmp), sha, current_sha)
        measured = measure(trees, workdir, args.rounds, args.quick, scenarios)
    seconds = round(time.monotonic() - started)
    report: dict[str, Any] = {
        "base": {"rev": base_rev, "sha": sha, "gateway_imports": imports["base"]},
        "current": {
            "rev": args.current,
            "sha": current_sha,
            "gateway_imports": imports["current"],
            "changed_files": changed,
        },
        "rounds": args.rounds,
        "quick": args.quick,
        "threshold": THRESHOLD,
        "seconds": seconds,
        "others_cpu_share_before": busy_before,
        "errors": measured.errors,
        "base_lacks": sorted(measured.lacking),
        "scenarios": {},
    }
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        tables = {title: summarise(measured.runs[scenario.name], extract) for title, extract in scenario.tables}
        for title, table in tables.items():
            print_table(title, table, args.rounds, measured.others[scenario.name])
            rows += table
        report["scenarios"][scenario.name] = {
            "tables": tables,
            "others_cpu_share": measured.others[scenario.name],
            "runs": measured.runs[scenario.name],
        }
    print_summary(rows, measured, busy_before, seconds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    sys.exit(1 if measured.errors else 0)


if __name__ == "__main__":
    main()
