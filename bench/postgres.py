"""W1-W3 on the PostgreSQL store, against PostgreSQL's own floor measured in the same run.

The floor is what one checkpoint cannot do with less: one row inserted and committed per step
over one connection (W1, W2), and rows inserted in batches of 64 per commit (W3). Needs a server:
``python bench/postgres.py postgresql://user@host:port/postgres`` (each workload gets a fresh
database, dropped afterwards). Ratios, not seconds, are what compare across machines.
"""

from __future__ import annotations

import argparse
import functools
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import workloads
from durably.core import Engine

BATCH = 64


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def floor_rows(url: str, n: int, batch: int = 1) -> float:
    """Seconds to insert ``n`` journal-sized rows, committing every ``batch``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor(key BIGINT, seq BIGINT, doc TEXT, PRIMARY KEY(key, seq))")
        doc = '{"Id":"c4ca4238a0b92382","Type":"STEP","Status":"SUCCEEDED","StepDetails":{"Result":"1"}}'
        start = time.perf_counter()
        for first in range(0, n, batch):
            with conn.transaction():
                for seq in range(first, min(first + batch, n)):
                    conn.execute("INSERT INTO floor VALUES (1, %s, %s)", (seq, doc))
        return time.perf_counter() - start


def durably_steps(url: str, n: int) -> float:
    engine = Engine(url)
    try:
        start = time.perf_counter()
        arn = engine.start_execution(workloads.steps_handler, {"n": n})
        workloads._check(engine.run_until_complete(arn), n)
        return time.perf_counter() - start
    finally:
        workloads._close(engine)


def durably_executions(url: str, executions: int, steps: int, workers: int) -> float:
    engine = Engine(url, workers=workers).start()
    try:
        start = time.perf_counter()
        arns = [engine.start_execution(workloads.steps_handler, {"n": steps}) for _ in range(executions)]
        for arn in arns:
            workloads._check(engine.wait_for(arn, timeout=600), steps)
        return time.perf_counter() - start
    finally:
        workloads._close(engine)


def durably_map(url: str, n: int) -> float:
    engine = Engine(url)
    try:
        start = time.perf_counter()
        arn = engine.start_execution(workloads.map_handler, {"n": n})
        workloads._check(engine.run_until_complete(arn, timeout=600), n)
        return time.perf_counter() - start
    finally:
        workloads._close(engine)


def measure(server: str, runs: int, fn: Callable[[str], float]) -> float:
    """The median over ``runs`` of ``fn`` on a fresh database each time."""
    samples = []
    for _ in range(runs):
        with fresh_database(server) as url:
            samples.append(fn(url))
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", help="a PostgreSQL URL whose user may create databases")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    steps, executions, items = (200, 40, 200) if args.quick else (1000, 200, 1000)
    rows: list[tuple[str, str, str, str]] = []

    floor = measure(args.server, args.runs, lambda u: floor_rows(u, steps)) / steps
    ours = measure(args.server, args.runs, lambda u: durably_steps(u, steps)) / steps
    rows.append(("W1 steps", f"{ours * 1e6:.0f} µs/step", f"{floor * 1e6:.0f} µs/row",
                 f"{ours / floor:.2f}x floor (target ≤ 1.3x)"))
    for workers in (1, 4):
        total = measure(args.server, args.runs, functools.partial(
            durably_executions, executions=executions, steps=10, workers=workers))
        rate, floor_rate = executions / total, 1 / (floor * 10)
        rows.append((f"W2 {workers} worker(s)", f"{rate:.0f} executions/s", f"{floor_rate:.0f} executions/s",
                     f"{rate / floor_rate:.2f}x floor (target ≥ 1x)"))
    batched = measure(args.server, args.runs, lambda u: floor_rows(u, items, BATCH)) / items
    mapped = measure(args.server, args.runs, lambda u: durably_map(u, items)) / items
    rows.append(("W3 map", f"{mapped * 1e6:.0f} µs/item", f"{batched * 1e6:.0f} µs/row (batched)",
                 f"target ≤ 30 µs/item ({mapped / batched:.1f}x floor)"))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    print("PostgreSQL store, medians of", args.runs, "runs")
    for r in (("workload", "durably", "floor", "ratio"), *rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

