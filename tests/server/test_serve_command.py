"""`durably serve` as a real process: boto3 reads the database through it; a non-loopback address
without credentials is refused (test_sigv4.py has the signed server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("uvicorn")

ServeProcess = Callable[..., tuple[subprocess.Popen[str], str]]  # the durably_serve fixture (conftest.py)


def test_boto3_reads_an_execution_through_durably_serve(tmp_path: Path, durably_serve: ServeProcess) -> None:
    (tmp_path / "app.py").write_text("from durably import durable_execution\n\n@durable_execution\n"
                                     "def handler(event, ctx):\n    return ctx.step(lambda s: 'hi', name='greet')\n")
    env = {**os.environ, "DURABLY_DB": str(tmp_path / "durably.db")}
    done = subprocess.run([sys.executable, "-m", "durably", "--output", "json", "run", "app.py:handler"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    arn = json.loads(done.stdout)["DurableExecutionArn"]
    _, url = durably_serve(env=env)
    client = boto3.client("lambda", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    got = client.get_durable_execution(DurableExecutionArn=arn)
    assert got["Status"] == "SUCCEEDED" and got["Result"] == '"hi"'


def test_a_non_loopback_address_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "durably", "serve", "--host", "0.0.0.0"], cwd=tmp_path,
                          env={**os.environ, "DURABLY_DB": str(tmp_path / "d.db")}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "loopback" in done.stderr
