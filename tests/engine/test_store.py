"""The store: which commits wait for the disk, and read-only opening."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from durably.core import DurableContext, Engine, durable_execution
from durably.core.engine.errors import NotADurablyDatabase
from durably.core.engine.service import Service
from durably.core.engine.stores.base import JournalRow
from durably.core.engine.stores.sql_tx import SQLTx
from durably.core.engine.stores.sqlite import SQLiteStore as Store


@durable_execution
def one_step(event: Any, ctx: DurableContext) -> int:
    return ctx.step(lambda _: 1, name="one")


@pytest.mark.sqlite_only
def test_only_the_claim_skips_the_fsync(tmp_path: Path) -> None:
    """A claim that an OS crash loses leaves the execution ready again, so its commit does not
    wait for the disk; every checkpoint and the invocation's end do, and FULL is restored after."""
    engine = Engine(tmp_path / "d.db", synchronous="FULL")
    try:
        arn = engine.start_execution(one_step, {})
        statements: list[str] = []
        sqlite_store(engine)._conn.set_trace_callback(statements.append)
        assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
        sqlite_store(engine)._conn.set_trace_callback(None)
        relaxed = [i for i, sql in enumerate(statements) if sql == "PRAGMA synchronous = NORMAL"]
        assert len(relaxed) == 1
        claim = statements[relaxed[0]:statements.index("PRAGMA synchronous = FULL", relaxed[0]) + 1]
        assert any(sql.startswith("UPDATE executions SET lease_owner = ") for sql in claim)
        assert sum(sql == "COMMIT" for sql in claim) == 1
        assert sum(sql == "COMMIT" for sql in statements) >= 3  # claim, checkpoint, invocation end
        assert sqlite_store(engine)._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        engine.close()
        engine.store.close()


@durable_execution
def counted_steps(event: Any, ctx: DurableContext) -> int:
    return sum(ctx.step(lambda _: 1, name=f"step {i}") for i in range(event["n"]))


@pytest.mark.sqlite_only
def test_checkpoints_do_not_read_the_execution_input(tmp_path: Path) -> None:
    """The input is read by the claim (the handler gets it), not by each checkpoint or the
    invocation's end: a large input does not make every step copy it."""
    reads = []
    for n in (2, 12):
        engine = Engine(tmp_path / f"{n}.db", synchronous="OFF")
        try:
            arn = engine.start_execution(counted_steps, {"n": n, "pad": "x" * 100_000})
            statements: list[str] = []
            sqlite_store(engine)._conn.set_trace_callback(statements.append)
            assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
            sqlite_store(engine)._conn.set_trace_callback(None)
            assert sum(sql.startswith("INSERT INTO journal") for sql in statements) > n
            reads.append(sum(sql.startswith("SELECT") and ", input," in sql for sql in statements))
            execution = next(op for op in engine.service.all_operations(arn) if op.Type == "EXECUTION")
            assert execution.Status == "SUCCEEDED" and execution.ExecutionDetails is not None
            assert json.loads(execution.ExecutionDetails.InputPayload or "")["n"] == n  # kept by the end
        finally:
            engine.close()
            engine.store.close()
    assert reads == [1, 1]  # the claim's, however many checkpoints


@pytest.mark.sqlite_only
def test_off_and_normal_are_left_alone(tmp_path: Path) -> None:
    for level in ("OFF", "NORMAL"):
        engine = Engine(tmp_path / f"{level}.db", synchronous=level)
        try:
            arn = engine.start_execution(one_step, {})
            statements: list[str] = []
            sqlite_store(engine)._conn.set_trace_callback(statements.append)
            assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
            assert not [sql for sql in statements if sql.startswith("PRAGMA synchronous")]
        finally:
            engine.close()
            engine.store.close()


@pytest.mark.sqlite_only
def test_readonly_reads_and_changes_nothing(tmp_path: Path) -> None:
    """A read-only store reads the executions; it creates no schema, switches no journal mode, writes nothing."""
    engine = Engine(tmp_path / "d.db", synchronous="OFF")
    try:
        arn = engine.start_execution(one_step, {})
        assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
    finally:
        engine.close()
        engine.store.close()
    before = (tmp_path / "d.db").read_bytes()
    store = Store(tmp_path / "d.db", readonly=True)
    try:
        assert Service(store).get_execution(arn)["Status"] == "SUCCEEDED"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.transact(lambda tx: tx.delete_executions([1]))
        assert store.read(lambda tx: tx.execution(arn)) is not None
    finally:
        store.close()
    assert (tmp_path / "d.db").read_bytes() == before


