"""durably's benchmarks against the raw SQLite floor (workloads W1-W4 of BASELINES.md), sagas
against plain steps (S1-S2, issue 15), the durable agent loop against a plain one (A1), and
steps traced with OpenTelemetry, off and on, against untraced ones (T1).

    python bench/run.py [--quick] [--sync FULL|NORMAL] [--json out.json] [--runs 3] [--only W1,S1,A1,T1]
                        [--postgres postgresql://user@host:port/postgres]

Each workload runs in its own child process (so its peak RSS is its own), and each repetition
measures the floor and then durably on fresh databases in the same process, so the ratio is
taken side by side on the same machine state. Figures are medians of ``--runs`` repetitions;
ratios are the median of each repetition's durably/floor ratio: for times lower is better, for
throughput (W2) higher is better. The saga rows (S1, S2) take durably's own plain ``ctx.step``,
run in the same repetition, as their floor: what a saga adds over the steps it is made of. The
agent row (A1) takes as its floor the same scripted model and tool called in a plain Python loop,
in the same repetition: what ``Agent.run`` in a durable handler adds per turn. It needs
langchain-core; without it the row says it was skipped. The tracing rows (T1) take the same steps
untraced, in the same repetition, as their floor; they need the otel extra.

With ``--postgres SERVER_URL`` (or ``DURABLY_BENCH_POSTGRES``), W1-W4 also run on the PostgreSQL
store, against PostgreSQL's own floor measured in the same repetition (``floor_pg``: one row
inserted and committed per step over one connection). Each side gets a fresh database of that
server, dropped afterwards, so its user must be allowed to create databases.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import floor  # noqa: E402  (bench/ is a directory of scripts, not a package)

STORES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

FULL_SIZES = {"w1": 1000, "w2_executions": 200, "w2_steps": 10, "w2_workers": (4, 8), "w3_map": 1000,
              "w3_parallel": 100, "w4": (100, 1000, 10_000), "s1": 1000, "s2": 1000, "a1": 300, "t1": 1000}
QUICK_SIZES = {"w1": 200, "w2_executions": 40, "w2_steps": 10, "w2_workers": (4, 8), "w3_map": 100,
               "w3_parallel": 20, "w4": (100, 1000), "s1": 200, "s2": 100, "a1": 100, "t1": 200}

TARGET_W1_RATIO = 1.3
TARGET_W2_RATIO = 1.0
TARGET_W3_US = 30.0
TARGET_W4_US = 8.0
TARGET_W4_LINEARITY = 2.0
TARGET_S1_RATIO = 1.2
"""A saga step is one durable step plus a little bookkeeping (issue 15; BASELINES.md sets no saga figure)."""
TARGET_S2_RATIO: float | None = None
"""No target is set for a compensation's cost; the row reports the ratio only."""
SAGA_WARMUP = 20
"""Steps of an unmeasured saga run first in each saga cell, so neither side pays the first-use costs."""
TARGET_A1_RATIO: float | None = None
"""BASELINES.md sets no figure for an agent turn; the row reports the ratio only."""
A1_WARMUP = 20
"""Turns of an unmeasured agent run first in the A1 cell (imports, tool schemas, engine, codecs)."""
A1_NEEDS = "langchain_core"
T1_NEEDS = "opentelemetry.sdk"
TARGET_T1_OFF_RATIO = 1.05
"""Tracing off (instrumented, no SDK provider) costs nothing measurable: within noise of untraced."""


