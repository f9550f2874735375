"""`durably serve` as a real process: boto3 reads the database through it; a non-loopback address
without credentials is refused (test_sigv4.py has the signed server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("uvicorn")


def test_boto3_reads_an_execution_through_durably_serve(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from durably import durable_execution\n\n@durable_execution\n"
                                     "def handler(event, ctx):\n    return ctx.step(lambda s: 'hi', name='greet')\n")
    env = {**os.environ, "DURABLY_DB": str(tmp_path / "durably.db")}
    done = subprocess.run([sys.executable, "-m", "durably", "--output", "json", "run", "app.py:handler"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    arn = json.loads(done.stdout)["DurableExecutionArn"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "durably", "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        deadline = time.monotonic() + 20
        while True:
            try:
                got = client.get_durable_execution(DurableExecutionArn=arn)
                break
            except Exception:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert got["Status"] == "SUCCEEDED" and got["Result"] == '"hi"'
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)


def test_a_non_loopback_address_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "durably", "serve", "--host", "0.0.0.0"], cwd=tmp_path,
                          env={**os.environ, "DURABLY_DB": str(tmp_path / "d.db")}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "loopback" in done.stderr
