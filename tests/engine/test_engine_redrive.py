"""Redrive: which operations a new execution keeps from a failed one, and the engine running it on.

First the selection alone, over histories written out by hand (the failure point, contexts
re-created STARTED, an operation still open, compensated saga steps, ``from_operation``). Then
the engine: real handlers that fail, are "fixed" (a module-level switch their code reads), and
are redriven; step bodies are counted to show that kept steps replay without running.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from durably import DurableContext, Duration, StepContext, durable_execution
from durably.core.engine import redrive
from durably.core.engine.engine import Engine
from durably.core.engine.errors import (
    DurableExecutionAlreadyStartedException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from durably.core.engine.service import Service
from durably.core.engine.stores.sqlite import SCHEMA_VERSION
from durably.core.engine.stores.sqlite import SQLiteStore as Store
from durably.core.model import ContextDetails, Operation, StepDetails


# ---------------------------------------------------------------------------- histories by hand
class History:
    """An execution's operations and events, written in the order things happened."""

    def __init__(self) -> None:
        self.ops: dict[str, Operation] = {}
        self.events: list[dict[str, Any]] = []
        self.start("exec", "EXECUTION", "orig")

    def _event(self, op_id: str, kind: str) -> None:
        self.events.append({"EventId": len(self.events) + 1, "EventType": kind, "Id": op_id, "EventTimestamp": 1000})

    def start(self, op_id: str, op_type: str = "STEP", name: str | None = None, parent: str | None = None,
              sub_type: str | None = None) -> History:
        self.ops[op_id] = Operation.model_validate({
            "Id": op_id, "Type": op_type, "Name": name or op_id, "ParentId": parent, "SubType": sub_type,
            "Status": "STARTED", "StartTimestamp": 1000})
        self._event(op_id, "Started")
        return self

    def end(self, op_id: str, status: str = "SUCCEEDED", result: str | None = None) -> History:
        op = self.ops[op_id]
        op.Status, op.EndTimestamp = status, 1000  # type: ignore[assignment]
        if op.Type == "STEP":
            op.StepDetails = StepDetails(Attempt=1, Result=result)
        elif op.Type == "CONTEXT":
            op.ContextDetails = ContextDetails(Result=result)
        self._event(op_id, status)
        return self

    def step(self, op_id: str, parent: str | None = None, status: str = "SUCCEEDED", **kw: Any) -> History:
        return self.start(op_id, parent=parent, **kw).end(op_id, status, result=f'"{op_id}"')

    def select(self, from_operation: str | None = None) -> redrive.Selection:
        return redrive.select(list(self.ops.values()), self.events, from_operation)


def kept(selection: redrive.Selection) -> dict[str, str]:
    return {op.Name or "": op.Status for op in selection.operations}


def test_the_failure_point_is_the_start_of_the_first_failed_operation() -> None:
    """What SUCCEEDED before it is kept; the failed step and all after it (even a success past a
    failure the code caught) run again."""
    h = History().step("a").step("b", status="FAILED").step("c").end("exec", "FAILED")
    assert kept(h.select()) == {"a": "SUCCEEDED"}


def test_positions_in_the_history_decide_not_timestamps() -> None:
    """Everything here happened in the same millisecond; the history's order still tells that ``a``
    ended before ``b`` started, and that ``c`` started after ``b`` while ``b`` was running."""
    h = History().start("a").end("a").start("b").step("c", parent=None).end("b", "FAILED").end("exec", "FAILED")
    assert kept(h.select()) == {"a": "SUCCEEDED"}


def test_a_context_open_at_the_failure_is_re_created_started_and_a_finished_one_kept() -> None:
    h = (History().start("done", "CONTEXT").step("d1", parent="done").end("done", result='"r"')
         .start("group", "CONTEXT").step("g1", parent="group").step("g2", parent="group", status="FAILED")
         .end("group", "FAILED").end("exec", "FAILED"))
    selection = h.select()
    assert kept(selection) == {"done": "SUCCEEDED", "d1": "SUCCEEDED", "group": "STARTED", "g1": "SUCCEEDED"}
    group = next(op for op in selection.operations if op.Name == "group")
    assert group.EndTimestamp is None and group.ContextDetails is None and group.StartTimestamp == 1000
    assert next(op for op in selection.operations if op.Name == "done").ContextDetails == ContextDetails(Result='"r"')
    assert selection.restarted == {"group"}
    assert h.ops["group"].Status == "FAILED"  # the original's record is not touched


