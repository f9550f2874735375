"""SIGKILL a worker mid-execution: another worker takes over at once and nothing completed runs twice.

A worker process runs handlers whose steps append a line to a log when their body starts. After a
kill, the database shows which steps had their SUCCEED committed; those never run again, and the
one step that was in flight runs exactly once more (at-least-once) or not at all (at-most-once).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from durably.core.engine.engine import Engine
from pg_store import database

HANDLERS = textwrap.dedent('''
    import os
    import time

    from durably.core import Duration, StepConfig, StepError, StepSemantics, durable_execution
    from durably.core.retries import RetryDecision

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps.log")


    def record(line):
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\\n").encode())
        finally:
            os.close(fd)


    @durable_execution
    def pipeline(event, ctx):
        tag, pause = event["tag"], event["pause"]
        total = 0
        for i in range(event["steps"]):
            def body(_, i=i):
                record(f"{tag}:{i}")
                time.sleep(pause)
                return i
            total += ctx.step(body, name=f"step-{i}")
        return total


    @durable_execution
    def charge_once(event, ctx):
        tag, retry = event["tag"], event["retry"]

        def strategy(error, attempt):
            return RetryDecision.retry(Duration(1)) if retry and attempt < 2 else RetryDecision.no_retry()

        def charge(step_ctx):
            record(f"{tag}:charge:{step_ctx.attempt}")
            if step_ctx.attempt == 1:
                time.sleep(60)
            return "charged"

        config = StepConfig(retry_strategy=strategy, step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        try:
            return {"result": ctx.step(charge, name="charge", config=config)}
        except StepError as exc:
            return {"failed": exc.error_type, "message": exc.message}
''')

WORKER = "import sys\nfrom durably.core.engine.engine import Engine\nEngine(sys.argv[1], workers=1).serve()\n"


# ---------------------------------------------------------------------------- helpers
class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.handlers = tmp_path / "crash_handlers.py"
        self.handlers.write_text(HANDLERS)
        self.db = tmp_path / "crash.db"
        self.log = tmp_path / "steps.log"
        self.engine = Engine(self.db)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, attr: str, event: dict[str, Any]) -> str:
        return self.engine.start_execution(f"{self.handlers}:{attr}", event)

    def spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", WORKER, database(self.db)], cwd=self.dir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], reap: bool = True) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        if reap:
            proc.wait(timeout=10)

    def lines(self) -> list[str]:
        if not self.log.exists():
            return []
        return self.log.read_text().splitlines()

    def wait_lines(self, n: int, timeout: float = 20, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines()) < n:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"worker exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            assert time.monotonic() < deadline, f"timed out waiting for {n} log lines: {self.lines()}"
            time.sleep(0.002)

    def wait_status(self, arn: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            execution = self.engine.get_execution(arn)
            if execution["Status"] != "RUNNING":
                return execution
            assert time.monotonic() < deadline, f"{arn} still running"
            time.sleep(0.01)

    def exit_errors(self, arn: str) -> list[dict[str, Any]]:
        return [e for e in self.engine.get_history(arn) if e["EventType"] == "InvocationCompleted"
                and e["InvocationCompletedDetails"].get("Error", {}).get("Payload", {}).get("ErrorType")
                == "Runtime.ExitError"]

    def wait_takeover(self, arn: str, already: int, timeout: float = 10) -> float:
        t0 = time.monotonic()
        while len(self.exit_errors(arn)) <= already:
            assert time.monotonic() - t0 < timeout, "no takeover recorded"
            time.sleep(0.005)
        return time.monotonic() - t0

    def committed_steps(self) -> int:
        """How many steps have their SUCCEED committed, over all executions."""
        arns = [e["DurableExecutionArn"] for e in self.engine.list_executions(max_items=1000)["DurableExecutions"]]
        return sum(len(self.succeeded_steps(arn)) for arn in arns)

    def succeeded_steps(self, arn: str) -> set[str]:
        return {op.Name or "" for op in self.engine.service.all_operations(arn)
                if op.Type == "STEP" and op.Status == "SUCCEEDED"}

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.engine.close()
        self.engine.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Any:
    h = Harness(tmp_path)
    yield h
    h.close()


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))
    types = [e["EventType"] for e in events]
    assert types[0] == "ExecutionStarted"
    assert types.count("ExecutionStarted") == 1
    assert types[-1] == "ExecutionSucceeded" and types.count("ExecutionSucceeded") == 1
    assert types[-2] == "InvocationCompleted"
    for e in events:
        assert [k for k in e if k.endswith("Details")] == [f"{e['EventType']}Details"]
        if e["EventType"] == "InvocationCompleted":
            d = e["InvocationCompletedDetails"]
            assert {"StartTimestamp", "EndTimestamp", "RequestId"} <= set(d)


def assert_pipeline_history(events: list[dict[str, Any]], steps: int) -> None:
    assert_well_formed(events)
    succeeded = Counter(e["Name"] for e in events if e["EventType"] == "StepSucceeded")
    assert succeeded == Counter(f"step-{i}" for i in range(steps))
    started = Counter(e["Name"] for e in events if e["EventType"] == "StepStarted")
    assert set(started) == set(succeeded)
    assert all(c == 1 for c in started.values()), started  # an at-least-once re-run starts no new attempt
    # every StepSucceeded follows its StepStarted
    seen: set[str] = set()
    for e in events:
        if e["EventType"] == "StepStarted":
            seen.add(e["Name"])
        elif e["EventType"] == "StepSucceeded":
            assert e["Name"] in seen


# ---------------------------------------------------------------------------- single kills
def test_sigkill_mid_step_is_taken_over_at_once(harness: Harness) -> None:
    arn = harness.start("pipeline", {"tag": "p", "steps": 6, "pause": 0.3})
    worker = harness.spawn()
    harness.wait_lines(3, proc=worker)  # step-2's body has begun
    time.sleep(0.1)  # ... and is sleeping
    harness.kill(worker)
    # the START of a body that is still running was committed: the crash left a StepStarted
    ops = {op.Name: op for op in harness.engine.service.all_operations(arn) if op.Type == "STEP"}
    assert ops["step-2"].Status == "STARTED"
    assert {"step-0", "step-1"} == harness.succeeded_steps(arn)
    events = harness.engine.get_history(arn)
    assert [e["Name"] for e in events if e["EventType"] == "StepStarted"][-1] == "step-2"
    assert harness.exit_errors(arn) == []

    harness.spawn()
    takeover = harness.wait_takeover(arn, already=0)
    assert takeover < 2.5, f"takeover took {takeover:.2f}s"
    done = harness.wait_status(arn)
    assert done["Status"] == "SUCCEEDED"
    assert json.loads(done["Result"]) == sum(range(6))

    counts = Counter(harness.lines())
    assert counts == Counter({"p:0": 1, "p:1": 1, "p:2": 2, "p:3": 1, "p:4": 1, "p:5": 1})
    events = harness.engine.get_history(arn)
    assert_pipeline_history(events, 6)
    crashed = harness.exit_errors(arn)
    assert len(crashed) == 1
    details = crashed[0]["InvocationCompletedDetails"]
    assert str(worker.pid) in details["Error"]["Payload"]["ErrorMessage"]
    assert details["StartTimestamp"] <= details["EndTimestamp"]


def test_takeover_of_an_unreaped_worker(harness: Harness) -> None:
    """A killed worker that its parent has not reaped yet (a zombie) is dead too."""
    arn = harness.start("pipeline", {"tag": "z", "steps": 3, "pause": 0.3})
    worker = harness.spawn()
    harness.wait_lines(1, proc=worker)
    time.sleep(0.1)
    harness.kill(worker, reap=False)
    try:
        harness.spawn()
        assert harness.wait_takeover(arn, already=0) < 2.5
        assert harness.wait_status(arn)["Status"] == "SUCCEEDED"
    finally:
        worker.wait(timeout=10)
    assert Counter(harness.lines()) == Counter({"z:0": 2, "z:1": 1, "z:2": 1})


@pytest.mark.parametrize("retry", [False, True], ids=["no-retry", "retry"])
def test_at_most_once_step_is_not_rerun(harness: Harness, retry: bool) -> None:
    arn = harness.start("charge_once", {"tag": "c", "retry": retry})
    worker = harness.spawn()
    harness.wait_lines(1, proc=worker)
    time.sleep(0.05)
    harness.kill(worker)
    op = next(op for op in harness.engine.service.all_operations(arn) if op.Type == "STEP")
    assert op.Status == "STARTED"  # committed before the body ran

    harness.spawn()
    done = harness.wait_status(arn)
    assert done["Status"] == "SUCCEEDED"
    result = json.loads(done["Result"])
    events = harness.engine.get_history(arn)
    assert_well_formed(events)
    assert len(harness.exit_errors(arn)) == 1
    failed = [e for e in events if e["EventType"] == "StepFailed"]
    assert len(failed) == 1
    error = failed[0]["StepFailedDetails"]["Error"]["Payload"]
    assert error["ErrorType"].endswith("StepInterruptedError")
    if retry:
        # the interrupted attempt counts as failed; the strategy retries; attempt 2 runs the body
        assert harness.lines() == ["c:charge:1", "c:charge:2"]
        assert result == {"result": "charged"}
        assert failed[0]["StepFailedDetails"]["RetryDetails"]["CurrentAttempt"] == 1
        assert [e["EventType"] for e in events].count("StepSucceeded") == 1
    else:
        assert harness.lines() == ["c:charge:1"]  # never re-run
        assert result["failed"].endswith("StepInterruptedError")
        assert "interrupted" in result["message"]
        step_op = next(op for op in harness.engine.service.all_operations(arn) if op.Type == "STEP")
        assert step_op.Status == "FAILED"


# ---------------------------------------------------------------------------- campaigns
@dataclass
class Kill:
    counts: Counter[str]
    succeeded: set[str]
    inflight: set[str] = field(default_factory=set)


def run_campaign(h: Harness, kills: int, seed: int, steps: int, pause: float) -> None:
    """Kill the worker ``kills`` times at seeded random points, then let a last worker finish."""
    rng = random.Random(seed)
    arns: list[str] = []
    snapshots: list[Kill] = []

    def new_execution() -> None:
        arns.append(h.start("pipeline", {"tag": f"e{len(arns)}", "steps": steps, "pause": pause}))

    new_execution()
    for _ in range(kills):
        worker = h.spawn()
        # each worker commits at least one step before it dies: five crashes in a row without progress
        # would rightly fail the execution (the invocation retry budget)
        target, committed = len(h.lines()) + rng.randint(1, 3), h.committed_steps()
        deadline = time.monotonic() + 30
        while len(h.lines()) < target or h.committed_steps() == committed:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, f"no progress: {h.lines()[-5:]}"
            if h.engine.get_execution(arns[-1])["Status"] != "RUNNING":
                new_execution()  # the worker picks it up
            time.sleep(0.002)
        time.sleep(rng.uniform(0, pause * 1.5))
        h.kill(worker)
        counts = Counter(h.lines())
        succeeded = {f"e{i}:{name.removeprefix('step-')}" for i, arn in enumerate(arns)
                     for name in h.succeeded_steps(arn)}
        inflight = set(counts) - succeeded
        assert len(inflight) <= 1, inflight
        snapshots.append(Kill(counts, succeeded, inflight))

    h.spawn()
    for arn in arns:
        done = h.wait_status(arn, timeout=60)
        assert done["Status"] == "SUCCEEDED", done
        assert json.loads(done["Result"]) == sum(range(steps))

    final = Counter(h.lines())
    expected_reruns: Counter[str] = Counter()
    for snap in snapshots:
        expected_reruns.update(snap.inflight)
        for key in snap.succeeded:  # a step whose SUCCEED was committed never runs again
            assert final[key] == snap.counts[key], (key, final[key], snap.counts[key])
    for i in range(len(arns)):
        for n in range(steps):
            key = f"e{i}:{n}"
            assert final[key] == 1 + expected_reruns[key], (key, final[key], expected_reruns[key])
    exit_errors = 0
    for arn in arns:
        events = h.engine.get_history(arn)
        assert_pipeline_history(events, steps)
        exit_errors += len(h.exit_errors(arn))
    assert 1 <= exit_errors <= kills


def test_short_seeded_campaign(harness: Harness) -> None:
    run_campaign(harness, kills=5, seed=20240601, steps=8, pause=0.04)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_long_seeded_campaign(harness: Harness) -> None:
    run_campaign(harness, kills=200, seed=7, steps=25, pause=0.02)
