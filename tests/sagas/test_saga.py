"""Sagas: forward steps, reverse and parallel rollback, the pivot, compensate_on_failure, escalation.

Every test runs through the engine, so replay happens across real invocations (each wait or
retry ends one); a list records which bodies ran, to show what ran once and what ran again.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest
from durably import DurableContext, Duration, RetryDecision, StepConfig, StepContext, durable_execution
from durably.sagas import (
    Escalation,
    EscalationRequest,
    SagaCompensationFailed,
    SagaConfig,
    SagaForwardRecoveryFailed,
    SagaRolledBack,
    SagaStep,
    Undo,
    compensable,
    saga,
)
from durably.testing import DurableTestRunner, TestResult

RUNS: list[str] = []
LOCK = threading.Lock()
REFUND_API = {"fixed": False}
NO_RETRY = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.no_retry())
QUICK = SagaConfig(compensation_retry=lambda error, attempt: (
    RetryDecision.retry(Duration(1)) if attempt < 3 else RetryDecision.no_retry()))


def ran(label: str) -> None:
    with LOCK:
        RUNS.append(label)


@pytest.fixture(autouse=True)
def clear_runs() -> None:
    RUNS.clear()
    REFUND_API["fixed"] = False


@pytest.fixture
def runner(make_runner: Any) -> Any:
    """``runner(handler)``: a time-skipping test runner (the shared ``make_runner``)."""
    return make_runner


# ---------------------------------------------------------------------------- the order saga
def reserve(step: StepContext, order: dict[str, Any]) -> str:
    ran("reserve")
    return f"res-{order['id']}"


def release(step: StepContext, undo: Undo) -> None:
    ran(f"release {undo.result}")


def charge(step: StepContext, order: dict[str, Any]) -> dict[str, Any]:
    ran(f"charge:{step.attempt}")
    if order.get("fail") == "charge":
        raise TimeoutError("payment gateway timed out")
    return {"charged": order["amount"], "key": step.idempotency_key}


def refund(step: StepContext, undo: Undo) -> None:
    ran(f"refund:{step.attempt} {undo.args[0]['id']} error={undo.error.ErrorType if undo.error else None}")
    fail = undo.saga_input.get("refund")
    if (fail == "always" and not REFUND_API["fixed"]) or (fail == "once" and step.attempt == 1):
        raise ConnectionError("refund API down")


def ship(step: StepContext, reservation: str) -> str:
    ran("ship")
    return f"ship-{reservation}"


def confirm(step: StepContext, order: dict[str, Any]) -> str:
    ran("confirm")
    if order.get("fail") == "confirm":
        raise RuntimeError("mail server gone")
    return "sent"


def fail_here(step: StepContext, order: dict[str, Any]) -> None:
    ran("label")
    if order.get("fail") == "label":
        raise ValueError("no label printer")


def order_saga(config: SagaConfig = QUICK) -> Any:
    @durable_execution
    def handler(event: dict[str, Any], ctx: DurableContext) -> Any:
        with saga(ctx, "order", input=event, config=config) as s:
            reservation = s.step(reserve, event, compensate=release, name="reserve")
            payment = s.step(charge, event, compensate=refund, name="charge", config=NO_RETRY,
                             compensate_on_failure=True)
            s.step(fail_here, event, name="label", config=NO_RETRY)
            shipment = s.pivot(ship, reservation, name="ship")
            s.step(confirm, event, name="confirm", config=NO_RETRY)
        return {"reservation": reservation, "payment": payment["charged"], "shipment": shipment}
    return handler


def names_of(result: TestResult, sub_type: str) -> list[str]:
    """The names of the operations of ``sub_type``, in the order they started."""
    ops = sorted((op for op in result.operations if op.SubType == sub_type), key=lambda op: op.StartTimestamp or 0)
    return [op.Name or "" for op in ops]


def saga_error(result: TestResult) -> dict[str, Any]:
    assert result.error is not None and result.error.ErrorData is not None
    return dict(json.loads(result.error.ErrorData))


def test_a_saga_that_completes_compensates_nothing(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "A-1", "amount": 42})
    assert result.status == "SUCCEEDED"
    assert result.value == {"reservation": "res-A-1", "payment": 42, "shipment": "ship-res-A-1"}
    assert RUNS == ["reserve", "charge:1", "label", "ship", "confirm"]
    block = result.get_context("order")
    assert (block.SubType, block.Status) == ("Saga", "SUCCEEDED")
    assert all(result.get_step(n).ParentId == block.Id for n in ("reserve", "charge", "label", "ship", "confirm"))
    assert names_of(result, "Compensation") == []


def test_a_failure_before_the_pivot_rolls_back_in_reverse(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "A-2", "amount": 5, "fail": "label"})
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaRolledBack"
    data = saga_error(result)
    assert data["outcome"] == "rolled_back" and data["saga"] == "order"
    assert data["error"]["ErrorMessage"] == "no label printer"
    assert [c["step"] for c in data["compensated"]] == ["charge", "reserve"]
    assert names_of(result, "Compensation") == ["charge", "reserve"]
    assert [op.Status for op in result.operations if op.SubType == "Compensation"] == ["SUCCEEDED"] * 2
    assert RUNS == ["reserve", "charge:1", "label", "refund:1 A-2 error=None", "release res-A-2"]
    assert result.get_context("order").Status == "FAILED"


def test_the_handler_can_catch_the_outcome_and_see_the_original_error(runner: Any) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: dict[str, Any], ctx: DurableContext) -> Any:
        try:
            with saga(ctx, "order", input=event, config=QUICK) as s:
                s.step(reserve, event, compensate=release, name="reserve")
                s.step(fail_here, event, name="label", config=NO_RETRY)
        except SagaRolledBack as exc:
            seen.append((exc.saga, exc.original.ErrorType, [c["step"] for c in exc.compensated],
                         type(exc.__cause__).__name__))
            ctx.wait(Duration(1), name="after")  # the next invocation replays the whole rollback
            return "rolled back"
        return "done"

    result = runner(handler).run({"id": "B", "amount": 1, "fail": "label"})
    assert result.status == "SUCCEEDED" and result.value == "rolled back"
    assert seen == [("order", "ValueError", ["reserve"], "StepError")] * 2
    assert RUNS == ["reserve", "label", "release res-B"]  # replay ran no body again


def test_compensate_on_failure_undoes_a_step_that_failed(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "C", "amount": 9, "fail": "charge"})
    assert result.status == "FAILED"
    assert RUNS == ["reserve", "charge:1", "refund:1 C error=TimeoutError", "release res-C"]
    assert [c["step"] for c in saga_error(result)["compensated"]] == ["charge", "reserve"]


def test_a_compensation_that_fails_once_is_retried(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "D", "amount": 9, "fail": "label", "refund": "once"})
    assert result.status == "FAILED"
    compensated = saga_error(result)["compensated"]
    assert compensated == [{"step": "charge", "attempts": 2, "resolution": "compensated"},
                           {"step": "reserve", "attempts": 1, "resolution": "compensated"}]
    assert [r for r in RUNS if r.startswith("refund")] == ["refund:1 D error=None", "refund:2 D error=None"]


def test_a_compensation_that_keeps_failing_ends_the_saga_compensation_failed(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "E", "amount": 9, "fail": "label", "refund": "always"})
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaCompensationFailed"
    data = saga_error(result)
    assert data["failed"] == "charge" and data["not_compensated"] == ["reserve"]
    assert data["compensation_error"]["ErrorMessage"] == "refund API down"
    assert data["error"]["ErrorMessage"] == "no label printer"  # the original error is never lost
    assert "release res-E" not in RUNS
    typed = SagaCompensationFailed(result.error.ErrorMessage, None, result.error.ErrorData)
    assert (typed.saga, typed.failed, typed.not_compensated) == ("order", "charge", ["reserve"])
    assert typed.original.ErrorType == "ValueError" and typed.compensated == []


def test_after_the_pivot_a_failure_is_recovered_forward_not_rolled_back(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "F", "amount": 3, "fail": "confirm"})
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaForwardRecoveryFailed"
    assert saga_error(result)["error"]["ErrorMessage"] == "mail server gone"
    assert result.error.ErrorMessage is not None and "failed after its pivot" in result.error.ErrorMessage
    assert SagaForwardRecoveryFailed.outcome == saga_error(result)["outcome"]
    assert names_of(result, "Compensation") == []
    assert RUNS == ["reserve", "charge:1", "label", "ship", "confirm"]


def test_errors_configured_to_propagate_skip_the_rollback(runner: Any) -> None:
    result = runner(order_saga(SagaConfig(propagate=(ValueError,)))).run({"id": "G", "amount": 1, "fail": "label"})
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.core.errors.StepError"
    assert names_of(result, "Compensation") == []


def test_steps_run_in_parallel_are_compensated_in_parallel(runner: Any) -> None:
    def slow_undo(step: StepContext, undo: Undo) -> None:
        ran(f"undo {undo.step} start {time.monotonic()}")
        time.sleep(0.3)
        ran(f"undo {undo.step} end {time.monotonic()}")

    def book(step: StepContext, what: str) -> str:
        return f"booked {what}"

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "trip", config=QUICK) as s:
            s.step(book, "taxi", compensate=slow_undo, name="taxi")
            s.parallel(SagaStep(book, ("flight",), compensate=slow_undo, name="flight"),
                       SagaStep(book, ("hotel",), compensate=slow_undo, name="hotel"), name="bookings")
            s.step(fail_here, {"fail": "label"}, name="label", config=NO_RETRY)
        return "unreachable"

    result = runner(handler).run()
    assert result.status == "FAILED"
    starts = {r.split()[1]: float(r.split()[3]) for r in RUNS if " start " in r}
    ends = {r.split()[1]: float(r.split()[3]) for r in RUNS if " end " in r}
    assert max(starts["flight"], starts["hotel"]) < min(ends["flight"], ends["hotel"]), "not compensated in parallel"
    assert starts["taxi"] >= max(ends["flight"], ends["hotel"]), "the taxi was undone before the later group"
    assert sorted(c["step"] for c in saga_error(result)["compensated"][:2]) == ["flight", "hotel"]
    assert saga_error(result)["compensated"][2]["step"] == "taxi"


def test_the_decorator_form_declares_the_compensation_with_the_step(runner: Any) -> None:
    @compensable(release)
    def reserve_stock(step: StepContext, sku: str) -> str:
        ran(f"reserve {sku}")
        return sku

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "stock", config=QUICK) as s:
            s.step(reserve_stock, "sku-1")
            s.parallel(SagaStep(reserve_stock, ("sku-2",), name="second"), name="more")
            s.step(fail_here, {"fail": "label"}, name="label", config=NO_RETRY)

    result = runner(handler).run()
    assert result.status == "FAILED"
    assert names_of(result, "Compensation") == ["second", "reserve_stock"]
    assert RUNS[-2:] == ["release sku-2", "release sku-1"]
    assert reserve_stock(None, "plain") == "plain"  # still a plain function


def escalating() -> tuple[Any, list[EscalationRequest]]:
    requests: list[EscalationRequest] = []

    def notify(callback_id: str, request: EscalationRequest) -> None:
        requests.append(request)

    config = SagaConfig(compensation_retry=QUICK.compensation_retry,
                        escalation=Escalation(timeout=Duration.from_hours(1), notify=notify))
    return order_saga(config), requests


FAILING_REFUND = {"id": "H", "amount": 9, "fail": "label", "refund": "always"}


def _answer(run: DurableTestRunner, arn: str, answers: list[str]) -> TestResult:
    for answer in answers:
        assert run.resume(arn).status == "RUNNING"  # waiting for the person
        if json.loads(answer if answer.startswith("{") else "{}").get("decision") == "retry":
            REFUND_API["fixed"] = True  # the person fixed the refund API, then says retry
        run.send_callback_success(run.callback_id(arn, "escalate charge"), answer)
    return run.resume(arn)


def test_an_escalation_answered_retry_runs_the_compensation_again(runner: Any) -> None:
    handler, requests = escalating()
    run = runner(handler)
    result = _answer(run, run.run_async(FAILING_REFUND), ['{"decision": "retry"}'])
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaRolledBack"
    assert saga_error(result)["compensated"][0] == {"step": "charge", "attempts": 1, "resolution": "compensated"}
    assert [r.step for r in requests] == ["charge"] and requests[0].error["ErrorMessage"] == "refund API down"
    assert len([r for r in RUNS if r.startswith("refund")]) == 4  # three attempts, then the retry asked for
    assert names_of(result, "Compensation") == ["charge", "charge", "reserve"]


def test_an_escalation_answered_resolved_counts_the_compensation_as_done(runner: Any) -> None:
    handler, _ = escalating()
    run = runner(handler)
    result = _answer(run, run.run_async(FAILING_REFUND), ['{"decision": "resolved", "note": "refunded by hand"}'])
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaRolledBack"
    assert saga_error(result)["compensated"][0] == {"step": "charge", "attempts": 0, "resolution": "resolved",
                                                    "note": "refunded by hand"}
    assert "release res-H" in RUNS


def test_an_escalation_answered_abort_ends_compensation_failed(runner: Any) -> None:
    handler, _ = escalating()
    run = runner(handler)
    result = _answer(run, run.run_async(FAILING_REFUND), ['{"decision": "abort"}'])
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaCompensationFailed"
    data = saga_error(result)
    assert data["failed"] == "charge" and data["escalation"] == {"decision": "abort"}
    assert data["not_compensated"] == ["reserve"] and "release res-H" not in RUNS


def test_an_answer_not_understood_is_asked_again_with_the_reason(runner: Any) -> None:
    handler, requests = escalating()
    run = runner(handler)
    result = _answer(run, run.run_async(FAILING_REFUND),
                     ["yes please", '{"decision": "maybe"}', '{"decision": "resolved"}'])
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaRolledBack"
    assert [r.note is None for r in requests] == [True, False, False]
    assert requests[1].note is not None and "not JSON" in requests[1].note
    assert requests[2].note is not None and "no decision" in requests[2].note


def test_an_escalation_nobody_answers_times_out(runner: Any) -> None:
    handler, _ = escalating()
    run = runner(handler)
    arn = run.run_async(FAILING_REFUND)
    assert run.resume(arn).status == "RUNNING"
    run.advance_time(3601)
    result = run.resume(arn)
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaCompensationFailed"
    assert "no answer within 3600 s" in saga_error(result)["escalation"]["reason"]


def test_a_nested_saga_is_rolled_back_by_the_outer_one(runner: Any) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "outer", config=QUICK) as outer:
            outer.step(reserve, {"id": "outer"}, compensate=release, name="outer-reserve")
            with outer.saga("inner") as inner:
                inner.step(reserve, {"id": "inner-1"}, compensate=release, name="inner-1")
                inner.step(reserve, {"id": "inner-2"}, compensate=release, name="inner-2")
            outer.step(fail_here, {"fail": "label"}, name="label", config=NO_RETRY)

    result = runner(handler).run()
    assert result.status == "FAILED"
    assert result.get_context("inner").SubType == "Saga"
    assert result.get_context("inner").ParentId == result.get_context("outer").Id
    assert RUNS[-3:] == ["release res-inner-2", "release res-inner-1", "release res-outer"]


def test_errors_configured_to_retry_forward_are_retried_instead_of_rolled_back(runner: Any) -> None:
    def flaky(step: StepContext) -> str:
        ran(f"flaky:{step.attempt}")
        if step.attempt < 4:
            raise ConnectionError("warehouse API down")
        return "printed"

    forward = SagaConfig(retry_forward=(ConnectionError,), forward_retry=lambda error, attempt: (
        RetryDecision.retry(Duration(30)) if attempt < 5 else RetryDecision.no_retry()))

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "labels", config=forward) as s:
            s.step(reserve, {"id": "J"}, compensate=release, name="reserve")
            return s.step(flaky, name="label", config=NO_RETRY)  # NO_RETRY alone would roll back at once

    result = runner(handler).run()
    assert result.status == "SUCCEEDED" and result.value == "printed"
    assert RUNS == ["reserve", "flaky:1", "flaky:2", "flaky:3", "flaky:4"]
    assert names_of(result, "Compensation") == []


def test_a_failed_saga_steps_stack_trace_starts_in_user_code(runner: Any) -> None:
    result = runner(order_saga()).run({"id": "K", "amount": 1, "fail": "label"})
    details = result.get_step("label").StepDetails
    assert details is not None and details.Error is not None
    trace = details.Error.StackTrace
    assert trace and trace[0].startswith(f'  File "{__file__}"') and "in fail_here" in trace[0]


def test_a_saga_step_reads_its_result_back_with_its_type_on_replay(runner: Any) -> None:
    seen: list[Any] = []

    def ship_date(step: StepContext, days: int) -> dt.date:
        return dt.date(2026, 12, 1) + dt.timedelta(days=days)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "dates", config=QUICK) as s:
            when = s.step(ship_date, 3, compensate=release, name="date")
            seen.append(when)
            ctx.wait(Duration(1), name="replay")
        return when.isoformat()

    result = runner(handler).run()
    assert result.status == "SUCCEEDED" and result.value == "2026-12-04"
    assert seen == [dt.date(2026, 12, 4)] * 2  # a date on the first run and on replay alike


def test_compensation_keys_are_stable_per_compensation_and_unique_across_sagas(runner: Any) -> None:
    keys: list[tuple[str, int, str]] = []

    def undo(step: StepContext, done: Undo) -> None:
        keys.append((done.result, step.attempt, step.idempotency_key))
        if step.attempt == 1:
            raise ConnectionError("refund API down")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        outcomes = []
        for order in ("o-1", "o-2"):  # two sagas of the same name in one execution
            try:
                with saga(ctx, "order", config=QUICK) as s:
                    s.step(lambda step, order=order: order, compensate=undo, name="charge")
                    s.step(fail_here, {"fail": "label"}, name="label", config=NO_RETRY)
            except SagaRolledBack as exc:
                outcomes.append(exc.saga)
        return outcomes

    result = runner(handler).run()
    assert result.status == "SUCCEEDED"
    by_order = {order: {key for o, _, key in keys if o == order} for order in ("o-1", "o-2")}
    assert [len(v) for v in by_order.values()] == [1, 1]  # one key for both attempts
    assert by_order["o-1"] != by_order["o-2"]


def test_work_done_outside_a_saga_step_can_be_remembered_for_rollback(runner: Any) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        with saga(ctx, "mixed", config=QUICK) as s:
            booked = s.context.map(["a", "b"], lambda c, item, i, items: c.step(lambda _: f"res-{item}",
                                                                                  name="book")).get_results()
            for reservation in booked:
                s.remember("book", release, reservation)
            s.step(fail_here, {"fail": "label"}, name="label", config=NO_RETRY)

    result = runner(handler).run()
    assert result.error is not None and result.error.ErrorType == "durably.sagas.SagaRolledBack"
    assert RUNS[-2:] == ["release res-b", "release res-a"]
