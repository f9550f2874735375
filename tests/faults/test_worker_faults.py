"""Faults an operator meets, on real ``durably worker`` processes: signals, a paused process, a full
disk, a worker that cannot import the code, a worker in another pid namespace.

Each step body appends ``pid:label`` to a log when it runs, so a test can tell which worker ran
which body and how often.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Workers


def test_sigterm_waits_for_a_running_step_and_keeps_its_lease(workers: Workers) -> None:
    """SIGTERM during a long step, a second worker waiting: the body runs once, on the first worker."""
    (workers.root / "slow.flag").touch()
    arn = workers.start("long_step", {"seconds": 3})
    first = workers.spawn("--lease-seconds", "1")
    workers.wait_for(lambda: workers.labels() == ["long:start"], "the long step to start")
    second = workers.spawn("--lease-seconds", "1")
    first.send_signal(signal.SIGTERM)
    done = workers.wait_status(arn)
    assert done["Status"] == "SUCCEEDED", done
    assert first.wait(timeout=10) == 0
    assert workers.labels() == ["long:start", "long:end", "after"]
    assert workers.labels(first.pid) == ["long:start", "long:end", "after"], "another worker took over a running step"
    assert "waiting for 1 running invocation" in workers.errors_of(first)
    assert second.poll() is None


def test_a_second_sigterm_exits_at_once_and_the_execution_resumes_elsewhere(workers: Workers) -> None:
    flag = workers.root / "slow.flag"
    flag.touch()
    arn = workers.start("long_step", {"seconds": 60})
    first = workers.spawn()
    workers.wait_for(lambda: workers.labels() == ["long:start"], "the long step to start")
    first.send_signal(signal.SIGTERM)
    workers.wait_for(lambda: "waiting for 1 running invocation" in workers.errors_of(first), "the shutdown notice")
    began = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 130
    assert time.monotonic() - began < 5
    assert "exiting without waiting for 1 invocation" in workers.errors_of(first)
    flag.unlink()
    second = workers.spawn()
    done = workers.wait_status(arn)
    assert done["Status"] == "SUCCEEDED", done
    assert workers.labels(second.pid) == ["long:start", "long:end", "after"]
    assert "took over" in workers.errors_of(second)


def test_a_paused_worker_taken_over_runs_no_further_step_body(workers: Workers) -> None:
    """SIGSTOP past the lease, another worker takes over, SIGCONT: the paused invocation stops at its
    next checkpoint, although the handler catches ``Exception`` around every step."""
    arn = workers.start("stubborn", {"pause": 2})
    paused = workers.spawn("--lease-seconds", "1")
    workers.wait_for(lambda: workers.labels(paused.pid) == ["stubborn:0"], "the first step to start")
    paused.send_signal(signal.SIGSTOP)
    other = workers.spawn("--lease-seconds", "1")
    workers.wait_for(lambda: "stubborn:0" in workers.labels(other.pid), "the takeover")
    paused.send_signal(signal.SIGCONT)
    done = workers.wait_status(arn)
    assert done["Status"] == "SUCCEEDED", done
    assert done["Result"] == "[0,1,2]"
    time.sleep(2.5)  # the paused body's sleep ends; its checkpoint is refused
    assert workers.labels(paused.pid) == ["stubborn:0"], "the fenced-off invocation ran another step body"
    assert workers.labels(other.pid) == ["stubborn:0", "stubborn:1", "stubborn:2"]


def _file_size_limit(limit: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))


@pytest.mark.sqlite_only  # the limit is on the size of the worker's files
def test_a_full_disk_loses_nothing_committed_and_the_execution_resumes_when_space_is_back(
        workers: Workers) -> None:
    arn = workers.start("many_steps", {"steps": 40, "size": 20_000})
    sizes = [p.stat().st_size for p in workers.root.glob("faults.db*")]
    limit = max(sizes) + 300_000  # room for about a dozen steps in the log file
    worker = workers.spawn("--lease-seconds", "1", preexec=lambda: _file_size_limit(limit))
    # SQLite reports a write past the limit as "disk I/O error" (EFBIG), a full disk as "disk is full"
    workers.wait_for(lambda: any(sign in workers.errors_of(worker) for sign in ("disk I/O error", "disk is full")),
                     "the disk to fill")
    time.sleep(1.5)  # the worker keeps failing: its scheduler backs off, nothing is written
    assert workers.engine.get_execution(arn)["Status"] == "RUNNING"
    committed = {e["Name"] for e in workers.engine.get_history(arn) if e["EventType"] == "StepSucceeded"}
    assert 0 < len(committed) < 40
    resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    done = workers.wait_status(arn, timeout=60)
    assert done["Status"] == "SUCCEEDED", done  # the outage did not use up the execution's failure budget
    assert done["Result"] == str(40 * 20_000)
    runs = workers.labels()
    for name in committed:  # a step whose result was committed before the fault never ran again
        assert runs.count(f"many:{name[1:]}") == 1, (name, runs)
    assert all(f"many:{i}" in runs for i in range(40))
    assert worker.poll() is None, "the worker died of the full disk"


def test_an_import_error_on_one_of_two_workers_fails_nothing(workers: Workers, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    deployed = tmp_path / "deployed"
    deployed.mkdir()
    (deployed / "flowmod.py").write_text(
        "from durably import durable_execution\n\n@durable_execution\ndef handler(event, ctx):\n"
        "    return ctx.step(lambda _: event['n'] * 2, name='double')\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.syspath_prepend(str(deployed))
    arns = [workers.engine.start_execution("flowmod:handler", {"n": n}) for n in range(3)]
    broken = workers.spawn(cwd=empty)
    workers.wait_for(lambda: "cannot run" in workers.errors_of(broken), "the broken worker to try")
    healthy = workers.spawn(cwd=deployed)
    results = [workers.wait_status(arn) for arn in arns]
    assert [r["Status"] for r in results] == ["SUCCEEDED"] * 3, results
    assert sorted(r["Result"] for r in results) == ["0", "2", "4"]
    assert "No module named 'flowmod'" in workers.errors_of(broken)
    for arn in arns:  # the failed attempts left no trace in the executions' histories
        completed = [e for e in workers.engine.get_history(arn) if e["EventType"] == "InvocationCompleted"]
        assert all("Error" not in e["InvocationCompletedDetails"] for e in completed)
    assert healthy.poll() is None and broken.poll() is None


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -p (a pid namespace); run as root")
def test_a_live_worker_in_another_pid_namespace_is_not_taken_over(workers: Workers) -> None:
    """Same hostname, separate pid namespace (two containers): its pid means nothing here."""
    (workers.root / "slow.flag").touch()
    arn = workers.start("long_step", {"seconds": 3})
    # --kill-child: the worker is the namespace's init, which would outlive a killed unshare
    contained = workers.spawn(prefix=("unshare", "-p", "-f", "--kill-child", "--mount-proc"))
    workers.wait_for(lambda: workers.labels() == ["long:start"], "the long step to start")
    row = workers.engine.store.read(lambda tx: tx.execution(arn))
    assert row is not None and row.lease_pid != contained.pid  # the pid it recorded is its own namespace's
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert workers.engine.service.take_over_dead() == []
        time.sleep(0.1)
    done = workers.wait_status(arn)
    assert done["Status"] == "SUCCEEDED", done
    assert [label for _, label in workers.lines()] == ["long:start", "long:end", "after"]
    assert sys.platform == "linux"
    os.kill(contained.pid, signal.SIGKILL)