def test_a_context_whose_own_code_raised_fails_at_its_end() -> None:
    """No operation failed: the context's code raised after its steps, which are kept."""
    h = (History().start("group", "CONTEXT").step("g1", parent="group").end("group", "FAILED")
         .step("after").end("exec", "FAILED"))
    assert kept(h.select()) == {"group": "STARTED", "g1": "SUCCEEDED"}


def test_a_stopped_execution_keeps_what_ended_before_the_stop_but_nothing_still_running() -> None:
    h = History().step("a").start("slow").end("exec", "STOPPED")
    assert kept(h.select()) == {"a": "SUCCEEDED"}


def test_what_a_context_started_after_an_open_callback_is_not_kept() -> None:
    """wait_for_callback's shape: the callback, then the step that sends its id. With the callback
    open at the stop, that step must run again, to send the new callback's id."""
    h = (History().step("a").start("approval", "CONTEXT", sub_type="WaitForCallback")
         .start("cb", "CALLBACK", parent="approval").step("submitter", parent="approval")
         .start("branch", "CONTEXT").step("b1", parent="branch").end("exec", "STOPPED"))
    assert kept(h.select()) == {"a": "SUCCEEDED", "branch": "STARTED", "b1": "SUCCEEDED"}


def saga_history(compensated_in: str = "order") -> History:
    """A saga: reserve, note (nothing to undo), charge, then ship fails and the rollback undoes
    charge and reserve. ``compensated_in``: the saga whose rollback ran the compensations."""
    h = History().start("order", "CONTEXT", sub_type="Saga").start("other", "CONTEXT", sub_type="Saga")
    h.step("other-reserve", parent="other", name="reserve").end("other")
    for op in ("reserve", "note", "charge"):
        h.step(op, parent="order")
    h.step("ship", parent="order", status="FAILED")
    h.start("rollback", "CONTEXT", parent=compensated_in, sub_type="SagaRollback")
    for op in ("charge", "reserve"):
        h.step(f"undo-{op}", parent="rollback", name=op, sub_type="Compensation")
    return h.end("rollback").end("order", "FAILED").end("exec", "FAILED")


def test_compensated_saga_steps_are_not_kept_the_others_are() -> None:
    selection = saga_history().select()
    names = [(op.Id, op.Status) for op in selection.operations]
    # reserve and charge were undone: run again; note was not; the other saga's reserve is not this saga's
    assert names == [("order", "STARTED"), ("other", "SUCCEEDED"), ("other-reserve", "SUCCEEDED"),
                     ("note", "SUCCEEDED")]


def test_a_compensation_undoes_only_steps_of_the_saga_it_rolled_back() -> None:
    """Here the rollback (with its compensations of "charge" and "reserve") belongs to saga "other":
    order's steps of those names are kept, other's "reserve" is not (nor is other, left empty)."""
    selection = saga_history(compensated_in="other").select()
    assert [(op.Id, op.Status) for op in selection.operations] == [
        ("order", "STARTED"), ("reserve", "SUCCEEDED"), ("note", "SUCCEEDED"), ("charge", "SUCCEEDED")]


def test_a_compensated_step_in_a_finished_branch_re_opens_the_branch() -> None:
    """A saga's parallel group: the branch context SUCCEEDED, but its step was undone, so the branch
    is re-created STARTED (kept SUCCEEDED, it would return its result without running the step)."""
    h = (History().start("order", "CONTEXT", sub_type="Saga").start("group", "CONTEXT", parent="order")
         .start("b1", "CONTEXT", parent="group").step("reserve", parent="b1").end("b1")
         .start("b2", "CONTEXT", parent="group").step("hold", parent="b2").step("keep", parent="b2").end("b2")
         .end("group").step("ship", parent="order", status="FAILED")
         .start("rollback", "CONTEXT", parent="order", sub_type="SagaRollback")
         .step("undo-hold", parent="rollback", name="hold", sub_type="Compensation"))
    selection = h.end("rollback").end("order", "FAILED").end("exec", "FAILED").select()
    assert kept(selection) == {"order": "STARTED", "group": "STARTED", "b1": "SUCCEEDED", "reserve": "SUCCEEDED",
                               "b2": "STARTED", "keep": "SUCCEEDED"}


