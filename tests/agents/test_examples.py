"""The agent examples (``examples/refund_agent.py``, ``examples/parallel_approvals.py``), checked on their ledger.

The examples' tools and offline model log every model call and tool run in the desk's SQLite
ledger (``calls``: pid, name, outcome) and every refund in ``refunds``, so a test counts what really
happened, also across processes. In-process first (time skipped): a refund under the threshold,
an approval answered approve / reject / edit, two approvals of one turn answered in reverse order.
Then with real processes: a ``durably worker`` killed with SIGKILL between a model call and a tool
call (before and after the tool's effect), an approval answered with ``durably callback success``
while a worker runs, ``durably history`` of an agent, and the README's agent commands as written;
with ``--run-slow``, workers killed at seeded random moments while agents run and wait. Last, what
writing the example found in ``durably.agents`` (a tool's call id, a failure as a rejection, an edit
of a tool that takes its call id).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pg_store
import pytest
from durably import DurableContext, durable_execution
from durably.agents import Agent, require_approval
from durably.agents.testing import ScriptedChatModel
from durably.core.engine.engine import Engine
from durably.core.engine.functions import load_reference
from durably.core.model import ErrorObject
from durably.testing import DurableTestRunner, TestResult
from langchain_core.messages import AIMessage
from langchain_core.tools import InjectedToolCallId, tool
from pg_store import database

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
REFUND_AGENT = f"{EXAMPLES / 'refund_agent.py'}:handler"
PARALLEL = f"{EXAMPLES / 'parallel_approvals.py'}:handler"
LAMP = {"order_id": "B-2", "question": "My lamp arrived broken."}  # 180: over the threshold
KETTLE = {"order_id": "A-1", "question": "The kettle leaks."}  # 40: under it


# ---------------------------------------------------------------------------- the ledger, read apart
@dataclass(frozen=True)
class Call:
    pid: int
    name: str
    detail: dict[str, Any]
    outcome: str


def calls(ledger: Path, execution: str) -> list[Call]:
    """Every model call and tool run of ``execution``, in the order they began."""
    if not ledger.exists():
        return []
    db = sqlite3.connect(ledger)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'calls'").fetchone() is None:
            return []  # being created
        return [Call(pid, name, json.loads(detail), outcome) for pid, name, detail, outcome in db.execute(
            "SELECT pid, name, detail, outcome FROM calls WHERE execution = ? ORDER BY seq", (execution,))]
    finally:
        db.close()


def refunds(ledger: Path, execution: str) -> list[tuple[str, float]]:
    """The refunds made for ``execution``: (item, amount)."""
    if not ledger.exists():
        return []
    db = sqlite3.connect(ledger)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'refunds'").fetchone() is None:
            return []
        return [(item, amount) for item, amount in db.execute(
            "SELECT item, amount FROM refunds WHERE execution = ? ORDER BY at", (execution,))]
    finally:
        db.close()


def model_answers(ledger: Path, execution: str) -> list[int]:
    """Which scripted answer each model call gave, in order: each once means the model was never asked twice."""
    return [c.detail["answer"] for c in calls(ledger, execution) if c.name == "model"]


def tool_runs(ledger: Path, execution: str, name: str) -> list[str]:
    return [c.outcome for c in calls(ledger, execution) if c.name == name]


def approvals(events: list[dict[str, Any]]) -> dict[str, str]:
    """``{tool call id: callback id}`` of the approvals asked, read from a history (each callback's
    parents lead to the parallel branch named ``<tool> <call id>``)."""
    parents = {e["Id"]: (e.get("Name") or "", e.get("ParentId")) for e in events if e.get("Id")}
    out = {}
    for event in events:
        if event["EventType"] != "CallbackStarted":
            continue
        parent = event.get("ParentId")
        while parent is not None and not parents[parent][0].startswith("refund "):
            parent = parents[parent][1]
        assert parent is not None, f"callback {event['Name']} is in no refund branch"
        out[parents[parent][0].split()[-1]] = str(event["CallbackStartedDetails"]["CallbackId"])
    return out


# ---------------------------------------------------------------------------- in-process, time skipped
@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Callable[[str], tuple[DurableTestRunner, Path]]]:
    """``desk(reference)``: a time-skipping runner on an example's handler, and the ledger its runs write."""
    runners: list[DurableTestRunner] = []

    def make(reference: str) -> tuple[DurableTestRunner, Path]:
        runner = DurableTestRunner(load_reference(reference), db=tmp_path / f"durably-{len(runners)}.db")
        runners.append(runner)
        return runner, tmp_path / "refunds.db"

    yield make
    for runner in runners:
        runner.close()


