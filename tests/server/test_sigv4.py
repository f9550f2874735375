"""Signature checks of `durably serve` (AWS Signature Version 4), against requests signed by
botocore's own signer, and a real server process bound to a non-loopback address."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("uvicorn")

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from durably.server import AccessKey  # noqa: E402
from durably.server._sigv4 import (  # noqa: E402
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
    verify,
)

KEY = AccessKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
URL = "http://127.0.0.1:8765/2025-12-01/durable-executions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Af%3A%24LATEST/stop"

ServeProcess = Callable[..., tuple[subprocess.Popen[str], str]]  # the durably_serve fixture (conftest.py)


def signed(body: bytes = b'{"ErrorMessage": "x"}', secret: str = KEY.secret_access_key) -> dict[str, str]:
    request = AWSRequest(method="POST", url=URL, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(KEY.access_key_id, secret), "lambda", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8765"
    return headers


def test_a_request_signed_by_botocore_passes() -> None:
    verify(KEY, "POST", URL, signed(), b'{"ErrorMessage": "x"}')


@pytest.mark.parametrize(("change", "error"), [
    (lambda h, b: ({k: v for k, v in h.items() if k != "authorization"}, b), MissingAuthenticationTokenException),
    (lambda h, b: ({**h, "authorization": "Basic abc"}, b), IncompleteSignatureException),
    (lambda h, b: ({**h, "authorization": h["authorization"].replace(KEY.access_key_id, "AKIDOTHER")}, b),
     UnrecognizedClientException),
    (lambda h, b: (h, b'{"ErrorMessage": "y"}'), InvalidSignatureException),
    (lambda h, b: ({**h, "content-type": "text/plain"}, b), InvalidSignatureException),
    (lambda h, b: ({k: v for k, v in h.items() if k != "x-amz-date"}, b), IncompleteSignatureException),
])
def test_what_is_refused(change, error) -> None:  # type: ignore[no-untyped-def]
    headers, body = change(signed(), b'{"ErrorMessage": "x"}')
    with pytest.raises(error):
        verify(KEY, "POST", URL, headers, body)


def test_a_wrong_secret_and_an_old_signature_are_refused() -> None:
    with pytest.raises(InvalidSignatureException, match="does not match"):
        verify(KEY, "POST", URL, signed(secret="not-it"), b'{"ErrorMessage": "x"}')
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    with pytest.raises(InvalidSignatureException, match="15 minutes"):
        verify(KEY, "POST", URL, signed(), b'{"ErrorMessage": "x"}', now=later)


def test_a_server_on_another_address_needs_credentials_and_checks_them(tmp_path: Path,
                                                                     durably_serve: ServeProcess) -> None:
    env = {**os.environ, "DURABLY_DB": str(tmp_path / "durably.db")}
    refused = subprocess.run([sys.executable, "-m", "durably", "serve", "--host", "0.0.0.0"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--access-key-id" in refused.stderr
    env.update(DURABLY_SERVE_ACCESS_KEY_ID=KEY.access_key_id, DURABLY_SERVE_SECRET_ACCESS_KEY=KEY.secret_access_key)
    _, url = durably_serve("--host", "0.0.0.0", env=env)
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{url}/2025-12-01/functions/f/durable-executions", timeout=10)
    assert unsigned.value.code == 403
    assert unsigned.value.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    client = boto3.client("lambda", endpoint_url=url, region_name="eu-west-1",
                          aws_access_key_id=KEY.access_key_id, aws_secret_access_key=KEY.secret_access_key)
    assert client.list_durable_executions_by_function(FunctionName="f")["DurableExecutions"] == []
    wrong = boto3.client("lambda", endpoint_url=url, region_name="eu-west-1",
                         aws_access_key_id=KEY.access_key_id, aws_secret_access_key="guess")
    with pytest.raises(wrong.exceptions.ClientError, match="InvalidSignatureException"):
        wrong.list_durable_executions_by_function(FunctionName="f")