def test_from_an_operation_keeps_what_ended_before_its_first_start() -> None:
    h = History().step("a").step("b").step("b").step("c").end("exec", "FAILED")
    assert kept(h.select(from_operation="b")) == {"a": "SUCCEEDED"}
    assert kept(h.select(from_operation="c")) == {"a": "SUCCEEDED", "b": "SUCCEEDED"}
    with pytest.raises(InvalidParameterValueException, match="no operation is named 'd'; the execution's "
                                                             "operations are named 'a', 'b', 'c'"):
        h.select(from_operation="d")
    with pytest.raises(InvalidParameterValueException, match="has no named operations"):
        History().end("exec", "FAILED").select(from_operation="orig")  # the execution itself is no operation


def test_the_events_copied_are_a_kept_operations_all_and_a_re_created_contexts_start() -> None:
    h = (History().step("a").start("group", "CONTEXT").step("g1", parent="group")
         .step("g2", parent="group", status="FAILED").end("group", "FAILED").end("exec", "FAILED"))
    copied = h.select().events(h.events)
    assert [(e["Id"], e["EventType"]) for e in copied] == [
        ("a", "Started"), ("a", "SUCCEEDED"), ("group", "Started"), ("g1", "Started"), ("g1", "SUCCEEDED")]


def test_default_names_count_the_redrives_and_skip_names_taken() -> None:
    assert redrive.default_name("order", 0, lambda _: False) == "order-redrive-1"
    assert redrive.default_name("order", 1, {"order-redrive-2"}.__contains__) == "order-redrive-3"
    assert len(redrive.default_name("x" * 64, 0, lambda _: False)) == 64


# ---------------------------------------------------------------------------- the engine
RUNS: Counter[str] = Counter()
FIXED = {"charge": False, "ship": False}


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    RUNS.clear()
    FIXED.update(charge=False, ship=False)
    yield


def body(name: str, fails: str | None = None) -> Callable[[StepContext], str]:
    def run(step: StepContext) -> str:
        RUNS[name] += 1
        if fails is not None and not FIXED[fails]:
            raise RuntimeError(f"{fails} is broken")
        return f"{name} done"
    return run


@durable_execution
def order(event: Any, ctx: DurableContext) -> list[str]:
    reserved = ctx.step(body("reserve"), name="reserve")
    with ctx.in_child_context("payment") as pay:
        quote = pay.step(body("quote"), name="quote")
        charged = pay.step(body("charge", fails="charge"), name="charge")
    shipped = ctx.step(body("ship", fails="ship"), name="ship")
    return [reserved, quote, charged, shipped, event["order"]]


def failed(engine: Engine, handler: Any = order, name: str = "o-1") -> str:
    arn = engine.start_execution(handler, {"order": name}, name=name)
    assert engine.run_until_complete(arn, skip_time=True)["Status"] == "FAILED"
    return arn


def test_a_redrive_replays_the_kept_steps_and_runs_the_rest_on_the_fixed_code(engine: Engine) -> None:
    original = failed(engine)
    before = (engine.get_history(original), engine.service.all_operations(original))
    assert RUNS["reserve"] == RUNS["quote"] == 1 and RUNS["ship"] == 0
    FIXED.update(charge=True, ship=True)
    RUNS.clear()
    arn = engine.redrive(original)
    execution = engine.run_until_complete(arn, skip_time=True)
    assert execution["Status"] == "SUCCEEDED"
    assert execution["Result"] == '["reserve done","quote done","charge done","ship done","o-1"]'  # the same input
    assert RUNS == {"charge": 1, "ship": 1}  # reserve and quote replayed, not run
    assert execution["RedriveOf"] == original and execution["DurableExecutionName"] == "o-1-redrive-1"
    assert (engine.get_history(original), engine.service.all_operations(original)) == before
    assert "RedriveOf" not in engine.get_execution(original)
    events = engine.get_history(arn)
    assert events[0]["EventType"] == "ExecutionStarted"
    assert events[0]["ExecutionStartedDetails"]["RedriveOf"] == original
    assert events[0]["ExecutionStartedDetails"]["KeptOperations"] == 3  # reserve, payment (STARTED), quote
    def copied(e: dict[str, Any]) -> tuple[Any, ...]:
        return e["Id"], e["Name"], e["EventType"], e["EventTimestamp"]  # as they were: the timeline shows them so

    assert [copied(e) for e in events[1:6]] == [copied(e) for e in before[0][1:6]]
    assert [e["Name"] for e in events[1:6]] == ["reserve", "reserve", "payment", "quote", "quote"]
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))