def test_a_refund_under_the_threshold_runs_without_asking_anyone(desk: Any) -> None:
    runner, ledger = desk(REFUND_AGENT)
    result = runner.run({**KETTLE, "ledger": str(ledger)})
    assert result.status == "SUCCEEDED", result.error
    assert result.events("CallbackStarted") == []
    assert result.value["final"] == "Done: refunded 40 for the kettle of A-1 (rf-1)."
    assert [(c["tool"], c["outcome"]) for c in result.value["tool_calls"]] == [("lookup_order", "ran"),
                                                                               ("refund", "ran")]
    assert refunds(ledger, result.arn) == [("kettle", 40)]
    assert model_answers(ledger, result.arn) == [1, 2, 3]


@pytest.mark.parametrize(("answer", "refunded", "outcome", "final"), [
    ({"decision": "approve"}, [("lamp", 180)], "ran", "Done: refunded 180 for the lamp of B-2 (rf-1)."),
    ({"decision": "reject", "message": "refund half"}, [], "rejected",
     "Done: not refunded: A person rejected this call of refund: refund half."),
    ({"decision": "edit", "args": {"order_id": "B-2", "item": "lamp", "amount": 90}}, [("lamp", 90)], "ran",
     "Done: refunded 90 for the lamp of B-2 (rf-1)."),
    ({"decision": "edit", "args": {"order_id": "B-2", "item": "lamp", "amount": 500}}, [], "error",
     "Done: not refunded: ValueError: the lamp of B-2 cost 180 and 0 was refunded already."),
], ids=["approve", "reject", "edit", "edit-refused-by-the-tool"])
def test_a_refund_over_the_threshold_waits_for_a_person(desk: Any, answer: dict[str, Any],
                                                        refunded: list[Any], outcome: str, final: str) -> None:
    runner, ledger = desk(REFUND_AGENT)
    arn = runner.run_async({**LAMP, "ledger": str(ledger)})
    waiting = runner.resume(arn)
    assert waiting.status == "RUNNING"
    assert tool_runs(ledger, arn, "refund") == [] and model_answers(ledger, arn) == [1, 2]
    assert list(approvals(waiting.history)) == ["call_2"]
    runner.send_callback_success(runner.callback_id(arn, "approve refund"), json.dumps(answer))
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED", result.error
    assert refunds(ledger, arn) == refunded
    assert result.value["tool_calls"][1]["outcome"] == outcome
    assert result.value["approvals"][0]["decision"] == answer["decision"]
    assert result.value["final"] == final
    assert model_answers(ledger, arn) == [1, 2, 3], "a resumed agent asked the model again"
    assert tool_runs(ledger, arn, "lookup_order") == ["ok"]


def test_two_refunds_of_one_turn_are_approved_independently(desk: Any) -> None:
    runner, ledger = desk(PARALLEL)
    arn = runner.run_async({"order_id": "C-3", "ledger": str(ledger)})
    waiting = runner.resume(arn)
    assert waiting.status == "RUNNING"
    asked = approvals(waiting.history)
    assert sorted(asked) == ["call_2", "call_3"]  # the sofa, the rug: both asked at once
    runner.send_callback_success(asked["call_3"], '{"decision": "approve"}')  # the second one first
    assert runner.resume(arn).status == "RUNNING"
    assert refunds(ledger, arn) == [("rug", 160)], "the rug was not refunded before the sofa was answered"
    assert model_answers(ledger, arn) == [1, 2]  # the model waits for both
    runner.send_callback_success(asked["call_2"], '{"decision": "reject", "message": "send a photo first"}')
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED", result.error
    assert refunds(ledger, arn) == [("rug", 160)]
    assert [(c["args"].get("item"), c["outcome"]) for c in result.value["tool_calls"]] == [
        (None, "ran"), ("sofa", "rejected"), ("rug", "ran")]
    assert model_answers(ledger, arn) == [1, 2, 3] and tool_runs(ledger, arn, "refund") == ["ok"]
    answered = {a["call_id"]: a["answered_at"] for a in result.value["approvals"]}
    assert answered["call_3"] < answered["call_2"]