def peak_rss_mib() -> float:
    """This process's peak resident set size (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


# ---------------------------------------------------------------- cells (run in a child process)
def plan(sizes: dict[str, Any], only: set[str] | None, postgres: str | None = None) -> list[dict[str, Any]]:
    cells = store_cells(sizes, "sqlite")
    if postgres:
        cells.extend({**cell, "server": postgres} for cell in store_cells(sizes, "postgres"))
    cells.append({"workload": "S1", "kind": "s1", "n": sizes["s1"]})
    cells.append({"workload": "S2", "kind": "s2", "n": sizes["s2"]})
    cells.append({"workload": "A1", "kind": "a1", "n": sizes["a1"]})
    cells.append({"workload": "T1", "kind": "t1", "n": sizes["t1"]})
    return [c for c in cells if only is None or c["workload"] in only]


def store_cells(sizes: dict[str, Any], store: str) -> list[dict[str, Any]]:
    """The W1-W4 cells of one store."""
    cells: list[dict[str, Any]] = [{"workload": "W1", "kind": "w1", "n": sizes["w1"]}]
    for workers in sizes["w2_workers"]:
        cells.append({"workload": "W2", "kind": "w2", "executions": sizes["w2_executions"],
                      "steps": sizes["w2_steps"], "workers": workers})
    cells.append({"workload": "W3", "kind": "w3", "what": "map", "n": sizes["w3_map"]})
    cells.append({"workload": "W3", "kind": "w3", "what": "parallel", "n": sizes["w3_parallel"]})
    cells.extend({"workload": "W4", "kind": "w4", "n": n} for n in sizes["w4"])
    return [{**cell, "store": store} for cell in cells]


def run_cell(cell: dict[str, Any], sync: str, runs: int) -> dict[str, Any]:
    """Measure one cell ``runs`` times: the floor, then durably, each on a fresh database."""
    kind = cell["kind"]
    if kind == "floor_rss":
        with tempfile.TemporaryDirectory(prefix="durably-bench-") as scratch:
            floor.commit_per_row(Path(scratch) / "a.db", sync, cell["n"])
            floor.read_all(Path(scratch) / "b.db", sync, cell["n"])
        return {"rss_mib": peak_rss_mib()}

    if kind == "a1" and importlib.util.find_spec(A1_NEEDS) is None:
        return {"skipped": "langchain-core is not installed (pip install durably[agents])"}
    if kind == "t1" and importlib.util.find_spec(T1_NEEDS) is None:
        return {"skipped": "the OpenTelemetry SDK is not installed (pip install durably[otel])"}

    import workloads  # imports durably: not in the floor-only child

    if cell.get("store") == "postgres":
        return run_postgres_cell(cell, runs)
    durably: list[Any] = []
    floors: list[float] = []
    if kind in ("s1", "s2", "a1", "t1"):  # warm up: the first engine, saga, agent and codec uses cost more
        tmp = Path(tempfile.mkdtemp(prefix="durably-bench-"))
        try:
            _measure(kind, tmp, sync, A1_WARMUP if kind == "a1" else SAGA_WARMUP)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for _ in range(runs):
        tmp = Path(tempfile.mkdtemp(prefix="durably-bench-"))
        try:
            if kind == "w1":
                floors.append(floor.commit_per_row(tmp / "floor.db", sync, cell["n"]))
                durably.append(workloads.w1(tmp / "w1.db", sync, cell["n"]))
            elif kind == "w2":
                floors.append(floor.commit_per_row(tmp / "floor.db", sync, cell["executions"] * cell["steps"]))
                durably.append(workloads.w2(tmp / "w2.db", sync, cell["executions"], cell["steps"], cell["workers"]))
            elif kind == "w3":
                floors.append(floor.batched(tmp / "floor.db", sync, cell["n"]))
                durably.append(workloads.w3(tmp / "w3.db", sync, cell["what"], cell["n"]))
            elif kind == "w4":
                floors.append(floor.read_all(tmp / "floor.db", sync, cell["n"]))
                durably.append(workloads.w4(tmp / "w4.db", sync, cell["n"]))
            elif kind in ("s1", "s2", "a1", "t1"):  # the SQLite floor; the rows compare with their own floors
                floors.append(floor.commit_per_row(tmp / "floor.db", sync, cell["n"]))
                durably.append(_measure(kind, tmp, sync, cell["n"]))
            else:
                raise ValueError(f"unknown cell kind {kind!r}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"durably": durably, "floor": floors, "rss_mib": peak_rss_mib()}


def run_postgres_cell(cell: dict[str, Any], runs: int) -> dict[str, Any]:
    """A W cell on the PostgreSQL store: each repetition measures PostgreSQL's floor, then durably,
    each on a fresh database of ``cell["server"]``."""
    import floor_pg  # imports psycopg
    import workloads

    kind, n = cell["kind"], cell.get("n", 0)
    floor_of: dict[str, Callable[[str], float]] = {
        "w1": lambda url: floor_pg.commit_per_row(url, n),
        "w2": lambda url: floor_pg.commit_per_row(url, cell["executions"] * cell["steps"]),
        "w3": lambda url: floor_pg.batched(url, n),
        "w4": lambda url: floor_pg.read_all(url, n),
    }
    durably_of: dict[str, Callable[[str], Any]] = {
        "w1": lambda url: workloads.w1(url, "FULL", n),
        "w2": lambda url: workloads.w2(url, "FULL", cell["executions"], cell["steps"], cell["workers"]),
        "w3": lambda url: workloads.w3(url, "FULL", cell["what"], n),
        "w4": lambda url: workloads.w4(url, "FULL", n),
    }
    durably: list[Any] = []
    floors: list[float] = []
    for _ in range(runs):
        with floor_pg.fresh_database(cell["server"]) as url:
            floors.append(floor_of[kind](url))
        with floor_pg.fresh_database(cell["server"]) as url:
            durably.append(durably_of[kind](url))
    return {"durably": durably, "floor": floors, "rss_mib": peak_rss_mib()}


def _measure(kind: str, workdir: Path, sync: str, n: int) -> dict[str, float]:
    """One repetition of a row that measures its own floor (S1, S2: plain steps; A1: a plain loop)."""
    if kind == "a1":
        import agent_turns  # imports langchain-core

        return agent_turns.a1(workdir, sync, n)
    if kind == "t1":
        import tracing_cost  # imports the OpenTelemetry SDK

        return tracing_cost.t1(workdir, sync, n)
    import workloads

    return getattr(workloads, kind)(workdir, sync, n)  # type: ignore[no-any-return]


def run_in_child(cell: dict[str, Any], sync: str, runs: int) -> dict[str, Any]:
    spec = json.dumps({"cell": cell, "sync": sync, "runs": runs})
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", spec],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        return {"error": "\n".join(tail) or f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------- figures
def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_ratio(top: list[float], bottom: list[float]) -> float:
    """The median of ``top[i] / bottom[i]``: each repetition's durably and floor ran back to back, so
    their ratio shares the machine's state of the moment, which drifts between repetitions."""
    return median([t / b for t, b in zip(top, bottom, strict=True)])


