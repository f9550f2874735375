"""Profile durably's hot paths: W1 (sequential steps) and W4 (replay), with cProfile.

    python bench/profile_hot.py [--sync OFF] [--steps 2000] [--replay 10000] [--top 30]
        [--sort tottime|cumulative] [--only w1|w4]

The default synchronous=OFF takes fsync out of the picture, so what is left is durably's own
CPU per step and per replayed operation. Also prints the SQL statements by time spent (W1).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import workloads  # noqa: E402
from durably.core import Engine  # noqa: E402
from durably.core.execution import InvocationInput  # noqa: E402


def print_by_file(prof: cProfile.Profile, per: int, unit: str, top: int = 14) -> None:
    """Own time (tottime) summed per source file, per step / replayed operation."""
    totals: dict[str, float] = collections.defaultdict(float)
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        if filename == "~":
            key = func if "sqlite3" in func or "pydantic" in func or "json" in func else "<builtins>"
        elif "/site-packages/" in filename:
            key = filename.split("/site-packages/")[1].split("/")[0]
        elif "/work/main/" in filename or "/durably/" in filename:
            key = filename.split("/main/")[-1]
        else:
            key = "stdlib " + filename.rsplit("/", 1)[-1]
        totals[key] += tottime
    grand = sum(totals.values())
    print(f"-- own time by file (profiled), {unit}; total {grand / per * 1e6:.1f}")
    for key, secs in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{secs / per * 1e6:8.2f} {100 * secs / grand:5.1f}%  {key}")


class _TimedConnection:
    """Wraps the store's write connection and times every statement by its text."""

    def __init__(self, conn: Any, stats: dict[str, list[float]]) -> None:
        self._conn = conn
        self._stats = stats

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.execute, sql, args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self._conn.executemany, sql, args)

    def _timed(self, method: Any, sql: str, args: tuple[Any, ...]) -> Any:
        start = time.perf_counter()
        try:
            return method(sql, *args)
        finally:
            entry = self._stats[" ".join(sql.split())[:90]]
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def profile_w1(tmp: Path, sync: str, steps: int, top: int, sort: str) -> None:
    engine = Engine(tmp / "w1.db", synchronous=sync)
    engine.run_until_complete(engine.start_execution(workloads.steps_handler, {"n": 20}))  # warm up
    arn = engine.start_execution(workloads.steps_handler, {"n": steps})
    start = time.perf_counter()
    engine.run_until_complete(arn)
    plain = time.perf_counter() - start

    arn = engine.start_execution(workloads.steps_handler, {"n": steps})
    prof = cProfile.Profile()
    prof.enable()
    engine.run_until_complete(arn)
    prof.disable()
    print(f"== W1: {steps} steps at synchronous={sync}: {plain / steps * 1e6:.1f} µs/step unprofiled")
    pstats.Stats(prof).sort_stats(sort).print_stats(top)
    print_by_file(prof, steps, "µs/step")

    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    engine.store._conn = _TimedConnection(engine.store._conn, stats)  # type: ignore[assignment]
    arn = engine.start_execution(workloads.steps_handler, {"n": steps})
    engine.run_until_complete(arn)
    print(f"== W1 SQL on the write connection, per step ({steps} steps)")
    for sql, (count, secs) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:15]:
        print(f"{count / steps:5.2f}x {secs / steps * 1e6:7.1f} µs/step  {sql}")
    engine.store._conn = engine.store._conn._conn  # type: ignore[attr-defined]
    engine.close()
    engine.store.close()


def profile_w4(tmp: Path, sync: str, n: int, top: int, sort: str) -> None:
    db = tmp / "w4.db"
    arn = workloads.w4_build(db, n)
    gc.collect()  # the build's garbage is not the replay's
    engine = Engine(db, synchronous=sync)
    engine.register_durable_function(workloads.REPLAY_FUNCTION, workloads.replay_handler)

    def replay() -> None:
        ops, marker = [], None
        while True:
            page = engine.service.get_state(arn, None, marker)
            ops.extend(page.Operations)
            marker = page.NextMarker
            if not marker:
                break
        workloads.replay_handler.invoke(InvocationInput(arn, "bench-no-writes", ops), engine.backend)

    replay()  # warm up
    start = time.perf_counter()
    replay()
    plain = time.perf_counter() - start
    prof = cProfile.Profile()
    prof.enable()
    replay()
    prof.disable()
    print(f"== W4: replay of {n} operations: {plain * 1e3:.1f} ms, {plain / n * 1e6:.2f} µs/op unprofiled")
    pstats.Stats(prof).sort_stats(sort).print_stats(top)
    print_by_file(prof, n, "µs/op")
    engine.close()
    engine.store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync", default="OFF", type=str.upper)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--replay", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--only", choices=["w1", "w4"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="durably-profile-"))
    try:
        if args.only in (None, "w1"):
            profile_w1(tmp, args.sync, args.steps, args.top, args.sort)
        if args.only in (None, "w4"):
            profile_w4(tmp, args.sync, args.replay, args.top, args.sort)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
