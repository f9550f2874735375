"""The durably side of the workloads (W1-W4 of /work/shared/BASELINES.md; S1-S2 for sagas).

The W functions get a fresh database (a SQLite file's path, or a PostgreSQL URL), the S functions
a fresh directory; all use the engine's real clock and return elapsed seconds (W4 and the S rows
return a dict of timings). Handlers never wait on time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from durably.core import DurableContext, Engine, RetryDecision, StepConfig, durable_execution
from durably.core.execution import InvocationInput
from durably.sagas import SagaRolledBack, saga


def trivial(_step_ctx: Any) -> int:
    """The step body: annotated, as user code usually is (the return type selects the result codec)."""
    return 1


def _close(engine: Engine) -> None:
    engine.close()
    engine.store.close()


# ---------------------------------------------------------------- W1 / W2: sequential steps
@durable_execution
def steps_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    for _ in range(event["n"]):
        ctx.step(trivial)
    return int(event["n"])


Database = str | Path
"""A SQLite file's path or a PostgreSQL URL (``synchronous`` only applies to SQLite)."""


def w1(db: Database, sync: str, n: int) -> float:
    """One execution of ``n`` sequential trivial steps, driven in this thread; seconds."""
    engine = Engine(db, synchronous=sync)
    try:
        start = time.perf_counter()
        arn = engine.start_execution(steps_handler, {"n": n})
        execution = engine.run_until_complete(arn)
        elapsed = time.perf_counter() - start
        _check(execution, n)
        return elapsed
    finally:
        _close(engine)


def w2(db: Database, sync: str, executions: int, steps: int, workers: int) -> float:
    """``executions`` executions of ``steps`` steps on ``workers`` background workers; seconds."""
    engine = Engine(db, synchronous=sync, workers=workers).start()
    try:
        start = time.perf_counter()
        arns = [engine.start_execution(steps_handler, {"n": steps}) for _ in range(executions)]
        for arn in arns:
            _check(engine.wait_for(arn, timeout=600), steps)
        return time.perf_counter() - start
    finally:
        _close(engine)


def _check(execution: dict[str, Any], n: int) -> None:
    if execution["Status"] != "SUCCEEDED" or execution.get("Result") != str(n):
        raise RuntimeError(f"the benchmark execution did not succeed: {execution}")


# ---------------------------------------------------------------- W3: map and parallel
def _map_item(ctx: DurableContext, item: int, _index: int, _items: Any) -> int:
    return ctx.step(trivial) + item * 0


def _branch(ctx: DurableContext) -> int:
    return ctx.step(trivial)


@durable_execution
def map_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    result = ctx.map(list(range(event["n"])), _map_item)
    result.throw_if_error()
    return len(result.all)


@durable_execution
def parallel_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    result = ctx.parallel([_branch] * event["n"])
    result.throw_if_error()
    return len(result.all)


def w3(db: Database, sync: str, kind: str, n: int) -> float:
    """A map over ``n`` items (one step each) or a parallel of ``n`` branches; seconds."""
    handler = map_handler if kind == "map" else parallel_handler
    engine = Engine(db, synchronous=sync)
    try:
        start = time.perf_counter()
        arn = engine.start_execution(handler, {"n": n})
        execution = engine.run_until_complete(arn, timeout=600)
        elapsed = time.perf_counter() - start
        _check(execution, n)
        return elapsed
    finally:
        _close(engine)


# ---------------------------------------------------------------- W4: replay
@durable_execution
def replay_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    """``n`` steps, then callbacks until one is answered ``done``: each answer is one more resume."""
    for _ in range(event["n"]):
        ctx.step(trivial)
    while True:
        if ctx.create_callback(name="again?").result() == "done":
            return int(event["n"])


REPLAY_FUNCTION = "bench-replay"


def w4_build(db: Database, n: int) -> str:
    """Record an execution of ``n`` completed steps, suspended on a callback; its ARN.

    Built without waiting for the disk to save time (SQLite's synchronous=OFF, PostgreSQL's
    synchronous_commit=off): the replay reads the same database afterwards.
    """
    engine = Engine(_without_fsync(db), synchronous="OFF")
    try:
        arn = engine.start_execution(replay_handler, {"n": n}, function_name=REPLAY_FUNCTION)
        execution = engine.run_until_complete(arn, stop_when_blocked=True, timeout=600)
        if execution["Status"] != "RUNNING":
            raise RuntimeError(f"the history build did not suspend: {execution}")
        return arn
    finally:
        _close(engine)


def _without_fsync(db: Database) -> Database:
    if not str(db).startswith("postgresql://"):
        return db
    return f"{db}{'&' if '?' in str(db) else '?'}options=-c%20synchronous_commit%3Doff"