def test_names_count_redrives_of_each_original_and_can_be_chosen(engine: Engine) -> None:
    original = failed(engine)
    first = engine.redrive(original)
    assert engine.run_until_complete(first, skip_time=True)["Status"] == "FAILED"  # not fixed yet
    second = engine.redrive(original)
    of_first = engine.redrive(first, name="retry-by-hand")
    names = [engine.get_execution(a)["DurableExecutionName"] for a in (first, second, of_first)]
    assert names == ["o-1-redrive-1", "o-1-redrive-2", "retry-by-hand"]
    assert engine.get_execution(of_first)["RedriveOf"] == first
    with pytest.raises(DurableExecutionAlreadyStartedException, match="'retry-by-hand' of order already exists"):
        engine.redrive(original, name="retry-by-hand")
    with pytest.raises(InvalidParameterValueException, match="must match"):
        engine.redrive(original, name="no spaces")


def test_from_an_operation_runs_it_and_what_follows_again(engine: Engine) -> None:
    original = failed(engine)
    FIXED.update(charge=True, ship=True)
    RUNS.clear()
    arn = engine.redrive(original, from_operation="quote")
    assert engine.run_until_complete(arn, skip_time=True)["Status"] == "SUCCEEDED"
    assert RUNS == {"quote": 1, "charge": 1, "ship": 1}
    with pytest.raises(InvalidParameterValueException, match="'reserve', 'payment', 'quote', 'charge'"):
        engine.redrive(original, from_operation="refund")


@durable_execution
def approval(event: Any, ctx: DurableContext) -> Any:
    ctx.step(body("prepare"), name="prepare")
    return ctx.wait_for_callback(lambda callback_id, _: RUNS.update([f"sent {callback_id}"]), name="approval")


def test_a_stopped_execution_waiting_on_a_callback_sends_a_new_one(engine: Engine) -> None:
    arn = engine.start_execution(approval, {})
    assert engine.run_until_complete(arn, stop_when_blocked=True)["Status"] == "RUNNING"
    engine.stop_execution(arn)
    arn2 = engine.redrive(arn)
    assert engine.run_until_complete(arn2, stop_when_blocked=True)["Status"] == "RUNNING"
    sent = [key.split()[1] for key in RUNS if key.startswith("sent ")]
    assert len(sent) == 2 and RUNS["prepare"] == 1  # prepare replayed; the new callback's id was sent
    new = next(op for op in engine.service.all_operations(arn2) if op.Type == "CALLBACK")
    assert new.CallbackDetails is not None and new.CallbackDetails.CallbackId == sent[1] != sent[0]
    engine.send_callback_success(sent[1], "yes")
    assert engine.run_until_complete(arn2)["Result"] == '"yes"'


@durable_execution
def child(event: Any, ctx: DurableContext) -> str:
    return ctx.step(body("child"), name="child step")


@durable_execution
def answered_then_broken(event: Any, ctx: DurableContext) -> list[Any]:
    callback = ctx.create_callback(name="answer")
    answer = callback.result()
    invoked = ctx.invoke("child", {}, name="call child")
    return [answer, invoked, ctx.step(body("ship", fails="ship"), name="ship")]


