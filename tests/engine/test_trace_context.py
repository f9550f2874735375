"""The trace context an execution starts with reaches every invocation: a caller's W3C traceparent
(checked at start), and the header a chained invoke passes on to the execution it starts. The
store migrates a schema-2 database to hold it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from durably.core import (
    DurableContext,
    DurableInstrumentationPlugin,
    Engine,
    InvocationStartInfo,
    PropagationInput,
    PropagationMetadata,
    durable_execution,
)
from durably.core.engine.errors import InvalidParameterValueException
from durably.core.engine.stores.sqlite import SCHEMA_VERSION
from durably.core.engine.stores.sqlite import SQLiteStore as Store
from durably.testing import DurableTestRunner

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Seen(DurableInstrumentationPlugin):
    def __init__(self, header: str | None = None) -> None:
        self.headers: list[str | None] = []
        self.asked: list[PropagationInput] = []
        self.header = header

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.headers.append(info.trace_header)

    def provide_propagation_metadata(self, info: PropagationInput) -> PropagationMetadata:
        self.asked.append(info)
        return PropagationMetadata(self.header)


def test_a_traceparent_given_at_start_reaches_every_invocation(tmp_path: Path) -> None:
    seen = Seen()

    @durable_execution(plugins=[seen])
    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.wait_for_callback(lambda callback_id, _: None, name="approve")
        return "done"

    with DurableTestRunner(handler) as runner:
        arn = runner.engine.start_execution(handler, {}, trace_context=TRACEPARENT)
        assert runner.resume(arn).status == "RUNNING"
        runner.send_callback_success(runner.callback_id(arn, "approve"), '"ok"')
        assert runner.resume(arn).status == "SUCCEEDED"
    assert seen.headers == [TRACEPARENT, TRACEPARENT]


@pytest.mark.parametrize("bad", ["", "00-abc", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                                 "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
                                 "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", TRACEPARENT + "x"])
def test_a_malformed_traceparent_is_refused_at_start(engine: Engine, bad: str) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> None:
        return None

    with pytest.raises(InvalidParameterValueException, match="not a W3C traceparent"):
        engine.start_execution(handler, {}, trace_context=bad)
    assert engine.list_executions()["DurableExecutions"] == []


def test_a_chained_invoke_passes_the_plugins_header_to_the_execution_it_starts(tmp_path: Path) -> None:
    parent_seen, child_seen = Seen("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"), Seen()

    @durable_execution(plugins=[child_seen])
    def child(event: Any, ctx: DurableContext) -> str:
        return "stocked"

    @durable_execution(plugins=[parent_seen])
    def parent(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("stock", {"sku": 1}, name="restock")

    with DurableTestRunner(parent) as runner:
        runner.register_durable_function("stock", child)
        result = runner.run()
    assert result.status == "SUCCEEDED" and result.value == "stocked"
    (asked,) = parent_seen.asked
    assert asked.target_function_name == "stock" and asked.operation_id == result.get_invoke("restock").Id
    assert child_seen.headers == [parent_seen.header]


@pytest.mark.sqlite_only
def test_a_schema_2_database_is_migrated(tmp_path: Path, as_schema_6: Callable[[Path], None]) -> None:
    db = tmp_path / "old.db"
    Store(db).close()
    as_schema_6(db)
    with sqlite3.connect(db) as conn:  # what durably 0.1 with schema 2 wrote
        conn.execute("ALTER TABLE executions DROP COLUMN trace_header")
        conn.execute("ALTER TABLE executions DROP COLUMN code_sha256")  # schema 6's
        conn.execute("DROP INDEX executions_redrive")  # schema 5's
        conn.execute("ALTER TABLE executions DROP COLUMN redrive_of")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Engine(db) as engine:
        @durable_execution
        def handler(event: Any, ctx: DurableContext) -> str:
            return "ok"

        arn = engine.start_execution(handler, {}, trace_context=TRACEPARENT)
        assert engine.run_until_complete(arn)["Status"] == "SUCCEEDED"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