# ---------------------------------------------------------------------------- real processes
def _stop(procs: list[Any]) -> None:
    """Stop worker processes as an operator would (SIGTERM), killing any that do not stop in 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Workers:
    """A database and ``durably worker`` processes on it, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "durably.db"
        self.ledger = root / "refunds.db"
        self.engine = Engine(self.db)
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> subprocess.Popen[bytes]:
        err = (self.root / f"worker-{len(self.procs)}.err").open("wb")
        command = [sys.executable, "-m", "durably", "worker", "--db", database(self.db), "--workers", "1"]
        proc = subprocess.Popen(command, cwd=self.root, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append(proc)
        return proc

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for n, proc in enumerate(self.procs):
                if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
                    raise AssertionError(f"worker exited {proc.returncode}: "
                                         f"{(self.root / f'worker-{n}.err').read_text()}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def steps(self, arn: str) -> list[tuple[str, str]]:
        return [(op.Name or "", op.Status or "") for op in self.engine.service.all_operations(arn)
                if op.Type == "STEP" and op.Name in ("model", "lookup_order", "refund")]

    def close(self) -> None:
        _stop(self.procs)
        self.engine.close()
        self.engine.store.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    harness = Workers(tmp_path)
    yield harness
    harness.close()


@pytest.mark.parametrize("kill_at", ["running", "ok"], ids=["before-the-effect", "after-the-effect"])
def test_a_worker_killed_between_a_model_call_and_a_tool_call_asks_and_runs_nothing_twice(
        workers: Workers, kill_at: str) -> None:
    """The refund takes 0.4 s (half before its effect, half after); the worker is killed in one half."""
    arn = workers.engine.start_execution(REFUND_AGENT, {**KETTLE, "latency": 0.4, "ledger": str(workers.ledger)})
    first = workers.spawn()
    workers.wait_for(lambda: bool(calls(workers.ledger, arn)), "the first worker to run the agent")
    second = workers.spawn()  # started now, idle: it takes the execution over once the first is gone
    workers.wait_for(lambda: tool_runs(workers.ledger, arn, "refund") == [kill_at]
                     and ("refund", "STARTED") in workers.steps(arn), f"the refund to be {kill_at}")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    # the model's second answer (the refund call) is checkpointed, the finished lookup too, the refund is not
    assert workers.steps(arn) == [("model", "SUCCEEDED"), ("lookup_order", "SUCCEEDED"), ("model", "SUCCEEDED"),
                                  ("refund", "STARTED")]
    assert model_answers(workers.ledger, arn) == [1, 2]

    workers.wait_for(lambda: workers.engine.get_execution(arn)["Status"] != "RUNNING", "the execution to end")
    execution = workers.engine.get_execution(arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"])["final"] == "Done: refunded 40 for the kettle of A-1 (rf-1)."
    ran = [(c.pid, c.name, c.outcome) for c in calls(workers.ledger, arn)]
    refund_runs = {"running": [(first.pid, "refund", "running"), (second.pid, "refund", "ok")],  # ran again
                   "ok": [(first.pid, "refund", "ok"), (second.pid, "refund", "repeat")]}[kill_at]  # deduplicated
    assert ran == [(first.pid, "model", "answered"), (first.pid, "lookup_order", "ok"),
                   (first.pid, "model", "answered"), *refund_runs, (second.pid, "model", "answered")]
    assert model_answers(workers.ledger, arn) == [1, 2, 3], "the resumed agent asked the model again"
    assert refunds(workers.ledger, arn) == [("kettle", 40)]
    crashed = [e for e in workers.engine.get_history(arn) if e["EventType"] == "InvocationCompleted"
               and "Runtime.ExitError" in json.dumps(e)]
    assert len(crashed) == 1


class Shell:
    """A fresh working directory holding a copy of ``examples/``, and the commands a user types there."""

    def __init__(self, root: Path, db: Path | None = None) -> None:
        self.root = root
        shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        if db is not None:
            self.env["DURABLY_DB"] = database(db)
        self.db = db or root / ".durably" / "durably.db"
        self.ledger = self.db.parent / "refunds.db"
        if self.env.get("DURABLY_DB", str(self.db)) != str(self.db):  # on PostgreSQL: the ledger in .durably/
            self.ledger = root / ".durably" / "refunds.db"
        self.procs: list[subprocess.Popen[str]] = []

    def __call__(self, command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command, shell=True, cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout, executable="/bin/bash")
        if check:
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        return done

    def popen(self, command: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(command, shell=True, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, executable="/bin/bash")
        self.procs.append(proc)
        return proc

    def worker(self) -> subprocess.Popen[str]:
        err = (self.root / "worker.err").open("w")
        proc = subprocess.Popen(["durably", "worker"], cwd=self.root, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=err, text=True)
        self.procs.append(proc)
        return proc

    def events(self, arn: str) -> list[dict[str, Any]]:
        return list(json.loads(self(f"durably history '{arn}' --output json").stdout)["Events"])

    def engine(self) -> Engine:
        return Engine(database(self.db))  # the worker's database, whichever test fixture is active

    def close(self) -> None:
        _stop(self.procs)
        if database(self.db) != str(self.db):  # a PostgreSQL database outlives the test that made it
            pg_store.drop({pg_store.database_name(self.db)})


@dataclass
class Approved:
    shell: Shell
    arn: str
    callback_id: str
    asked: str
    """What ``durably run --no-wait`` logged."""
    worker_pid: int


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Approved]:
    """The lamp's refund started with ``durably run --no-wait``, its approval read from ``durably history
    --output json`` and answered with ``durably callback success`` while a ``durably worker`` runs.

    The worker starts once the run has asked: started before, it could claim the first invocation
    (on PostgreSQL it is told of the new execution at once) and the approval would be asked on its
    stderr, not the run's."""
    root = tmp_path_factory.mktemp("approval")
    shell = Shell(root / "work", db=root / "state" / "durably.db")
    shell.db.parent.mkdir()
    try:
        started = shell(f"durably run examples/refund_agent.py:handler --no-wait --output json "
                        f"--input '{json.dumps(LAMP)}'")
        worker = shell.worker()
        execution = json.loads(started.stdout)
        assert execution["Status"] == "RUNNING"  # waiting for the approval
        arn = str(execution["DurableExecutionArn"])
        asked = approvals(shell.events(arn))
        assert list(asked) == ["call_2"]
        assert tool_runs(shell.ledger, arn, "refund") == []
        done = shell(f"durably callback success {asked['call_2']} --payload '{{\"decision\": \"approve\"}}'")
        assert "success sent" in done.stdout
        engine = shell.engine()
        try:
            deadline = time.monotonic() + 30
            while engine.get_execution(arn)["Status"] == "RUNNING":
                assert worker.poll() is None, (shell.root / "worker.err").read_text()
                assert time.monotonic() < deadline, "the approved execution did not end"
                time.sleep(0.02)
        finally:
            engine.close()
            engine.store.close()
        yield Approved(shell, arn, asked["call_2"], started.stderr, worker.pid)
    finally:
        shell.close()


def test_an_approval_answered_with_the_cli_while_a_worker_runs_refunds_once(approved: Approved) -> None:
    shell, arn = approved.shell, approved.arn
    engine = shell.engine()
    try:
        execution = engine.get_execution(arn)
    finally:
        engine.close()
        engine.store.close()
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"])["final"] == "Done: refunded 180 for the lamp of B-2 (rf-1)."
    if shell.env["DURABLY_DB"] == str(shell.db):
        assert shell.ledger == shell.db.parent / "refunds.db"  # next to $DURABLY_DB (a file)
    assert refunds(shell.ledger, arn) == [("lamp", 180)]
    runs = calls(shell.ledger, arn)
    assert [c.pid for c in runs if c.name == "refund"] == [approved.worker_pid]  # the worker ran it, once
    assert model_answers(shell.ledger, arn) == [1, 2, 3]
    assert f"durably callback success {approved.callback_id}" in approved.asked  # what the run told the person
    assert "approval needed: refund(" in approved.asked


def test_durably_history_shows_an_agent_readably(approved: Approved) -> None:
    table = approved.shell(f"durably history '{approved.arn}'").stdout
    named = []
    for line in table.splitlines():
        match = re.search(r"\b(StepSucceeded|ContextStarted|CallbackStarted|CallbackSucceeded)\s+(\S+)\s+(.+?)"
                          r"(?:\s{2,}|$)", line)
        if match:
            named.append((match.group(1), match.group(3).strip()))
    assert ("ContextStarted", "agent") in named
    steps = [name for event, name in named if event == "StepSucceeded" and name != "approve refund submitter"]
    assert steps == ["model", "lookup_order", "model", "approval time", "refund", "model"], named
    assert ("ContextStarted", "refund call_2") in named  # a turn's only call: a context, no parallel
    assert ("ContextStarted", "approve refund") in named
    assert any(event == "CallbackSucceeded" and name.startswith("approve refund") for event, name in named)
    assert approved.callback_id in table
    assert "refunded 180 for the lamp of B-2" in table  # the tool's result, as text
    assert "AIMessage; calls: refund(" in table  # the model's answer, not langchain's JSON


def readme_agent_commands() -> list[str]:
    """The shell lines of the README's agent tour, in order."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"### Agents\n(.*?)(?=\n##|\Z)", text, flags=re.S)
    assert section is not None, "no '### Agents' part in the README's tour"
    assert "```python" not in section.group(1)
    lines = []
    for block in re.findall(r"```(?:sh|shell|bash)?\n(.*?)```", section.group(1), flags=re.S):
        lines += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()
                  and not line.lstrip().startswith("#")]
    return lines


def test_the_readme_agent_tour_runs_as_written(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    commands = readme_agent_commands()
    run = next(c for c in commands if c.startswith("durably run examples/refund_agent.py:handler"))
    answer = next(c for c in commands if c.startswith("durably callback success") and '"approve"' in c)
    assert any('"reject"' in c for c in commands) and any('"edit"' in c for c in commands)
    proc = shell.popen(run)
    try:
        assert proc.stderr is not None
        asked = ""
        deadline = time.monotonic() + 30
        while "approval needed" not in asked:
            assert time.monotonic() < deadline and proc.poll() is None, asked
            asked += proc.stderr.readline()
        callback_id = re.search(r"answer with durably callback success (\S+)", asked)
        assert callback_id is not None, asked
        shell(re.sub(r"durably callback success \S+", f"durably callback success {callback_id.group(1)}", answer))
        out, _ = proc.communicate(timeout=30)
    finally:
        shell.close()
    assert proc.returncode == 0 and "Status: SUCCEEDED" in out, out
    arn = re.search(r"Execution: '([^']+)'", out)
    assert arn is not None
    assert refunds(shell.ledger, arn.group(1)) == [("lamp", 180)]
    ledger = shell(next(c for c in commands if c.startswith("python examples/refund_agent.py"))).stdout
    assert "refunds: rf-1 B-2 lamp 180" in ledger and "0 interrupted" in ledger, ledger


# ---------------------------------------------------------------------------- a campaign (slow)
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_agents_killed_at_seeded_random_moments_ask_and_refund_nothing_twice(workers: Workers) -> None:
    """Workers killed again and again, at random, while agents run and wait (their approvals answered
    between kills): every run ends, each refund is made once, and whatever a kill found checkpointed
    (a model answer, a finished tool) is never asked or run again."""
    rng = random.Random(20240916)
    plans = [(REFUND_AGENT, KETTLE, [("kettle", 40)]), (REFUND_AGENT, LAMP, [("lamp", 180)]),
             (PARALLEL, {"order_id": "C-3"}, [("rug", 160), ("sofa", 450)])] * 4
    runs = []
    for n, (reference, event, expected) in enumerate(plans):  # a ledger each: refunds are checked per order
        ledger = workers.root / f"refunds-{n}.db"
        runs.append((workers.engine.start_execution(reference, {**event, "latency": 0.2, "ledger": str(ledger)}),
                     ledger, expected))

    def progress() -> int:
        return sum(len(calls(ledger, arn)) for arn, ledger, _ in runs)

    def ended() -> bool:
        return all(workers.engine.get_execution(arn)["Status"] != "RUNNING" for arn, _, _ in runs)

    def key(c: Call) -> tuple[str, Any]:
        return c.name, c.detail.get("answer") or c.detail.get("item") or c.detail.get("order_id")

    def finished(arn: str) -> set[tuple[str, Any]]:
        """The model answers and tool calls whose steps are checkpointed (a refund named by its result)."""
        ops = [op for op in workers.engine.service.all_operations(arn)
               if op.Type == "STEP" and op.Status == "SUCCEEDED"]
        done: set[tuple[str, Any]] = {("model", n) for n in range(1, 1 + sum(op.Name == "model" for op in ops))}
        for op in ops:
            result = str(json.loads(op.StepDetails.Result or '""') if op.StepDetails else "")
            if op.Name == "lookup_order":
                done.add(("lookup_order", json.loads(result)["order_id"]))
            elif op.Name == "refund":
                match = re.search(r"for the (\w+) of", result)
                assert match is not None, result
                done.add(("refund", match.group(1)))
        return done

    def answer_pending(arn: str) -> None:
        events = workers.engine.get_history(arn)
        answered = {e["Id"] for e in events if e["EventType"] == "CallbackSucceeded"}
        for e in events:
            if e["EventType"] == "CallbackStarted" and e["Id"] not in answered:
                workers.engine.send_callback_success(e["CallbackStartedDetails"]["CallbackId"],
                                                     '{"decision": "approve"}')

    frozen: list[tuple[str, Path, tuple[str, Any], int]] = []  # (arn, ledger, call, its runs when killed)
    kills = 0
    while kills < 25 and not ended():
        worker = workers.spawn()
        before = progress()
        workers.wait_for(lambda: progress() > before or ended(), "a worker to make progress")  # noqa: B023
        time.sleep(rng.uniform(0, 0.6))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        kills += 1
        for arn, ledger, _ in runs:
            ran = [key(c) for c in calls(ledger, arn)]
            frozen += [(arn, ledger, done, ran.count(done)) for done in finished(arn)]
            answer_pending(arn)
    workers.spawn()
    deadline = time.monotonic() + 120
    while not ended():
        for arn, _, _ in runs:
            answer_pending(arn)
        assert time.monotonic() < deadline, "the agents did not end"
        time.sleep(0.05)
    assert kills >= 15, f"only {kills} kills: the runs ended too soon"
    crashed = [e for arn, _, _ in runs for e in workers.engine.get_history(arn)
               if e["EventType"] == "InvocationCompleted" and "Runtime.ExitError" in json.dumps(e)]
    assert crashed, "no kill landed in an invocation"
    for arn, ledger, expected in runs:
        execution = workers.engine.get_execution(arn)
        assert execution["Status"] == "SUCCEEDED", execution
        assert sorted(refunds(ledger, arn)) == expected, "a refund was made twice, or not at all"
        assert sorted(set(model_answers(ledger, arn))) == [1, 2, 3]
    for arn, ledger, done, ran_then in frozen:
        assert [key(c) for c in calls(ledger, arn)].count(done) == ran_then, (
            f"{done} was asked or run again after its step was checkpointed")


# ---------------------------------------------------------------------------- found on the way
def test_a_tool_can_read_its_call_id(tmp_path: Path) -> None:
    @tool
    def refund(order_id: str, call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Refund an order, deduplicated by the call id."""
        return f"refunded {order_id} once for {call_id}"

    model = ScriptedChatModel(script=[AIMessage("", tool_calls=[{"name": "refund", "args": {"order_id": "A-1"},
                                                                 "id": "c1", "type": "tool_call"}]),
                                      AIMessage("done")])

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return Agent(model, [refund], tool_config=None).run(ctx, "refund A-1").to_json()

    with DurableTestRunner(handler, db=tmp_path / "durably.db") as runner:
        result: TestResult = runner.run()
    assert result.status == "SUCCEEDED", result.error
    assert result.value["tool_calls"][0]["content"] == "refunded A-1 once for c1"


def test_a_failure_sent_to_an_approval_rejects_that_call(desk: Any) -> None:
    runner, ledger = desk(REFUND_AGENT)
    arn = runner.run_async({**LAMP, "ledger": str(ledger)})
    assert runner.resume(arn).status == "RUNNING"
    runner.send_callback_failure(runner.callback_id(arn, "approve refund"),
                                 ErrorObject(ErrorType="Rejected", ErrorMessage="not this one"))
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED", result.error
    assert result.value["tool_calls"][1]["outcome"] == "rejected"
    assert "not this one" in result.value["tool_calls"][1]["content"]


def test_an_edit_of_a_tool_that_takes_its_call_id_runs_with_the_edited_args(tmp_path: Path) -> None:
    @tool
    def refund(order_id: str, amount: float, call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Refund part of an order, deduplicated by the call id."""
        return f"refunded {amount:g} on {order_id} for {call_id}"

    model = ScriptedChatModel(script=[AIMessage("", tool_calls=[{"name": "refund", "id": "c1", "type": "tool_call",
                                                                 "args": {"order_id": "B-2", "amount": 180}}]),
                                      AIMessage("done")])

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return Agent(model, [refund], approval=require_approval("refund"), notify=lambda request: None).run(
            ctx, "refund B-2").to_json()

    with DurableTestRunner(handler, db=tmp_path / "durably.db") as runner:
        arn = runner.run_async()
        assert runner.resume(arn).status == "RUNNING"
        runner.send_callback_success(runner.callback_id(arn, "approve refund"),
                                     '{"decision": "edit", "args": {"order_id": "B-2", "amount": 90}}')
        result = runner.resume(arn)
    assert result.status == "SUCCEEDED", f"still {result.status}: the edit was refused and asked again"
    assert result.value["tool_calls"][0]["content"] == "refunded 90 on B-2 for c1"
