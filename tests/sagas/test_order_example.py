"""The order saga of ``examples/order_fulfilment.py``, at every failure point, checked on its ledger.

In-process first (time skipped): each forward failure point and each compensation failing once,
with what the fake services really did (charges, refunds, releases, shipments, e-mails) counted in
the SQLite ledger. Then as a user runs it: the README's command word for word in a fresh working
directory, and an escalated refund answered ``retry`` / ``resolved`` / ``abort`` with ``durably
callback success`` while a ``durably worker`` process runs the execution.
"""

from __future__ import annotations

import json
import os
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
from typing import Any

import pg_store
import pytest
from durably import DurableContext, Duration, RetryDecision, StepConfig, StepContext, durable_execution
from durably.core.engine.engine import Engine
from durably.core.engine.functions import load_reference
from durably.sagas import Escalation, SagaConfig, Undo, saga
from durably.testing import DurableTestRunner, TestResult
from pg_store import database

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
FORWARD = ["reserve_inventory", "charge_payment", "create_shipment", "send_confirmation"]


# ---------------------------------------------------------------------------- the ledger, read apart
def effects(ledger: Path, execution: str) -> dict[str, int]:
    """How many effects of each kind the services made for ``execution`` (rows, not requests)."""
    if not ledger.exists():
        return dict.fromkeys(("reserved", "released", "charged", "refunded", "shipped", "emailed"), 0)
    db = sqlite3.connect(ledger)
    try:
        def count(sql: str) -> int:
            return int(db.execute(sql, (execution,)).fetchone()[0])
        return {
            "reserved": count("SELECT count(*) FROM reservations WHERE execution = ?"),
            "released": count("SELECT count(*) FROM releases l JOIN reservations r ON r.id = l.reservation_id"
                              " WHERE r.execution = ?"),
            "charged": count("SELECT count(*) FROM charges WHERE execution = ?"),
            "refunded": count("SELECT count(*) FROM refunds f JOIN charges c ON c.id = f.charge_id"
                              " WHERE c.execution = ?"),
            "shipped": count("SELECT count(*) FROM shipments WHERE execution = ?"),
            "emailed": count("SELECT count(*) FROM emails WHERE execution = ?"),
        }
    finally:
        db.close()


def requests(ledger: Path, execution: str) -> dict[str, list[str]]:
    """The outcome of every request ``execution`` made, by ``service.action``, in order."""
    db = sqlite3.connect(ledger)
    try:
        out: dict[str, list[str]] = {}
        for service, action, outcome in db.execute(
                "SELECT service, action, outcome FROM requests WHERE execution = ? ORDER BY seq", (execution,)):
            out.setdefault(f"{service}.{action}", []).append(outcome)
        return out
    finally:
        db.close()


def refunds_by(ledger: Path, execution: str) -> list[str]:
    db = sqlite3.connect(ledger)
    try:
        return [r[0] for r in db.execute("SELECT f.by FROM refunds f JOIN charges c ON c.id = f.charge_id"
                                         " WHERE c.execution = ?", (execution,))]
    finally:
        db.close()


def expect(**counts: int) -> dict[str, int]:
    """The effects of an order: nothing but what is named."""
    return {**dict.fromkeys(("reserved", "released", "charged", "refunded", "shipped", "emailed"), 0), **counts}


SHIPPED = expect(reserved=1, charged=1, shipped=1, emailed=1)
ROLLED_BACK = expect(reserved=1, released=1, charged=1, refunded=1)


def saga_data(error: dict[str, Any] | Any) -> dict[str, Any]:
    data = error["ErrorData"] if isinstance(error, dict) else error.ErrorData
    return dict(json.loads(data))


# ---------------------------------------------------------------------------- in-process, time skipped
@dataclass
class Order:
    result: TestResult
    ledger: Path

    @property
    def effects(self) -> dict[str, int]:
        return effects(self.ledger, self.result.arn)

    @property
    def requests(self) -> dict[str, list[str]]:
        return requests(self.ledger, self.result.arn)

    @property
    def compensations(self) -> list[str]:
        """The compensations that ran (SUCCEEDED or FAILED), in the order they started."""
        ops = sorted((op for op in self.result.operations if op.SubType == "Compensation"),
                     key=lambda op: op.StartTimestamp or 0)
        return [op.Name or "" for op in ops]

    @property
    def error_type(self) -> str | None:
        return self.result.error.ErrorType if self.result.error else None

    @property
    def data(self) -> dict[str, Any]:
        return saga_data(self.result.error)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Callable[..., Order]]:
    """``shop(fail=..., answer=...)``: one order through the example saga in-process, on a ledger of its own."""
    handler = load_reference(f"{EXAMPLES / 'order_fulfilment.py'}:handler")
    ledger = tmp_path / "shop.db"
    runner = DurableTestRunner(handler, db=tmp_path / "durably.db")
    made = [0]

    def order(fail: Any = None, **extra: Any) -> Order:
        made[0] += 1
        event = {"order_id": f"T-{made[0]}", "amount": 42, "ledger": str(ledger), **extra}
        if fail is not None:
            event["fail"] = fail
        return Order(runner.run(event), ledger)

    yield order
    runner.close()


