"""The engine's workers never leave an execution stuck: unrecordable ends, scheduler errors, racing takeovers."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from durably.core import DurableContext, durable_execution
from durably.core.engine.backoff import RepeatedErrors, capped_delay
from durably.core.engine.engine import Engine
from durably.core.engine.service import Claim


@durable_execution
def two_steps(event: Any, ctx: DurableContext) -> Any:
    return [ctx.step(lambda _: 1, name="one"), ctx.step(lambda _: 2, name="two")]


def test_an_invocation_whose_end_cannot_be_recorded_is_taken_over_by_its_own_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(tmp_path / "e.db", synchronous="OFF", lease_seconds=1)
    real = engine.service.complete_invocation
    failures = {"left": 3}  # every try of the first invocation's end fails (the engine tries three times)

    def failing(claim: Claim, *args: Any, **kwargs: Any) -> bool:
        if failures["left"] > 0 and claim.token:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real(claim, *args, **kwargs)

    monkeypatch.setattr(engine.service, "complete_invocation", failing)
    arn = engine.start_execution(two_steps, None)
    engine.start()
    try:
        done = engine.wait_for(arn, timeout=20)
    finally:
        engine.close()
    assert done["Status"] == "SUCCEEDED", done
    crashed = [e["InvocationCompletedDetails"]["Error"]["Payload"] for e in engine.get_history(arn)
               if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]]
    assert [c["ErrorType"] for c in crashed] == ["Runtime.ExitError"]
    assert "could not record the end of its invocation" in crashed[0]["ErrorMessage"]


def test_the_scheduler_backs_off_and_logs_a_failing_database_at_a_bounded_rate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(tmp_path / "e.db", synchronous="OFF")
    calls = {"n": 0}

    def broken(*_: Any) -> int:
        calls["n"] += 1
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(engine.service, "fire_due_timers", broken)
    with caplog.at_level(logging.DEBUG, logger="durably.engine"):
        engine.start()
        time.sleep(1.5)  # at the 50 ms poll, thirty tries and thirty tracebacks
        engine.close()
    scheduler = [r for r in caplog.records if "scheduler" in r.getMessage()]
    assert 1 <= len(scheduler) <= 2, [r.getMessage() for r in scheduler]
    assert scheduler[0].exc_info is not None
    assert calls["n"] <= 8, f"{calls['n']} tries in 1.5 s: no backoff"


def test_repeated_errors_log_first_then_at_most_once_per_period_then_recovery() -> None:
    now = {"t": 0.0}
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("tests.repeated_errors")
    logger.addHandler(Capture())
    logger.propagate = False
    errors = RepeatedErrors(logger, "the loop", first=0.05, cap=5.0, log_every=60.0, clock=lambda: now["t"])
    delays = []
    for _ in range(10):
        delays.append(errors.failed(OSError("gone")))
        now["t"] += 10
    assert delays == [capped_delay(n, 0.05, 5.0) for n in range(1, 11)]
    assert delays[-1] == 5.0 and delays[0] == 0.05
    errors.succeeded()
    assert records == ["the loop failed: OSError: gone; retrying with backoff",
                       "the loop still failing (7 errors in a row): OSError: gone",
                       "the loop recovered after 10 errors in a row"]


def test_a_takeover_rechecks_the_lease_in_its_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The owner renews its lease between the takeover's read and its write: nothing is taken over."""
    owner = Engine(tmp_path / "e.db", synchronous="OFF")
    other = Engine(tmp_path / "e.db", synchronous="OFF")
    arn = owner.start_execution(two_steps, None)
    claim = owner.service.claim(owner.lease_ms, arn=arn)
    assert claim is not None
    row = owner.store.read(lambda tx: tx.execution(arn))
    assert row is not None
    key = row.key
    owner.store.transact(lambda tx: tx.update_execution(key, lease_expiry=1))

    real = other.service.complete_invocation

    def renew_then_complete(*args: Any, **kwargs: Any) -> bool:
        owner.service.renew_leases([arn], owner.lease_ms)  # the live owner, just before the write
        return real(*args, **kwargs)

    monkeypatch.setattr(other.service, "complete_invocation", renew_then_complete)
    assert other.service.take_over_dead() == []
    row = owner.store.read(lambda tx: tx.execution(arn))
    assert row is not None and row.lease_owner == owner.service.owner, "a live worker's invocation was taken over"
    assert claim.token.startswith(f"{row.token}.")


@pytest.mark.sqlite_only
def test_a_deleted_database_file_is_reported_not_written_to_silently(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "e.db"
    engine = Engine(path, synchronous="OFF")
    with caplog.at_level(logging.ERROR, logger="durably.engine"):
        engine.start()
        time.sleep(0.3)  # the scheduler is at work on the file
        for leftover in tmp_path.glob("e.db*"):
            leftover.unlink()
        time.sleep(1.0)
        engine.close()
    scheduler = [r.getMessage() for r in caplog.records if "scheduler" in r.getMessage()]
    assert len(scheduler) == 1, scheduler
    assert f"the database file {path} was deleted" in scheduler[0]
