"""Lambda ``Invoke`` on `durably serve`: starting an execution the way the service does, through
boto3's own ``lambda`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("uvicorn")

from durably import DurableContext, durable_execution  # noqa: E402
from durably.core.engine.engine import Engine  # noqa: E402
from durably.server import BackgroundServer  # noqa: E402


@durable_execution
def orders(event: Any, ctx: DurableContext) -> Any:
    total = ctx.step(lambda _: sum(event["prices"]), name="total")
    if total < 0:
        raise ValueError(f"a negative total: {total}")
    return {"order": event["order"], "total": total}


@durable_execution
def approvals(event: Any, ctx: DurableContext) -> Any:
    return ctx.wait_for_callback(lambda callback_id, _: None, name="approve")


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[Engine, Any]]:
    engine = Engine(tmp_path / "durably.db", workers=2)
    engine.register_durable_function("orders", orders)
    engine.register_durable_function("approvals", approvals)
    engine.start()
    with BackgroundServer(engine, sync_invoke_seconds=1.0) as server:
        yield engine, boto3.client("lambda", endpoint_url=server.url, region_name="us-east-1",
                                   aws_access_key_id="local", aws_secret_access_key="local")
    engine.close()


def test_a_synchronous_invoke_waits_for_the_whole_execution(endpoint: tuple[Engine, Any]) -> None:
    engine, client = endpoint
    answer = client.invoke(FunctionName="orders", Payload=json.dumps({"order": "A-1", "prices": [2, 3]}))
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"order": "A-1", "total": 5}
    assert answer["ExecutedVersion"] == "$LATEST"
    assert engine.get_execution(answer["DurableExecutionArn"])["Status"] == "SUCCEEDED"


def test_a_failed_execution_is_a_function_error(endpoint: tuple[Engine, Any]) -> None:
    _, client = endpoint
    answer = client.invoke(FunctionName="orders", Payload=json.dumps({"order": "B-1", "prices": [-4]}))
    assert answer["FunctionError"] == "Unhandled"
    failure = json.loads(answer["Payload"].read())
    assert failure["errorType"] == "ValueError" and "negative total" in failure["errorMessage"]


def test_an_asynchronous_invoke_answers_at_once_and_a_name_makes_it_idempotent(
        endpoint: tuple[Engine, Any]) -> None:
    _, client = endpoint
    first = client.invoke(FunctionName="approvals", InvocationType="Event", DurableExecutionName="req-1",
                          Payload=b'{"who": "ann"}')
    assert first["StatusCode"] == 202
    arn = first["DurableExecutionArn"]
    assert "/durable-execution/req-1/" in arn
    again = client.invoke(FunctionName="approvals", InvocationType="Event", DurableExecutionName="req-1",
                          Payload=b'{"who": "ann"}')
    assert again["DurableExecutionArn"] == arn
    with pytest.raises(client.exceptions.DurableExecutionAlreadyStartedException):
        client.invoke(FunctionName="approvals", InvocationType="Event", DurableExecutionName="req-1",
                      Payload=b'{"who": "bob"}')
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"


def test_a_synchronous_invoke_gives_up_waiting_but_the_execution_goes_on(endpoint: tuple[Engine, Any]) -> None:
    engine, client = endpoint
    answer = client.invoke(FunctionName="approvals", Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Payload"].read())["errorType"] == "Sandbox.Timedout"
    assert engine.get_execution(answer["DurableExecutionArn"])["Status"] == "RUNNING"


def test_a_dry_run_starts_nothing(endpoint: tuple[Engine, Any]) -> None:
    engine, client = endpoint
    assert client.invoke(FunctionName="orders", InvocationType="DryRun", Payload=b"{}")["StatusCode"] == 204
    assert engine.list_executions(function_name="orders")["DurableExecutions"] == []


def test_function_names_qualifiers_and_bad_payloads(endpoint: tuple[Engine, Any]) -> None:
    engine, client = endpoint
    arn = engine.service.function_arn("orders")
    assert arn.endswith(":$LATEST")
    unqualified = arn.rsplit(":", 1)[0]
    for name, qualifier in ((unqualified, None), ("orders:$LATEST", None), ("orders", "$LATEST")):
        options = {"Qualifier": qualifier} if qualifier else {}
        answer = client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"order": "C", "prices": []}',
                               **options)
        assert answer["StatusCode"] == 202
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="no durable function 'nope'"):
        client.invoke(FunctionName="nope", Payload=b"{}")
    with pytest.raises(client.exceptions.ResourceNotFoundException, match=r"\$LATEST only"):
        client.invoke(FunctionName="orders", Qualifier="7", Payload=b"{}")
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="give one"):
        client.invoke(FunctionName="orders:prod", Qualifier="$LATEST", Payload=b"{}")
    with pytest.raises(client.exceptions.InvalidRequestContentException, match="JSON"):
        client.invoke(FunctionName="orders", Payload=b"{not json")