def test_an_order_that_goes_through_charges_once_although_the_gateway_timed_out(shop: Any) -> None:
    order = shop()
    assert order.result.status == "SUCCEEDED", order.result.error
    assert order.result.value == {"order_id": "T-1", "reservation": "res-1", "charge": "ch-1", "shipment": "shp-1",
                                  "tracking": "TRK00000001", "confirmation": "em-1"}
    assert order.effects == SHIPPED
    # the first charge request took the charge and timed out; the retry, same key, was answered from the ledger
    assert order.requests["payments.charge"] == ["failed: TimeoutError: payment gateway timed out", "repeat"]
    assert order.compensations == []
    assert [op.Name for op in order.result.operations if op.Type == "STEP"] == FORWARD
    assert order.result.get_context("order").SubType == "Saga"


def test_a_payment_that_keeps_timing_out_is_refunded_since_it_may_have_been_taken(shop: Any) -> None:
    order = shop("payment")
    assert order.error_type == "durably.sagas.SagaRolledBack"
    assert order.data["error"]["ErrorType"] == "TimeoutError"  # the original failure is kept
    assert [c["step"] for c in order.data["compensated"]] == ["charge_payment", "reserve_inventory"]
    assert order.compensations == ["charge_payment", "reserve_inventory"]
    assert order.effects == ROLLED_BACK  # the charge the gateway took before timing out: refunded
    assert order.requests["payments.charge"] == ["failed: TimeoutError: payment gateway timed out"] * 3
    assert order.requests["payments.refund"] == ["ok"] and "carrier.ship" not in order.requests


def test_a_shipment_refused_is_the_pivot_failing_so_everything_before_it_is_undone(shop: Any) -> None:
    order = shop("shipment")
    assert order.error_type == "durably.sagas.SagaRolledBack"
    assert order.data["error"]["ErrorType"] == "shop.ServiceError"
    assert "address undeliverable" in order.data["error"]["ErrorMessage"]
    assert order.compensations == ["charge_payment", "reserve_inventory"]  # in reverse
    assert order.effects == ROLLED_BACK
    assert len(order.requests["carrier.ship"]) == 1  # a refusal is not retried
    rollback = [op for op in order.result.operations if op.SubType == "SagaRollback"]
    assert len(rollback) == 1 and rollback[0].ParentId == order.result.get_context("order").Id


def test_a_confirmation_that_fails_after_the_pivot_is_recovered_forward(shop: Any) -> None:
    order = shop("confirmation")
    assert order.result.status == "SUCCEEDED", order.result.error
    assert order.effects == SHIPPED and order.compensations == []
    assert order.requests["mailer.send"] == ["failed: ConnectionError: mail server unavailable"] * 2 + ["ok"]


def test_a_confirmation_that_never_goes_out_fails_forward_and_keeps_the_order(shop: Any) -> None:
    order = shop("confirmation-always")
    assert order.error_type == "durably.sagas.SagaForwardRecoveryFailed"
    assert order.data["outcome"] == "forward_recovery_failed"
    assert order.data["error"]["ErrorMessage"] == "mail server unavailable"
    assert order.compensations == []  # shipped: nothing is undone, the charge is kept
    assert order.effects == expect(reserved=1, charged=1, shipped=1)
    assert len(order.requests["mailer.send"]) == 4


@pytest.mark.parametrize(("fail", "compensation", "service"), [
    ("refund-once", "charge_payment", "payments.refund"),
    ("release-once", "reserve_inventory", "warehouse.release"),
])
def test_a_compensation_that_fails_once_is_retried_and_undoes_once(shop: Any, fail: str, compensation: str,
                                                                   service: str) -> None:
    order = shop(fail)  # the shipment is refused, then the compensation's first request fails
    assert order.error_type == "durably.sagas.SagaRolledBack"
    compensated = {c["step"]: c for c in order.data["compensated"]}
    assert compensated[compensation] == {"step": compensation, "attempts": 2, "resolution": "compensated"}
    assert order.effects == ROLLED_BACK
    assert order.requests[service] == [f"failed: ConnectionError: {'refund' if 'refund' in fail else 'warehouse'}"
                                       " API unavailable", "ok"]


