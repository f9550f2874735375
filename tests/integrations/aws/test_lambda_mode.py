"""Lambda mode against `durably serve`: the engine invokes handlers through the Lambda invocation
contract, and they checkpoint and page their state over HTTP with boto3 (durably.integrations.aws),
as they do on AWS Lambda. The histories equal those of the same handlers run in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("uvicorn")

from botocore.exceptions import ClientError  # noqa: E402
from durably import (  # noqa: E402
    DurableContext,
    Duration,
    durable_execution,
)
from durably.core.engine import lambda_contract  # noqa: E402
from durably.core.engine.clock import SkippingClock  # noqa: E402
from durably.core.engine.engine import Engine  # noqa: E402
from durably.core.errors import CheckpointError, ExecutionError, GetExecutionStateError  # noqa: E402
from durably.core.limits import INLINE_EXECUTION_RESULT  # noqa: E402
from durably.core.model import InvocationOutput  # noqa: E402
from durably.integrations.aws import CheckpointRefused, LambdaBackend, default_client  # noqa: E402
from durably.integrations.aws._backend import _client_error  # noqa: E402
from durably.server import BackgroundServer  # noqa: E402

from .lambda_handlers import ATTEMPTS, basics, pricing, run_answering_callbacks, shape  # noqa: E402

RUNS: list[int] = []


def square(i: int) -> Any:
    def body(_: Any) -> int:
        RUNS.append(i)
        return i * i
    return body


@durable_execution
def many_steps(event: Any, ctx: DurableContext) -> Any:
    squares = [ctx.step(square(i), name=f"square {i}") for i in range(event["n"])]
    ctx.wait(Duration.from_seconds(1), name="then")  # the second invocation replays them all
    return squares


@pytest.fixture
def lambda_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    engine = Engine(tmp_path / "lambda.db", clock=SkippingClock(), invoke_through_lambda=True)
    engine.register_durable_function("pricing", pricing)
    with BackgroundServer(engine) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
        for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        default_client.cache_clear()
        yield engine
        default_client.cache_clear()
    engine.close()


def test_the_basics_run_through_the_lambda_api_as_they_run_in_process(lambda_engine: Engine,
                                                                      tmp_path: Path) -> None:
    ATTEMPTS.clear()
    event = {"order": "A-1", "items": ["cup", "pot"]}
    execution, through_lambda = run_answering_callbacks(lambda_engine, basics, event, "basics")
    assert execution["Status"] == "SUCCEEDED", execution.get("Error")
    ATTEMPTS.clear()
    with Engine(tmp_path / "local.db", clock=SkippingClock()) as local:
        local.register_durable_function("pricing", pricing)
        local_execution, in_process = run_answering_callbacks(local, basics, event, "basics")
    assert local_execution["Status"] == "SUCCEEDED"
    assert shape(through_lambda) == shape(in_process)
    assert [e for e in shape(through_lambda)[0] if e[2] == "pay"][-1][0] == "StepSucceeded"
    assert json.loads(execution["Result"]) == {"paid": "paid A-1", "packed": ["CUP", "POT"], "price": 20,
                                               "answer": '"ok"'}


def test_state_beyond_the_envelope_is_paged(lambda_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_contract, "ENVELOPE_PAGE", 3)
    RUNS.clear()
    arn = lambda_engine.start_execution(many_steps, {"n": 7})
    done = lambda_engine.run_until_complete(arn, skip_time=True)
    assert json.loads(done["Result"]) == [i * i for i in range(7)]
    assert RUNS == list(range(7))  # replayed from pages of 3: no step ran twice


def test_a_stale_token_stops_the_invocation_for_lambda_to_retry(lambda_engine: Engine) -> None:
    arn = lambda_engine.start_execution(many_steps, {"n": 2})
    claim = lambda_engine.service.claim(arn=arn)
    assert claim is not None
    event = lambda_contract.envelope(lambda_engine.service, claim)
    lambda_engine.service.checkpoint(arn, claim.token, [])  # the token moves on: the envelope's is stale
    with pytest.raises(CheckpointError, match="Invalid checkpoint token"):
        many_steps(event, None)


def test_an_event_that_is_not_a_durable_invocation_is_refused() -> None:
    with pytest.raises(ExecutionError, match="not a durable invocation"):
        many_steps({"n": 2}, None)


def test_an_oversize_step_result_fails_that_step_naming_it(lambda_engine: Engine) -> None:
    @durable_execution
    def oversize(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda _: "x" * (1024 * 1024 + 1), name="too big")

    lambda_engine.register_durable_function("oversize", oversize)
    arn = lambda_engine.start_execution("oversize", {})
    execution = lambda_engine.run_until_complete(arn, skip_time=True)
    assert execution["Status"] == "FAILED"
    assert "too big" in execution["Error"]["ErrorMessage"] and "1048576" in execution["Error"]["ErrorMessage"]


def test_a_result_too_big_for_the_response_is_checkpointed_then_returned_empty(lambda_engine: Engine) -> None:
    big = "x" * INLINE_EXECUTION_RESULT  # + 2 quotes as JSON: over Lambda's response, within the limit

    @durable_execution
    def large(event: Any, ctx: DurableContext) -> Any:
        return big

    lambda_engine.register_durable_function("large", large)
    arn = lambda_engine.start_execution("large", {})
    claim = lambda_engine.service.claim(arn=arn)
    assert claim is not None
    output = large(lambda_contract.envelope(lambda_engine.service, claim), None)
    assert output == {"Status": "SUCCEEDED", "Result": ""}
    execution = lambda_engine.get_execution(arn)
    assert execution["Status"] == "SUCCEEDED"
    assert execution["Result"] == json.dumps(big)
    lambda_engine.service.complete_invocation(claim, InvocationOutput.model_validate(output))
    assert lambda_engine.get_execution(arn)["Result"] == json.dumps(big)


def client_error(status: int, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "CheckpointDurableExecution")


@pytest.mark.parametrize(("status", "code", "message", "kind"), [
    (400, "InvalidParameterValueException", "Invalid checkpoint token", CheckpointError),
    (429, "TooManyRequestsException", "Rate exceeded", CheckpointError),
    (503, "ServiceException", "try later", CheckpointError),
    (400, "InvalidParameterValueException", "Payload too large", CheckpointRefused),
    (404, "ResourceNotFoundException", "no such execution", CheckpointRefused),
])
def test_which_service_errors_fail_the_execution(status: int, code: str, message: str, kind: type) -> None:
    """As AWS's SDK classifies them: 4xx fail the execution, except throttling and a stale token."""
    assert type(_client_error(client_error(status, code, message), "checkpoint", CheckpointError)) is kind
    state = _client_error(client_error(status, code, message), "state", GetExecutionStateError)
    assert isinstance(state, GetExecutionStateError if kind is CheckpointError else CheckpointRefused)


