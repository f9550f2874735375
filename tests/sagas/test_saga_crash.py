"""The order saga under SIGKILL: ``durably worker`` processes killed at seeded random moments while
many orders run with random faults; at the end the shop's ledger must balance.

Step bodies are at-least-once: a worker killed after a service took effect and before the step was
recorded runs the body again on the next worker. The services deduplicate by the step's
``idempotency_key``, so the ledger must show every effect once: every reservation shipped or
released exactly once, every charge kept for a shipped order or refunded exactly once, no refund
without a charge, at most one e-mail, and every execution ended with the outcome its faults call
for. Escalated refunds are answered as a person would (repair then ``retry``, refund by hand then
``resolved``, or an answer not understood first).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from durably.core.engine.engine import Engine
from durably.core.engine.stores.base import StoreTx
from pg_store import database

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HANDLER = f"{EXAMPLES / 'order_fulfilment.py'}:handler"

FAULTS: list[Any] = [None, None, None, "payment", "shipment", "confirmation", "confirmation-always", "refund-once",
                     "release-once", "refund-always", ["payment", "release-once"],
                     ["shipment", "refund-once", "release-once"], ["refund-always", "release-once"]]
ROLLS_BACK = {"payment", "shipment", "refund-once", "refund-always", "release-once"}
CRASH_LOOP_GUARD = 3
"""The engine fails an execution after 5 invocations in a row that died without a checkpoint (a crash
loop); the campaign kills only while every running execution is below this many, so that it tests
recovery, not that guard."""


def load_shop() -> ModuleType:
    """``examples/shop.py`` for the person answering escalations (repair, refund by hand)."""
    spec = importlib.util.spec_from_file_location("shop_for_crash_tests", EXAMPLES / "shop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_outcome(fault: Any) -> str:
    points = {fault} if isinstance(fault, str) else set(fault or ())
    if points & ROLLS_BACK:
        return "durably.sagas.SagaRolledBack"
    if "confirmation-always" in points:
        return "durably.sagas.SagaForwardRecoveryFailed"
    return "SUCCEEDED"


@dataclass
class Placed:
    order_id: str
    fault: Any
    plan: list[str] = field(default_factory=list)
    """How the person answers this order's escalations, in turn."""
    answered: set[str] = field(default_factory=set)


