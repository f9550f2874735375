"""`durably run` and `durably worker` trace from the standard OpenTelemetry variables, to a real
OTLP/HTTP endpoint: one trace per execution across processes, and a SIGKILLed invocation's
finished operations are still reported (by the invocation after it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from durably.integrations.otel import span_id_of, trace_id_of

from .collector import Collector
from .spans import Span

HANDLERS = textwrap.dedent('''
    import os, time
    from pathlib import Path
    from durably import durable_execution

    @durable_execution
    def approval(event, ctx):
        first = ctx.step(lambda step: "packed", name="pack")
        answer = ctx.wait_for_callback(lambda callback_id, _: None, name="approve")
        return ctx.step(lambda step: f"{first}, {answer}", name="ship")

    def slow(step):
        Path(os.environ["MARKER"]).write_text("slow started")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        return "done"

    @durable_execution
    def crashy(event, ctx):
        ctx.step(lambda step: "first", name="first")
        ctx.step(slow, name="slow")
        return ctx.step(lambda step: "last", name="last")
''')


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.close()


class Shell:
    def __init__(self, root: Path, collector: Collector) -> None:
        self.root = root
        (root / "handlers.py").write_text(HANDLERS)
        self.env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_SERVICE_NAME": "shop",
                    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test", "OTEL_BSP_SCHEDULE_DELAY": "100",
                    "DURABLY_DB": str(root / "durably.db"), "MARKER": str(root / "marker"), "PYTHONUNBUFFERED": "1"}
        self.procs: list[subprocess.Popen[bytes]] = []

    def durably(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "durably", *args], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "durably", *args], cwd=self.root,
                                env={**self.env, **(env or {})}, stdout=subprocess.DEVNULL,
                                stderr=(self.root / f"proc-{len(self.procs)}.err").open("wb"))
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


@pytest.fixture
def shell(tmp_path: Path, collector: Collector) -> Iterator[Shell]:
    found = Shell(tmp_path, collector)
    yield found
    found.stop_all()


def execution_span(spans: list[Span]) -> list[Span]:
    return [s for s in spans if s.name.startswith("execution ")]


def test_one_trace_across_the_process_that_starts_and_the_worker_that_finishes(shell: Shell,
                                                                                collector: Collector) -> None:
    started = json.loads(shell.durably("--output", "json", "run", "handlers.py:approval", "--no-wait").stdout)
    arn = started["DurableExecutionArn"]
    first = collector.wait_for(lambda spans: any(s.name == "pack" for s in spans), "the first process's spans")
    assert {s.trace_id for s in first} == {trace_id_of(arn)}
    assert collector.resources[0]["service.name"] == "shop"
    assert collector.resources[0]["deployment.environment"] == "test"

    history = json.loads(shell.durably("--output", "json", "history", arn).stdout)["Events"]
    callback_id = next(e["CallbackStartedDetails"]["CallbackId"] for e in history
                       if e["EventType"] == "CallbackStarted")
    shell.durably("callback", "success", callback_id, "--payload", '"yes"')
    shell.start("worker", "--workers", "1")
    collector.wait_for(lambda spans: bool(execution_span(spans)), "the execution's span")
    time.sleep(0.3)  # the worker's batch of the same invocation
    spans = collector.spans
    assert {s.trace_id for s in spans} == {trace_id_of(arn)}
    names = sorted(s.name for s in spans if not s.name.startswith(("invocation", "execution")))
    assert names == ["approve", "approve create callback id", "approve submitter", "pack", "ship"], names
    approve = next(s for s in spans if s.name == "approve")
    assert {s.name for s in spans if s.parent_id == approve.span_id} == {"approve create callback id",
                                                                         "approve submitter"}
    ids = [s.span_id for s in spans]
    assert len(ids) == len(set(ids))
    (execution,) = execution_span(spans)
    assert execution.parent_id is None and execution.span_id == span_id_of(arn, "execution")
    assert len([s for s in spans if s.name == "invocation"]) == 2  # one in each process


def test_a_sigkilled_invocations_finished_steps_are_reported_by_the_next(shell: Shell, collector: Collector) -> None:
    # the first process batches its spans for a minute: killed, it exports none of them
    doomed = shell.start("run", "handlers.py:crashy", env={"SLOW_SECONDS": "60", "OTEL_BSP_SCHEDULE_DELAY": "60000"})
    deadline = time.monotonic() + 30
    while not (shell.root / "marker").exists():
        assert doomed.poll() is None and time.monotonic() < deadline, (shell.root / "proc-0.err").read_text()
        time.sleep(0.05)
    doomed.kill()
    doomed.wait()
    assert collector.spans == []
    shell.start("worker", "--workers", "1")
    collector.wait_for(lambda spans: bool(execution_span(spans)), "the execution's span")
    time.sleep(0.3)
    names = sorted(s.name for s in collector.spans if not s.name.startswith(("invocation", "execution")))
    assert names == ["first", "last", "slow"], names  # "first" ended in the killed invocation
    assert len({s.trace_id for s in collector.spans}) == 1


def test_an_exporter_durably_cannot_start_is_a_clear_error(shell: Shell) -> None:
    done = subprocess.run([sys.executable, "-m", "durably", "run", "handlers.py:crashy"], cwd=shell.root,
                          env={**shell.env, "OTEL_TRACES_EXPORTER": "zipkin"}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "OTEL_TRACES_EXPORTER='zipkin'" in done.stderr and "otlp" in done.stderr


def test_the_none_exporter_sends_nothing(shell: Shell, collector: Collector) -> None:
    shell.durably("run", "handlers.py:approval", "--no-wait", env={"OTEL_TRACES_EXPORTER": "none"})
    time.sleep(0.5)
    assert collector.spans == []
