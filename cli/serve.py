"""``durably serve``: the database as a local Lambda durable-execution endpoint."""

from __future__ import annotations

import importlib.util
import ipaddress

import click
from durably.cli.errors import BadInput
from durably.cli.execute import cwd_on_path
from durably.cli.lambda_endpoint import checkpoints_through
from durably.cli.logs import CLI_LOGGER, log_options, stderr_logs
from durably.cli.settings import command_options, open_engine
from durably.cli.tracing import traced_from_env


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve", short_help="Serve the Lambda durable-execution API and the dashboard on this database.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another address than loopback needs --access-key-id and "
                   "--secret-access-key.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also run executions in this process, this many at a time (0: leave it to `durably worker`).")
@click.option("--access-key-id", envvar="DURABLY_SERVE_ACCESS_KEY_ID", metavar="ID",
              help="Require requests signed (AWS Signature Version 4) with this access key "
                   "[env DURABLY_SERVE_ACCESS_KEY_ID].")
@click.option("--secret-access-key", envvar="DURABLY_SERVE_SECRET_ACCESS_KEY", metavar="SECRET",
              help="The secret of --access-key-id [env DURABLY_SERVE_SECRET_ACCESS_KEY; prefer it to the flag, "
                   "which other users can see in the process list].")
@log_options
@command_options
def serve(host: str, port: int, workers: int, access_key_id: str | None, secret_access_key: str | None,
          log_level: str, log_format: str, quiet: bool) -> None:
    """Serve the Lambda durable-execution routes (get, history, state, checkpoint, list by function,
    stop, callbacks) and Lambda's Invoke (start an execution) on the selected database, for boto3
    (``endpoint_url=``) and the AWS CLI (``--endpoint-url``). Until Ctrl-C.

    \b
    durably serve --port 8765 --workers 4
    aws lambda invoke --endpoint-url http://127.0.0.1:8765 --function-name FUNCTION \\
        --cli-binary-format raw-in-base64-out --payload '{"order": "A-1"}' out.json
    aws lambda get-durable-execution --endpoint-url http://127.0.0.1:8765 --durable-execution-arn "ARN"

    The web dashboard is at / on the same address: executions, their graph and timeline, and
    an inbox of the callbacks that wait for a person.

    Requests are authenticated only when an access key is given; then every API request must be
    signed with it (an AWS CLI profile with that key works), and unsigned ones get a 403; the
    dashboard then asks for the access key id and secret as user name and password.
    """
    if (access_key_id is None) != (secret_access_key is None):
        raise BadInput("give both --access-key-id and --secret-access-key, or neither")
    if not _loopback(host) and access_key_id is None:
        raise BadInput(f"--host {host} is not a loopback address: requests from other machines must be "
                       "authenticated; give --access-key-id and --secret-access-key (or their DURABLY_SERVE_ "
                       "variables)")
    if any(importlib.util.find_spec(m) is None for m in ("starlette", "uvicorn", "jinja2", "multipart")):
        raise BadInput("durably serve needs the serve extra: pip install 'durably[serve]'", "DependencyMissing")
    import uvicorn
    from durably.server import AccessKey, create_app

    key = AccessKey(access_key_id, secret_access_key) if access_key_id and secret_access_key else None
    if workers:
        cwd_on_path()
        checkpoints_through(f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}", key)
    with stderr_logs(log_level, log_format, quiet), traced_from_env(), \
            open_engine(workers=max(workers, 1)) as engine:
        if workers:
            engine.start()
        CLI_LOGGER.info("durably serve: the Lambda durable API of %s on http://%s:%d (dashboard at /)%s%s; "
                        "Ctrl-C to stop", engine.store.shown, host, port,
                        f", {workers} worker(s)" if workers else "", ", signed requests only" if key else "")
        uvicorn.run(create_app(engine, access_key=key), host=host, port=port, log_level="warning")
