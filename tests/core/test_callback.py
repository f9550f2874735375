"""Callbacks: create_callback / wait_for_callback, answered through the engine, timeouts, heartbeats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from durably import (
    Callback,
    CallbackConfig,
    CallbackError,
    CallbackExternalError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    ErrorObject,
    JsonSerDes,
    RetryPresets,
    SerDes,
    SerDesContext,
    StepError,
    WaitForCallbackConfig,
    WaitForCallbackContext,
    durable_execution,
    error_type_name,
)
from durably.core.engine.engine import Engine
from durably.core.engine.errors import (
    CallbackTimeoutException,
    RequestTooLargeException,
    ResourceNotFoundException,
)
from durably.core.limits import MAX_OPERATION_PAYLOAD
from durably.testing import DurableTestRunner

from .conftest import MakeRunner


def error_fields(exc: CallbackError) -> dict[str, Any]:
    return {"kind": type(exc).__name__, "type": exc.error_type, "message": exc.message, "data": exc.data}


def guarded(config: CallbackConfig, seen: list[Any] | None = None) -> Any:
    """A handler that waits on one callback called "gate" and returns its result or error fields."""

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        cb = ctx.create_callback(name="gate", config=config)
        if seen is not None:
            seen.append(cb.callback_id)
        try:
            return {"ok": cb.result()}
        except CallbackError as exc:
            return error_fields(exc)

    return handler


def start(runner: DurableTestRunner) -> str:
    arn = runner.run_async(None)
    assert runner.resume(arn).status == "RUNNING"
    return arn


def test_callback_result_is_the_raw_text_sent(make_runner: MakeRunner) -> None:
    seen: list[str] = []
    runner = make_runner(guarded(CallbackConfig(), seen))
    arn = start(runner)
    cid = runner.callback_id(arn, "gate")
    runner.send_callback_success(cid, '{"approved": true}')
    result = runner.resume(arn)
    assert result.value == {"ok": '{"approved": true}'}  # a string, not parsed
    assert seen == [cid, cid]  # the handler saw the same id in both invocations
    cb = result.get_callback("gate")
    assert cb.Status == "SUCCEEDED"
    assert cb.CallbackDetails is not None and cb.CallbackDetails.Result == '{"approved": true}'
    (succeeded,) = result.events("CallbackSucceeded", name="gate")
    assert succeeded["CallbackSucceededDetails"]["Result"] == {"Payload": '{"approved": true}', "Truncated": False}


def test_callback_result_is_parsed_by_a_configured_serdes(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig(serdes=JsonSerDes())))
    arn = start(runner)
    runner.send_callback_success(runner.callback_id(arn, "gate"), b'{"approved": true, "by": "ana"}')
    assert runner.resume(arn).value == {"ok": {"approved": True, "by": "ana"}}


def test_callback_failure_raises_callback_external_error(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig()))
    arn = start(runner)
    runner.send_callback_failure(runner.callback_id(arn, "gate"), ErrorObject(
        ErrorType="Approval.Rejected", ErrorMessage="not this quarter", ErrorData='{"by":"cfo"}'))
    result = runner.resume(arn)
    assert result.value == {"kind": "CallbackExternalError", "type": "Approval.Rejected",
                            "message": "not this quarter", "data": '{"by":"cfo"}'}
    assert result.get_callback("gate").Status == "FAILED"
    (failed,) = result.events("CallbackFailed", name="gate")
    assert failed["CallbackFailedDetails"]["Error"]["Payload"]["ErrorType"] == "Approval.Rejected"


def test_a_failed_callback_only_raises_from_result(make_runner: MakeRunner) -> None:
    reached: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        cb = ctx.create_callback(name="gate")
        reached.append("between create and result")
        try:
            cb.result()
        except CallbackExternalError:
            return "failed"
        return "ok"

    runner = make_runner(handler)
    arn = start(runner)
    runner.send_callback_failure(runner.callback_id(arn, "gate"))
    assert runner.resume(arn).value == "failed"
    assert reached == ["between create and result"] * 2


def test_callback_started_records_its_timeouts(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig(timeout=Duration.from_hours(24), heartbeat_timeout=Duration(90))))
    arn = start(runner)
    (started,) = runner.result(arn).events("CallbackStarted", name="gate")
    details = started["CallbackStartedDetails"]
    assert details == {"CallbackId": runner.callback_id(arn, "gate"), "Timeout": 86_400, "HeartbeatTimeout": 90}
    assert len(details["CallbackId"]) >= 32  # random, at least 128 bits of hex


def test_callback_times_out(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig(timeout=Duration(30))))
    arn = start(runner)
    cid = runner.callback_id(arn, "gate")
    runner.advance_time(29)
    assert runner.resume(arn).status == "RUNNING"
    runner.advance_time(2)
    result = runner.resume(arn)
    assert result.value == {"kind": "CallbackTimeoutError", "type": "Callback.Timeout",
                            "message": "Callback timed out", "data": None}
    assert result.get_callback("gate").Status == "TIMED_OUT"
    assert len(result.events("CallbackTimedOut", name="gate")) == 1
    with pytest.raises(CallbackTimeoutException, match="already timed out"):
        runner.send_callback_success(cid, "too late")


def test_heartbeats_keep_a_callback_alive_until_they_stop(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig(heartbeat_timeout=Duration(10))))
    arn = start(runner)
    cid = runner.callback_id(arn, "gate")
    for _ in range(5):  # 40 s in all, never 10 s without a heartbeat
        runner.advance_time(8)
        runner.send_callback_heartbeat(cid)
        assert runner.resume(arn).status == "RUNNING"
    runner.advance_time(11)
    result = runner.resume(arn)
    assert result.value == {"kind": "CallbackTimeoutError", "type": "Callback.Heartbeat",
                            "message": "Callback heartbeat timed out", "data": None}
    with pytest.raises(CallbackTimeoutException):
        runner.send_callback_heartbeat(cid)


def test_heartbeats_do_not_extend_the_overall_timeout(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig(timeout=Duration(20), heartbeat_timeout=Duration(10))))
    arn = start(runner)
    cid = runner.callback_id(arn, "gate")
    for _ in range(3):
        runner.advance_time(8)
        runner.send_callback_heartbeat(cid)
        runner.resume(arn)
    result = runner.result(arn)
    assert result.status == "SUCCEEDED"
    assert result.value["type"] == "Callback.Timeout"


def test_a_callback_answered_twice_is_a_clear_error(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig()))
    arn = start(runner)
    cid = runner.callback_id(arn, "gate")
    runner.send_callback_success(cid, "first")
    with pytest.raises(ResourceNotFoundException, match=f"callback '{cid}' is already SUCCEEDED"):
        runner.send_callback_success(cid, "second")
    with pytest.raises(ResourceNotFoundException, match="already SUCCEEDED"):
        runner.send_callback_failure(cid, ErrorObject(ErrorMessage="changed my mind"))
    result = runner.resume(arn)
    assert result.value == {"ok": "first"}
    assert len(result.events("CallbackSucceeded")) == 1
    assert result.events("CallbackFailed") == []
    with pytest.raises(ResourceNotFoundException, match="already SUCCEEDED"):
        runner.send_callback_success(cid, "after the end")


def test_an_unknown_callback_id_is_not_found(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig()))
    start(runner)
    with pytest.raises(ResourceNotFoundException, match="no callback 'not-a-callback'"):
        runner.send_callback_success("not-a-callback", "x")


def test_an_oversize_callback_result_is_refused_and_changes_nothing(make_runner: MakeRunner) -> None:
    runner = make_runner(guarded(CallbackConfig()))
    arn = start(runner)
    cid = runner.callback_id(arn, "gate")
    before = runner.result(arn).history
    with pytest.raises(RequestTooLargeException):
        runner.send_callback_success(cid, "x" * (MAX_OPERATION_PAYLOAD + 1))
    assert runner.result(arn).history == before
    assert runner.result(arn).get_callback("gate").Status == "STARTED"
    runner.send_callback_success(cid, "small")
    assert runner.resume(arn).value == {"ok": "small"}


def test_callback_objects_expose_their_ids(make_runner: MakeRunner) -> None:
    seen: list[Callback] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        cb = ctx.create_callback()
        seen.append(cb)
        return cb.result()

    runner = make_runner(handler)
    arn = start(runner)
    (cb,) = seen
    (op,) = runner.result(arn).operations
    assert (cb.operation_id, cb.callback_id) == (op.Id, runner.callback_id(arn))
    assert op.Name is None and op.SubType == "Callback"


# ---------------------------------------------------------------------------- wait_for_callback
def test_wait_for_callback_hands_the_id_to_the_submitter_once(make_runner: MakeRunner) -> None:
    submitted: list[tuple[str, Any]] = []

    def submit(callback_id: str, wctx: WaitForCallbackContext) -> None:
        submitted.append((callback_id, wctx))
        wctx.logger.info("asked for approval")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(submit, name="approval", config=CallbackConfig(timeout=Duration(60)))

    runner = make_runner(handler)
    arn = start(runner)
    cid = runner.callback_id(arn, "approval")
    runner.send_callback_success(cid, "approved")
    result = runner.resume(arn)
    assert result.value == "approved"
    assert len(submitted) == 1  # the submitter is a step: not run again on replay
    assert submitted[0][0] == cid
    assert isinstance(submitted[0][1], WaitForCallbackContext)
    context = result.get_context("approval")
    assert (context.SubType, context.Status) == ("WaitForCallback", "SUCCEEDED")
    callback = result.get_callback("approval create callback id")
    submitter = result.get_step("approval submitter")
    assert callback.ParentId == context.Id and submitter.ParentId == context.Id
    assert callback.CallbackDetails is not None and callback.CallbackDetails.CallbackId == cid
    assert submitter.Status == "SUCCEEDED"
    assert result.events("CallbackStarted", name="approval create callback id")[0][
        "CallbackStartedDetails"]["Timeout"] == 60


def test_wait_for_callback_with_a_serdes(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(lambda cid, wctx: None, name="form",
                                     config=WaitForCallbackConfig(serdes=JsonSerDes()))

    runner = make_runner(handler)
    arn = start(runner)
    runner.send_callback_success(runner.callback_id(arn, "form"), '{"seats": 3}')
    assert runner.resume(arn).value == {"seats": 3}


class Tagged(SerDes[Any]):
    """JSON behind a ``tagged:`` prefix, so a test can tell which payloads it wrote and read."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return "tagged:" + json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        assert data.startswith("tagged:"), data
        return {"read": json.loads(data.removeprefix("tagged:"))}


