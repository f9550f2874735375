"""Several processes on one database: an execution moves between processes, and two engines share work."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from durably.core.engine.engine import Engine
from pg_store import database

HANDLERS = textwrap.dedent('''
    import os
    import time

    from durably.core import Duration, durable_execution

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps.log")


    def record(tag):
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{tag}:{os.getpid()}\\n".encode())
        finally:
            os.close(fd)


    @durable_execution
    def approval_flow(event, ctx):
        key = event["key"]

        def prepare(_):
            record(f"{key}:prepare")
            return "prepared"

        prepared = ctx.step(prepare, name="prepare")
        answer = ctx.create_callback(name="approval").result()

        def ship(_):
            record(f"{key}:ship")
            return "shipped"

        return {"prepared": prepared, "answer": answer, "shipped": ctx.step(ship, name="ship")}


    @durable_execution
    def busy(event, ctx):
        i = event["i"]
        out = []
        for n in range(3):
            def body(_, n=n):
                record(f"{i}:s{n}")
                time.sleep(0.01)
                return n
            out.append(ctx.step(body, name=f"s{n}"))
        ctx.wait(Duration(1), name="nap")

        def last(_):
            record(f"{i}:last")
            return "last"

        out.append(ctx.step(last, name="last"))
        return out
''')

START_AND_SUSPEND = textwrap.dedent('''
    import json, sys
    from durably.core.engine.engine import Engine
    engine = Engine(sys.argv[1])
    arn = engine.start_execution(sys.argv[2], {"key": "k1"}, name="mp-1")
    execution = engine.run_until_complete(arn, timeout=30, stop_when_blocked=True)
    print(json.dumps({"arn": arn, "status": execution["Status"]}))
''')

RESUME = textwrap.dedent('''
    import json, sys
    from durably.core.engine.engine import Engine
    engine = Engine(sys.argv[1])
    print(json.dumps(engine.run_until_complete(sys.argv[2], timeout=30)))
''')

WORKER = textwrap.dedent('''
    import json, sys
    from durably.core.engine.engine import Engine
    engine = Engine(sys.argv[1], workers=2).start()
    print("ready", flush=True)
    arns = json.loads(sys.stdin.readline())
    statuses = [engine.wait_for(arn, timeout=60)["Status"] for arn in arns]
    engine.close()
    print(json.dumps(statuses), flush=True)
''')


def python(code: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr
    return done.stdout


def log_lines(tmp_path: Path) -> list[tuple[str, int]]:
    path = tmp_path / "steps.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        tag, pid = line.rsplit(":", 1)
        out.append((tag, int(pid)))
    return out


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))
    types = [e["EventType"] for e in events]
    assert types[0] == "ExecutionStarted"
    assert types[-1] == "ExecutionSucceeded" and types.count("ExecutionSucceeded") == 1
    assert types[-2] == "InvocationCompleted"
    for e in events:
        assert [k for k in e if k.endswith("Details")] == [f"{e['EventType']}Details"]
        if e["EventType"] == "InvocationCompleted":
            assert "Error" not in e["InvocationCompletedDetails"], e


def test_execution_moves_between_processes(tmp_path: Path) -> None:
    handlers = tmp_path / "mp_handlers.py"
    handlers.write_text(HANDLERS)
    db = tmp_path / "shared.db"

    started = json.loads(python(START_AND_SUSPEND, database(db), f"{handlers}:approval_flow", cwd=tmp_path))
    arn = started["arn"]
    assert started["status"] == "RUNNING"
    assert [tag for tag, _ in log_lines(tmp_path)] == ["k1:prepare"]

    engine = Engine(db)
    try:
        events = engine.get_history(arn)
        cid = next(e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted")
        engine.send_callback_success(cid, "approved")
        assert engine.get_execution(arn)["Status"] == "RUNNING"

        finished = json.loads(python(RESUME, database(db), arn, cwd=tmp_path))
        assert finished["Status"] == "SUCCEEDED"
        assert json.loads(finished["Result"]) == {"prepared": "prepared", "answer": "approved",
                                                  "shipped": "shipped"}
        lines = log_lines(tmp_path)
        assert [tag for tag, _ in lines] == ["k1:prepare", "k1:ship"]  # each step ran exactly once
        assert lines[0][1] != lines[1][1]  # in two different processes
        events = engine.get_history(arn)
        assert_well_formed(events)
        assert [e["EventType"] for e in events].count("InvocationCompleted") == 2
        assert engine.get_execution(arn)["Status"] == "SUCCEEDED"
    finally:
        engine.close()
        engine.store.close()


def test_two_engines_share_twenty_executions(tmp_path: Path) -> None:
    handlers = tmp_path / "mp_handlers.py"
    handlers.write_text(HANDLERS)
    db = tmp_path / "shared.db"
    engine = Engine(db)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, database(db)], cwd=tmp_path, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for w in workers:
            assert w.stdout is not None
            assert w.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        arns = [engine.start_execution(f"{handlers}:busy", {"i": i}, name=f"busy-{i}") for i in range(20)]
        for w in workers:
            assert w.stdin is not None
            w.stdin.write(json.dumps(arns) + "\n")
            w.stdin.flush()
        outputs = [w.communicate(timeout=90) for w in workers]
        elapsed = time.monotonic() - t0
        for w, (out, err) in zip(workers, outputs, strict=True):
            assert w.returncode == 0, err
            assert json.loads(out.strip().splitlines()[-1]) == ["SUCCEEDED"] * 20
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()

    try:
        lines = log_lines(tmp_path)
        counts = Counter(tag for tag, _ in lines)
        expected = {f"{i}:{s}" for i in range(20) for s in ("s0", "s1", "s2", "last")}
        assert set(counts) == expected
        assert all(c == 1 for c in counts.values()), [t for t, c in counts.items() if c > 1]
        pids = {pid for _, pid in lines}
        assert len(pids) == 2, "both engines should have run invocations"
        for i, arn in enumerate(arns):
            execution = engine.get_execution(arn)
            assert execution["Status"] == "SUCCEEDED"
            assert json.loads(execution["Result"]) == [0, 1, 2, "last"]
            events = engine.get_history(arn)
            assert_well_formed(events)
            types = [e["EventType"] for e in events]
            assert types.count("InvocationCompleted") == 2, (i, types)  # before and after the wait
            assert types.count("StepSucceeded") == 4 and types.count("StepStarted") == 4
        assert elapsed < 30
    finally:
        engine.close()
        engine.store.close()


def test_worker_notices_outside_writes_quickly(tmp_path: Path) -> None:
    """A callback answered and an execution started by another process are picked up at once."""
    handlers = tmp_path / "mp_handlers.py"
    handlers.write_text(HANDLERS)
    db = tmp_path / "shared.db"
    engine = Engine(db)
    worker = subprocess.Popen([sys.executable, "-c",
                               "import sys\nfrom durably.core.engine.engine import Engine\n"
                               "Engine(sys.argv[1], workers=1).serve()\n", database(db)],
                              cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        latencies = []
        for key in ("w1", "w2", "w3"):
            t0 = time.monotonic()
            arn = engine.start_execution(f"{handlers}:approval_flow", {"key": key})
            while not any(e["EventType"] == "CallbackStarted" for e in engine.get_history(arn)):
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                assert time.monotonic() - t0 < 15
                time.sleep(0.005)
            if key != "w1":  # the first one also waited for the worker to start
                latencies.append(time.monotonic() - t0)
            cid = next(e["CallbackStartedDetails"]["CallbackId"] for e in engine.get_history(arn)
                       if e["EventType"] == "CallbackStarted")
            t1 = time.monotonic()
            engine.send_callback_success(cid, "ok")
            while engine.get_execution(arn)["Status"] == "RUNNING":
                assert time.monotonic() - t1 < 15
                time.sleep(0.005)
            latencies.append(time.monotonic() - t1)
            assert engine.get_execution(arn)["Status"] == "SUCCEEDED"
        assert max(latencies) < 1.0, latencies
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        engine.close()
        engine.store.close()