def test_every_fault_together_still_undoes_each_effect_exactly_once(shop: Any) -> None:
    order = shop(["payment", "refund-once", "release-once"])
    assert order.error_type == "durably.sagas.SagaRolledBack"
    assert order.effects == ROLLED_BACK
    assert [c["attempts"] for c in order.data["compensated"]] == [2, 2]


def test_an_escalation_nobody_answers_ends_compensation_failed_after_a_day(tmp_path: Path) -> None:
    handler = load_reference(f"{EXAMPLES / 'order_fulfilment.py'}:handler")
    ledger = tmp_path / "shop.db"
    with DurableTestRunner(handler, db=tmp_path / "durably.db") as runner:
        arn = runner.run_async({"order_id": "U-1", "amount": 5, "fail": "release-always", "ledger": str(ledger)})
        assert runner.resume(arn).status == "RUNNING"  # the release escalated: waiting for a person
        runner.callback_id(arn, "escalate reserve_inventory")
        runner.advance_time(86_401)
        result = runner.resume(arn)
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaCompensationFailed"
    data = saga_data(result.error)
    assert data["failed"] == "reserve_inventory" and "no answer within 86400 s" in data["escalation"]["reason"]
    assert [c["step"] for c in data["compensated"]] == ["charge_payment"]
    assert effects(ledger, arn) == expect(reserved=1, charged=1, refunded=1)  # the stock is still reserved


