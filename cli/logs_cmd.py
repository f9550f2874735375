"""``durably logs EXECUTION [--follow] [--since-id N]``: the log records an execution's handler made.

The engine keeps what ``context.logger`` and a step's ``step_context.logger`` log, once each
across replays (``Service.get_logs``). Not to be confused with ``cli/logs.py``, the CLI's own logging.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from durably.cli import render
from durably.cli.errors import EXIT_INTERRUPTED
from durably.cli.resolve import execution_arn
from durably.cli.settings import database_options, open_reader, settings
from durably.core.engine.service import Service

POLL_SECONDS = 0.5
PAGE = 1000
LEVEL_WIDTH = 5
CONTINUATION = "    "
"""Before the second and later lines of a message (a traceback)."""


def log_line(record: dict[str, Any]) -> str:
    """``2026-12-02 17:05:22.123 INFO  [charge#2] message``: where the record was logged (the
    operation and its attempt) when it was in a step; later lines of the message indented."""
    where = record.get("operationName") or record.get("operationId")
    if where is not None and record.get("attempt") is not None:
        where = f"{where}#{record['attempt']}"
    lines = str(record.get("Message", "")).splitlines() or [""]
    head = f"{render.stamp(record['Timestamp'])} {record.get('Level', ''):<{LEVEL_WIDTH}} "
    head += f"[{where}] {lines[0]}" if where is not None else lines[0]
    return "\n".join([head, *(CONTINUATION + line for line in lines[1:])])


def _print(record: dict[str, Any]) -> None:
    if settings().json:
        click.echo(json.dumps({**record, "Timestamp": render.iso(record["Timestamp"])}, ensure_ascii=False))
    else:
        click.echo(log_line(record))


def _drain(service: Service, arn: str, after: int) -> int:
    """Print the records after record ``after``; answer the id of the last one printed."""
    while True:
        records = service.get_logs(arn, after=after, limit=PAGE)
        for record in records:
            _print(record)
            after = record["Id"]
        if len(records) < PAGE:
            return after


def _follow(service: Service, arn: str, after: int) -> None:
    """Print new records every POLL_SECONDS until the execution has ended and its last are printed."""
    ended = False
    while True:
        running = service.get_execution(arn)["Status"] == "RUNNING"
        after = _drain(service, arn, after)
        if not running:
            if ended:
                return
            ended = True  # the engine writes an invocation's records just after it ends: one more look
        time.sleep(POLL_SECONDS)


@click.command("logs", short_help="Show the log records of an execution.")
@click.argument("execution", metavar="EXECUTION")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new records until the execution ends (or Ctrl-C).")
@click.option("--since-id", type=click.IntRange(min=0), default=0, metavar="N",
              help="Only the records after record N (the Id of a record in --output json).")
@database_options
def logs(execution: str, follow: bool, since_id: int) -> None:
    """Show what the handler of EXECUTION logged through context.logger and step loggers, oldest first.

    EXECUTION is its ARN (in single quotes: it holds $LATEST), its name, or the start of its id.
    A line reads `2026-12-02 17:05:22.123 INFO  [charge#2] message` (in UTC; the brackets name the
    step and its attempt); --output json prints one JSON object a line. --follow polls every
    half second, like `aws logs tail --follow`, and exits 0 once the execution has ended.
    """
    try:
        with open_reader() as service:
            arn = execution_arn(service, execution)
            if follow:
                _follow(service, arn, since_id)
            else:
                _drain(service, arn, since_id)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