def yes_no(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "NO")


def summarise(cell: dict[str, Any], out: dict[str, Any], sync: str) -> list[dict[str, Any]]:
    """Table rows (workload, durably, floor, ratio, target, met, RSS) for one measured cell."""
    rows = _summarise(cell, out, sync)
    for row in rows:
        row["store"] = cell.get("store", "sqlite")
    return rows


def _summarise(cell: dict[str, Any], out: dict[str, Any], sync: str) -> list[dict[str, Any]]:
    wl, rss = cell["workload"], out.get("rss_mib")
    label = _label(cell)
    if "error" in out:
        return [{"workload": wl, "label": label, "durably": f"error: {out['error'].splitlines()[-1]}", "floor": "",
                 "ratio": "", "target": "", "met": None, "rss_mib": rss, "error": out["error"]}]
    if "skipped" in out:
        return [{"workload": wl, "label": label, "durably": f"skipped: {out['skipped']}", "floor": "", "ratio": "",
                 "target": "", "met": None, "rss_mib": rss, "skipped": out["skipped"]}]
    d, f = out["durably"], out["floor"]
    if cell["kind"] == "w1":
        n = cell["n"]
        dv, fv, ratio = median([t / n * 1e6 for t in d]), median([t / n * 1e6 for t in f]), paired_ratio(d, f)
        return [_row(wl, label, dv, fv, "µs/step", "µs/row", ratio, f"<= {TARGET_W1_RATIO}x floor",
                     ratio <= TARGET_W1_RATIO, rss)]
    if cell["kind"] == "w2":
        dv = median([cell["executions"] / t for t in d])
        fv = median([cell["executions"] / t for t in f])
        ratio = paired_ratio(f, d)  # throughput: floor time over durably time
        at_full = sync == "FULL" or cell.get("store") == "postgres"
        target = f">= {TARGET_W2_RATIO}x floor" + ("" if at_full else " (set at FULL)")
        met = ratio >= TARGET_W2_RATIO if at_full else None
        return [_row(wl, label, dv, fv, "exec/s", "exec/s", ratio, target, met, rss, digits=0)]
    if cell["kind"] == "w3":
        n = cell["n"]
        dv, fv = median([t / n * 1e6 for t in d]), median([t / n * 1e6 for t in f])
        return [_row(wl, label, dv, fv, "µs/item", "µs/row", paired_ratio(d, f), f"<= {TARGET_W3_US:g} µs/item",
                     dv <= TARGET_W3_US, rss)]
    if cell["kind"] in ("s1", "s2"):
        return [_saga_row(cell, d, f, rss)]
    if cell["kind"] == "a1":
        return [_agent_row(cell, d, f, rss)]
    if cell["kind"] == "t1":
        return _tracing_rows(cell, d, rss)
    n = cell["n"]
    fv = median(f) * 1e3
    rows = []
    for key, what in (("replay", "replay (load + invoke)"), ("resume", "resume (engine invocation)")):
        total = median([r[key] for r in d]) * 1e3
        per_op = total * 1e3 / n
        ratio = paired_ratio([r[key] for r in d], f)
        row = _row(wl, f"{label} {what}", total, fv, "ms", "ms", ratio, f"<= {TARGET_W4_US:g} µs/op",
                   per_op <= TARGET_W4_US, rss, digits=2)
        row["durably"] += f" ({per_op:.2f} µs/op)"
        row["us_per_op"] = per_op
        row["load_ms"] = median([r["load"] for r in d]) * 1e3
        row["n"], row["phase"] = n, key
        rows.append(row)
    return rows


