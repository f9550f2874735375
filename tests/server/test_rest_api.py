"""`durably serve`'s Lambda durable routes, driven by boto3's own `lambda` client (botocore's
service model builds every request and parses every answer, errors included)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
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
def approval(event: Any, ctx: DurableContext) -> Any:
    packed = ctx.step(lambda step: f"packed {event['order']}", name="pack")
    answer = ctx.wait_for_callback(lambda callback_id, _: None, name="approve")
    return {"packed": packed, "answer": answer}


class Served(BackgroundServer):
    """The endpoint and a boto3 ``lambda`` client of it."""

    def __init__(self, engine: Engine, **options: Any) -> None:
        super().__init__(engine, **options)
        self.client = boto3.client("lambda", endpoint_url=self.url, region_name="us-east-1",
                                   aws_access_key_id="local", aws_secret_access_key="local")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Engine, Served]]:
    engine = Engine(tmp_path / "durably.db")
    found = Served(engine)
    yield engine, found
    found.close()
    engine.close()


def started(engine: Engine, order: str = "A-1") -> str:
    arn = engine.start_execution(approval, {"order": order})
    assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    return arn


def test_get_history_and_list_through_boto3(served: tuple[Engine, Served]) -> None:
    engine, server = served
    arn = started(engine)
    got = server.client.get_durable_execution(DurableExecutionArn=arn)
    assert got["Status"] == "RUNNING" and got["DurableExecutionArn"] == arn
    assert json.loads(got["InputPayload"]) == {"order": "A-1"}
    assert got["StartTimestamp"].year >= 2026  # epoch seconds on the wire, a datetime in boto3
    events = server.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    assert [e["EventType"] for e in events][:3] == ["ExecutionStarted", "StepStarted", "StepSucceeded"]
    function = arn.split(":function:")[1].split(":")[0]
    listed = server.client.list_durable_executions_by_function(FunctionName=function, Statuses=["RUNNING"])
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]
    assert server.client.list_durable_executions_by_function(
        FunctionName=function, Statuses=["SUCCEEDED"])["DurableExecutions"] == []


def test_history_pages(served: tuple[Engine, Served]) -> None:
    engine, server = served
    arn = started(engine)
    first = server.client.get_durable_execution_history(DurableExecutionArn=arn, MaxItems=2)
    assert len(first["Events"]) == 2 and first["NextMarker"]
    rest = server.client.get_durable_execution_history(DurableExecutionArn=arn, Marker=first["NextMarker"])
    assert rest["Events"][0]["EventId"] == 3


def test_a_callback_answered_through_boto3_resumes_the_execution(served: tuple[Engine, Served]) -> None:
    engine, server = served
    arn = started(engine)
    events = server.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    callback_id = next(e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted")
    server.client.send_durable_execution_callback_heartbeat(CallbackId=callback_id)
    server.client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"yes"')
    assert engine.run_until_complete(arn)["Status"] == "SUCCEEDED"
    got = server.client.get_durable_execution(DurableExecutionArn=arn)
    assert json.loads(got["Result"]) == {"packed": "packed A-1", "answer": "\"yes\""}  # the raw text sent
    with pytest.raises(server.client.exceptions.ResourceNotFoundException):
        server.client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"again"')


def test_a_callback_failure_and_a_stop(served: tuple[Engine, Served]) -> None:
    engine, server = served
    failing, stopping = started(engine, "F-1"), started(engine, "S-1")
    events = server.client.get_durable_execution_history(DurableExecutionArn=failing)["Events"]
    callback_id = next(e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted")
    server.client.send_durable_execution_callback_failure(
        CallbackId=callback_id, Error={"ErrorType": "Rejected", "ErrorMessage": "manager said no"})
    assert engine.run_until_complete(failing)["Status"] == "FAILED"
    stopped = server.client.stop_durable_execution(DurableExecutionArn=stopping,
                                                   Error={"ErrorType": "Ops", "ErrorMessage": "not today"})
    assert stopped["StopTimestamp"].year >= 2026
    assert server.client.get_durable_execution(DurableExecutionArn=stopping)["Status"] == "STOPPED"
    with pytest.raises(server.client.exceptions.InvalidParameterValueException):
        server.client.stop_durable_execution(DurableExecutionArn=stopping)


def test_errors_are_aws_errors(served: tuple[Engine, Served]) -> None:
    engine, server = served
    missing = "arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST/durable-execution/x/0123"
    with pytest.raises(server.client.exceptions.ResourceNotFoundException):
        server.client.get_durable_execution(DurableExecutionArn=missing)
    with pytest.raises(server.client.exceptions.ResourceNotFoundException):
        server.client.send_durable_execution_callback_success(CallbackId="no-such-callback", Result=b"1")
    arn = started(engine)
    with pytest.raises(server.client.exceptions.InvalidParameterValueException):
        server.client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken="stale", Updates=[])


def test_bad_json_is_a_400_never_a_500(served: tuple[Engine, Served]) -> None:
    engine, server = served
    arn = started(engine)
    url = f"{server.url}/2025-12-01/durable-executions/{urllib.parse.quote(arn, safe='')}/checkpoint"
    request = urllib.request.Request(url, data=b"{not json", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    body = json.loads(raised.value.read())
    assert body["__type"] == "InvalidParameterValueException" and "not JSON" in body["message"]


def test_checkpoint_and_state_through_boto3(served: tuple[Engine, Served]) -> None:
    engine, server = served
    arn = engine.start_execution(approval, {"order": "C-1"})
    claim = engine.service.claim(arn=arn)
    assert claim is not None
    answer = server.client.checkpoint_durable_execution(
        DurableExecutionArn=arn, CheckpointToken=claim.token, ClientToken="retry-safe-1",
        Updates=[{"Id": "step-1", "Type": "STEP", "Action": "START", "Name": "pack"},
                 {"Id": "step-1", "Type": "STEP", "Action": "SUCCEED", "Payload": '"packed"'}])
    token = answer["CheckpointToken"]
    assert token and token != claim.token
    (op,) = [o for o in answer["NewExecutionState"]["Operations"] if o["Id"] == "step-1"]
    assert op["Status"] == "SUCCEEDED" and op["EndTimestamp"].year >= 2026
    state = server.client.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken=token)
    assert {o["Id"] for o in state["Operations"]} >= {"step-1"}
    with pytest.raises(server.client.exceptions.InvalidParameterValueException):
        server.client.checkpoint_durable_execution(  # the old token: fenced
            DurableExecutionArn=arn, CheckpointToken=claim.token,
            Updates=[{"Id": "step-2", "Type": "STEP", "Action": "START"}])


def test_a_checkpoint_repeated_with_its_client_token_gets_the_first_answer(served: tuple[Engine, Served]) -> None:
    engine, server = served
    arn = engine.start_execution(approval, {"order": "T-1"})
    claim = engine.service.claim(arn=arn)
    assert claim is not None
    update = {"Id": "a1b2", "Type": "STEP", "SubType": "Step", "Action": "START", "Name": "pack"}
    first = server.client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=claim.token,
                                                       ClientToken="retry-1", Updates=[update])
    again = server.client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=claim.token,
                                                       ClientToken="retry-1", Updates=[update])
    assert again["CheckpointToken"] == first["CheckpointToken"]
    assert [op["Name"] for op in again["NewExecutionState"]["Operations"]] == ["pack"]
    with pytest.raises(server.client.exceptions.InvalidParameterValueException, match="Invalid checkpoint token"):
        server.client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=claim.token,
                                                   ClientToken="retry-2", Updates=[update])
