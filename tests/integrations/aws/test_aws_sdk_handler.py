"""AWS's official SDK as a client of durably: a handler written with aws-durable-execution-sdk-python
runs on durably's engine, invoked through the Lambda invocation contract, checkpointing to `durably
serve` over the Lambda API (boto3 inside AWS's SDK), in this process and with `durably serve --workers`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_durable_execution_sdk_python")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("uvicorn")

from aws_durable_execution_sdk_python.lambda_service import LambdaClient  # noqa: E402
from durably.core.engine.engine import Engine  # noqa: E402
from durably.server import BackgroundServer  # noqa: E402
from pg_store import database  # noqa: E402

HERE = Path(__file__).parent
APP = f"{HERE / 'aws_sdk_app.py'}:handler"

ServeProcess = Callable[..., tuple[subprocess.Popen[str], str]]  # the durably_serve fixture (conftest.py)


def callback_id(history: list[dict[str, Any]]) -> str | None:
    return next((e["CallbackStartedDetails"]["CallbackId"] for e in history if e["EventType"] == "CallbackStarted"),
                None)


def wait_for_callback(read_history: Any, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (found := callback_id(read_history())) is None:
        assert time.monotonic() < deadline, "the handler never created its callback"
        time.sleep(0.05)
    return found


@pytest.fixture
def aws_sdk_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(LambdaClient, "_cached_boto_client", None)  # AWS's SDK keeps one client per process
    yield
    LambdaClient._cached_boto_client = None


def test_an_aws_sdk_handler_runs_on_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               aws_sdk_env: None) -> None:
    engine = Engine(tmp_path / "durably.db", workers=2)
    with BackgroundServer(engine) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
        engine.start()
        arn = engine.start_execution(APP, {"order": "A-1"}, name="order-1")
        cid = wait_for_callback(lambda: engine.get_history(arn))
        assert engine.get_execution(arn)["Status"] == "RUNNING"
        engine.send_callback_success(cid, '{"approved": true}')
        done = engine.wait_for(arn, timeout=60)
        engine.close()
    assert done["Status"] == "SUCCEEDED", done.get("Error")
    assert json.loads(done["Result"]) == {"order": {"order": "A-1", "total": 42}, "decision": '{"approved": true}'}
    events = [(e["EventType"], e.get("Name")) for e in engine.get_history(arn)
              if e["EventType"] != "InvocationCompleted"]
    assert events == [("ExecutionStarted", "order-1"), ("StepStarted", "price"), ("StepSucceeded", "price"),
                      ("WaitStarted", "cool-off"), ("WaitSucceeded", "cool-off"), ("CallbackStarted", "approval"),
                      ("CallbackSucceeded", "approval"), ("ExecutionSucceeded", "order-1")]
    step = next(e for e in engine.get_history(arn) if e["EventType"] == "StepSucceeded")
    assert json.loads(step["StepSucceededDetails"]["Result"]["Payload"])["t"] == "m"  # AWS's own envelope serdes


def test_without_an_endpoint_the_worker_leaves_it_for_one_that_has_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_LAMBDA", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with Engine(tmp_path / "durably.db") as engine:
        arn = engine.start_execution(APP, {"order": "B-1"})
        assert engine.run_until_complete(arn, timeout=1)["Status"] == "RUNNING"  # released, never run here
        problem = engine.service.last_invocation_error(arn) or {}
        assert "AWS_ENDPOINT_URL_LAMBDA" in problem["Error"]["ErrorMessage"]


def test_durably_serve_with_workers_runs_an_aws_sdk_handler(tmp_path: Path, durably_serve: ServeProcess) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["DURABLY_DB"] = database(tmp_path / "durably.db")
    _, url = durably_serve("--workers", "2", env=env)
    client = boto3.client("lambda", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    with Engine(tmp_path / "durably.db") as engine:  # only writes the start; the server's workers run it
        arn = engine.start_execution(APP, {"order": "C-1"})
    cid = wait_for_callback(lambda: client.get_durable_execution_history(DurableExecutionArn=arn)["Events"])
    client.send_durable_execution_callback_success(CallbackId=cid, Result=b'"yes"')
    deadline = time.monotonic() + 60
    while (got := client.get_durable_execution(DurableExecutionArn=arn))["Status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert got["Status"] == "SUCCEEDED"
    assert json.loads(got["Result"])["decision"] == '"yes"'


def test_durably_run_drives_an_aws_sdk_handler_serving_its_checkpoints_meanwhile(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["DURABLY_DB"] = database(tmp_path / "durably.db")
    command = [sys.executable, "-m", "durably", "--output", "json", "run", f"{HERE / 'aws_sdk_app.py'}:quick",
               "--input", '{"prices": [2, 5]}']
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    execution = json.loads(done.stdout)
    assert execution["Status"] == "SUCCEEDED" and json.loads(execution["Result"]) == {"total": 7}