def _saga_row(cell: dict[str, Any], d: list[dict[str, float]], f: list[float], rss: float | None) -> dict[str, Any]:
    """S1: a saga step against a plain step; S2: one compensation of a rollback against a plain step.
    The SQLite floor of the same repetition is kept in the JSON (``vs_sqlite_floor``)."""
    n = cell["n"]
    key, unit = ("saga", "µs/saga step") if cell["kind"] == "s1" else ("rollback", "µs/compensation")
    target_ratio = TARGET_S1_RATIO if cell["kind"] == "s1" else TARGET_S2_RATIO
    measured = [r[key] for r in d]
    plain = [r["plain"] for r in d]
    ratio = paired_ratio(measured, plain)
    target = "no target" if target_ratio is None else f"<= {target_ratio:g}x plain step"
    met = None if target_ratio is None else ratio <= target_ratio
    row = _row(cell["workload"], _label(cell), median([t / n * 1e6 for t in measured]),
               median([t / n * 1e6 for t in plain]), unit, "µs/plain step", ratio, target, met, rss)
    row["n"] = n
    row["sqlite_floor_value"] = median([t / n * 1e6 for t in f])
    row["vs_sqlite_floor"] = paired_ratio(measured, f)
    if cell["kind"] == "s2":
        row["execution_ms"] = median([r["execution"] for r in d]) * 1e3
    return row


def _agent_row(cell: dict[str, Any], d: list[dict[str, float]], f: list[float], rss: float | None) -> dict[str, Any]:
    """A1: a turn of ``Agent.run`` in a durable handler against the same turn in a plain loop. The
    figures are per tool-calling turn (the final answer's turn is in both totals)."""
    n = cell["n"]
    agent, plain = [r["agent"] for r in d], [r["plain"] for r in d]
    ratio = paired_ratio(agent, plain)
    target = "no target" if TARGET_A1_RATIO is None else f"<= {TARGET_A1_RATIO:g}x plain loop"
    met = None if TARGET_A1_RATIO is None else ratio <= TARGET_A1_RATIO
    row = _row(cell["workload"], _label(cell), median([t / n * 1e6 for t in agent]),
               median([t / n * 1e6 for t in plain]), "µs/turn", "µs/plain turn", ratio, target, met, rss, digits=0)
    row["n"] = n
    row["overhead_us_per_turn"] = median([(a - p) / n * 1e6 for a, p in zip(agent, plain, strict=True)])
    row["sqlite_floor_value"] = median([t / n * 1e6 for t in f])
    row["vs_sqlite_floor"] = paired_ratio(agent, f)
    return row


