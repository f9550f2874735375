"""Redrive of the order saga (``examples/order_fulfilment.py``) after its failure was fixed, on the shop's ledger.

A shipment the carrier keeps refusing (``shipment-always``) rolls the order back: the charge is
refunded, the stock released. Once the carrier is repaired (``python examples/shop.py repair
shipment``, as a person would), a redrive keeps the saga's input but none of its compensated
steps: it reserves and charges again, ships and confirms. A confirmation that keeps failing after
the pivot (``confirmation-always``) undoes nothing: the redrive keeps the reservation, the charge
and the shipment, and only sends the e-mail.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from durably import sagas
from durably.core.engine import redrive
from durably.core.engine.engine import Engine
from durably.core.engine.functions import load_reference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "order_fulfilment.py"
SHOP = ROOT / "examples" / "shop.py"
TABLES = ("reservations", "releases", "charges", "refunds", "shipments", "emails")


def shop(*args: str, cwd: Path | None = None) -> str:
    """``python examples/shop.py ARGS``, as a person runs it."""
    done = subprocess.run([sys.executable, str(SHOP), *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(ledger: Path) -> dict[str, int]:
    """How many rows each effect table of the ledger holds."""
    db = sqlite3.connect(ledger)
    try:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    finally:
        db.close()


def requests(ledger: Path, execution: str) -> dict[str, list[str]]:
    db = sqlite3.connect(ledger)
    try:
        out: dict[str, list[str]] = {}
        for service, action, outcome in db.execute(
                "SELECT service, action, outcome FROM requests WHERE execution = ? ORDER BY seq", (execution,)):
            out.setdefault(f"{service}.{action}", []).append(outcome.split(":")[0])
        return out
    finally:
        db.close()


def kept(engine: Engine, arn: str) -> list[tuple[str, str]]:
    """The operations a redrive started with: those its history copied from the original."""
    events = engine.get_history(arn)
    count = events[0]["ExecutionStartedDetails"]["KeptOperations"]
    ops = {op.Id: op for op in engine.service.all_operations(arn)}
    first = list(dict.fromkeys(e["Id"] for e in events[1:] if e.get("Id") in ops))[:count]
    return [(ops[op_id].Name or "", ops[op_id].SubType or "") for op_id in first]


@pytest.fixture
def order(engine: Engine, tmp_path: Path) -> Any:
    """``order(fail)``: the example saga run in-process (time skipped) to its end, on a ledger of its own."""
    handler = load_reference(f"{EXAMPLE}:handler")
    ledger = tmp_path / "shop.db"

    def run(fail: str) -> str:
        arn = engine.start_execution(handler, {"order_id": "R-1", "amount": 42, "ledger": str(ledger), "fail": fail},
                                     name="R-1")
        engine.run_until_complete(arn, skip_time=True)
        return arn

    run.ledger = ledger  # type: ignore[attr-defined]
    return run


def test_the_engine_knows_the_sagas_subtypes() -> None:
    assert (redrive.COMPENSATION_SUBTYPE, redrive.SAGA_SUBTYPE) == (sagas.COMPENSATION_SUBTYPE, sagas.SAGA_SUBTYPE)


def test_a_rolled_back_order_redriven_after_the_carrier_is_repaired_ships(engine: Engine, order: Any) -> None:
    original = order("shipment-always")
    ledger: Path = order.ledger
    failed = engine.get_execution(original)
    assert json.loads(failed["Error"]["ErrorData"])["outcome"] == "rolled_back"
    before = engine.get_history(original)
    assert rows(ledger) == {"reservations": 1, "releases": 1, "charges": 1, "refunds": 1, "shipments": 0, "emails": 0}
    assert "shipment repaired" in shop("--ledger", str(ledger), "repair", "shipment")

    arn = engine.redrive(original)
    execution = engine.run_until_complete(arn, skip_time=True)
    assert execution["Status"] == "SUCCEEDED", execution.get("Error")
    assert execution["RedriveOf"] == original and execution["DurableExecutionName"] == "R-1-redrive-1"
    # reserve and charge were compensated, so not kept: the saga runs again from its start, same input
    assert kept(engine, arn) == []
    result = json.loads(execution["Result"])
    assert (result["reservation"], result["charge"], result["shipment"]) == ("res-2", "ch-2", "shp-1")
    # one new reservation and charge, each once although the gateway timed out; nothing undone twice
    assert requests(ledger, arn) == {"warehouse.reserve": ["ok"], "payments.charge": ["failed", "repeat"],
                                     "carrier.ship": ["ok"], "mailer.send": ["ok"]}
    assert rows(ledger) == {"reservations": 2, "releases": 1, "charges": 2, "refunds": 1, "shipments": 1, "emails": 1}
    assert engine.get_history(original) == before


def test_an_order_that_failed_after_the_pivot_keeps_its_shipment_when_redriven(engine: Engine, order: Any) -> None:
    original = order("confirmation-always")
    ledger: Path = order.ledger
    assert json.loads(engine.get_execution(original)["Error"]["ErrorData"])["outcome"] == "forward_recovery_failed"
    shop("--ledger", str(ledger), "repair", "confirmation")

    arn = engine.redrive(original)
    execution = engine.run_until_complete(arn, skip_time=True)
    assert execution["Status"] == "SUCCEEDED", execution.get("Error")
    assert kept(engine, arn) == [("order", "Saga"), ("reserve_inventory", "Step"), ("charge_payment", "Step"),
                                 ("create_shipment", "Step")]
    assert json.loads(execution["Result"])["shipment"] == "shp-1"
    assert requests(ledger, arn) == {"mailer.send": ["ok"]}  # the only step that ran
    assert rows(ledger) == {"reservations": 1, "releases": 0, "charges": 1, "refunds": 0, "shipments": 1, "emails": 1}


def test_as_a_person_does_it_run_repair_redrive(tmp_path: Path) -> None:
    """The commands word for word, in a fresh working directory (the ledger lands next to the database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURABLY_", "SHOP_"))}

    def durably(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "durably", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    order = json.dumps({"order_id": "A-9", "amount": 42, "fail": "shipment-always"})
    failed = durably("run", f"{EXAMPLE}:handler", "--input", order, "--name", "order-A-9", "--quiet")
    assert failed.returncode == 1 and "SagaRolledBack" in failed.stdout, failed.stderr
    shop("repair", "shipment", "--order", "A-9", cwd=tmp_path)
    done = durably("redrive", "order-A-9", "--wait", "--quiet")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Status: SUCCEEDED" in done.stdout
    summary = shop(cwd=tmp_path)
    assert "reserved res-1  released rel-1  charged ch-1  refunded rf-1" in summary
    assert "reserved res-2  charged ch-2  shipped shp-1  emailed em-1" in summary
