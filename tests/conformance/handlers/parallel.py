"""Suite 8 (parallel): handlers written from the requirements' prose."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from durably import (
    BatchResult,
    CompletionConfig,
    DurableContext,
    Duration,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    SerDes,
    SerDesContext,
    durable_execution,
)

from .registry import requirement

Branch = Callable[[DurableContext], Any]


def sequential(completion: CompletionConfig | None = None, **kwargs: Any) -> ParallelConfig:
    if completion is None:
        return ParallelConfig(max_concurrency=1, **kwargs)
    return ParallelConfig(max_concurrency=1, completion_config=completion, **kwargs)


def returns(value: Any) -> Branch:
    return lambda ctx: value


def fails(message: str = "branch failed") -> Branch:
    def branch(ctx: DurableContext) -> Any:
        raise RuntimeError(message)
    return branch


def step_returning(value: Any) -> Branch:
    return lambda ctx: ctx.step(lambda _: value, name=f"produce-{value}")


def projection(result: BatchResult[Any], *fields: str) -> dict[str, Any]:
    values = {
        "completionReason": str(result.completion_reason.value),
        "status": str(result.status.value),
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }
    return {f: values[f] for f in fields}


ALL = ("completionReason", "status", "successCount", "failureCount", "totalCount")
NO_STATUS = ("completionReason", "successCount", "failureCount", "totalCount")


@requirement("8-1")
@durable_execution
def parallel_basic(event: Any, context: DurableContext) -> Any:
    result = context.parallel([step_returning("task-1"), step_returning("task-2")], name="parallel",
                              config=sequential())
    return result.get_results()


@requirement("8-2")
@durable_execution
def parallel_without_name(event: Any, context: DurableContext) -> Any:
    return context.parallel([returns("alpha"), returns("beta")], config=sequential()).get_results()


@requirement("8-3")
@durable_execution
def parallel_named_branches(event: Any, context: DurableContext) -> Any:
    branches = [ParallelBranch(returns("one"), name="first"), ParallelBranch(returns("two"), name="second")]
    return context.parallel(branches, name="named", config=sequential()).get_results()


@requirement("8-4")
@durable_execution
def parallel_heterogeneous(event: Any, context: DurableContext) -> Any:
    branches = [returns("hello"), returns(42), returns({"k": "v"})]
    return context.parallel(branches, name="hetero", config=sequential()).get_results()


@requirement("8-5")
@durable_execution
def parallel_empty(event: Any, context: DurableContext) -> Any:
    return context.parallel([], name="empty").get_results()


@requirement("8-6")
@durable_execution
def parallel_fail_fast(event: Any, context: DurableContext) -> Any:
    result = context.parallel([returns("ok"), fails(), returns("never")], name="failfast",
                              config=sequential(CompletionConfig(tolerated_failure_count=0)))
    return projection(result, *ALL)


@requirement("8-7")
@durable_execution
def parallel_throw_if_error(event: Any, context: DurableContext) -> Any:
    result = context.parallel([fails("branch 0 failed"), returns("never")], name="throwing",
                              config=sequential(CompletionConfig(tolerated_failure_count=0)))
    result.throw_if_error()
    return result.get_results()


@requirement("8-8")
@durable_execution
def parallel_min_successful(event: Any, context: DurableContext) -> Any:
    branches = [returns(f"b{i}") for i in range(4)]
    result = context.parallel(branches, name="min-successful", config=sequential(CompletionConfig(min_successful=2)))
    return projection(result, "completionReason", "successCount", "totalCount")


@requirement("8-9")
@durable_execution
def parallel_tolerated_failures(event: Any, context: DurableContext) -> Any:
    result = context.parallel([returns("b0"), fails(), returns("b2")], name="tolerated",
                              config=sequential(CompletionConfig(tolerated_failure_count=1)))
    return projection(result, *ALL)


@requirement("8-10")
@durable_execution
def parallel_tolerance_exceeded(event: Any, context: DurableContext) -> Any:
    result = context.parallel([fails(), fails(), returns("b2")], name="tolerated-exceeded",
                              config=sequential(CompletionConfig(tolerated_failure_count=1)))
    return projection(result, *NO_STATUS)


@requirement("8-11")
@durable_execution
def parallel_concurrent(event: Any, context: DurableContext) -> Any:
    branches = [returns("r0"), returns("r1"), returns("r2")]
    return context.parallel(branches, name="concurrent", config=ParallelConfig(max_concurrency=2)).get_results()


@requirement("8-12")
@durable_execution
def parallel_flat(event: Any, context: DurableContext) -> Any:
    return context.parallel([step_returning("fa"), step_returning("fb")], name="flat",
                            config=sequential(nesting_type=NestingType.FLAT)).get_results()


@requirement("8-13")
@durable_execution
def parallel_percentage_exceeded(event: Any, context: DurableContext) -> Any:
    branches = [fails(), fails(), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="tolerated-pct",
                              config=sequential(CompletionConfig(tolerated_failure_percentage=25)))
    return projection(result, *NO_STATUS)


@requirement("8-14")
@durable_execution
def parallel_branch_suspends(event: Any, context: DurableContext) -> Any:
    def waits_then_returns(ctx: DurableContext) -> str:
        ctx.wait(Duration.from_seconds(2))
        return "b1"
    result = context.parallel([step_returning("b0"), waits_then_returns], name="replay", config=sequential())
    return result.get_results()


class WrappingSerDes(SerDes[Any]):
    """Stores ``v`` as ``{"wrapped": v}`` and reads it back as ``v``."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return json.dumps({"wrapped": value})

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)["wrapped"]