# ---------------------------------------------------------------------------- as a user runs it
class Shell:
    """A fresh working directory holding a copy of ``examples/``, and the commands a user types there."""

    def __init__(self, root: Path, db: Path | None = None) -> None:
        self.root = root
        shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DURABLY_", "SHOP_"))}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.db = db or root / ".durably" / "durably.db"
        self.ledger = self.db.parent / "shop.db"
        if db is not None:
            self.env["DURABLY_DB"] = database(db)
            if self.env["DURABLY_DB"] != str(db):  # on PostgreSQL: the ledger where it would be beside the file
                self.env["SHOP_LEDGER"] = str(self.ledger)
        self.procs: list[subprocess.Popen[str]] = []

    def __call__(self, command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(command, shell=True, cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout, executable="/bin/bash")
        if check:
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        return done

    def worker(self) -> subprocess.Popen[str]:
        err = (self.root / f"worker-{len(self.procs)}.err").open("w")
        proc = subprocess.Popen(["durably", "worker", "--workers", "4"], cwd=self.root, env=self.env,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
        self.procs.append(proc)
        return proc

    def engine(self) -> Engine:
        return Engine(database(self.db))  # the worker's database, whichever test fixture is active

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if database(self.db) != str(self.db):  # a PostgreSQL database outlives the test that made it
            pg_store.drop({pg_store.database_name(self.db)})


def readme_try_it() -> str:
    """The README's first command, as written after ``pip install . &&``."""
    block = re.search(r"## Try it\n.*?```\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert block is not None
    command = block.group(1).strip().split(" && ")[-1]
    assert command.startswith("durably run examples/order_fulfilment.py:handler --input ")
    return command


def test_the_readme_first_command_works_in_a_fresh_directory(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    command = readme_try_it()
    assert command == """durably run examples/order_fulfilment.py:handler --input '{"order_id": "A-1", "amount": 42}'"""
    done = shell(command)
    assert "Status: SUCCEEDED" in done.stdout
    assert '"confirmation":"em-1"' in done.stdout
    for event in ("ExecutionStarted", "ContextStarted", "StepSucceeded", "ExecutionSucceeded"):
        assert event in done.stdout, done.stdout  # the history is printed
    for step in FORWARD:
        assert step in done.stdout
    arn = re.search(r"Execution: '([^']+)'", done.stdout)
    assert arn is not None
    assert shell.ledger == tmp_path / ".durably" / "shop.db"  # next to the default durably database
    assert effects(shell.ledger, arn.group(1)) == SHIPPED
    shown = shell("python examples/shop.py").stdout
    assert "A-1" in shown and "charged ch-1" in shown and "shipped shp-1" in shown


def readme_saga_commands() -> list[str]:
    """The shell lines of the README's saga tour, in order."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"### Sagas\n(.*?)(?=\n##|\Z)", text, flags=re.S)
    assert section is not None, "no '### Sagas' part in the README's tour"
    lines = []
    for block in re.findall(r"```(?:sh|shell|bash)?\n(.*?)```", section.group(1), flags=re.S):
        lines += [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()
                  and not line.lstrip().startswith("#")]
    return lines


def test_the_readme_saga_tour_rolls_back_and_answers_an_escalation(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    commands = readme_saga_commands()
    rollback = next(c for c in commands if '"fail": "shipment"' in c)
    done = shell(rollback, check=False)
    assert done.returncode == 1 and "SagaRolledBack" in done.stdout, (done.stdout, done.stderr)
    assert "rolled back" in done.stdout
    arn = re.search(r"Execution: '([^']+)'", done.stdout)
    assert arn is not None and effects(shell.ledger, arn.group(1)) == ROLLED_BACK

    escalating = next(c for c in commands if '"fail": "refund-always"' in c)
    by_hand = next(c for c in commands if "refund-by-hand" in c)
    answer = next(c for c in commands if c.startswith("durably callback success"))
    run = subprocess.Popen(escalating, shell=True, cwd=tmp_path, env=shell.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, executable="/bin/bash")
    try:
        assert run.stderr is not None
        asked = ""
        deadline = time.monotonic() + 30
        while "a person must decide" not in asked:
            assert time.monotonic() < deadline and run.poll() is None, asked
            asked += run.stderr.readline()
        callback_id = re.search(r"a person must decide: durably callback success (\S+)", asked)
        assert callback_id is not None, asked
        assert "refunded by hand" in shell(by_hand).stdout
        shell(re.sub(r"durably callback success \S+", f"durably callback success {callback_id.group(1)}", answer))
        out, _ = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1 and "SagaRolledBack" in out, out
    arn = re.search(r"Execution: '([^']+)'", out)
    assert arn is not None
    assert effects(shell.ledger, arn.group(1)) == ROLLED_BACK and refunds_by(shell.ledger, arn.group(1)) == ["hand"]


# ---------------------------------------------------------------------------- escalations with a worker
ESCALATED = {"retry": "R-1", "resolved": "R-2", "abort": "R-3"}


@pytest.fixture(scope="module")
def escalated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Shell, dict[str, str]]]:
    """A worker running three orders whose refund fails for good (started together, so that their
    retries overlap), in a directory with ``DURABLY_DB`` set: the ledger is next to it."""
    root = tmp_path_factory.mktemp("escalations")
    shell = Shell(root / "work", db=root / "state" / "durably.db")
    shell.db.parent.mkdir()
    engine = shell.engine()  # the database exists before the worker and the first run start
    engine.close()
    engine.store.close()
    shell.worker()
    arns = {decision: start(shell, order_id, "refund-always") for decision, order_id in ESCALATED.items()}
    yield shell, arns
    shell.close()


def start(shell: Shell, order_id: str, fail: str) -> str:
    event = json.dumps({"order_id": order_id, "amount": 30, "fail": fail})
    done = shell(f"durably run examples/order_fulfilment.py:handler --no-wait --output json --input '{event}'")
    return str(json.loads(done.stdout)["DurableExecutionArn"])


def escalations(shell: Shell, arn: str, count: int, timeout: float = 30) -> list[str]:
    """Wait until ``count`` escalations were asked, then read their callback ids with ``durably history``."""
    engine = shell.engine()
    try:
        deadline = time.monotonic() + timeout
        while sum(e["EventType"] == "CallbackStarted" for e in engine.get_history(arn)) < count:
            assert engine.get_execution(arn)["Status"] == "RUNNING", engine.get_execution(arn)
            assert time.monotonic() < deadline, [e["EventType"] for e in engine.get_history(arn)]
            time.sleep(0.05)
    finally:
        engine.close()
        engine.store.close()
    events = json.loads(shell(f"durably history '{arn}' --output json").stdout)["Events"]
    return [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]


def answer(shell: Shell, callback_id: str, decision: dict[str, Any]) -> None:
    done = shell(f"durably callback success {callback_id} --payload '{json.dumps(decision)}'")
    assert "success sent" in done.stdout


def ended(shell: Shell, arn: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution = json.loads(shell(f"durably get '{arn}' --output json").stdout)
        if execution["Status"] != "RUNNING":
            return dict(execution)
        for proc in shell.procs:
            assert proc.poll() is None, (shell.root / "worker-0.err").read_text()
        assert time.monotonic() < deadline, execution
        time.sleep(0.2)


def test_an_escalated_refund_answered_retry_after_the_repair_is_refunded(escalated: Any) -> None:
    shell, arn = escalated[0], escalated[1]["retry"]
    first = escalations(shell, arn, 1)
    answer(shell, first[0], {"decision": "retry"})  # not repaired yet: fails again, asked again
    second = escalations(shell, arn, 2)
    assert second[0] == first[0] and second[1] != first[0]
    shell("python examples/shop.py repair refund --order R-1")
    answer(shell, second[1], {"decision": "retry"})
    done = ended(shell, arn)
    assert done["Status"] == "FAILED" and done["Error"]["ErrorType"] == "durably.sagas.SagaRolledBack"
    data = saga_data(done["Error"])
    assert data["compensated"][0] == {"step": "charge_payment", "attempts": 1, "resolution": "compensated"}
    assert effects(shell.ledger, arn) == ROLLED_BACK
    refunds = requests(shell.ledger, arn)["payments.refund"]
    assert refunds == ["failed: ConnectionError: refund API unavailable"] * 6 + ["ok"]  # 3 + 3 attempts, then it


def test_an_escalated_refund_answered_resolved_counts_as_undone(escalated: Any) -> None:
    shell, arn = escalated[0], escalated[1]["resolved"]
    callback_id = escalations(shell, arn, 1)[0]
    assert "refunded by hand: rf-" in shell("python examples/shop.py refund-by-hand R-2").stdout
    answer(shell, callback_id, {"decision": "resolved", "note": "refunded by hand"})
    done = ended(shell, arn)
    assert done["Error"]["ErrorType"] == "durably.sagas.SagaRolledBack"
    assert saga_data(done["Error"])["compensated"] == [
        {"step": "charge_payment", "attempts": 0, "resolution": "resolved", "note": "refunded by hand"},
        {"step": "reserve_inventory", "attempts": 1, "resolution": "compensated"}]
    assert effects(shell.ledger, arn) == ROLLED_BACK and refunds_by(shell.ledger, arn) == ["hand"]
    worker_log = (shell.root / "worker-0.err").read_text()
    assert f"a person must decide: durably callback success {callback_id}" in worker_log  # the default notify


def test_an_escalated_refund_answered_abort_ends_compensation_failed_and_undoes_nothing_more(
        escalated: Any) -> None:
    shell, arn = escalated[0], escalated[1]["abort"]
    answer(shell, escalations(shell, arn, 1)[0], {"decision": "abort", "note": "call the bank"})
    done = ended(shell, arn)
    assert done["Error"]["ErrorType"] == "durably.sagas.SagaCompensationFailed"
    data = saga_data(done["Error"])
    assert data["failed"] == "charge_payment" and data["not_compensated"] == ["reserve_inventory"]
    assert data["escalation"] == {"decision": "abort", "note": "call the bank"}
    assert data["compensation_error"]["ErrorMessage"] == "refund API unavailable"
    # the charge stays and the stock stays reserved: a person has them in hand now
    assert effects(shell.ledger, arn) == expect(reserved=1, charged=1)


# ---------------------------------------------------------------------------- found on the way
def test_a_compensation_keeps_its_idempotency_key_when_a_person_answers_retry(tmp_path: Path) -> None:
    keys: list[str] = []

    def refund(step: StepContext, undo: Undo) -> None:
        keys.append(step.idempotency_key)
        if len(keys) == 1:
            raise TimeoutError("refund timed out (it may have gone through)")

    def fail(step: StepContext) -> None:
        raise ValueError("no shipment")

    config = SagaConfig(compensation_retry=lambda error, attempt: RetryDecision.no_retry(),
                        escalation=Escalation(timeout=Duration.from_hours(1), notify=lambda callback_id, r: None))

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "order", config=config) as s:
            s.step(lambda step: "ch-1", compensate=refund, name="charge")
            s.step(fail, name="ship", config=StepConfig(retry_strategy=lambda e, a: RetryDecision.no_retry()))

    with DurableTestRunner(handler, db=tmp_path / "durably.db") as runner:
        arn = runner.run_async()
        assert runner.resume(arn).status == "RUNNING"
        runner.send_callback_success(runner.callback_id(arn, "escalate charge"), '{"decision": "retry"}')
        assert runner.resume(arn).error is not None
    assert len(keys) == 2
    assert keys[0] == keys[1], "the second round of the refund carries another key: the gateway refunds again"