def _tracing_rows(cell: dict[str, Any], d: list[dict[str, float]], rss: float | None) -> list[dict[str, Any]]:
    """T1: a step traced off and on, each against the same steps untraced in the same repetition."""
    n = cell["n"]
    plain = [r["plain"] for r in d]
    rows = []
    for key, what, target_ratio in (("off", "tracing off", TARGET_T1_OFF_RATIO), ("on", "tracing on", None)):
        measured = [r[key] for r in d]
        ratio = paired_ratio(measured, plain)
        target = "no target" if target_ratio is None else f"<= {target_ratio:g}x untraced"
        row = _row(cell["workload"], f"{_label(cell)}, {what}", median([t / n * 1e6 for t in measured]),
                   median([t / n * 1e6 for t in plain]), "µs/step", "µs/untraced step", ratio, target,
                   None if target_ratio is None else ratio <= target_ratio, rss)
        row["n"], row["phase"] = n, key
        rows.append(row)
    return rows


def _label(cell: dict[str, Any]) -> str:
    label = _what(cell)
    if cell.get("store") == "postgres":
        return f"{label[:2]} PostgreSQL:{label[2:]}"
    return label


def _what(cell: dict[str, Any]) -> str:
    if cell["kind"] == "w1":
        return f"W1 {cell['n']:,} sequential steps"
    if cell["kind"] == "w2":
        return f"W2 {cell['executions']}x{cell['steps']} steps, {cell['workers']} workers"
    if cell["kind"] == "w3":
        return f"W3 map {cell['n']:,} items" if cell["what"] == "map" else f"W3 parallel {cell['n']} branches"
    if cell["kind"] == "s1":
        return f"S1 saga step vs plain step, {cell['n']:,} steps"
    if cell["kind"] == "s2":
        return f"S2 rollback of {cell['n']:,} steps"
    if cell["kind"] == "a1":
        return f"A1 agent turn (model step + tool call context), {cell['n']:,} turns"
    if cell["kind"] == "t1":
        return f"T1 {cell['n']:,} sequential steps"
    return f"W4 N={cell['n']:,}"


def _row(wl: str, label: str, dv: float, fv: float, du: str, fu: str, ratio: float, target: str,
         met: bool | None, rss: float | None, digits: int = 1) -> dict[str, Any]:
    return {"workload": wl, "label": label, "durably": f"{dv:,.{digits}f} {du}", "floor": f"{fv:,.{digits}f} {fu}",
            "ratio": f"{ratio:.2f}x", "target": target, "met": met, "rss_mib": rss,
            "durably_value": dv, "floor_value": fv, "ratio_value": ratio}


def linearity(rows: list[dict[str, Any]], store: str) -> dict[str, Any] | None:
    per_op = {r["n"]: r["us_per_op"] for r in rows if r.get("phase") == "replay" and r["store"] == store}
    if len(per_op) < 2:
        return None
    small, big = sorted(per_op)[-2:]
    ratio = per_op[big] / per_op[small]
    where = "" if store == "sqlite" else f" {STORES[store]}:"
    return {"workload": "W4", "store": store, "label": f"W4{where} linearity µs/op N={big:,} vs N={small:,}",
            "durably": f"{per_op[big]:.2f} / {per_op[small]:.2f} µs/op", "floor": "", "ratio": f"{ratio:.2f}x",
            "target": f"<= {TARGET_W4_LINEARITY:g}x", "met": ratio <= TARGET_W4_LINEARITY, "rss_mib": None,
            "ratio_value": ratio}