def w4_build_elsewhere(db: Database, n: int) -> str:
    """:func:`w4_build` in a process of its own, so this one's memory and garbage are the replay's."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import workloads; "
            f"print(workloads.w4_build({str(db)!r}, {n}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the history build failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def w4(db: Database, sync: str, n: int) -> dict[str, float]:
    """Replay an execution of ``n`` completed steps. Seconds for:

    - ``load``: reading the whole operation log as an invocation of the engine does
      (``Service.invocation_records``: one read, documents decoded as the replay reaches them);
    - ``replay``: ``load`` plus ``DurableFunction.invoke`` over it, up to the open callback
      (what the engine does in an invocation besides the claim and the end-of-invocation commit);
    - ``resume``: answering the callback, then the engine's full invocation (claim, load,
      replay, the new callback's checkpoint, the invocation's end).
    """
    arn = w4_build_elsewhere(db, n)
    engine = Engine(db, synchronous=sync)
    try:
        engine.register_durable_function(REPLAY_FUNCTION, replay_handler)
        service = engine.service
        service.store.read(lambda tx: None)  # the engine's reader connection is opened once, not per invocation
        start = time.perf_counter()
        operations = service.invocation_records(arn)  # an invocation's read: documents, decoded when reached
        loaded = time.perf_counter()
        output = replay_handler.invoke(InvocationInput(arn, "bench-no-writes", operations), engine.backend)
        replayed = time.perf_counter()
        if output.Status != "PENDING" or len(operations) != n + 2:
            raise RuntimeError(f"the replay did not stop at the callback: {output}, {len(operations)} ops")

        del operations, output  # the resume loads its own copy

        callback_id = _open_callback(engine, arn)
        engine.send_callback_success(callback_id, "again")
        begin = time.perf_counter()
        execution = engine.run_until_complete(arn, stop_when_blocked=True, timeout=600)
        resumed = time.perf_counter()
        if execution["Status"] != "RUNNING" or _open_callback(engine, arn) == callback_id:
            raise RuntimeError(f"the resume did not reach the next callback: {execution}")
        return {"load": loaded - start, "replay": replayed - start, "resume": resumed - begin}
    finally:
        _close(engine)


def _open_callback(engine: Engine, arn: str) -> str:
    """The callback the execution waits on (found without decoding the whole history, which would
    weigh on the peak memory measured)."""
    for callback in engine.service.open_callbacks(arn=arn):
        if callback.operation.CallbackDetails and callback.operation.CallbackDetails.CallbackId:
            return callback.operation.CallbackDetails.CallbackId
    raise RuntimeError("no open callback")


# ---------------------------------------------------------------- S1 / S2: sagas (issue 15)
def undo_trivial(_step_ctx: Any, _undo: Any) -> None:
    """A compensation that does nothing: what is measured is the saga's machinery."""


def failing(_step_ctx: Any) -> int:
    raise RuntimeError("the last step of the saga fails")


NO_RETRY = StepConfig(retry_strategy=lambda _error, _attempt: RetryDecision.no_retry())
ROLLBACK_CLOCK: dict[str, float] = {}
"""perf_counter marks of the S2 rollback, set by the handler: ``failed`` (the last forward step's
body, just before it raises) and ``rolled_back`` (the handler catching the saga's outcome)."""


@durable_execution
def saga_steps_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    """``n`` sequential steps inside one saga, each with a compensation (none runs)."""
    with saga(ctx, "bench") as s:
        for _ in range(event["n"]):
            s.step(trivial, compensate=undo_trivial, name="trivial")
    return int(event["n"])


def _fail_last(step_ctx: Any) -> int:
    ROLLBACK_CLOCK["failed"] = time.perf_counter()
    return failing(step_ctx)


@durable_execution
def saga_rollback_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    """A saga of ``n`` compensable steps whose last step fails: ``n`` compensations, in reverse."""
    try:
        with saga(ctx, "bench") as s:
            for _ in range(event["n"]):
                s.step(trivial, compensate=undo_trivial, name="trivial")
            s.step(_fail_last, name="fails", config=NO_RETRY)
    except SagaRolledBack as exc:
        ROLLBACK_CLOCK["rolled_back"] = time.perf_counter()
        return len(exc.compensated)
    raise RuntimeError("the saga did not roll back")


def s1(workdir: Path, sync: str, n: int) -> dict[str, float]:
    """``n`` sequential steps in a saga (each with a compensation) and ``n`` plain ``ctx.step``, back
    to back on fresh databases; seconds for each (``saga``, ``plain``)."""
    plain = w1(workdir / "w1.db", sync, n)
    in_saga = _timed(saga_steps_handler, workdir / "s1.db", sync, n, n)
    return {"plain": plain, "saga": in_saga}


def s2(workdir: Path, sync: str, n: int) -> dict[str, float]:
    """A saga of ``n`` compensable steps whose last step fails, and ``n`` plain steps; seconds for:

    - ``rollback``: from the failing step's body to the handler catching ``SagaRolledBack`` (the
      failed step's checkpoint, ``n`` compensations, the saga context's end);
    - ``execution``: the whole rolled-back execution (``n`` forward steps, the failure, the rollback);
    - ``plain``: ``n`` plain ``ctx.step`` (the reference a compensation is compared with).
    """
    plain = w1(workdir / "w1.db", sync, n)
    ROLLBACK_CLOCK.clear()
    execution = _timed(saga_rollback_handler, workdir / "s2.db", sync, n, n)
    return {"plain": plain, "execution": execution,
            "rollback": ROLLBACK_CLOCK["rolled_back"] - ROLLBACK_CLOCK["failed"]}


def _timed(handler: Any, db: Path, sync: str, n: int, expected: int) -> float:
    """Seconds to run ``handler`` on ``{"n": n}`` to its end in this thread; it must return ``expected``."""
    engine = Engine(db, synchronous=sync)
    try:
        start = time.perf_counter()
        arn = engine.start_execution(handler, {"n": n})
        execution = engine.run_until_complete(arn, timeout=600)
        elapsed = time.perf_counter() - start
        _check(execution, expected)
        return elapsed
    finally:
        _close(engine)
