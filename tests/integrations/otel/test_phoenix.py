"""Seen in a real backend: Arize Phoenix, started here offline, receives the traces of the refund
agent and of the order saga run through `durably run` and `durably worker` with the standard OTLP
variables; its own REST API must show one trace per execution, typed spans, and parentage.

Opt-in: set ``DURABLY_PHOENIX`` to a ``phoenix`` executable (``.ci/run`` installs arize-phoenix in
a virtual environment of its own and sets it); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durably.integrations.otel import trace_id_hex

PHOENIX = os.environ.get("DURABLY_PHOENIX")
ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.phoenix,
              pytest.mark.skipif(not PHOENIX, reason="set DURABLY_PHOENIX to a phoenix executable to run")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(workdir), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()), "PHOENIX_TELEMETRY_ENABLED": "false",
           "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false", "PHOENIX_DISABLE_AGENT_ASSISTANT": "true"}
    log = (workdir / "phoenix.log").open("wb")
    proc = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, (workdir / "phoenix.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "phoenix did not start within 120 s"
        time.sleep(0.5)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def phoenix_spans(base: str, project: str, trace_id: str, at_least: int) -> list[dict[str, Any]]:
    """The spans of one trace, through Phoenix's REST API, once it has stored ``at_least`` of them."""
    url = f"{base}/v1/projects/{project}/spans?trace_id={trace_id}&limit=1000"
    deadline = time.monotonic() + 30
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                spans = json.load(answer)["data"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: the project has no span yet
                raise
        if len(spans) >= at_least:
            return spans
        time.sleep(0.25)
    raise AssertionError(f"phoenix holds {len(spans)} spans of trace {trace_id}, not {at_least}")


class Run:
    """``durably`` commands in a scratch folder, exporting to Phoenix under one project."""

    def __init__(self, root: Path, base: str) -> None:
        self.root = root
        self.project = f"durably-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_SERVICE_NAME": "durably-examples",
                    "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={self.project}",
                    "OTEL_BSP_SCHEDULE_DELAY": "100", "DURABLY_DB": str(root / "durably.db")}
        self.workers: list[subprocess.Popen[bytes]] = []

    def durably(self, *args: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "durably", "--output", "json", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def worker_until(self, arn: str) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "durably", "worker", "--workers", "1"], cwd=ROOT,
                                env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while self.durably("get", arn)["Status"] == "RUNNING":
                assert time.monotonic() < deadline, f"{arn} still running"
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def check_tree(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One root (the execution's span), every other span's parent in the trace; spans by kind."""
    ids = {s["context"]["span_id"] for s in spans}
    assert len(ids) == len(spans)  # nothing twice
    roots = [s for s in spans if not s["parent_id"]]
    assert [r["name"].split()[0] for r in roots] == ["execution"], [r["name"] for r in roots]
    assert all(s["parent_id"] in ids for s in spans if s["parent_id"])
    kinds: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        kinds.setdefault(s["span_kind"], []).append(s)
    return kinds


def test_the_refund_agent_is_one_typed_trace_in_phoenix(phoenix: str, tmp_path: Path) -> None:
    run = Run(tmp_path, phoenix)
    started = run.durably("run", "examples/refund_agent.py:handler", "--no-wait", "--input",
                          json.dumps({"order_id": "B-2", "question": "My lamp arrived broken.",
                                      "ledger": str(tmp_path / "refunds.db")}))
    arn = started["DurableExecutionArn"]
    events = run.durably("history", arn)["Events"]
    callback = next(e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted")
    run.durably("callback", "success", callback, "--payload", '{"decision": "approve"}')
    run.worker_until(arn)

    spans = phoenix_spans(phoenix, run.project, trace_id_hex(arn), at_least=12)
    kinds = check_tree(spans)
    assert [s["name"] for s in kinds["AGENT"]] == ["invoke_agent agent"]
    assert {s["name"] for s in kinds["LLM"]} == {"chat scripted"} and len(kinds["LLM"]) == 3
    assert {s["name"] for s in kinds["TOOL"]} == {"execute_tool lookup_order", "execute_tool refund"}
    agent = kinds["AGENT"][0]["context"]["span_id"]
    assert all(s["parent_id"] == agent for s in kinds["LLM"])


def test_the_order_saga_rollback_is_one_trace_with_linked_compensations(phoenix: str, tmp_path: Path) -> None:
    run = Run(tmp_path, phoenix)
    started = run.durably("run", "examples/order_fulfilment.py:handler", "--no-wait", "--input",
                          json.dumps({"order_id": "A-9", "amount": 42, "fail": "shipment"}))
    arn = started["DurableExecutionArn"]
    if started["Status"] == "RUNNING":
        run.worker_until(arn)
    spans = phoenix_spans(phoenix, run.project, trace_id_hex(arn), at_least=8)
    kinds = check_tree(spans)
    undos = [s for s in spans if s["name"].startswith("undo ")]
    assert undos and all(s["attributes"].get("durably.compensation") is True for s in undos)
    saga = next(s for s in spans if s["attributes"].get("durable.operation.subtype") == "Saga")
    assert saga["attributes"]["durably.saga.outcome"] == "rolled_back"
    assert "CHAIN" in kinds
