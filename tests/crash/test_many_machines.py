"""Workers on many machines, one PostgreSQL database, random SIGKILLs: every execution ends once.

Each worker process has its own connection pool and host identity (``DURABLY_HOST_ID``), so a
killed worker's invocations are taken over only when its lease expires (pids mean nothing across
hosts), except by the worker restarted on its host. Executions step, wait and wait for a callback
that this test answers. Afterwards: each execution succeeded once, with the right result, and a
step body ran more than once only as often as invocations were taken over from killed workers.
The short seeded campaign runs by default; ``--run-slow`` runs 200 executions.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pg_store
import pytest
from durably.core.engine.engine import Engine

pytestmark = pytest.mark.skipif("DURABLY_TEST_POSTGRES" not in os.environ,
                                reason="needs a PostgreSQL server (DURABLY_TEST_POSTGRES)")

HANDLERS = textwrap.dedent('''
    import os

    from durably.core import Duration, durable_execution

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bodies.log")


    def record(line):
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\\n").encode())
        finally:
            os.close(fd)


    @durable_execution
    def order(event, ctx):
        tag = event["tag"]

        def body(name):
            def run(_):
                record(f"{tag}:{name}")
                return name
            return run

        ctx.step(body("reserve"), name="reserve")
        ctx.wait(Duration(1), name="settle")
        answer = ctx.create_callback(name="approval").result()
        ctx.step(body("ship"), name="ship")
        return f"{tag}:{answer}"
''')
WORKER = ("import sys\nfrom durably.core.engine.engine import Engine\n"
          "Engine(sys.argv[1], workers=2, lease_seconds=2).serve()\n")


def _exit_errors(history: list[dict[str, Any]]) -> int:
    return sum(1 for e in history if e["EventType"] == "InvocationCompleted"
               and e["InvocationCompletedDetails"].get("Error", {}).get("Payload", {}).get("ErrorType")
               == "Runtime.ExitError")


def campaign(tmp_path: Path, executions: int, machines: int, seed: int, budget: float) -> None:
    rng = random.Random(seed)
    (tmp_path / "many_handlers.py").write_text(HANDLERS)
    url = pg_store.url_for(pg_store.database_name(tmp_path / "shared.db"))
    engine = Engine(url)
    procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(machine: int) -> None:
        env = {**os.environ, "DURABLY_HOST_ID": f"machine-{machine}"}
        procs[machine] = subprocess.Popen([sys.executable, "-c", WORKER, url], cwd=tmp_path, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    kills = 0
    try:
        arns = [engine.start_execution(f"{tmp_path / 'many_handlers.py'}:order", {"tag": f"o{i}"}, name=f"o{i}")
                for i in range(executions)]
        for machine in range(machines):
            spawn(machine)
        born = machines
        deadline = time.monotonic() + budget
        next_kill = time.monotonic() + rng.uniform(0.3, 1.0)
        pending = set(arns)
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} executions never ended"
            for callback in engine.service.open_callbacks():
                details = callback.operation.CallbackDetails
                if details is not None and details.CallbackId:
                    try:
                        engine.send_callback_success(details.CallbackId, "yes")
                    except Exception:  # answered meanwhile (by this loop's previous pass): fine
                        pass
            if time.monotonic() > next_kill and kills < executions:
                machine = rng.choice(sorted(procs))
                os.kill(procs[machine].pid, signal.SIGKILL)
                procs.pop(machine).wait(timeout=10)
                kills += 1
                if rng.random() < 0.5:
                    spawn(machine)  # restarted on its host: it takes over the dead worker's leases at once
                else:
                    spawn(born)  # a new machine: the dead worker's leases are taken over once they expire
                    born += 1
                next_kill = time.monotonic() + rng.uniform(0.3, 1.0)
            pending = {a for a in pending if engine.get_execution(a)["Status"] == "RUNNING"}
            time.sleep(0.05)

        bodies = Counter((tmp_path / "bodies.log").read_text().splitlines())
        for i, arn in enumerate(arns):
            execution = engine.get_execution(arn)
            assert execution["Status"] == "SUCCEEDED", execution
            assert execution["Result"] == f'"o{i}:yes"'
            history = engine.get_history(arn)
            assert sum(1 for e in history if e["EventType"] == "ExecutionSucceeded") == 1
            extra = sum(bodies[f"o{i}:{name}"] - 1 for name in ("reserve", "ship"))
            assert all(bodies[f"o{i}:{name}"] >= 1 for name in ("reserve", "ship"))
            assert extra <= _exit_errors(history), (arn, bodies, history)
        assert kills > 0
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(timeout=10)
        engine.close()
        engine.store.close()
        pg_store.drop({url.rsplit("/", 1)[1]})


def test_short_seeded_many_machine_campaign(tmp_path: Path) -> None:
    campaign(tmp_path, executions=20, machines=3, seed=21, budget=120)


@pytest.mark.slow
def test_two_hundred_executions_on_four_machines(tmp_path: Path) -> None:
    campaign(tmp_path, executions=200, machines=4, seed=2100, budget=900)
