"""Where handlers invoked through the Lambda contract (written with AWS's SDK) send their checkpoints.

Such a handler checkpoints over the Lambda API, not in-process: a command that runs one points it
(``AWS_ENDPOINT_URL_LAMBDA``, with credentials to sign with) at a ``durably serve`` of its database,
unless the environment already names an endpoint.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from durably.cli.errors import BadInput
from durably.core.engine import functions
from durably.core.engine.engine import Engine
from durably.core.engine.lambda_contract import ENDPOINT_VARIABLES, is_aws_sdk_handler

if TYPE_CHECKING:
    from durably.server import AccessKey


def checkpoints_through(url: str, key: AccessKey | None) -> None:
    """Point this process's Lambda clients at ``url``, signing with ``key`` (any key on loopback)."""
    os.environ.setdefault("AWS_ENDPOINT_URL_LAMBDA", url)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", key.access_key_id if key else "durably")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", key.secret_access_key if key else "durably")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@contextmanager
def served_if_needed(engine: Engine, handler: Any) -> Iterator[None]:
    """For a run of an AWS SDK handler with no endpoint set: this engine served on loopback meanwhile."""
    target = functions.load_reference(handler) if isinstance(handler, str) and ":" in handler else handler
    if not is_aws_sdk_handler(target) or any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        yield
        return
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise BadInput("a handler written with AWS's SDK checkpoints over the Lambda API, which durably serves "
                       "with the serve extra: pip install 'durably[serve]'", "DependencyMissing")
    from durably.server import BackgroundServer

    with BackgroundServer(engine) as server:
        checkpoints_through(server.url, None)
        yield
