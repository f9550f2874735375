"""``durably serve``: the embedded engine as a local AWS Lambda durable-execution endpoint.

One ASGI application (starlette) serving the Lambda durable routes as botocore's service model
defines them, and Lambda's ``Invoke`` to start executions, so ``boto3.client("lambda",
endpoint_url=...)`` and ``aws lambda ... --endpoint-url`` work against a durably database. With
an :class:`AccessKey`, requests must carry an AWS Signature Version 4. Needs the ``serve`` extra
(``pip install 'durably[serve]'``).
"""

from durably.server._app import MAX_BODY, create_app
from durably.server._background import BackgroundServer
from durably.server._invoke import SYNC_INVOKE_SECONDS
from durably.server._sigv4 import AccessKey

__all__ = ["MAX_BODY", "SYNC_INVOKE_SECONDS", "AccessKey", "BackgroundServer", "create_app"]
