"""The AWS CLI (``awscli`` 1.x from PyPI, its own copy of botocore; blobs are raw text there, so no
``--cli-binary-format`` as in version 2) against `durably serve`, run as a
user runs it: a subprocess with ``--endpoint-url``; signed with a profile when the server asks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("awscli")
pytest.importorskip("uvicorn")

from durably import DurableContext, durable_execution
from durably.core.engine.engine import Engine
from durably.server import AccessKey, BackgroundServer


@durable_execution
def approvals(event: Any, ctx: DurableContext) -> Any:
    item = ctx.step(lambda _: f"item {event['item']}", name="reserve")
    answer = ctx.wait_for_callback(lambda callback_id, _: None, name="approve")
    return {"item": item, "answer": answer}


class AwsCli:
    """``aws lambda ...`` on one endpoint, with credentials from a profile file of its own."""

    def __init__(self, url: str, home: Path, key: AccessKey) -> None:
        home.mkdir(exist_ok=True)
        (home / "credentials").write_text(
            f"[durably]\naws_access_key_id = {key.access_key_id}\naws_secret_access_key = {key.secret_access_key}\n"
            "[wrong]\naws_access_key_id = {key.access_key_id}\naws_secret_access_key = not-the-secret\n"
            .replace("{key.access_key_id}", key.access_key_id))
        (home / "config").write_text("[profile durably]\nregion = us-east-1\n[profile wrong]\nregion = us-east-1\n")
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"), AWS_CONFIG_FILE=str(home / "config"))

    def run(self, *args: str, profile: str = "durably", check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "awscli", "lambda", *args, "--endpoint-url", self.url,
                               "--profile", profile, "--output", "json"],
                              env=self.env, capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


def cli_for(tmp_path: Path, signed: bool) -> Iterator[tuple[Engine, AwsCli]]:
    engine = Engine(tmp_path / "durably.db", workers=2)
    engine.register_durable_function("approvals", approvals)
    engine.start()
    key = AccessKey("AKIDURABLYTEST", "s3cr3t/with+chars")
    with BackgroundServer(engine, access_key=key if signed else None) as server:
        yield engine, AwsCli(server.url, tmp_path / "aws", key)
    engine.close()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[Engine, AwsCli]]:
    yield from cli_for(tmp_path, signed=False)


@pytest.fixture
def signed_cli(tmp_path: Path) -> Iterator[tuple[Engine, AwsCli]]:
    yield from cli_for(tmp_path, signed=True)


def started(engine: Engine, aws: AwsCli, tmp_path: Path, item: str) -> str:
    out = aws.json("invoke", "--function-name", "approvals", "--invocation-type", "Event",
                   "--payload", json.dumps({"item": item}),
                   "--durable-execution-name", f"order-{item}", str(tmp_path / "out.json"))
    assert out["StatusCode"] == 202
    arn: str = out["DurableExecutionArn"]
    return arn


def callback_id(aws: AwsCli, arn: str) -> str:
    for _ in range(200):
        events = aws.json("get-durable-execution-history", "--durable-execution-arn", arn)["Events"]
        found = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
        if found:
            return str(found[0])
    raise AssertionError(f"{arn} never waited on its callback")


def test_the_aws_cli_starts_reads_answers_and_stops(cli: tuple[Engine, AwsCli], tmp_path: Path) -> None:
    engine, aws = cli
    arn = started(engine, aws, tmp_path, "A")
    got = aws.json("get-durable-execution", "--durable-execution-arn", arn)
    assert got["DurableExecutionArn"] == arn and got["Status"] == "RUNNING"
    assert got["StartTimestamp"] > 1.7e9  # CLI 1.x prints the wire's epoch seconds as they came
    history = aws.json("get-durable-execution-history", "--durable-execution-arn", arn)["Events"]
    assert history[0]["EventType"] == "ExecutionStarted"
    listed = aws.json("list-durable-executions-by-function", "--function-name", "approvals",
                      "--statuses", "RUNNING")["DurableExecutions"]
    assert [e["DurableExecutionArn"] for e in listed] == [arn]
    aws.run("send-durable-execution-callback-success", "--callback-id", callback_id(aws, arn),
            "--result", '{"approved": true}')
    assert engine.wait_for(arn, timeout=30)["Status"] == "SUCCEEDED"
    assert json.loads(aws.json("get-durable-execution", "--durable-execution-arn", arn)["Result"]) == {
        "item": "item A", "answer": '{"approved": true}'}

    other = started(engine, aws, tmp_path, "B")
    stopped = aws.json("stop-durable-execution", "--durable-execution-arn", other)
    assert stopped["StopTimestamp"] > 1.7e9
    assert aws.json("get-durable-execution", "--durable-execution-arn", other)["Status"] == "STOPPED"


def test_the_aws_cli_reports_the_server_errors_by_name(cli: tuple[Engine, AwsCli]) -> None:
    _, aws = cli
    missing = aws.run("get-durable-execution", "--durable-execution-arn",
                      "arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST/durable-execution/x/0123",
                      check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_a_signed_server_takes_the_profile_and_refuses_the_rest(signed_cli: tuple[Engine, AwsCli],
                                                               tmp_path: Path) -> None:
    engine, aws = signed_cli
    arn = started(engine, aws, tmp_path, "S")
    assert aws.json("get-durable-execution", "--durable-execution-arn", arn)["Status"] == "RUNNING"
    wrong = aws.run("get-durable-execution", "--durable-execution-arn", arn, profile="wrong", check=False)
    assert wrong.returncode != 0 and "InvalidSignatureException" in wrong.stderr
    unsigned = aws.run("get-durable-execution", "--durable-execution-arn", arn, "--no-sign-request", check=False)
    assert unsigned.returncode != 0 and "MissingAuthenticationTokenException" in unsigned.stderr