def test_wait_for_callback_serdes_reads_the_answer_and_writes_the_submitter_result(make_runner: MakeRunner) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        value = ctx.wait_for_callback(lambda cid, wctx: {"sent": True}, name="form",
                                      config=WaitForCallbackConfig(serdes=Tagged()))
        seen.append(value)
        ctx.wait(Duration(1), name="after")  # one more invocation, which replays the context
        return value

    runner = make_runner(handler)
    arn = start(runner)
    runner.send_callback_success(runner.callback_id(arn, "form"), 'tagged:{"seats": 3}')
    result = runner.resume(arn)
    assert result.value == {"read": {"seats": 3}}
    assert seen == [{"read": {"seats": 3}}] * 2
    submitter = result.get_step("form submitter")
    assert submitter.StepDetails and submitter.StepDetails.Result == 'tagged:{"sent": true}'


def test_wait_for_callback_without_serdes_returns_the_raw_text(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        value = ctx.wait_for_callback(lambda cid, wctx: None, name="form")
        return {"value": value, "type": type(value).__name__}

    runner = make_runner(handler)
    arn = start(runner)
    runner.send_callback_success(runner.callback_id(arn, "form"), b'{"seats": 3}')
    assert runner.resume(arn).value == {"value": '{"seats": 3}', "type": "str"}


@pytest.mark.parametrize("serdes", [None, Tagged()], ids=["raw", "serdes"])
@pytest.mark.parametrize("payload", [b"", "", None], ids=["empty-bytes", "empty-str", "none"])
def test_an_empty_answer_gives_none(make_runner: MakeRunner, serdes: SerDes[Any] | None,
                                    payload: str | bytes | None) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        waited = ctx.wait_for_callback(lambda cid, wctx: None, name="form",
                                       config=WaitForCallbackConfig(serdes=serdes))
        created = ctx.create_callback(name="second", config=CallbackConfig(serdes=serdes))
        return {"waited": waited, "created": created.result()}

    runner = make_runner(handler)
    arn = start(runner)
    runner.send_callback_success(runner.callback_id(arn, "form"), payload)
    assert runner.resume(arn).status == "RUNNING"
    runner.send_callback_success(runner.callback_id(arn, "second"), payload)
    assert runner.resume(arn).value == {"waited": None, "created": None}


def test_a_failing_submitter_raises_callback_submitter_error(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def submit(callback_id: str, wctx: WaitForCallbackContext) -> None:
        attempts.append(1)
        raise ConnectionError("mail server down")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.wait_for_callback(submit, name="approval",
                                  config=WaitForCallbackConfig(retry_strategy=RetryPresets.none()))
        except CallbackSubmitterError as exc:
            return error_fields(exc)
        return "answered"

    result = make_runner(handler).run(None)
    assert result.value["kind"] == "CallbackSubmitterError"
    assert result.value["message"] == "mail server down"
    assert result.value["type"] == error_type_name(CallbackSubmitterError)  # as AWS: its own type
    assert attempts == [1]
    step = result.get_step("approval submitter")
    assert step.Status == "FAILED" and step.StepDetails and step.StepDetails.Error
    assert step.StepDetails.Error.ErrorType == "ConnectionError"
    context = result.get_context("approval")  # the context fails with the step's error, as AWS records it
    assert context.Status == "FAILED" and context.ContextDetails and context.ContextDetails.Error
    assert context.ContextDetails.Error.ErrorType == error_type_name(StepError)
    assert context.ContextDetails.Error.ErrorMessage == "mail server down"


def test_a_failing_submitter_fails_the_execution_with_callback_submitter_error(make_runner: MakeRunner) -> None:
    def submit(callback_id: str, wctx: WaitForCallbackContext) -> None:
        raise ConnectionError("mail server down")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(submit, name="approval",
                                     config=WaitForCallbackConfig(retry_strategy=RetryPresets.none()))

    result = make_runner(handler).run(None)
    assert result.status == "FAILED" and result.error is not None
    assert (result.error.ErrorType, result.error.ErrorMessage) == (error_type_name(CallbackSubmitterError),
                                                                   "mail server down")


def test_a_submitter_is_retried_with_the_configured_strategy(make_runner: MakeRunner) -> None:
    attempts: list[int] = []

    def submit(callback_id: str, wctx: WaitForCallbackContext) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("mail server down")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(submit, name="approval",
                                     config=WaitForCallbackConfig(retry_strategy=RetryPresets.fixed(Duration(2))))

    runner = make_runner(handler)
    arn = start(runner)
    assert len(attempts) == 3
    runner.send_callback_success(runner.callback_id(arn, "approval"), "ok")
    assert runner.resume(arn).value == "ok"
    assert len(runner.result(arn).events("CallbackStarted")) == 1  # one callback for all attempts


def test_wait_for_callback_times_out(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            return ctx.wait_for_callback(lambda cid, wctx: None, name="approval",
                                         config=CallbackConfig(timeout=Duration(60)))
        except CallbackTimeoutError as exc:
            return exc.message

    runner = make_runner(handler)
    arn = start(runner)
    runner.advance_time(61)
    assert runner.resume(arn).value == "Callback timed out"


def _answer_with_failure(runner: DurableTestRunner, arn: str) -> None:
    runner.send_callback_failure(runner.callback_id(arn, "approval"),
                                 ErrorObject(ErrorType="Approval.Rejected", ErrorMessage="no"))


def _answer_late(runner: DurableTestRunner, arn: str) -> None:
    runner.advance_time(61)


def _no_answer_needed(runner: DurableTestRunner, arn: str) -> None:
    pass


@pytest.mark.parametrize(("answer", "error_type"), [(_answer_with_failure, "Approval.Rejected"),
                                                    (_answer_late, "Callback.Timeout"),
                                                    (_no_answer_needed, error_type_name(CallbackSubmitterError))],
                         ids=["failure", "timeout", "submitter"])
def test_a_wait_for_callback_error_is_the_same_on_replay(make_runner: MakeRunner, answer: Any,
                                                         error_type: str) -> None:
    seen: list[dict[str, Any]] = []

    def submit(callback_id: str, wctx: WaitForCallbackContext) -> None:
        if answer is _no_answer_needed:
            raise ConnectionError("mail server down")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.wait_for_callback(submit, name="approval", config=WaitForCallbackConfig(
                timeout=Duration(60), retry_strategy=RetryPresets.none()))
        except CallbackError as exc:
            seen.append(error_fields(exc))
        ctx.wait(Duration(1), name="after")  # one more invocation, which replays the failure
        return "done"

    runner = make_runner(handler)
    arn = runner.run_async(None)
    runner.resume(arn)
    answer(runner, arn)
    assert runner.resume(arn).value == "done"
    assert len(seen) == 2
    assert seen[0]["type"] == error_type
    assert seen[1] == seen[0]


def test_callbacks_answered_through_the_engine_api(engine: Engine) -> None:
    handler = guarded(CallbackConfig(heartbeat_timeout=Duration(10)))
    arns = [engine.start_execution(handler, None, name=f"order-{i}") for i in range(3)]
    for arn in arns:
        assert engine.run_until_complete(arn, timeout=10, skip_time=True, stop_when_blocked=True)["Status"] == \
            "RUNNING"

    def callback_id(arn: str) -> str:
        (started,) = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackStarted"]
        return str(started["CallbackStartedDetails"]["CallbackId"])

    ok, rejected, beating = (callback_id(arn) for arn in arns)
    engine.send_callback_success(ok, "fine")
    engine.send_callback_failure(rejected, ErrorObject(ErrorType="No", ErrorMessage="rejected"))
    engine.advance_time(8)
    engine.send_callback_heartbeat(beating)
    engine.advance_time(8)  # 16 s since the start, 8 s since the heartbeat
    done = {arn: engine.run_until_complete(arn, timeout=10, skip_time=True, stop_when_blocked=True)
            for arn in arns}
    assert json.loads(done[arns[0]]["Result"]) == {"ok": "fine"}
    assert json.loads(done[arns[1]]["Result"])["type"] == "No"
    assert done[arns[2]]["Status"] == "RUNNING"  # kept alive by its heartbeat
    engine.advance_time(3)
    final = engine.run_until_complete(arns[2], timeout=10, skip_time=True, stop_when_blocked=True)
    assert json.loads(final["Result"])["type"] == "Callback.Heartbeat"