class Campaign:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "durably.db"
        self.ledger = root / "shop.db"
        self.engine = Engine(self.db)
        self.shop = load_shop()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.orders: dict[str, Placed] = {}
        self.kills = 0

    # ------------------------------------------------------------------ processes
    def spawn(self) -> subprocess.Popen[bytes]:
        err = (self.root / f"worker-{len(self.procs)}.err").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "durably", "worker", "--db", database(self.db), "--workers", "4", "--quiet"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        err.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.poll() is None, self.errors_of(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.kills += 1

    def errors_of(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.root / f"worker-{self.procs.index(proc)}.err").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.engine.close()
        self.engine.store.close()

    # ------------------------------------------------------------------ orders
    def place(self, rng: random.Random, latency: float) -> str:
        fault = rng.choice(FAULTS)
        order_id = f"O-{len(self.orders) + 1}"
        event: dict[str, Any] = {"order_id": order_id, "amount": rng.randint(1, 500), "ledger": str(self.ledger),
                                 "latency": round(rng.uniform(0, latency), 3)}
        if fault is not None:
            event["fail"] = fault
        arn = self.engine.start_execution(HANDLER, event)
        plan = [rng.choice(["retry", "resolved", "retry", "not understood"]) for _ in range(3)] + ["resolved"]
        self.orders[arn] = Placed(order_id, fault, plan)
        return arn

    def running(self) -> list[str]:
        return [arn for arn in self.orders if self.engine.get_execution(arn)["Status"] == "RUNNING"]

    def answer_escalations(self) -> int:
        """Answer every escalation that waits, as the order's plan says; how many were answered."""
        answered = 0
        for arn in self.running():
            placed = self.orders[arn]
            events = self.engine.get_history(arn)
            closed = {e["Id"] for e in events if e["EventType"].startswith("Callback") and
                      e["EventType"] != "CallbackStarted"}
            for event in events:
                if event["EventType"] != "CallbackStarted" or event["Id"] in closed:
                    continue
                callback_id = event["CallbackStartedDetails"]["CallbackId"]
                if callback_id in placed.answered:
                    continue
                decision = placed.plan.pop(0) if placed.plan else "resolved"
                ledger = self.shop.Ledger(self.ledger)
                if decision == "retry":
                    self.shop.repair(ledger, "refund", placed.order_id)
                    payload = {"decision": "retry"}
                elif decision == "resolved":
                    self.shop.refund_by_hand(ledger, placed.order_id)
                    payload = {"decision": "resolved", "note": "refunded by hand"}
                else:
                    payload = {"decision": "maybe later"}
                self.engine.send_callback_success(callback_id, json.dumps(payload))
                placed.answered.add(callback_id)
                answered += 1
        return answered

    def worst_crash_streak(self) -> int:
        def streaks(tx: StoreTx) -> list[int]:
            arns = tx.ready_executions(10_000) + [r.arn for r in tx.leased_executions()]
            return [row.failed_invocations for arn in arns if (row := tx.execution(arn)) is not None]
        return max(self.engine.store.read(streaks), default=0)

    def wait_until_safe_to_kill(self, live: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.worst_crash_streak() >= CRASH_LOOP_GUARD:
            self.check_alive(live)
            assert time.monotonic() < deadline, "an execution made no progress after its takeovers"
            time.sleep(0.01)

    def check_alive(self, live: list[subprocess.Popen[bytes]]) -> None:
        for proc in live:
            assert proc.poll() is None, f"worker exited {proc.returncode}: {self.errors_of(proc)}"

    def drain(self, live: list[subprocess.Popen[bytes]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while running := self.running():
            self.check_alive(live)
            self.answer_escalations()
            assert time.monotonic() < deadline, f"{len(running)} executions never ended: {running[:3]}"
            time.sleep(0.05)


# ---------------------------------------------------------------------------- the ledger must balance
def rows(ledger: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(ledger)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def has_rows(ledger: Path, table: str) -> bool:
    try:
        return bool(ledger.exists() and rows(ledger, f"SELECT id FROM {table} LIMIT 1"))
    except sqlite3.OperationalError:  # the ledger is being created
        return False


def check_ledger(c: Campaign) -> dict[str, int]:
    """Every invariant of the shop over all orders; answers what the campaign exercised."""
    ledger = c.ledger
    assert rows(ledger, "SELECT id FROM refunds WHERE charge_id NOT IN (SELECT id FROM charges)") == [], \
        "a refund without a charge"
    assert rows(ledger, "SELECT id FROM releases WHERE reservation_id NOT IN (SELECT id FROM reservations)") == []
    assert rows(ledger, "SELECT id FROM shipments WHERE reservation_id NOT IN (SELECT id FROM reservations)") == []
    ends = Counter(r[0] for r in rows(ledger, "SELECT reservation_id FROM shipments UNION ALL"
                                              " SELECT reservation_id FROM releases"))
    for (reservation,) in rows(ledger, "SELECT id FROM reservations"):
        assert ends[reservation] == 1, f"reservation {reservation} shipped or released {ends[reservation]} times"
    refunded = Counter(r[0] for r in rows(ledger, "SELECT charge_id FROM refunds"))
    shipped_executions = {r[0] for r in rows(ledger, "SELECT execution FROM shipments")}
    for charge, execution in rows(ledger, "SELECT id, execution FROM charges"):
        expected = 0 if execution in shipped_executions else 1
        assert refunded[charge] == expected, f"charge {charge} refunded {refunded[charge]} times, not {expected}"

    per_execution: dict[str, Counter[str]] = {arn: Counter() for arn in c.orders}
    for table in ("reservations", "charges", "shipments", "emails"):
        for (execution,) in rows(ledger, f"SELECT execution FROM {table}"):
            per_execution[execution][table] += 1
    outcomes: Counter[str] = Counter()
    for arn, placed in c.orders.items():
        execution = c.engine.get_execution(arn)
        outcome = execution["Status"] if execution["Status"] == "SUCCEEDED" else execution["Error"]["ErrorType"]
        assert outcome == expected_outcome(placed.fault), (placed, execution)
        outcomes[outcome] += 1
        counts = per_execution[arn]
        assert counts["reservations"] == 1 and counts["charges"] == 1, (placed, counts)  # never twice
        shipped = outcome != "durably.sagas.SagaRolledBack"
        assert counts["shipments"] == int(shipped), (placed, counts)
        assert counts["emails"] == int(outcome == "SUCCEEDED"), (placed, counts)

    # what the kills did: bodies that ran again after their effect, answered from the ledger
    reruns = rows(ledger, "SELECT count(*) FROM requests r WHERE outcome = 'repeat' AND EXISTS (SELECT 1 FROM"
                          " requests o WHERE o.key = r.key AND o.seq < r.seq AND o.outcome = 'ok')")[0][0]
    escalations = sum(len(p.answered) for p in c.orders.values())
    return {"kills": c.kills, "executions": len(c.orders), "reruns_after_effect": int(reruns),
            "escalations_answered": escalations, **{k.rsplit(".", 1)[-1]: v for k, v in outcomes.items()}}


def run_campaign(tmp_path: Path, seed: int, kills: int, in_flight: int, latency: float,
                 pause: tuple[float, float]) -> dict[str, int]:
    c = Campaign(tmp_path)
    rng = random.Random(seed)
    try:
        live = [c.spawn(), c.spawn()]
        while c.kills < kills:
            for _ in range(in_flight - len(c.running())):
                c.place(rng, latency)
            c.answer_escalations()
            time.sleep(rng.uniform(*pause))
            c.wait_until_safe_to_kill(live)
            victim = rng.choice(live)
            c.kill(victim)
            live[live.index(victim)] = c.spawn()
        c.drain(live, timeout=120)
        summary = check_ledger(c)
        print(f"seed {seed}: {summary}")
        return summary
    finally:
        c.close()


def test_short_seeded_crash_campaign(tmp_path: Path) -> None:
    summary = run_campaign(tmp_path, seed=15, kills=25, in_flight=10, latency=0.1, pause=(0.05, 0.4))
    assert summary["kills"] == 25


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_seeded_crash_campaign(tmp_path: Path, seed: int) -> None:
    summary = run_campaign(tmp_path, seed=seed, kills=100, in_flight=12, latency=0.2, pause=(0.02, 0.5))
    assert summary["kills"] == 100
    assert summary["reruns_after_effect"] > 0, "no kill landed between an effect and its record"
    assert summary["escalations_answered"] > 0


# ---------------------------------------------------------------------------- one kill after each effect
def test_a_worker_killed_after_each_effect_before_its_step_is_recorded_repeats_no_effect(tmp_path: Path) -> None:
    """Reserve, charge, refund, release: each time the service has taken effect and the body is still
    running, the worker dies; the next one runs the body again with the same key."""
    c = Campaign(tmp_path)
    try:
        arn = c.engine.start_execution(HANDLER, {"order_id": "K-1", "amount": 12, "fail": "shipment",
                                                 "ledger": str(c.ledger), "latency": 0.5})
        c.orders[arn] = Placed("K-1", "shipment")
        worker = c.spawn()
        for table, step, sub_type in (("reservations", "reserve_inventory", "Step"),
                                      ("charges", "charge_payment", "Step"),
                                      ("refunds", "charge_payment", "Compensation"),
                                      ("releases", "reserve_inventory", "Compensation")):
            deadline = time.monotonic() + 20
            while not has_rows(c.ledger, table):
                c.check_alive([worker])
                assert time.monotonic() < deadline, f"no {table} row"
                time.sleep(0.005)
            c.kill(worker)  # the body sleeps 0.25 s after the effect: it has not returned
            recorded = {(op.Name, op.SubType) for op in c.engine.service.all_operations(arn)
                        if op.Type == "STEP" and op.Status == "SUCCEEDED"}
            assert (step, sub_type) not in recorded, f"{step} ({sub_type}) was recorded before the kill"
            worker = c.spawn()
        c.drain([worker], timeout=30)
        check_ledger(c)
        log = [(service, action, outcome) for service, action, outcome in rows(
            c.ledger, "SELECT service, action, outcome FROM requests ORDER BY seq")]
        assert log == [
            ("warehouse", "reserve", "ok"), ("warehouse", "reserve", "repeat"),
            ("payments", "charge", "failed: TimeoutError: payment gateway timed out"), ("payments", "charge", "repeat"),
            ("carrier", "ship", "failed: ServiceError: carrier rejected the shipment of K-1: address undeliverable"),
            ("payments", "refund", "ok"), ("payments", "refund", "repeat"),
            ("warehouse", "release", "ok"), ("warehouse", "release", "repeat")]
        assert c.kills == 4
    finally:
        c.close()
