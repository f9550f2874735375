"""Suite 9 (map): handlers written from the requirements' prose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durably import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    Duration,
    JsonSerDes,
    MapConfig,
    NestingType,
    SerDes,
    SerDesContext,
    durable_execution,
)

from .parallel import ALL, NO_STATUS, projection
from .registry import requirement


def sequential(completion: CompletionConfig | None = None, **kwargs: Any) -> MapConfig:
    if completion is None:
        return MapConfig(max_concurrency=1, **kwargs)
    return MapConfig(max_concurrency=1, completion_config=completion, **kwargs)


def fail_on(bad: str) -> Any:
    """A map function that returns its item, and raises on the item ``bad``."""
    def func(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        if item == bad or item.startswith(bad + ":"):
            raise RuntimeError(f"item {index} ({item}) failed")
        return item
    return func


@requirement("9-1")
@durable_execution
def map_basic(event: Any, context: DurableContext) -> Any:
    def greet_item(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return ctx.step(lambda _: f"Hello, {item}!", name="greet")
    return context.map(event, greet_item, name="map", config=sequential()).get_results()


@requirement("9-2")
@durable_execution
def map_without_name(event: Any, context: DurableContext) -> Any:
    return context.map(event, lambda ctx, item, index, items: item * 2, config=sequential()).get_results()


@requirement("9-3")
@durable_execution
def map_item_and_index(event: Any, context: DurableContext) -> Any:
    return context.map(event, lambda ctx, item, index, items: item + index, name="indexed",
                       config=sequential()).get_results()


@requirement("9-4")
@durable_execution
def map_empty(event: Any, context: DurableContext) -> Any:
    return context.map(event, lambda ctx, item, index, items: item, name="empty").get_results()


@requirement("9-5")
@durable_execution
def map_fail_fast(event: Any, context: DurableContext) -> Any:
    result = context.map(["ok", "fail", "never"], fail_on("fail"), name="failfast",
                         config=sequential(CompletionConfig(tolerated_failure_count=0)))
    return projection(result, *ALL)


@requirement("9-6")
@durable_execution
def map_throw_if_error(event: Any, context: DurableContext) -> Any:
    result = context.map(["fail", "never"], fail_on("fail"), name="throwing",
                         config=sequential(CompletionConfig(tolerated_failure_count=0)))
    result.throw_if_error()
    return result.get_results()


@requirement("9-7")
@durable_execution
def map_min_successful(event: Any, context: DurableContext) -> Any:
    result = context.map(["i0", "i1", "i2", "i3"], lambda ctx, item, index, items: f"done-{item}",
                         name="min-successful", config=sequential(CompletionConfig(min_successful=2)))
    return projection(result, "completionReason", "successCount", "totalCount")


@requirement("9-8")
@durable_execution
def map_tolerated_failure(event: Any, context: DurableContext) -> Any:
    result = context.map(["i0", "fail", "i2"], fail_on("fail"), name="tolerated",
                         config=sequential(CompletionConfig(tolerated_failure_count=1)))
    return projection(result, *ALL)


@requirement("9-9")
@durable_execution
def map_tolerance_exceeded(event: Any, context: DurableContext) -> Any:
    result = context.map(["fail:0", "fail:1", "i2"], fail_on("fail"), name="tolerated-exceeded",
                         config=sequential(CompletionConfig(tolerated_failure_count=1)))
    return projection(result, *NO_STATUS)


@requirement("9-10")
@durable_execution
def map_percentage_exceeded(event: Any, context: DurableContext) -> Any:
    result = context.map(["fail:0", "fail:1", "i2", "i3"], fail_on("fail"), name="tolerated-pct",
                         config=sequential(CompletionConfig(tolerated_failure_percentage=25)))
    return projection(result, *NO_STATUS)


@requirement("9-11")
@durable_execution
def map_concurrent(event: Any, context: DurableContext) -> Any:
    return context.map(["r0", "r1", "r2"], lambda ctx, item, index, items: item, name="concurrent",
                       config=MapConfig(max_concurrency=2)).get_results()


@requirement("9-12")
@durable_execution
def map_flat(event: Any, context: DurableContext) -> Any:
    def func(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return ctx.step(lambda _: item, name=f"item-{index}")
    return context.map(["fa", "fb"], func, name="flat",
                       config=sequential(nesting_type=NestingType.FLAT)).get_results()


@requirement("9-13")
@durable_execution
def map_item_namer(event: Any, context: DurableContext) -> Any:
    return context.map(event, lambda ctx, item, index, items: item * 10, name="named-items",
                       config=sequential(item_namer=lambda item, index: f"item-{item}")).get_results()


class WrappedItemSerDes(SerDes[str]):
    """Stores an item result ``v`` as ``wrapped:v`` and reads it back as ``v``."""

    PREFIX = "wrapped:"

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return self.PREFIX + value

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        if not data.startswith(self.PREFIX):
            raise ValueError(f"not a wrapped item: {data!r}")
        return data[len(self.PREFIX):]


@requirement("9-14")
@durable_execution
def map_item_serdes(event: Any, context: DurableContext) -> Any:
    return context.map(["x", "y"], lambda ctx, item, index, items: item.upper(), name="serdes",
                       config=sequential(item_serdes=WrappedItemSerDes())).get_results()


@requirement("9-15")
@durable_execution
def map_iteration_suspends(event: Any, context: DurableContext) -> Any:
    def func(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        if index == 1:
            ctx.wait(Duration.from_seconds(1))
        return ctx.step(lambda _: item, name=f"produce-{item}")
    return context.map(["r0", "r1"], func, name="suspend", config=sequential()).get_results()


LARGE_ITEM_BYTES = 70 * 1024


@requirement("9-16")
@durable_execution
def map_large_result(event: Any, context: DurableContext) -> Any:
    result = context.map([0, 1, 2, 3], lambda ctx, item, index, items: str(item) * LARGE_ITEM_BYTES, name="large",
                         config=sequential())
    return {"successCount": result.success_count, "totalCount": result.total_count}


@requirement("9-17")
@durable_execution
def map_then_wait(event: Any, context: DurableContext) -> Any:
    result = context.map(["a", "b"], lambda ctx, item, index, items: item.upper(), name="then-wait",
                         config=sequential())
    context.wait(Duration.from_seconds(1))
    return result.get_results()


@requirement("9-18")
@durable_execution
def map_failure_then_wait(event: Any, context: DurableContext) -> Any:
    result = context.map(["ok", "fail"], fail_on("fail"), name="fail-then-wait",
                         config=sequential(CompletionConfig(tolerated_failure_count=1)))
    context.wait(Duration.from_seconds(1))
    return projection(result, *ALL)


class OperationSerDes(SerDes[BatchResult[Any]]):
    """Stores a whole map result as ``OPSERDE:`` and its comma-joined results; reads it back."""

    PREFIX = "OPSERDE:"

    def serialize(self, value: BatchResult[Any], serdes_context: SerDesContext) -> str:
        return self.PREFIX + ",".join(str(v) for v in value.get_results())

    def deserialize(self, data: str, serdes_context: SerDesContext) -> BatchResult[Any]:
        if not data.startswith(self.PREFIX):
            raise ValueError(f"not an OPSERDE payload: {data!r}")
        body = data[len(self.PREFIX):]
        values = body.split(",") if body else []
        items = [BatchItem(i, BatchItemStatus.SUCCEEDED, v) for i, v in enumerate(values)]
        return BatchResult(items, CompletionReason.ALL_COMPLETED)


def op_serde_config() -> MapConfig:
    return sequential(serdes=OperationSerDes(), item_serdes=JsonSerDes())


@requirement("9-19")
@durable_execution
def map_operation_serdes(event: Any, context: DurableContext) -> Any:
    return context.map(["x", "y"], lambda ctx, item, index, items: item.upper(), name="op-serde",
                       config=op_serde_config()).get_results()


@requirement("9-20")
@durable_execution
def map_operation_serdes_replay(event: Any, context: DurableContext) -> Any:
    result = context.map(["x", "y"], lambda ctx, item, index, items: item.upper(), name="op-serde-replay",
                         config=op_serde_config())
    context.wait(Duration.from_seconds(1))
    return result.get_results()
