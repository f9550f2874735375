"""The embedded engine's service API: identity, reads, history, listing, stop, timeout, retention, callbacks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from durably.core import (
    CallbackConfig,
    CallbackError,
    DurableContext,
    DurableExecutionAlreadyStartedException,
    Duration,
    ErrorObject,
    InvalidParameterValueException,
    ResourceNotFoundException,
    durable_execution,
    records,
)
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.engine.errors import CallbackTimeoutException
from durably.core.engine.stores.sql_tx import SQLTx
from durably.core.model import InvocationOutput, InvocationStatus, OperationUpdate

ARN_RE = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):000000000000:function:(?P<fn>[A-Za-z0-9_-]+):\$LATEST"
    r"/durable-execution/(?P<name>[A-Za-z0-9_-]+)/(?P<id>[A-Za-z0-9_-]+)$"
)


# ---------------------------------------------------------------------------- handlers
@durable_execution
def echo(event: Any, ctx: DurableContext) -> Any:
    return ctx.step(lambda _: event, name="echo")


@durable_execution
def boom(event: Any, ctx: DurableContext) -> Any:
    raise ValueError("boom")


@durable_execution
def journey(event: Any, ctx: DurableContext) -> Any:
    """Three invocations: step + wait, then a callback, then a step after the answer."""
    first = ctx.step(lambda _: 1, name="first")
    ctx.wait(Duration(30), name="pause")
    cb = ctx.create_callback(name="approval")
    answer = cb.result()
    second = ctx.step(lambda _: 2, name="second")
    return {"first": first, "answer": answer, "second": second}


@durable_execution
def blocked(event: Any, ctx: DurableContext) -> Any:
    cb = ctx.create_callback(name="gate")
    return cb.result()


@durable_execution
def long_wait(event: Any, ctx: DurableContext) -> Any:
    ctx.step(lambda _: "before", name="before")
    ctx.wait(Duration(3600), name="long")
    return "done"


@durable_execution
def guarded_callback(event: Any, ctx: DurableContext) -> Any:
    cb = ctx.create_callback(name="guarded", config=CallbackConfig(
        timeout=Duration(event.get("timeout", 0)), heartbeat_timeout=Duration(event.get("heartbeat", 0))))
    try:
        return {"ok": cb.result()}
    except CallbackError as exc:
        return {"error_type": exc.error_type, "message": exc.message, "kind": type(exc).__name__}


# ---------------------------------------------------------------------------- helpers
def drive(engine: Engine, arn: str) -> dict[str, Any]:
    """Run ``arn`` until it ends or waits for something outside (time skipped)."""
    return engine.run_until_complete(arn, timeout=20, skip_time=True, stop_when_blocked=True)


def callback_id(engine: Engine, arn: str, name: str | None = None) -> str:
    for event in reversed(engine.get_history(arn)):
        if event["EventType"] == "CallbackStarted" and (name is None or event.get("Name") == name):
            return str(event["CallbackStartedDetails"]["CallbackId"])
    raise AssertionError(f"no CallbackStarted in {arn}")


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["EventType"] == "ExecutionStarted"
    stamps = [e["EventTimestamp"] for e in events]
    assert stamps == sorted(stamps)
    for e in events:
        details = [k for k in e if k.endswith("Details")]
        assert details == [f"{e['EventType']}Details"], e
        assert isinstance(e[details[0]], dict)


# ---------------------------------------------------------------------------- identity and start
def test_start_is_idempotent_by_name(engine: Engine) -> None:
    arn = engine.start_execution(echo, {"order": 1}, name="order-1")
    again = engine.start_execution(echo, {"order": 1}, name="order-1")
    assert again == arn
    assert len(engine.list_executions()["DurableExecutions"]) == 1
    with pytest.raises(DurableExecutionAlreadyStartedException) as info:
        engine.start_execution(echo, {"order": 2}, name="order-1")
    assert info.value.status == 409
    assert engine.get_execution(arn)["InputPayload"] == json.dumps({"order": 1}, separators=(",", ":"))
    # idempotent also once the execution has finished
    assert drive(engine, arn)["Status"] == "SUCCEEDED"
    assert engine.start_execution(echo, {"order": 1}, name="order-1") == arn
    assert len(engine.list_executions()["DurableExecutions"]) == 1


def test_arn_format_and_execution_operation_id(engine: Engine) -> None:
    arn = engine.start_execution(echo, {"x": 1}, name="named-1", function_name="echo-fn")
    m = ARN_RE.match(arn)
    assert m is not None, arn
    assert (m["region"], m["fn"], m["name"]) == ("us-east-1", "echo-fn", "named-1")
    assert re.fullmatch(r"[0-9a-f]{32}", m["id"])  # 128 random bits
    ops = engine.service.all_operations(arn)
    assert ops[0].Type == "EXECUTION"
    assert ops[0].Id == m["id"] == arn.rsplit("/", 1)[-1]
    assert ops[0].Name == "named-1"
    assert ops[0].ExecutionDetails is not None and ops[0].ExecutionDetails.InputPayload == '{"x":1}'


def test_unnamed_executions_get_random_names(engine: Engine) -> None:
    a = engine.start_execution(echo, 1)
    b = engine.start_execution(echo, 1)
    ma, mb = ARN_RE.match(a), ARN_RE.match(b)
    assert ma is not None and mb is not None
    assert ma["name"] != mb["name"] and ma["id"] != mb["id"]
    assert engine.get_execution(a)["DurableExecutionName"] == ma["name"]


def test_region_is_configurable(tmp_path: Path) -> None:
    with Engine(tmp_path / "r.db", synchronous="OFF", region="eu-west-1") as eng:
        arn = eng.start_execution(echo, 1)
        m = ARN_RE.match(arn)
        assert m is not None and m["region"] == "eu-west-1"
        assert eng.get_execution(arn)["FunctionArn"].startswith("arn:aws:lambda:eu-west-1:000000000000:")
        eng.store.close()


def test_get_execution_shape(engine: Engine) -> None:
    arn = engine.start_execution(echo, {"a": [1, 2]}, name="shape")
    running = engine.get_execution(arn)
    assert running["Status"] == "RUNNING"
    assert "EndTimestamp" not in running and "Result" not in running and "Error" not in running
    done = drive(engine, arn)
    assert set(done) >= {"DurableExecutionArn", "DurableExecutionName", "FunctionArn", "Status",
                         "StartTimestamp", "EndTimestamp", "InputPayload", "Result", "Version",
                         "DurableConfig"}
    assert done["DurableExecutionArn"] == arn
    assert done["DurableExecutionName"] == "shape"
    assert done["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo:$LATEST"
    assert done["Status"] == "SUCCEEDED"
    assert done["Version"] == "$LATEST"
    assert json.loads(done["Result"]) == {"a": [1, 2]}
    assert json.loads(done["InputPayload"]) == {"a": [1, 2]}
    assert isinstance(done["StartTimestamp"], int) and done["EndTimestamp"] >= done["StartTimestamp"]
    assert done["DurableConfig"] == {"ExecutionTimeout": 31_622_400, "RetentionPeriodInDays": 14}
    assert "Error" not in done

    failed = drive(engine, engine.start_execution(boom, None))
    assert failed["Status"] == "FAILED"
    assert "Result" not in failed
    assert failed["Error"]["ErrorType"] == "ValueError"
    assert failed["Error"]["ErrorMessage"] == "boom"


# ---------------------------------------------------------------------------- history
def test_history_shape(engine: Engine) -> None:
    arn = engine.start_execution(journey, {"k": "v"})
    assert drive(engine, arn)["Status"] == "RUNNING"
    engine.send_callback_success(callback_id(engine, arn, "approval"), "yes")
    done = drive(engine, arn)
    assert done["Status"] == "SUCCEEDED"
    assert json.loads(done["Result"]) == {"first": 1, "answer": "yes", "second": 2}

    events = engine.get_history(arn)
    assert_well_formed(events)
    started = events[0]["ExecutionStartedDetails"]
    assert started == {"Input": {"Payload": '{"k":"v"}', "Truncated": False}, "ExecutionTimeout": 31_622_400}

    invocations = [e for e in events if e["EventType"] == "InvocationCompleted"]
    assert len(invocations) == 3  # step+wait | callback | after the answer
    request_ids = set()
    for e in invocations:
        d = e["InvocationCompletedDetails"]
        assert {"StartTimestamp", "EndTimestamp", "RequestId"} <= set(d)
        assert "Error" not in d
        assert d["StartTimestamp"] <= d["EndTimestamp"] <= e["EventTimestamp"]
        request_ids.add(d["RequestId"])
    assert len(request_ids) == 3

    assert events[-1]["EventType"] == "ExecutionSucceeded"
    assert events[-2]["EventType"] == "InvocationCompleted"
    assert json.loads(events[-1]["ExecutionSucceededDetails"]["Result"]["Payload"]) == json.loads(done["Result"])
    assert [e["EventType"] for e in events].count("ExecutionSucceeded") == 1

    types = [e["EventType"] for e in events]
    assert types == [
        "ExecutionStarted", "StepStarted", "StepSucceeded", "WaitStarted", "InvocationCompleted",
        "WaitSucceeded", "CallbackStarted", "InvocationCompleted", "CallbackSucceeded",
        "StepStarted", "StepSucceeded", "InvocationCompleted", "ExecutionSucceeded",
    ]
    by_type = {e["EventType"]: e for e in events}
    assert by_type["WaitStarted"]["WaitStartedDetails"]["Duration"] == 30
    assert by_type["WaitStarted"]["Name"] == "pause" and by_type["WaitStarted"]["SubType"] == "Wait"
    assert by_type["CallbackSucceeded"]["CallbackSucceededDetails"]["Result"] == {"Payload": "yes", "Truncated": False}
    # operation events name their operation
    for e in events:
        if e["EventType"].startswith(("Step", "Wait", "Callback")):
            assert e["Id"] and e["Name"] and e["SubType"]


def test_history_paging_and_order(engine: Engine) -> None:
    arn = engine.start_execution(journey, None)
    drive(engine, arn)
    engine.send_callback_success(callback_id(engine, arn), "ok")
    drive(engine, arn)
    everything = engine.get_history(arn)
    assert len(everything) == 13

    pages, marker = [], None
    while True:
        page = engine.service.get_history(arn, marker, max_items=4)
        assert len(page["Events"]) <= 4
        pages.append(page["Events"])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert [e for p in pages for e in p] == everything

    backwards, marker = [], None
    while True:
        page = engine.service.get_history(arn, marker, max_items=5, reverse=True)
        backwards.extend(page["Events"])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert backwards == list(reversed(everything))

    withheld = engine.service.get_history(arn, include_data=False)["Events"]
    assert withheld[0]["ExecutionStartedDetails"]["Input"] == {"Truncated": True}
    assert withheld[-1]["ExecutionSucceededDetails"]["Result"] == {"Truncated": True}
    assert not any("Payload" in json.dumps(e) for e in withheld if e["EventType"] != "InvocationCompleted")

    with pytest.raises(InvalidParameterValueException):
        engine.service.get_history(arn, "not-a-marker")


@durable_execution
def many_steps(event: Any, ctx: DurableContext) -> Any:
    for i in range(event):
        ctx.step(lambda _: 1, name=f"s{i}")
    return ctx.create_callback(name="gate").result()


def test_state_pages_after_the_first_read_only_what_was_written_since(db_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    writer = Engine(db_path, synchronous="OFF", clock=SkippingClock())
    arn = writer.start_execution(many_steps, 25)
    drive(writer, arn)
    gate_id = callback_id(writer, arn)
    reader = Engine(db_path, synchronous="OFF")  # its own service: nothing of the execution folded yet
    whole_reads: list[int] = []
    tx_class: type[SQLTx] = reader.store.read(type)  # the store's SQLTx (SQLite's or PostgreSQL's)
    journal_ops = tx_class.journal_ops

    def counted(tx: SQLTx, key: int, after: int = 0) -> list[str]:
        if after == 0:
            whole_reads.append(key)
        return journal_ops(tx, key, after)

    monkeypatch.setattr(tx_class, "journal_ops", counted)
    try:
        first = reader.service.get_state(arn, None, None, max_items=10)
        second = reader.service.get_state(arn, None, first.NextMarker, max_items=10)
        writer.send_callback_success(gate_id, "go")  # the gate's answer, between two pages
        third = reader.service.get_state(arn, None, second.NextMarker, max_items=10)
        assert len(whole_reads) == 1, whole_reads  # the first page folded the journal; the others caught up
        assert third.NextMarker is None
        paged = first.Operations + second.Operations + third.Operations
        assert [op.Id for op in paged] == [op.Id for op in writer.service.all_operations(arn)]
        gate = next(op for op in paged if op.Name == "gate")
        assert gate.Status == "SUCCEEDED"  # the third page saw the answer written after the second
    finally:
        for engine in (reader, writer):
            engine.close()
            engine.store.close()


def test_state_paging(engine: Engine) -> None:
    arn = engine.start_execution(journey, None)
    drive(engine, arn)
    engine.send_callback_success(callback_id(engine, arn), "ok")
    drive(engine, arn)
    ops = engine.service.all_operations(arn)
    assert len(ops) == 5  # execution, first, pause, approval, second
    pages, marker = [], None
    while True:
        page = engine.service.get_state(arn, None, marker, max_items=2)
        pages.append(page.Operations)
        marker = page.NextMarker
        if not marker:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [op for p in pages for op in p] == ops
    assert ops[0].Type == "EXECUTION"  # the execution operation comes first
    assert [op.Name for op in ops[1:]] == ["first", "pause", "approval", "second"]


def test_state_needs_the_current_token(engine: Engine) -> None:
    arn = engine.start_execution(blocked, None)
    claim = engine.service.claim(arn=arn)
    assert claim is not None
    assert engine.service.get_state(arn, claim.token).Operations[0].Type == "EXECUTION"
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        engine.service.get_state(arn, "0" * 32)


# ---------------------------------------------------------------------------- listing
def test_list_executions_filters_and_paging(engine: Engine) -> None:
    engine.register_durable_function("list-echo", echo)
    engine.register_durable_function("list-blocked", blocked)
    t0 = engine.clock.now_ms()
    arns: list[str] = []
    for i in range(5):
        arns.append(engine.start_execution("list-echo", i, name=f"echo-{i}"))
        engine.advance_time(10)
    t_mid = engine.clock.now_ms()
    for i in range(3):
        arns.append(engine.start_execution("list-blocked", i, name=f"blocked-{i}"))
        engine.advance_time(10)
    for arn in arns:
        drive(engine, arn)

    def arns_of(**filters: Any) -> list[str]:
        return [x["DurableExecutionArn"] for x in engine.list_executions(**filters)["DurableExecutions"]]

    everything = engine.list_executions()["DurableExecutions"]
    assert [x["DurableExecutionArn"] for x in everything] == list(reversed(arns))  # newest first
    assert arns_of(reverse=False) == arns
    item = everything[-1]
    assert set(item) == {"DurableExecutionArn", "DurableExecutionName", "FunctionArn", "Status",
                         "StartTimestamp", "EndTimestamp"}
    assert item["FunctionArn"].endswith(":function:list-echo:$LATEST")

    assert sorted(arns_of(function_name="list-echo")) == sorted(arns[:5])
    assert sorted(arns_of(function_name="list-blocked:$LATEST")) == sorted(arns[5:])
    assert arns_of(name="echo-3") == [arns[3]]
    assert arns_of(name="nobody") == []
    assert sorted(arns_of(statuses=["RUNNING"])) == sorted(arns[5:])
    assert sorted(arns_of(statuses=["SUCCEEDED"])) == sorted(arns[:5])
    assert sorted(arns_of(statuses=["SUCCEEDED", "RUNNING"])) == sorted(arns)
    assert sorted(arns_of(started_after=t_mid)) == sorted(arns[5:])
    assert sorted(arns_of(started_before=t_mid)) == sorted(arns[:5])
    assert sorted(arns_of(started_after=t0 + 10_000, started_before=t0 + 30_000)) == sorted(arns[1:3])
    assert arns_of(function_name="list-echo", statuses=["RUNNING"]) == []

    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        page = engine.list_executions(max_items=3, marker=marker, reverse=False)
        pages += 1
        seen.extend(x["DurableExecutionArn"] for x in page["DurableExecutions"])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert pages == 3 and seen == arns


# ---------------------------------------------------------------------------- stop
def test_stop_execution(engine: Engine) -> None:
    arn = engine.start_execution(blocked, None)
    assert drive(engine, arn)["Status"] == "RUNNING"
    cid = callback_id(engine, arn)
    out = engine.stop_execution(arn)
    assert isinstance(out["StopTimestamp"], int)
    execution = engine.get_execution(arn)
    assert execution["Status"] == "STOPPED"
    assert execution["EndTimestamp"] == out["StopTimestamp"]
    assert execution["Error"]["ErrorMessage"]
    events = engine.get_history(arn)
    assert_well_formed(events)
    assert events[-1]["EventType"] == "ExecutionStopped"
    assert events[-1]["ExecutionStoppedDetails"]["Error"]["Payload"]["ErrorMessage"]
    assert engine.service.all_operations(arn)[0].Status == "STOPPED"

    with pytest.raises(InvalidParameterValueException):
        engine.stop_execution(arn)
    with pytest.raises(ResourceNotFoundException):
        engine.send_callback_success(cid, "too late")
    assert drive(engine, arn)["Status"] == "STOPPED"
    assert engine.get_history(arn) == events


def test_stopped_execution_refuses_checkpoints(engine: Engine) -> None:
    arn = engine.start_execution(blocked, None)
    claim = engine.service.claim(arn=arn)
    assert claim is not None
    engine.stop_execution(arn)
    before = engine.get_history(arn)
    update = OperationUpdate(Id="step-1", Type="STEP", Action="START", Name="late")
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        engine.service.checkpoint(arn, claim.token, [update])
    assert engine.get_history(arn) == before
    assert [op.Type for op in engine.service.all_operations(arn)] == ["EXECUTION"]


def test_stop_with_custom_error(engine: Engine) -> None:
    arn = engine.start_execution(blocked, None)
    drive(engine, arn)
    engine.stop_execution(arn, ErrorObject(ErrorType="Ops.Cancelled", ErrorMessage="no longer needed"))
    assert engine.get_execution(arn)["Error"]["ErrorMessage"] == "no longer needed"


# ---------------------------------------------------------------------------- execution timeout
def test_execution_timeout(engine: Engine) -> None:
    engine.register_durable_function("timeout-fn", long_wait, execution_timeout=5)
    arn = engine.start_execution("timeout-fn", None)
    assert engine.get_execution(arn)["DurableConfig"]["ExecutionTimeout"] == 5
    claim_free_start = engine.clock.now_ms()
    done = engine.run_until_complete(arn, timeout=20, skip_time=True)
    assert done["Status"] == "TIMED_OUT"
    assert done["EndTimestamp"] - done["StartTimestamp"] >= 5000
    assert done["EndTimestamp"] - claim_free_start < 3_600_000  # the timeout, not the wait, ended it
    assert done["Error"]["ErrorType"]
    events = engine.get_history(arn)
    assert_well_formed(events)
    assert events[-1]["EventType"] == "ExecutionTimedOut"
    assert "Error" in events[-1]["ExecutionTimedOutDetails"]
    assert "WaitSucceeded" not in [e["EventType"] for e in events]
    assert engine.service.all_operations(arn)[0].Status == "TIMED_OUT"
    # the wait timer is gone with the execution
    assert engine.service.next_due() is None


# ---------------------------------------------------------------------------- retention
def test_retention_purges_closed_executions(engine: Engine) -> None:
    engine.register_durable_function("short-lived", echo, retention_period_days=1)
    short = engine.start_execution("short-lived", 1)
    default = engine.start_execution(echo, 2)
    running = engine.start_execution(blocked, 3)
    for arn in (short, default, running):
        drive(engine, arn)
    assert engine.get_execution(short)["DurableConfig"]["RetentionPeriodInDays"] == 1
    assert engine.service.purge_expired() == 0

    engine.advance_time(86_400 + 60)
    assert engine.service.purge_expired() == 1
    with pytest.raises(ResourceNotFoundException):
        engine.get_execution(short)
    with pytest.raises(ResourceNotFoundException):
        engine.get_history(short)
    assert engine.store.read(lambda tx: tx.execution(short)) is None
    assert engine.get_execution(default)["Status"] == "SUCCEEDED"

    engine.advance_time(14 * 86_400)
    assert engine.service.purge_expired() == 1
    with pytest.raises(ResourceNotFoundException):
        engine.get_execution(default)
    # a running execution is never purged
    assert engine.get_execution(running)["Status"] == "RUNNING"
    assert engine.service.purge_expired() == 0


# ---------------------------------------------------------------------------- callbacks
def test_callback_success(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {})
    drive(engine, arn)
    cid = callback_id(engine, arn)
    assert re.fullmatch(r"[A-Za-z0-9+/=_-]{32,}", cid)  # opaque, >= 128 bits
    assert arn.rsplit("/", 1)[-1] not in cid
    engine.send_callback_success(cid, '{"approved": true}')
    done = drive(engine, arn)
    assert done["Status"] == "SUCCEEDED"
    assert json.loads(done["Result"]) == {"ok": '{"approved": true}'}  # the raw text sent
    op = next(o for o in engine.service.all_operations(arn) if o.Type == "CALLBACK")
    assert op.Status == "SUCCEEDED" and op.EndTimestamp is not None
    assert op.CallbackDetails is not None and op.CallbackDetails.Result == '{"approved": true}'


def test_callback_success_with_bytes(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {})
    drive(engine, arn)
    engine.send_callback_success(callback_id(engine, arn), "héllo".encode())
    assert json.loads(drive(engine, arn)["Result"]) == {"ok": "héllo"}


def test_callback_failure(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {})
    drive(engine, arn)
    engine.send_callback_failure(callback_id(engine, arn),
                                 ErrorObject(ErrorType="Rejected", ErrorMessage="manager said no"))
    done = drive(engine, arn)
    assert json.loads(done["Result"]) == {"error_type": "Rejected", "message": "manager said no",
                                          "kind": "CallbackExternalError"}
    failed = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackFailed"]
    assert len(failed) == 1
    assert failed[0]["CallbackFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "Rejected", "ErrorMessage": "manager said no"}


def test_callback_timeout(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {"timeout": 30})
    drive(engine, arn)
    started = next(e for e in engine.get_history(arn) if e["EventType"] == "CallbackStarted")
    assert started["CallbackStartedDetails"]["Timeout"] == 30
    assert "HeartbeatTimeout" not in started["CallbackStartedDetails"]
    engine.advance_time(29)
    assert drive(engine, arn)["Status"] == "RUNNING"
    engine.advance_time(2)
    done = drive(engine, arn)
    result = json.loads(done["Result"])
    assert result["error_type"] == "Callback.Timeout" and result["kind"] == "CallbackTimeoutError"
    timed_out = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackTimedOut"]
    assert len(timed_out) == 1
    assert timed_out[0]["CallbackTimedOutDetails"]["Error"]["Payload"]["ErrorType"] == "Callback.Timeout"
    with pytest.raises(CallbackTimeoutException):
        engine.send_callback_success(callback_id(engine, arn), "late")


def test_callback_heartbeat_timeout(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {"timeout": 100, "heartbeat": 10})
    drive(engine, arn)
    cid = callback_id(engine, arn)
    engine.advance_time(11)
    done = drive(engine, arn)
    assert json.loads(done["Result"])["error_type"] == "Callback.Heartbeat"
    timed_out = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackTimedOut"]
    assert timed_out[0]["CallbackTimedOutDetails"]["Error"]["Payload"]["ErrorType"] == "Callback.Heartbeat"
    with pytest.raises(CallbackTimeoutException):
        engine.send_callback_heartbeat(cid)


def test_callback_heartbeat_rearms_the_timer(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {"timeout": 100, "heartbeat": 10})
    drive(engine, arn)
    cid = callback_id(engine, arn)
    for _ in range(5):  # 40 s in all, never 10 s without a heartbeat
        engine.advance_time(8)
        assert drive(engine, arn)["Status"] == "RUNNING"
        engine.send_callback_heartbeat(cid)
    engine.advance_time(8)
    assert drive(engine, arn)["Status"] == "RUNNING"
    assert not [e for e in engine.get_history(arn) if e["EventType"] == "CallbackTimedOut"]
    engine.advance_time(3)  # 11 s since the last heartbeat
    done = drive(engine, arn)
    assert json.loads(done["Result"])["error_type"] == "Callback.Heartbeat"


def test_heartbeat_does_not_extend_the_overall_timeout(engine: Engine) -> None:
    arn = engine.start_execution(guarded_callback, {"timeout": 20, "heartbeat": 10})
    drive(engine, arn)
    cid = callback_id(engine, arn)
    engine.advance_time(8)
    drive(engine, arn)
    engine.send_callback_heartbeat(cid)
    engine.advance_time(8)
    drive(engine, arn)
    engine.send_callback_heartbeat(cid)
    engine.advance_time(5)  # 21 s since the start, 5 s since the last heartbeat
    assert json.loads(drive(engine, arn)["Result"])["error_type"] == "Callback.Timeout"


# ---------------------------------------------------------------------------- suspensions nothing can resume
def test_a_suspension_with_nothing_outstanding_fails_the_execution_after_three(engine: Engine) -> None:
    """An invocation that answers PENDING while nothing (a wait, retry, callback or invoke) could
    resume the execution is run again; the third time the execution fails with a clear error."""
    arn = engine.start_execution(echo, "x")
    for attempt in range(1, 4):
        claim = engine.service.claim(arn=arn)
        assert claim is not None, attempt
        assert engine.service.complete_invocation(claim, InvocationOutput(Status=InvocationStatus.PENDING))
    execution = engine.get_execution(arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "InvalidParameterValueException"
    assert "nothing outstanding" in execution["Error"]["ErrorMessage"]
    assert engine.service.claim(arn=arn) is None


@durable_execution
def two_gates(event: Any, ctx: DurableContext) -> Any:
    for i in range(event):
        ctx.step(lambda _: 1, name=f"s{i}")
    first, second = ctx.create_callback(name="first"), ctx.create_callback(name="second")
    return [first.result(), second.result()]


def test_the_end_of_a_suspended_invocation_decodes_only_its_last_operations(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether something can resume the execution is read from the newest operations first, not by
    decoding the whole history at every invocation's end."""
    arn = engine.start_execution(two_gates, 60)
    drive(engine, arn)
    engine.send_callback_success(callback_id(engine, arn, "first"), "yes")
    decoded: list[str] = []
    real = records.decode_operation

    def counting(doc: str) -> Any:
        decoded.append(doc)
        return real(doc)
    monkeypatch.setattr("durably.core.engine.documents.decode_operation", counting)
    claim = engine.service.claim(arn=arn)  # its invocation, as if it suspended on the second gate
    assert claim is not None
    assert engine.service.complete_invocation(claim, InvocationOutput(Status=InvocationStatus.PENDING))
    assert len(decoded) <= 2, len(decoded)
    assert engine.get_execution(arn)["Status"] == "RUNNING"
    assert engine.service.invocation_state(arn)["FailedInvocations"] == 0  # the second gate can resume it
