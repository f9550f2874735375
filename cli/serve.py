"""``durably serve``: the database as a local Lambda durable-execution endpoint."""

from __future__ import annotations

import importlib.util
import ipaddress

import click
from durably.cli.errors import BadInput
from durably.cli.logs import CLI_LOGGER, log_options, stderr_logs
from durably.cli.settings import command_options, open_engine


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve", short_help="Serve the Lambda durable-execution API on this database.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@log_options
@command_options
def serve(host: str, port: int, log_level: str, log_format: str, quiet: bool) -> None:
    """Serve the Lambda durable-execution routes (get, history, state, checkpoint, list by function,
    stop, callbacks) on the selected database, for boto3 (``endpoint_url=``) and the AWS CLI
    (``--endpoint-url``). Until Ctrl-C.

    \b
    durably serve --port 8765
    aws lambda get-durable-execution --endpoint-url http://127.0.0.1:8765 --durable-execution-arn ARN
    """
    if not _loopback(host):
        raise BadInput(f"--host {host} is not a loopback address; durably serve listens on loopback only "
                       "(requests are not authenticated)")
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise BadInput("durably serve needs the serve extra: pip install 'durably[serve]'", "DependencyMissing")
    import uvicorn
    from durably.server import create_app

    with stderr_logs(log_level, log_format, quiet), open_engine() as engine:
        CLI_LOGGER.info("durably serve: the Lambda durable API of %s on http://%s:%d; Ctrl-C to stop",
                        engine.store.path, host, port)
        uvicorn.run(create_app(engine.service), host=host, port=port, log_level="warning")