@requirement("8-15")
@durable_execution
def parallel_item_serdes(event: Any, context: DurableContext) -> Any:
    return context.parallel([returns("x"), returns("y")], name="serde",
                            config=sequential(item_serdes=WrappingSerDes())).get_results()


@requirement("8-16")
@durable_execution
def parallel_all_fail_tolerated(event: Any, context: DurableContext) -> Any:
    result = context.parallel([fails(), fails(), fails()], name="all-fail",
                              config=sequential(CompletionConfig(tolerated_failure_count=3)))
    return projection(result, *ALL)


@requirement("8-17")
@durable_execution
def parallel_min_successful_not_reached(event: Any, context: DurableContext) -> Any:
    result = context.parallel([returns("b0"), fails(), returns("b2")], name="min-not-reached",
                              config=sequential(CompletionConfig(min_successful=3)))
    return projection(result, *ALL)


@requirement("8-18")
@durable_execution
def parallel_combined_criteria(event: Any, context: DurableContext) -> Any:
    branches = [fails(), fails(), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="combined",
                              config=sequential(CompletionConfig(min_successful=3, tolerated_failure_count=1)))
    return projection(result, *NO_STATUS)


@requirement("8-19")
@durable_execution
def parallel_zero_concurrency(event: Any, context: DurableContext) -> Any:
    return context.parallel([returns("a"), returns("b")], name="bad-concurrency",
                            config=ParallelConfig(max_concurrency=0)).get_results()


@requirement("8-20")
@durable_execution
def parallel_accessors(event: Any, context: DurableContext) -> Any:
    result = context.parallel([returns("b0"), fails(), returns("b2")], name="accessors",
                              config=sequential(CompletionConfig(tolerated_failure_count=1)))
    return {"hasFailure": result.has_failure, "successCount": len(result.succeeded()),
            "failureCount": len(result.failed()), "errorCount": len(result.get_errors())}


@requirement("8-21")
@durable_execution
def parallel_nested(event: Any, context: DurableContext) -> Any:
    def branch_a(ctx: DurableContext) -> Any:
        inner = ctx.parallel([step_returning("i1"), step_returning("i2")], name="inner", config=sequential())
        return inner.get_results()
    return context.parallel([branch_a], name="outer", config=sequential()).get_results()


@requirement("8-22")
@durable_execution
def parallel_percentage_boundary(event: Any, context: DurableContext) -> Any:
    branches = [fails(), returns("b1"), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="pct-boundary",
                              config=sequential(CompletionConfig(tolerated_failure_percentage=25)))
    return projection(result, *ALL)
