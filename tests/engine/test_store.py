"""The store's commits: which ones wait for the disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from durably.core import DurableContext, Engine, durable_execution


@durable_execution
def one_step(event: Any, ctx: DurableContext) -> int:
    return ctx.step(lambda _: 1, name="one")


def test_only_the_claim_skips_the_fsync(tmp_path: Path) -> None:
    """A claim that an OS crash loses leaves the execution ready again, so its commit does not
    wait for the disk; every checkpoint and the invocation's end do, and FULL is restored after."""
    engine = Engine(tmp_path / "d.db", synchronous="FULL")
    try:
        arn = engine.start_execution(one_step, {})
        statements: list[str] = []
        engine.store._conn.set_trace_callback(statements.append)
        assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
        engine.store._conn.set_trace_callback(None)
        relaxed = [i for i, sql in enumerate(statements) if sql == "PRAGMA synchronous = NORMAL"]
        assert len(relaxed) == 1
        claim = statements[relaxed[0]:statements.index("PRAGMA synchronous = FULL", relaxed[0]) + 1]
        assert any(sql.startswith("UPDATE executions SET lease_owner = ") for sql in claim)
        assert sum(sql == "COMMIT" for sql in claim) == 1
        assert sum(sql == "COMMIT" for sql in statements) >= 3  # claim, checkpoint, invocation end
        assert engine.store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        engine.close()
        engine.store.close()


def test_off_and_normal_are_left_alone(tmp_path: Path) -> None:
    for level in ("OFF", "NORMAL"):
        engine = Engine(tmp_path / f"{level}.db", synchronous=level)
        try:
            arn = engine.start_execution(one_step, {})
            statements: list[str] = []
            engine.store._conn.set_trace_callback(statements.append)
            assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
            assert not [sql for sql in statements if sql.startswith("PRAGMA synchronous")]
        finally:
            engine.close()
            engine.store.close()