def test_a_refused_checkpoint_fails_the_invocation(lambda_engine: Engine) -> None:
    arn = lambda_engine.start_execution(many_steps, {"n": 1})
    claim = lambda_engine.service.claim(arn=arn)
    assert claim is not None
    event = lambda_contract.envelope(lambda_engine.service, claim)
    event["DurableExecutionArn"] = arn.replace(arn.rsplit("/", 1)[1], "0" * 32)  # no such execution: a 404
    event["InitialExecutionState"]["Operations"][0]["Id"] = "0" * 32
    output = many_steps(event, None)
    assert output["Status"] == "FAILED" and "ResourceNotFoundException" in output["Error"]["ErrorMessage"]
    assert isinstance(LambdaBackend(boto3.client("lambda")), LambdaBackend)


def test_a_state_read_refused_for_good_fails_the_invocation(lambda_engine: Engine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_contract, "ENVELOPE_PAGE", 1)
    arn = lambda_engine.start_execution(many_steps, {"n": 2})
    lambda_engine.run_until_suspended(arn)  # both steps done, waiting
    lambda_engine.advance_time(2)
    lambda_engine.service.fire_due_timers()
    claim = lambda_engine.service.claim(arn=arn)
    assert claim is not None
    event = lambda_contract.envelope(lambda_engine.service, claim)
    assert event["InitialExecutionState"]["NextMarker"]
    event["InitialExecutionState"]["NextMarker"] = "not-a-marker"
    output = many_steps(event, None)
    assert output["Status"] == "FAILED" and "InvalidParameterValueException" in output["Error"]["ErrorMessage"]
