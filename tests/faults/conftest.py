"""Real ``durably worker`` processes for the fault suite: spawn, signal, read what they logged and ran."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from durably.core.engine.engine import Engine
from pg_store import database

HANDLERS = textwrap.dedent('''
    import os
    import time

    from durably.core import durable_execution

    HERE = os.path.dirname(os.path.abspath(__file__))
    LOG = os.path.join(HERE, "bodies.log")


    def record(label):
        """One line per step body run: the pid of the worker that ran it, and what ran."""
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()}:{label}\\n".encode())
        finally:
            os.close(fd)


    @durable_execution
    def long_step(event, ctx):
        def body(_):
            record("long:start")
            if os.path.exists(os.path.join(HERE, "slow.flag")):
                time.sleep(event["seconds"])
            record("long:end")
            return "slept"

        out = ctx.step(body, name="long")
        ctx.step(lambda _: record("after") or "after", name="after")
        return out


    @durable_execution
    def stubborn(event, ctx):
        """Catches Exception around every step, as careless handlers do."""
        seen = []
        for i in range(3):
            def body(_, i=i):
                record(f"stubborn:{i}")
                if i == 0:
                    time.sleep(event["pause"])
                return i
            try:
                seen.append(ctx.step(body, name=f"s{i}"))
            except Exception as exc:
                seen.append(repr(exc))
        return seen


    @durable_execution
    def many_steps(event, ctx):
        total = 0
        for i in range(event["steps"]):
            def body(_, i=i):
                record(f"many:{i}")
                return "x" * event["size"]
            total += len(ctx.step(body, name=f"m{i}"))
        return total
''')


class Workers:
    """A database, a handler file next to it, and the worker processes started on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.handlers = root / "fault_handlers.py"
        self.handlers.write_text(HANDLERS)
        self.db = root / "faults.db"
        self.log = root / "bodies.log"
        self.engine = Engine(self.db)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stderr: dict[int, Path] = {}

    def start(self, attr: str, event: dict[str, Any]) -> str:
        return self.engine.start_execution(f"{self.handlers}:{attr}", event)

    def spawn(self, *args: str, cwd: Path | None = None, prefix: tuple[str, ...] = (),
              preexec: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
        """``durably worker`` on the database (one invocation at a time unless told otherwise)."""
        err = self.root / f"worker-{len(self.procs)}.err"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [*prefix, sys.executable, "-m", "durably", "worker", "--db", database(self.db), "--workers", "1"]
        with err.open("wb") as stderr:
            proc = subprocess.Popen([*command, *args], cwd=cwd or self.root, stdout=subprocess.DEVNULL,
                                    stderr=stderr, env=env, preexec_fn=preexec)
        self.procs.append(proc)
        self.stderr[proc.pid] = err
        return proc

    def errors_of(self, proc: subprocess.Popen[bytes]) -> str:
        return self.stderr[proc.pid].read_text(errors="replace")

    def lines(self) -> list[tuple[int, str]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            pid, _, label = line.partition(":")
            out.append((int(pid), label))
        return out

    def labels(self, pid: int | None = None) -> list[str]:
        return [label for p, label in self.lines() if pid is None or p == pid]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for proc in self.procs:  # SIGTERM before the worker set up its handler ends it at once: fine
                if proc.poll() is not None and proc.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM, 130):
                    raise AssertionError(f"worker {proc.pid} exited {proc.returncode}: {self.errors_of(proc)}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}; ran: {self.lines()}"
            time.sleep(0.01)

    def wait_status(self, arn: str, timeout: float = 30) -> dict[str, Any]:
        self.wait_for(lambda: self.engine.get_execution(arn)["Status"] != "RUNNING", f"{arn} to end", timeout)
        return self.engine.get_execution(arn)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.engine.close()
        self.engine.store.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    harness = Workers(tmp_path)
    yield harness
    harness.close()
