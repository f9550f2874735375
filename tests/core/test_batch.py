"""BatchResult as AWS's SDK has it: enums, to_dict/from_dict, accessors, item errors, every started item, replay."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest
from aws_durable_execution_sdk_python.concurrency import models as aws_models
from aws_durable_execution_sdk_python.config import BatchItemStatus as AwsBatchItemStatus
from aws_durable_execution_sdk_python.config import CompletionConfig as AwsCompletionConfig
from aws_durable_execution_sdk_python.config import ParallelBranch as AwsParallelBranch
from aws_durable_execution_sdk_python.context import durable_parallel_branch as aws_durable_parallel_branch
from aws_durable_execution_sdk_python.exceptions import ChildContextError as AwsChildContextError
from aws_durable_execution_sdk_python.lambda_service import ErrorObject as AwsErrorObject
from durably import (
    BatchCompletionError,
    BatchItem,
    BatchItemStatus,
    BatchResult,
    ChildContextError,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    Duration,
    ErrorObject,
    MapConfig,
    ParallelBranch,
    ParallelConfig,
    durable_execution,
    durable_parallel_branch,
)
from durably.core import concurrency
from durably.core.errors import RecordedError
from durably.core.identity import operation_id
from durably.testing import TestResult

from .conftest import MakeRunner

ERROR = {"ErrorMessage": "no stock", "ErrorType": "ValueError", "ErrorData": '{"sku":"A"}', "StackTrace": ["f\n"]}


def ours(reason: str, *items: tuple[str, Any, dict[str, Any] | None]) -> BatchResult[Any]:
    return BatchResult([BatchItem(i, BatchItemStatus(s), r, ErrorObject.from_dict(e) if e else None)
                        for i, (s, r, e) in enumerate(items)], CompletionReason(reason))


def theirs(reason: str, *items: tuple[str, Any, dict[str, Any] | None]) -> aws_models.BatchResult[Any]:
    return aws_models.BatchResult(
        [aws_models.BatchItem(i, AwsBatchItemStatus(s), r, AwsErrorObject.from_dict(e) if e else None)
         for i, (s, r, e) in enumerate(items)], aws_models.CompletionReason(reason))


CASES = [
    ("ALL_COMPLETED", ("SUCCEEDED", 1, None), ("SUCCEEDED", None, None)),
    ("MIN_SUCCESSFUL_REACHED", ("SUCCEEDED", {"a": 1}, None), ("STARTED", None, None), ("STARTED", None, None)),
    ("FAILURE_TOLERANCE_EXCEEDED", ("SUCCEEDED", "x", None), ("FAILED", None, ERROR), ("STARTED", None, None)),
    ("ALL_COMPLETED", ("FAILED", None, None), ("FAILED", None, ERROR)),
    ("CUSTOM_COMPLETION_FAILED", ("SUCCEEDED", 1, None), ("STARTED", None, None)),
    ("CUSTOM_COMPLETION_SUCCEEDED", ("FAILED", None, ERROR), ("SUCCEEDED", 2, None)),
    ("ALL_COMPLETED",),
]


def test_the_enums_have_aws_values_and_print_as_aws_does() -> None:
    for mine, aws in ((BatchItemStatus, AwsBatchItemStatus), (CompletionReason, aws_models.CompletionReason)):
        assert [m.value for m in mine] == [m.value for m in aws]
        assert [(str(m), repr(m)) for m in mine] == [(str(m), repr(m)) for m in aws]
    assert str(BatchItemStatus.STARTED) == "BatchItemStatus.STARTED"


@pytest.mark.parametrize("case", CASES)
def test_to_dict_has_aws_shape_and_from_dict_reads_it_back(case: tuple[Any, ...]) -> None:
    mine, aws = ours(*case), theirs(*case)
    assert mine.to_dict() == aws.to_dict()
    assert [item.to_dict() for item in mine.all] == [item.to_dict() for item in aws.all]
    assert BatchResult.from_dict(aws.to_dict()) == mine
    assert aws_models.BatchResult.from_dict(mine.to_dict()).to_dict() == mine.to_dict()
    assert [BatchItem.from_dict(item.to_dict()) for item in aws.all] == mine.all


@pytest.mark.parametrize("case", CASES)
def test_the_accessors_answer_as_aws_does(case: tuple[Any, ...]) -> None:
    mine, aws = ours(*case), theirs(*case)
    for prop in ("success_count", "failure_count", "started_count", "total_count", "has_failure"):
        assert getattr(mine, prop) == getattr(aws, prop), prop
    assert mine.status.value == aws.status.value
    assert mine.get_results() == aws.get_results()
    assert [e and e.to_dict() for e in mine.get_errors()] == [e and e.to_dict() for e in aws.get_errors()]
    for method in ("succeeded", "failed", "started"):
        assert [i.to_dict() for i in getattr(mine, method)()] == [i.to_dict() for i in getattr(aws, method)()]


@pytest.mark.parametrize("case", CASES)
def test_throw_if_error_raises_what_aws_raises(case: tuple[Any, ...]) -> None:
    mine, aws = ours(*case), theirs(*case)
    with pytest.raises(Exception) as aws_raised:
        aws.throw_if_error()
        raise LookupError("nothing raised")
    with pytest.raises(Exception) as raised:
        mine.throw_if_error()
        raise LookupError("nothing raised")
    expected = {AwsChildContextError: ChildContextError, aws_models.BatchCompletionError: BatchCompletionError,
                LookupError: LookupError}[type(aws_raised.value)]
    assert type(raised.value) is expected
    assert str(raised.value) == str(aws_raised.value)
    if isinstance(raised.value, ChildContextError | BatchCompletionError):
        def tail(error_type: str | None) -> str | None:  # the SDKs' own types differ in their module
            return error_type and error_type.rsplit(".", 1)[-1]
        assert tail(raised.value.error_type) == tail(aws_raised.value.error_type)  # type: ignore[attr-defined]
        assert raised.value.data == aws_raised.value.data  # type: ignore[attr-defined]
        assert isinstance(raised.value.__cause__, RecordedError) == (raised.value.error_type == "ValueError")


def test_from_dict_without_a_completion_reason_infers_it_as_aws_does() -> None:
    data = ours("ALL_COMPLETED", ("SUCCEEDED", 1, None), ("FAILED", None, ERROR), ("STARTED", None, None)).to_dict()
    del data["completionReason"]
    for config, aws_config in ((None, None), (CompletionConfig(tolerated_failure_count=1),
                                              AwsCompletionConfig(tolerated_failure_count=1)),
                               (CompletionConfig(min_successful=1), AwsCompletionConfig(min_successful=1))):
        expected = aws_models.BatchResult.from_dict(data, aws_config).completion_reason.value
        assert BatchResult.from_dict(data, config).completion_reason.value == expected


def test_an_error_object_reads_as_aws_error_object_does() -> None:
    mine, aws = ErrorObject.from_dict(ERROR), AwsErrorObject.from_dict(ERROR)
    assert (mine.message, mine.type, mine.data, mine.stack_trace) == (aws.message, aws.type, aws.data,
                                                                      aws.stack_trace)
    assert mine.to_dict() == aws.to_dict()
    assert ErrorObject(ErrorType="E").to_dict() == AwsErrorObject(None, "E", None, None).to_dict()


def _slow_after_first(ctx: DurableContext, item: int, index: int, _items: Sequence[int]) -> int:
    if index:
        time.sleep(0.3)
        return ctx.step(lambda _: item, name=f"late-{index}")
    return item


@pytest.mark.parametrize("threads", [64, 2])
def test_every_started_item_is_in_the_result_whatever_the_timing(make_runner: MakeRunner,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 threads: int) -> None:
    """min_successful=1 over six items: the first succeeds at once; all six started, five unfinished
    (even those no thread had picked up yet)."""
    monkeypatch.setattr(concurrency, "MAX_THREADS", threads)

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> dict[str, Any]:
        config = MapConfig(completion_config=CompletionConfig.first_successful())
        return ctx.map(list(range(6)), _slow_after_first, name="first-wins", config=config).to_dict()

    result = make_runner(handler).run(None).value
    assert result["completionReason"] == "MIN_SUCCESSFUL_REACHED"
    assert [(i["index"], i["status"]) for i in result["all"]] == [(0, "SUCCEEDED")] + [
        (i, "STARTED") for i in range(1, 6)]


def test_parallel_cut_off_by_failures_keeps_its_running_branches_as_started(make_runner: MakeRunner) -> None:
    def fails(_ctx: DurableContext) -> None:
        raise KeyError("sku")

    def slow(ctx: DurableContext) -> str:
        time.sleep(0.3)
        return str(ctx.step(lambda _: "late", name="late"))

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> list[Any]:
        result = ctx.parallel([slow, fails, slow], name="cut-off")
        return [result.total_count, result.started_count, result.failure_count,
                result.completion_reason.value]

    assert make_runner(handler).run(None).value == [3, 2, 1, "FAILURE_TOLERANCE_EXCEEDED"]


def test_a_failed_item_keeps_its_original_error_type(make_runner: MakeRunner) -> None:
    def item(_ctx: DurableContext, value: str, _index: int, _items: Sequence[str]) -> str:
        if value == "bad":
            raise ValueError(f"cannot ship {value}")
        return value

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> list[Any]:
        config = MapConfig(completion_config=CompletionConfig(tolerated_failure_count=1))
        result = ctx.map(["ok", "bad"], item, name="ship", config=config)
        (error,) = result.get_errors()
        assert error is not None
        try:
            result.throw_if_error()
        except ChildContextError as exc:
            raised = [exc.error_type, exc.message]
        return [error.type, error.message, error.stack_trace is not None, raised]

    assert make_runner(handler).run(None).value == ["ValueError", "cannot ship bad", True,
                                                    ["ValueError", "cannot ship bad"]]


@pytest.mark.parametrize("size", [10, 70 * 1024])
def test_a_replayed_batch_result_equals_the_first(make_runner: MakeRunner, size: int) -> None:
    """Two invocations (a wait between): small results come from the stored payload, large ones
    (over 256 KiB, ReplayChildren) from the recorded decision and the branches' own checkpoints."""
    seen: list[dict[str, Any]] = []

    def item(ctx: DurableContext, value: int, index: int, _items: Sequence[int]) -> str:
        if value == 9:
            time.sleep(0.3)
            return str(ctx.step(lambda _: "late", name="late"))
        if value < 0:
            raise LookupError(f"item {index}")
        return str(value) * size

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> int:
        config = MapConfig(max_concurrency=2,
                           completion_config=CompletionConfig(min_successful=4, tolerated_failure_count=1))
        result = ctx.map([-1, 9, 0, 1, 2, 3], item, name="batch", config=config)
        seen.append(result.to_dict())
        ctx.wait(Duration.from_seconds(1))
        return result.total_count

    run = make_runner(handler).run(None)
    assert run.value == 6
    first, replayed = seen
    assert replayed == first
    assert [i["status"] for i in first["all"]] == ["FAILED", "STARTED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED",
                                                   "SUCCEEDED"]
    assert first["all"][0]["error"]["ErrorType"] == "LookupError"
    stored = run.get_context("batch").ContextDetails
    assert stored is not None and bool(stored.ReplayChildren) == (size > 1024)
    if stored.ReplayChildren:
        aws: aws_models.BatchResult[str] = aws_models.BatchResult.from_dict(first)
        assert json.loads(stored.Result or "") == json.loads(
            aws_models.CompletionRecord.summary_envelope(aws, "MapResult", None))