def test_readonly_refuses_what_is_not_a_durably_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no database at"):
        Store(tmp_path / "missing.db", readonly=True)
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(NotADurablyDatabase, match="is empty"):
        Store(tmp_path / "empty.db", readonly=True)
    foreign = sqlite3.connect(tmp_path / "app.db")
    foreign.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY)")
    foreign.commit()
    foreign.close()
    with pytest.raises(NotADurablyDatabase, match="customers"):
        Store(tmp_path / "app.db", readonly=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "empty.db"]
    assert (tmp_path / "empty.db").read_bytes() == b""
    foreign = sqlite3.connect(tmp_path / "app.db")
    assert foreign.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    foreign.close()


def sqlite_store(engine: Engine) -> Store:
    assert isinstance(engine.store, Store)
    return engine.store


def _run_to_end(engine: Engine, handler: Any, event: Any) -> tuple[str, int, list[JournalRow]]:
    """Run an execution to success: its ARN, its key and its journal."""
    arn = engine.start_execution(handler, event)
    assert engine.run_until_complete(arn, timeout=120)["Status"] == "SUCCEEDED"
    row = engine.store.read(lambda tx: tx.execution(arn))
    assert row is not None
    return arn, row.key, engine.store.read(lambda tx: tx.journal(row.key))


def test_the_journal_tail_is_the_last_rows_position_without_its_documents(tmp_path: Path) -> None:
    """A checkpoint reads the journal's tail to check its token and number its row; a large result
    in that row is not read again (on both stores)."""
    engine = Engine(tmp_path / "tail.db", synchronous="OFF")
    try:
        _arn, key, rows = _run_to_end(engine, counted_steps, {"n": 3})
        tail = engine.store.read(lambda tx: tx.journal_tail(key))
        assert tail is not None and rows[-1].ops
        assert (tail.seq, tail.last_event, tail.writer) == (rows[-1].seq, rows[-1].last_event, rows[-1].writer)
        assert (tail.ops, tail.events) == ("", "")
        assert engine.store.read(lambda tx: tx.journal_tail(key + 1000)) is None
    finally:
        engine.close()
        engine.store.close()


@pytest.mark.sqlite_only
def test_concurrent_transactions_share_one_commit_and_a_failure_undoes_only_its_own(tmp_path: Path) -> None:
    """Group commit: callers that queue while the connection is busy are committed together, each
    under a savepoint, so one that fails is rolled back alone and only its caller sees the error."""
    store = Store(tmp_path / "g.db", "OFF")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    busy, release = threading.Event(), threading.Event()

    def first(tx: Any) -> None:
        busy.set()
        release.wait(10)

    def insert(key: str, fail: bool = False) -> Callable[[Any], str]:
        def fn(tx: Any) -> str:
            tx.sql("INSERT INTO meta VALUES (?, 'x')", (key,))
            if fail:
                raise ValueError(f"{key} refused")
            return key
        return fn

    outcomes: dict[str, object] = {}

    def call(key: str, fail: bool = False) -> None:
        try:
            outcomes[key] = store.transact(insert(key, fail))
        except ValueError as exc:
            outcomes[key] = exc

    try:
        holder = threading.Thread(target=store.transact, args=(first,))
        holder.start()
        assert busy.wait(10)
        callers = [threading.Thread(target=call, args=(key, key == "c")) for key in ("b", "c", "d")]
        for thread in callers:
            thread.start()
        deadline = time.monotonic() + 10
        while len(store._queue) < 3:
            assert time.monotonic() < deadline, "the callers did not queue"
            time.sleep(0.001)
        statements.clear()
        release.set()
        for thread in (holder, *callers):
            thread.join(10)
        assert outcomes["b"] == "b" and outcomes["d"] == "d"
        assert isinstance(outcomes["c"], ValueError) and str(outcomes["c"]) == "c refused"
        assert statements.count("COMMIT") == 2  # the holder's, then one for the three queued callers
        assert statements.count("ROLLBACK TO req") == 1
        kept = store.read(lambda tx: [k for k, in cast(SQLTx, tx).sql("SELECT key FROM meta WHERE value = 'x'"
                                                                    " ORDER BY key")])
        assert kept == ["b", "d"]
    finally:
        store._conn.set_trace_callback(None)
        store.close()


@durable_execution
def map_of_steps(event: Any, ctx: DurableContext) -> int:
    result = ctx.map(list(range(event["n"])), lambda c, item, _i, _all: c.step(lambda _: item, name="item"))
    result.throw_if_error()
    return len(result.all)


def test_a_maps_items_are_checkpointed_in_batches(tmp_path: Path) -> None:
    """Each item writes two checkpoints of its own (its step's end, its context's end); items running
    at once share them, so the journal grows by far fewer rows than that (on both stores)."""
    engine = Engine(tmp_path / "map.db", synchronous="OFF")
    try:
        arn, _key, rows = _run_to_end(engine, map_of_steps, {"n": 200})
        ops = engine.service.all_operations(arn)
        assert sum(op.SubType == "MapIteration" for op in ops) == 200
        assert len(rows) < 200, len(rows)  # alone, the items would write at least 400
    finally:
        engine.close()
        engine.store.close()
