"""durably handlers under AWS's own emulator (aws-durable-execution-sdk-python-testing's
`dex-local-runner start-server`): the emulator invokes them through a local Lambda Invoke shim with
the durable envelope, and they checkpoint back to it with durably.integrations.aws (boto3, through
AWS_ENDPOINT_URL_LAMBDA). Their histories are compared with the same handlers' on the embedded engine.

Where the emulator differs from the real service (conformance/EXCEPTIONS.md and PROTOCOL §7.6) the
comparison leaves it out: its InvocationCompleted events come at other points (durably's engine
batches invocations differently) and carry no details; its ARNs are `<uuid>/<uuid>`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("aws_durable_execution_sdk_python_testing")

from botocore.exceptions import ClientError  # noqa: E402
from durably.core.engine.clock import SkippingClock  # noqa: E402
from durably.core.engine.engine import Engine  # noqa: E402

from .lambda_handlers import basics, pricing, run_answering_callbacks, shape  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
HANDLERS = HERE / "lambda_handlers.py"
ORDER = ROOT / "examples" / "order_fulfilment.py"
FUNCTIONS = {"basics": f"{HANDLERS}:basics", "pricing": f"{HANDLERS}:pricing", "orders": f"{ORDER}:handler"}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}


class Emulator:
    """AWS's emulator on one port, and the Lambda shim it invokes on another."""

    def __init__(self, workdir: Path, ports: Any) -> None:
        """``ports``: the local_ports fixture (conftest.py)."""
        runner = shutil.which("dex-local-runner", path=str(Path(sys.executable).parent))
        if runner is None:
            pytest.skip("dex-local-runner is not installed")
        self.port, shim_port = ports.free(), ports.free()
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION="us-east-1")
        configs = {name: {"DurableConfig": {"ExecutionTimeout": 300}} for name in FUNCTIONS}
        self.shim = subprocess.Popen(
            [sys.executable, str(HERE / "lambda_shim.py"), str(shim_port),
             *(f"{name}={ref}" for name, ref in FUNCTIONS.items())],
            env={**env, "AWS_ENDPOINT_URL_LAMBDA": self.url}, cwd=workdir,
            stdout=subprocess.DEVNULL, stderr=open(workdir / "shim.log", "wb"))
        self.runner = subprocess.Popen(
            [runner, "start-server", "--host", "127.0.0.1", "--port", str(self.port),
             "--lambda-endpoint", f"http://127.0.0.1:{shim_port}", "--local-runner-region", "us-east-1",
             "--skip-time", "--function-configs", json.dumps(configs)],
            env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=open(workdir / "runner.log", "wb"))
        ports.wait_listening(self.shim, shim_port, "the Lambda shim")
        ports.wait_listening(self.runner, self.port, "dex-local-runner")
        self.client = boto3.client("lambda", endpoint_url=self.url, region_name="us-east-1",
                                   aws_access_key_id="local", aws_secret_access_key="local")

    def start(self, function: str, event: dict[str, Any], name: str) -> str:
        body = {"AccountId": "123456789012", "FunctionName": function, "FunctionQualifier": "$LATEST",
                "ExecutionName": name, "ExecutionTimeoutSeconds": 300, "ExecutionRetentionPeriodDays": 1,
                "Input": json.dumps(event)}
        request = urllib.request.Request(f"{self.url}/start-durable-execution", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return str(json.load(answer)["ExecutionArn"])

    def run_answering_callbacks(self, function: str, event: dict[str, Any],
                                name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Start, answer each callback "ok" once it is waited on, and wait for the end."""
        arn = self.start(function, event, name)
        answered: dict[str, float] = {}
        deadline = time.monotonic() + 90
        while True:
            execution = self.client.get_durable_execution(DurableExecutionArn=arn)
            history = self.client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
            if execution["Status"] in TERMINAL:
                return execution, history
            done = {e["Id"] for e in history if e["EventType"].startswith("Callback") and
                    e["EventType"] != "CallbackStarted"}
            for event_ in history:
                callback = event_.get("CallbackStartedDetails", {}).get("CallbackId")
                # An answer the emulator has not acted on after 5 s is sent again (once taken, a repeat is refused).
                if callback and event_["Id"] not in done and time.monotonic() - answered.get(callback, -9.0) > 5:
                    try:
                        self.client.send_durable_execution_callback_success(CallbackId=callback, Result=b'"ok"')
                    except ClientError:
                        pass
                    answered[callback] = time.monotonic()
            assert time.monotonic() < deadline, self.stuck(arn, execution, history)
            time.sleep(0.05)

    def stuck(self, arn: str, execution: dict[str, Any], history: list[dict[str, Any]]) -> str:
        """Why a test gave up waiting: the last events and the tails of the emulator's and the shim's logs."""
        events = [(e["EventType"], e.get("Name")) for e in history[-8:]]
        logs = {name: (self.workdir / name).read_text(errors="replace")[-3000:] for name in ("runner.log", "shim.log")}
        return f"{arn} did not end: {execution['Status']}; last events {events}; logs {logs}"

    def close(self) -> None:
        for process in (self.runner, self.shim):
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, local_ports: Any) -> Iterator[Emulator]:
    found = Emulator(tmp_path_factory.mktemp("emulator"), local_ports)
    yield found
    found.close()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "durably.db", clock=SkippingClock()) as engine:
        engine.register_durable_function("pricing", pricing)
        yield engine


def test_the_basics_under_aws_emulator_match_the_embedded_engine(emulator: Emulator, embedded: Engine) -> None:
    event = {"order": "E-1", "items": ["cup", "pot"]}
    execution, history = emulator.run_answering_callbacks("basics", event, "basics")
    assert execution["Status"] == "SUCCEEDED", execution.get("Error")
    assert json.loads(execution["Result"]) == {"paid": "paid E-1", "packed": ["CUP", "POT"], "price": 20,
                                               "answer": '"ok"'}
    ended, local = run_answering_callbacks(embedded, basics, {"order": "E-2", "items": ["cup", "pot"]}, "basics")
    assert ended["Status"] == "SUCCEEDED"
    assert shape(history) == shape(local)


@pytest.mark.parametrize("fault", [None, "payment", "confirmation"])
def test_the_order_saga_under_aws_emulator_matches_the_embedded_engine(emulator: Emulator, embedded: Engine,
                                                                      tmp_path: Path, fault: str | None) -> None:
    """Completed, rolled back (the payment fails: the reservation is undone), and retried forward
    after the pivot (the confirmation fails once)."""
    def order(ledger: str) -> dict[str, Any]:
        return {"order_id": f"O-{fault}", "amount": 42, "ledger": str(tmp_path / ledger),
                **({"fail": fault} if fault else {})}

    execution, history = emulator.run_answering_callbacks("orders", order("emulator.db"), f"order-{fault}")
    ended, local = run_answering_callbacks(embedded, f"{ORDER}:handler", order("embedded.db"), f"order-{fault}")
    assert execution["Status"] == ended["Status"] == ("FAILED" if fault == "payment" else "SUCCEEDED")
    assert shape(history) == shape(local)
    if fault == "payment":
        assert execution["Error"]["ErrorType"] == ended["Error"]["ErrorType"]
        assert "SagaRolledBack" in ended["Error"]["ErrorType"]
    else:
        assert json.loads(execution["Result"]) == json.loads(ended["Result"])
