"""``durably serve``: the embedded engine as a local AWS Lambda durable-execution endpoint.

One ASGI application (starlette) serving the Lambda durable routes as botocore's service model
defines them, so ``boto3.client("lambda", endpoint_url=...)`` and ``aws lambda ... --endpoint-url``
work against a durably database. Needs the ``serve`` extra (``pip install 'durably[serve]'``).
"""

from durably.server._app import MAX_BODY, create_app

__all__ = ["MAX_BODY", "create_app"]
