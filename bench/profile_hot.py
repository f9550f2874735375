"""Profile durably's hot paths: W1 (sequential steps), W4 (replay), A1 (agent turns), with cProfile.

    python bench/profile_hot.py [--sync OFF] [--steps 2000] [--replay 10000] [--turns 300] [--top 30]
        [--sort tottime|cumulative] [--only w1|w4|a1]

The default synchronous=OFF takes fsync out of the picture, so what is left is durably's own
CPU per step and per replayed operation. Also prints the SQL statements by time spent (W1).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import importlib.util
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import workloads  # noqa: E402
from durably.core import Engine  # noqa: E402
from durably.core.engine.stores.sqlite import SQLiteStore  # noqa: E402
from durably.core.execution import InvocationInput  # noqa: E402


def print_by_file(prof: cProfile.Profile | pstats.Stats, per: int, unit: str, top: int = 14,
                  skip: Callable[[str, str], bool] | None = None) -> None:
    """Own time (tottime) summed per source file, per step / replayed operation / turn; ``skip``
    (file name, function name) leaves functions out (time a thread spent waiting for another)."""
    totals: dict[str, float] = collections.defaultdict(float)
    stats = (prof if isinstance(prof, pstats.Stats) else pstats.Stats(prof)).stats  # type: ignore[attr-defined]
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        if skip is not None and skip(filename, func):
            continue
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
    store = engine.store
    assert isinstance(store, SQLiteStore)
    store._conn = _TimedConnection(store._conn, stats)  # type: ignore[assignment]
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
        ops = engine.service.invocation_records(arn)
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


def profile_a1(tmp: Path, sync: str, turns: int, top: int, sort: str) -> None:
    """The agent loop: first unprofiled, with a timer around the model's and the tool's ``invoke``
    and the AIMessage serdes (what is left is durably's own); then under cProfile, the tool
    branches' threads too (each branch job in a profile of its own, merged)."""
    import agent_turns  # needs langchain-core
    from durably.agents import MessageSerDes
    from durably.agents.testing import ScriptedChatModel
    from durably.core import concurrency

    for warm_up, run in ((20, tmp / "a1-warm-up"), (turns, tmp / "a1-unprofiled")):
        run.mkdir()
        timed = agent_turns.a1(run, sync, warm_up)
    print(f"== A1: {turns} agent turns at synchronous={sync}, unprofiled: {timed['agent'] / turns * 1e6:.0f} µs/turn"
          f" durable, {timed['plain'] / turns * 1e6:.0f} µs/turn plain loop")

    split: dict[str, float] = collections.defaultdict(float)
    patched = [(type(agent_turns.lookup), "invoke", "tool.invoke"),
               (ScriptedChatModel, "invoke", "model.invoke"),
               (MessageSerDes, "serialize", "AIMessage dumps (checkpoint)"),
               (MessageSerDes, "deserialize", "AIMessage loads (step result)")]
    originals = [(cls, attr, cls.__dict__.get(attr)) for cls, attr, _ in patched]
    for cls, attr, key in patched:
        setattr(cls, attr, _timer(getattr(cls, attr), split, key))
    try:
        model = agent_turns.scripted_model(turns)
        split.clear()
        start = time.perf_counter()
        agent_turns.plain_loop(model, turns)
        plain = {**split, "total": time.perf_counter() - start}
        split.clear()
        total = agent_turns.durable_loop(tmp / "a1-split.db", sync, model, turns)
        durable = {**split, "total": total}
    finally:
        for cls, attr, original in originals:
            if original is None:
                delattr(cls, attr)
            else:
                setattr(cls, attr, original)
    print(f"-- unprofiled split, µs/turn {'':11} plain loop  durable")
    for key in ("model.invoke", "tool.invoke", "AIMessage dumps (checkpoint)", "AIMessage loads (step result)"):
        print(f"   {key:30} {plain.get(key, 0) / turns * 1e6:9.0f} {durable.get(key, 0) / turns * 1e6:9.0f}")
    rest = {side: figures["total"] - sum(v for k, v in figures.items() if k != "total")
            for side, figures in (("plain", plain), ("durable", durable))}
    print(f"   {'the rest (durably on the right)':30} {rest['plain'] / turns * 1e6:9.0f}"
          f" {rest['durable'] / turns * 1e6:9.0f}   <- engine, steps, parallel, branch thread, SQLite")
    print(f"   {'total':30} {plain['total'] / turns * 1e6:9.0f} {durable['total'] / turns * 1e6:9.0f}")

    branch_profiles: list[cProfile.Profile] = []
    serve = concurrency._threads.run

    def run_profiled(job: Callable[[], None]) -> None:
        def profiled() -> None:
            prof = cProfile.Profile()
            prof.enable()
            try:
                job()
            finally:
                prof.disable()
                branch_profiles.append(prof)
        serve(profiled)

    prof = cProfile.Profile()
    model = agent_turns.scripted_model(turns)
    concurrency._threads.run = run_profiled  # type: ignore[method-assign]
    try:
        prof.enable()
        agent_turns.durable_loop(tmp / "a1-profiled.db", sync, model, turns)
        prof.disable()
    finally:
        concurrency._threads.run = serve  # type: ignore[method-assign]
    main_thread = pstats.Stats(prof)
    branches = pstats.Stats(*branch_profiles)
    everything = pstats.Stats(prof, *branch_profiles)
    everything.sort_stats(sort).print_stats(top)
    waited = _cumulative(main_thread, "~", "<method 'acquire' of '_thread.lock' objects>")
    branch_total = sum(tt for _cc, _nc, tt, _ct, _c in branches.stats.values())  # type: ignore[attr-defined]
    print(f"-- the calling thread waited {waited / turns * 1e6:.0f} µs/turn on locks (for its branch, mostly),"
          f" not counted below; the branch threads ran {branch_total / turns * 1e6:.0f} µs/turn (profiled)")
    print_by_file(everything, turns, "µs/turn", top=25,
                  skip=lambda fn, func: fn == "~" and func == "<method 'acquire' of '_thread.lock' objects>")


def _timer(method: Callable[..., Any], into: dict[str, float], key: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            into[key] += time.perf_counter() - start
    return timed


def _cumulative(stats: pstats.Stats, file_tail: str, func: str) -> float:
    """Cumulative seconds of the functions named ``func`` in files ending with ``file_tail``."""
    return sum(ct for (fn, _l, name), (_cc, _nc, _tt, ct, _c) in stats.stats.items()  # type: ignore[attr-defined]
               if name == func and fn.endswith(file_tail))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync", default="OFF", type=str.upper)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--replay", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--only", choices=["w1", "w4", "a1"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="durably-profile-"))
    try:
        if args.only in (None, "w1"):
            profile_w1(tmp, args.sync, args.steps, args.top, args.sort)
        if args.only in (None, "w4"):
            profile_w4(tmp, args.sync, args.replay, args.top, args.sort)
        if args.only in (None, "a1") and importlib.util.find_spec("langchain_core") is not None:
            profile_a1(tmp, args.sync, args.turns, args.top, args.sort)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
