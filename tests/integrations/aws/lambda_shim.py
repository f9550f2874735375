"""A stand-in for Lambda's Invoke API (the part of `sam local start-lambda` AWS's emulator uses):
``POST /2015-03-31/functions/{name}/invocations`` calls the handler registered under that name with
the request's JSON and a Lambda context, and answers its output; a handler that raises is a
function error (``X-Amz-Function-Error: Unhandled``), as Lambda reports one.

    python lambda_shim.py PORT NAME=PATH.py:ATTR ...

The handlers' checkpoints go wherever boto3 is pointed (``AWS_ENDPOINT_URL_LAMBDA``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from durably.core.engine.lambda_contract import LambdaContext

HANDLERS: dict[str, Any] = {}


def load(reference: str) -> Any:
    path, attr = reference.rsplit(":", 1)
    sys.path.insert(0, str(Path(path).parent))
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[Path(path).stem] = module
    spec.loader.exec_module(module)
    return getattr(module, attr)


class Invoke(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        parts = self.path.split("?")[0].split("/")
        if len(parts) != 5 or parts[2] != "functions" or parts[4] != "invocations":
            return self._answer(404, {"message": f"no route {self.path}"})
        name = unquote(parts[3]).split(":function:")[-1].split(":")[0]
        handler = HANDLERS.get(name)
        if handler is None:
            return self._answer(404, {"Type": "User", "message": f"Function not found: {name}"},
                                {"x-amzn-errortype": "ResourceNotFoundException"})
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        context = LambdaContext(name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
        try:
            output = handler(event, context)
        except Exception as exc:  # a function error: Lambda reports it, the emulator retries the invocation
            return self._answer(200, {"errorType": type(exc).__name__, "errorMessage": str(exc),
                                      "stackTrace": traceback.format_exception(exc)},
                                {"X-Amz-Function-Error": "Unhandled"})
        print(f"[lambda-shim] {name} -> {output.get('Status')}", file=sys.stderr, flush=True)
        return self._answer(200, output)

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str]) -> None:
    port = int(argv[0])
    for pair in argv[1:]:
        name, reference = pair.split("=", 1)
        HANDLERS[name] = load(reference)
    ThreadingHTTPServer(("127.0.0.1", port), Invoke).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
