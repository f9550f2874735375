"""``run_in_child_context``: checkpointed results and failures, nested ids, decorators, large results."""

from __future__ import annotations

from typing import Any

from durably import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    Duration,
    ExtendedTypeSerDes,
    RecordedError,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
    durable_with_child_context,
)
from durably.core.identity import operation_id
from durably.core.limits import REPLAY_CHILDREN_THRESHOLD
from pydantic import BaseModel

from .conftest import MakeRunner, recording


class Parcel(BaseModel):
    tracking: str
    weight: float


def test_child_result_is_checkpointed_and_not_recomputed(make_runner: MakeRunner) -> None:
    child_entries: list[bool] = []
    step_runs: list[str] = []

    def fulfil(ctx: DurableContext) -> dict[str, Any]:
        child_entries.append(ctx.is_replaying())
        label = ctx.step(recording(step_runs, "label", "L-1"), name="label")
        ctx.wait(Duration(5), name="courier")
        return {"label": label}

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        shipped = ctx.run_in_child_context(fulfil, name="fulfil")
        ctx.wait(Duration(1), name="after")  # the next invocation replays the finished child
        return shipped

    result = make_runner(handler).run(None)
    assert result.value == {"label": "L-1"}
    # the child runs in invocation 1 (suspends on its wait) and 2 (finishes); not in 3
    assert child_entries == [False, True]
    assert step_runs == ["label"]
    context = result.get_context("fulfil")
    assert (context.SubType, context.Status) == ("RunInChildContext", "SUCCEEDED")
    assert context.ContextDetails is not None and context.ContextDetails.Result == '{"label":"L-1"}'
    assert [e["EventType"] for e in result.events(name="fulfil")] == ["ContextStarted", "ContextSucceeded"]


