"""Lambda mode: a ``@durable_execution`` handler deployed to AWS Lambda runs there unchanged.

Lambda invokes the handler with the durable envelope (``DurableExecutionArn``, ``CheckpointToken``,
``InitialExecutionState``); the handler replays against :class:`LambdaBackend`, which checkpoints
and reads state through boto3's ``lambda`` client, and returns ``{"Status", "Result", "Error"}``.
Nothing needs importing: the runtime finds this backend through the ``durably.lambda_backends``
entry point. Needs the ``aws`` extra (``pip install 'durably[aws]'``).

The client is ``durable_execution(boto3_client=...)`` when given, else one ``boto3.client("lambda")``
per process (reused by warm invocations), configured with :data:`RETRIES`; like any boto3 client it
honours ``AWS_ENDPOINT_URL_LAMBDA``, which points it at ``durably serve`` or AWS's local emulator.
"""

from __future__ import annotations

import functools
from typing import Any

from durably.integrations.aws._backend import RETRIES, CheckpointRefused, LambdaBackend, epoch_ms


@functools.cache
def default_client() -> Any:
    """This process's boto3 ``lambda`` client (region and credentials from the environment)."""
    import boto3

    return boto3.client("lambda", config=RETRIES)


def lambda_backend(boto3_client: Any = None) -> LambdaBackend:
    """The backend of one Lambda invocation (the ``durably.lambda_backends`` entry point)."""
    return LambdaBackend(boto3_client if boto3_client is not None else default_client())


__all__ = ["RETRIES", "CheckpointRefused", "LambdaBackend", "default_client", "epoch_ms", "lambda_backend"]