def test_an_empty_parallel_has_an_empty_result(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> dict[str, Any]:
        return ctx.parallel([], name="none", config=ParallelConfig()).to_dict()

    assert make_runner(handler).run(None).value == {"all": [], "completionReason": "ALL_COMPLETED"}


def test_a_decorated_parallel_branch_is_made_by_calling_it_with_its_arguments(make_runner: MakeRunner) -> None:
    @durable_parallel_branch(name="load-user")
    def load_user(ctx: DurableContext, user_id: str, *, suffix: str = "") -> str:
        return str(ctx.step(lambda _: f"user {user_id}{suffix}", name="load"))

    @durable_parallel_branch()
    def load_orders(ctx: DurableContext, user_id: str) -> list[str]:
        return [f"{user_id}-order"]

    @durable_execution
    def handler(event: str, ctx: DurableContext) -> list[Any]:
        return ctx.parallel([load_user(event, suffix="!"), load_orders(event)], name="load").get_results()

    result = make_runner(handler).run("u1")
    assert result.value == ["user u1!", ["u1-order"]]
    assert branch_names(result, "load", 2) == ["load-user", "parallel-branch-1"]


@pytest.mark.parametrize("name", [None, "named"])
def test_durable_parallel_branch_calls_as_aws_decorator_does(name: str | None) -> None:
    def body(ctx: Any, a: int, *, b: int = 0) -> tuple[Any, int, int]:
        return ctx, a, b

    mine, aws = durable_parallel_branch(name)(body)(1, b=2), aws_durable_parallel_branch(name)(body)(1, b=2)
    assert isinstance(mine, ParallelBranch) and isinstance(aws, AwsParallelBranch)
    assert (mine.name, mine.func("ctx")) == (aws.name, aws.func("ctx"))


def test_unnamed_branches_and_items_are_named_as_aws_names_them(make_runner: MakeRunner) -> None:
    names = ["first", None, ""]

    @durable_execution
    def handler(_event: Any, ctx: DurableContext) -> None:
        ctx.parallel([_branch_returning(1), ParallelBranch(_branch_returning(2)),
                      ParallelBranch(_branch_returning(3), name=""), ParallelBranch(_branch_returning(4), "b")],
                     name="branches")
        ctx.map([0, 1, 2], lambda _ctx, item, _i, _items: item, name="items")
        ctx.map([0, 1, 2], lambda _ctx, item, _i, _items: item, name="named-items",
                config=MapConfig(item_namer=lambda _item, i: names[i]))  # type: ignore[arg-type,return-value]

    result = make_runner(handler).run(None)
    assert branch_names(result, "branches", 4) == ["parallel-branch-0", "parallel-branch-1", "", "b"]
    assert branch_names(result, "items", 3) == ["map-item-0", "map-item-1", "map-item-2"]
    assert branch_names(result, "named-items", 3) == ["first", "map-item-1", ""]


def branch_names(result: TestResult, batch: str, count: int) -> list[str | None]:
    """The names of a batch's branches, by index (their ids derive from it)."""
    names = {op.Id: op.Name for op in result.operations}
    return [names[operation_id(result.get_context(batch).Id, i)] for i in range(count)]


def _branch_returning(value: int) -> Any:
    def branch(_ctx: DurableContext) -> int:
        return value
    return branch