def test_child_operations_hash_under_the_child_and_name_it_as_parent(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def inner(grandchild: DurableContext) -> str:
            return grandchild.step(lambda _: "deep", name="deep-step")

        def outer(child: DurableContext) -> str:
            first = child.step(lambda _: "a", name="child-step")
            return first + child.run_in_child_context(inner, name="inner")

        before = ctx.step(lambda _: "x", name="root-step")
        return before + ctx.run_in_child_context(outer, name="outer")

    result = make_runner(handler).run(None)
    assert result.value == "xadeep"
    root_step, outer = result.get_step("root-step"), result.get_context("outer")
    assert (root_step.Id, root_step.ParentId) == (operation_id(None, 1), None)
    assert (outer.Id, outer.ParentId) == (operation_id(None, 2), None)
    child_step, inner = result.get_step("child-step"), result.get_context("inner")
    assert (child_step.Id, child_step.ParentId) == (operation_id(outer.Id, 1), outer.Id)
    assert (inner.Id, inner.ParentId) == (operation_id(outer.Id, 2), outer.Id)
    deep = result.get_step("deep-step")
    assert (deep.Id, deep.ParentId) == (operation_id(inner.Id, 1), inner.Id)
    assert [e.get("ParentId") for e in result.events("StepSucceeded", name="deep-step")] == [inner.Id]


def test_a_failing_child_raises_child_context_error(make_runner: MakeRunner) -> None:
    runs: list[str] = []
    caught: list[ChildContextError] = []

    def reserve(ctx: DurableContext) -> None:
        runs.append("reserve")
        raise ValueError("warehouse closed")

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.run_in_child_context(reserve, name="reserve")
        except ChildContextError as exc:
            caught.append(exc)
        ctx.wait(Duration(1), name="after")  # the next invocation replays the failure
        return "done"

    result = make_runner(handler).run(None)
    assert result.value == "done"
    assert runs == ["reserve"]
    assert [(e.error_type, e.message) for e in caught] == [("ValueError", "warehouse closed")] * 2
    causes = [e.__cause__ for e in caught]
    assert all(isinstance(c, RecordedError) and c.error_type == "ValueError" for c in causes), causes
    context = result.get_context("reserve")
    assert context.Status == "FAILED"
    assert context.ContextDetails is not None and context.ContextDetails.Error is not None
    assert context.ContextDetails.Error.ErrorType == "ValueError"
    assert len(result.events("ContextFailed", name="reserve")) == 1


def test_a_failed_step_inside_a_child_fails_the_child(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        def body(child: DurableContext) -> None:
            child.step(lambda _: {"present": 1}["missing"], name="lookup",
                       config=StepConfig(retry_strategy=RetryPresets.none()))

        try:
            ctx.run_in_child_context(body, name="group")
        except ChildContextError as exc:
            return [exc.error_type, exc.message]
        return None

    result = make_runner(handler).run(None)
    assert result.value == ["durably.core.errors.StepError", "'missing'"]
    assert result.get_step("lookup").Status == "FAILED"
    assert result.get_context("group").Status == "FAILED"


@durable_with_child_context
def ship(ctx: DurableContext, destination: str, *, express: bool = False) -> Parcel:
    tracking = ctx.step(lambda _: f"{destination}-{'X' if express else 'S'}", name="book")
    return Parcel(tracking=tracking, weight=1.5)


def test_durable_with_child_context_binds_arguments_and_names_the_child(make_runner: MakeRunner) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        parcel = ctx.run_in_child_context(ship("Berlin", express=True))
        seen.append(parcel)
        ctx.wait(Duration(1), name="after")
        return parcel.model_dump()

    result = make_runner(handler).run(None)
    assert result.value == {"tracking": "Berlin-X", "weight": 1.5}
    assert seen == [Parcel(tracking="Berlin-X", weight=1.5)] * 2  # typed on the first run and on replay
    context = result.get_context("ship")
    assert result.get_step("book").ParentId == context.Id


def test_child_config_sets_sub_type_and_serdes(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        value = ctx.run_in_child_context(lambda child: (1, "two"), name="pair",
                                         config=ChildConfig(sub_type="Pairing", serdes=ExtendedTypeSerDes()))
        return [type(value).__name__, list(value)]

    result = make_runner(handler).run(None)
    assert result.value == ["tuple", [1, "two"]]
    context = result.get_context("pair")
    assert context.SubType == "Pairing"
    assert context.ContextDetails is not None
    assert context.ContextDetails.Result == '{"t":"t","v":[{"t":"i","v":1},{"t":"s","v":"two"}]}'


def test_an_unserialisable_child_result_fails_the_child_naming_it(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.run_in_child_context(lambda child: object(), name="opaque")
        except ChildContextError as exc:
            return [exc.error_type, exc.message]
        return None

    error_type, message = make_runner(handler).run(None).value
    assert error_type == "durably.core.errors.SerDesError"
    assert "child context 'opaque'" in message and "object" in message


def test_a_large_child_result_is_not_stored_and_its_children_replay(make_runner: MakeRunner) -> None:
    child_runs: list[bool] = []
    step_runs: list[str] = []
    big = "z" * (REPLAY_CHILDREN_THRESHOLD + 10)

    def produce(ctx: DurableContext) -> dict[str, Any]:
        child_runs.append(ctx.is_replaying())
        text = ctx.step(recording(step_runs, "text", big), name="text")
        return {"text": text}

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        value = ctx.run_in_child_context(produce, name="report", config=ChildConfig(
            summary_generator=lambda v: f"{len(v['text'])} characters"))
        ctx.wait(Duration(1), name="after")
        return len(value["text"])

    result = make_runner(handler).run(None)
    assert result.value == len(big)
    assert len(child_runs) == 2  # run again on replay to rebuild the value...
    assert step_runs == ["text"]  # ...from its children's checkpoints
    context = result.get_context("report")
    assert context.ContextDetails is not None
    assert context.ContextDetails.ReplayChildren is True
    assert context.ContextDetails.Result == f"{len(big)} characters"


def test_a_large_child_result_is_the_same_on_first_run_and_replay(make_runner: MakeRunner) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        seen.append(ctx.run_in_child_context(lambda child: ("z" * REPLAY_CHILDREN_THRESHOLD, 1), name="big"))
        ctx.wait(Duration(1), name="after")
        return None

    assert make_runner(handler).run(None).status == "SUCCEEDED"
    assert len(seen) == 2
    assert type(seen[1]) is type(seen[0])
    assert seen[1] == seen[0]


def test_an_unnamed_child_takes_its_function_name(make_runner: MakeRunner) -> None:
    def packing(ctx: DurableContext) -> int:
        return ctx.step(lambda _: 3, name="boxes")

    def boxes_step(_: StepContext) -> int:
        return 1

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.run_in_child_context(packing) + ctx.run_in_child_context(lambda c: c.step(boxes_step))

    result = make_runner(handler).run(None)
    assert result.value == 4
    assert [op.Name for op in result.operations if op.Type == "CONTEXT"] == ["packing", None]