def test_an_answered_callback_and_a_finished_invoke_are_kept(engine: Engine) -> None:
    engine.register_durable_function("child", child)
    arn = engine.start_execution(answered_then_broken, {})
    assert engine.run_until_complete(arn, stop_when_blocked=True)["Status"] == "RUNNING"
    (callback,) = [op for op in engine.service.all_operations(arn) if op.Type == "CALLBACK"]
    callback_id = callback.CallbackDetails.CallbackId if callback.CallbackDetails else None
    assert callback_id is not None
    engine.send_callback_success(callback_id, "approved")
    assert engine.run_until_complete(arn, skip_time=True)["Status"] == "FAILED"
    FIXED["ship"] = True
    RUNS.clear()
    redriven = engine.redrive(arn)
    execution = engine.run_until_complete(redriven, stop_when_blocked=True)
    assert execution["Status"] == "SUCCEEDED"  # not waiting for an answer again
    assert execution["Result"] == '["approved","child done","ship done"]'
    assert RUNS == {"ship": 1}  # the child execution was not invoked again
    kept = {op.Name: op.Status for op in engine.service.all_operations(redriven)
            if op.Type in ("CALLBACK", "CHAINED_INVOKE")}
    assert kept == {"answer": "SUCCEEDED", "call child": "SUCCEEDED"}


WAIT_SECONDS = {"s": 60}


@durable_execution
def slow(event: Any, ctx: DurableContext) -> str:
    ctx.step(body("prepare"), name="prepare")
    ctx.wait(Duration(WAIT_SECONDS["s"]), name="pause")
    return ctx.step(body("finish"), name="finish")


def test_a_timed_out_execution_keeps_what_ended_before_its_timeout(engine: Engine) -> None:
    engine.register_durable_function("slow", slow, execution_timeout=30)
    arn = engine.start_execution("slow", {})
    assert engine.run_until_complete(arn, skip_time=True)["Status"] == "TIMED_OUT"
    WAIT_SECONDS["s"] = 1  # the fix: a shorter pause
    redriven = engine.redrive(arn)
    assert engine.run_until_complete(redriven, skip_time=True)["Status"] == "SUCCEEDED"
    assert RUNS == {"prepare": 1, "finish": 1}


def plain(payload: Any) -> Any:
    raise ValueError("plain failure")


@durable_execution
def calls_plain(event: Any, ctx: DurableContext) -> Any:
    return ctx.invoke("plain", {})


def test_refusals(engine: Engine) -> None:
    FIXED.update(charge=True, ship=True)
    done = engine.start_execution(order, {"order": "x"})
    assert engine.run_until_complete(done, skip_time=True)["Status"] == "SUCCEEDED"
    with pytest.raises(InvalidParameterValueException, match="SUCCEEDED: there is nothing to recover"):
        engine.redrive(done)
    waiting = engine.start_execution(approval, {})
    with pytest.raises(InvalidParameterValueException, match=r"still RUNNING: .* stop it first"):
        engine.redrive(waiting)
    with pytest.raises(ResourceNotFoundException, match="no durable execution"):
        engine.redrive(done + "0")
    engine.register_function("plain", plain)
    parent = engine.start_execution(calls_plain, {})
    assert engine.run_until_complete(parent)["Status"] == "FAILED"
    child = next(e["ChainedInvokeStartedDetails"]["DurableExecutionArn"] for e in engine.get_history(parent)
                 if e["EventType"] == "ChainedInvokeStarted")
    with pytest.raises(InvalidParameterValueException, match="a plain function, not a durable execution"):
        engine.redrive(child)


@pytest.mark.sqlite_only
def test_a_schema_4_database_gains_redrive_of(tmp_path: Path, as_schema_4: Callable[[Path], None]) -> None:
    db = tmp_path / "old.db"
    with Engine(db) as engine:
        arn = engine.start_execution(order, {"order": "x"})
        assert engine.run_until_complete(arn)["Status"] == "FAILED"
    as_schema_4(db)
    store = Store(db, readonly=True)  # read as it is, not migrated
    try:
        assert "RedriveOf" not in Service(store).get_execution(arn)
    finally:
        store.close()
    with Engine(db) as engine:
        assert engine.get_execution(engine.redrive(arn))["RedriveOf"] == arn
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