def print_table(rows: list[dict[str, Any]], header: str) -> None:
    cols = [("label", "workload"), ("durably", "durably"), ("floor", "floor"), ("ratio", "ratio"),
            ("target", "target"), ("met", "met?"), ("rss_mib", "peak RSS MiB")]

    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if key == "met":
            return "" if row.get("error") else yes_no(value)
        if key == "rss_mib":
            return "" if value is None else f"{value:.1f}"
        return str(value)

    table = [[title for _, title in cols]] + [[cell(r, key) for key, _ in cols] for r in rows]
    widths = [max(len(line[i]) for line in table if len(line[i]) < 60) for i in range(len(cols))]
    print(header)
    for i, line in enumerate(table):
        print("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds in all")
    parser.add_argument("--sync", default="FULL", type=str.upper, choices=["FULL", "NORMAL", "OFF", "EXTRA"],
                        help="SQLite synchronous level for durably and the floor (default FULL)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures and raw samples as JSON")
    parser.add_argument("--runs", type=int, default=3, help="repetitions per workload (median reported)")
    parser.add_argument("--only", help="comma-separated workloads to run, e.g. W1,W4")
    parser.add_argument("--inprocess", action="store_true",
                        help="run every workload in this process (for profiling; RSS is then cumulative)")
    parser.add_argument("--postgres", metavar="SERVER_URL", default=os.environ.get("DURABLY_BENCH_POSTGRES"),
                        help="also run W1-W4 on the PostgreSQL store of this server (default: $DURABLY_BENCH_POSTGRES)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(run_cell(spec["cell"], spec["sync"], spec["runs"])))
        return 0

    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    only = {w.strip().upper() for w in args.only.split(",")} if args.only else None
    runner: Callable[[dict[str, Any], str, int], dict[str, Any]] = run_cell if args.inprocess else run_in_child
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    failed = False
    for cell in plan(sizes, only, args.postgres):
        print(f"  running {_label(cell)} ...", file=sys.stderr, flush=True)
        try:
            out = runner(cell, args.sync, args.runs)
        except Exception as exc:  # in-process mode: report the failure like a child's
            out = {"error": f"{type(exc).__name__}: {exc}"}
        raw.append({"cell": cell, **out})
        if "error" in out and cell["workload"] != "W3":  # W3 is under construction elsewhere
            failed = True
        rows.extend(summarise(cell, out, args.sync))
    for store in STORES:
        lin = linearity(rows, store)
        if lin is not None:  # right under the W4 rows it is computed from
            rows.insert(max(i for i, r in enumerate(rows) if r["workload"] == "W4" and r["store"] == store) + 1, lin)
    floor_rss = None
    if not args.inprocess:
        floor_rss = run_in_child({"kind": "floor_rss", "n": sizes["w1"]}, args.sync, 1).get("rss_mib")

    header = (f"durably bench: synchronous={args.sync}, WAL, median of {args.runs} runs"
              f"{' (quick sizes)' if args.quick else ''}; Python {platform.python_version()},"
              f" SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    if args.postgres:
        header += f"; PostgreSQL {_server_version(args.postgres)} (synchronous_commit on)"
    print_table(rows, header)
    if floor_rss is not None:
        print(f"peak RSS of a floor-only process (sqlite3, no durably): {floor_rss:.1f} MiB")
    print("floor: raw SQLite (W rows; PostgreSQL rows: raw psycopg, autocommit INSERTs), durably's plain ctx.step"
          " in the same repetition (S rows), the same"
          " scripted model and @tool called in a plain Python loop in the same repetition (A1).")
    print(f"ratio = durably / floor (times: lower is better; W2 exec/s: higher is better). "
          f"Total {time.perf_counter() - started:.1f} s.")
    for r in rows:
        if r.get("skipped"):
            print(f"{r['label']} skipped: {r['skipped']}")
    for r in rows:
        if r.get("error"):
            print(f"\n{r['label']} failed:\n{r['error']}")
    if args.json:
        payload = {"sync": args.sync, "quick": args.quick, "runs": args.runs, "sizes": sizes,
                   "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                   "cpus": os.cpu_count(), "floor_rss_mib": floor_rss, "postgres": bool(args.postgres),
                   "rows": rows, "raw": raw}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 1 if failed else 0


def _server_version(server: str) -> str:
    import floor_pg

    try:
        return floor_pg.server_version(server)
    except Exception as exc:  # the cells report the failure in full
        return f"unreachable ({type(exc).__name__})"


if __name__ == "__main__":
    sys.exit(main())
