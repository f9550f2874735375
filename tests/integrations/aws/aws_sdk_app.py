"""A handler written with AWS's own SDK (aws-durable-execution-sdk-python), unmodified: durably runs
it through the Lambda invocation contract, its checkpoints going to `durably serve`."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:  # type: ignore[type-arg]
    order = context.step(lambda _: {"order": event["order"], "total": 42}, name="price")
    context.wait(Duration.from_seconds(1), name="cool-off")
    callback = context.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_minutes(5)))
    decision = callback.result()
    return {"order": order, "decision": decision}


@durable_execution
def quick(event: dict, context: DurableContext) -> dict:  # type: ignore[type-arg]
    total = context.step(lambda _: sum(event["prices"]), name="total")
    context.wait(Duration.from_seconds(1), name="settle")
    return {"total": total}
