"""``durably list``, ``get``, ``history`` and ``stop``: the service API's read and stop calls."""

from __future__ import annotations

from typing import Any

import click
from durably.cli import render
from durably.cli.errors import BadInput
from durably.cli.resolve import execution_arn, quoted
from durably.cli.settings import command_prefix, database_exists, database_options, open_engine, open_reader, settings
from durably.cli.waiting import Waiting, waiting_on
from durably.core.model import ErrorObject

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")
PAGE = 1000
EXECUTION = "EXECUTION"
"""The argument naming an execution: its ARN, its name or the start of its id (resolve.execution_arn)."""


def _statuses(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for value in values:
        for status in value.replace(",", " ").split():
            if status.upper() not in STATUSES:
                raise BadInput(f"--status {status!r} is not one of {', '.join(STATUSES)}")
            out.append(status.upper())
    return out


@click.command("list", short_help="List executions, newest first.")
@click.option("--function-name", metavar="NAME", help="Only executions of this function.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help=f"Only these statuses (repeat, or comma-separate): {', '.join(STATUSES)}.")
@click.option("--name", metavar="NAME", help="Only executions with this name.")
@click.option("--max-items", type=click.IntRange(min=1), help="At most this many (newest first).")
@database_options
def list_(function_name: str | None, statuses: tuple[str, ...], name: str | None, max_items: int | None) -> None:
    """List durable executions, newest first (ListDurableExecutions)."""
    wanted = _statuses(statuses)
    items: list[dict[str, Any]] = []
    waits: dict[str, list[Waiting]] = {}
    if settings().db is not None or database_exists():  # no default database yet: nothing has run here
        with open_reader() as service:
            marker = None
            while max_items is None or len(items) < max_items:
                page = service.list_executions(function_name=function_name, name=name, statuses=wanted or None,
                                               marker=marker, max_items=PAGE)
                items.extend(page["DurableExecutions"])
                marker = page.get("NextMarker")
                if not marker:
                    break
            items = items[:max_items] if max_items is not None else items
            if not settings().json:
                waits = {item["DurableExecutionArn"]: waiting_on(service.all_operations(item["DurableExecutionArn"]))
                         for item in items if item["Status"] == "RUNNING"}
    if settings().json:
        render.print_json({"DurableExecutions": items})
    else:
        render.print_executions(items, waits, command_prefix())


@click.command("get", short_help="Show one execution.")
@click.argument("execution", metavar=EXECUTION)
@database_options
def get(execution: str) -> None:
    """Show one execution: status, input, result or error (GetDurableExecution).

    EXECUTION is its ARN (in single quotes: it holds $LATEST), its name, or the start of its id.
    A running execution also shows what it waits on (a callback to answer, a wait, a step's next
    attempt, an invoked execution) and, when its last invocation failed (an import error, a
    crash), that error, with when and on which worker it happened.
    """
    with open_reader() as service:
        arn = execution_arn(service, execution)
        found = service.get_execution(arn)
        if settings().json:
            render.print_json(found)
            return
        problem = service.last_invocation_error(arn)
        waits = waiting_on(service.all_operations(arn)) if found["Status"] == "RUNNING" else []
    render.print_execution(found, problem, waits, command_prefix())


@click.command("history", short_help="Show the events of an execution.")
@click.argument("execution", metavar=EXECUTION)
@database_options
def history(execution: str) -> None:
    """Show every event of an execution (GetDurableExecutionHistory, all pages).

    EXECUTION is its ARN (in single quotes), its name, or the start of its id.
    """
    with open_reader() as service:
        arn = execution_arn(service, execution)
        page = service.get_history(arn)
        events: list[dict[str, Any]] = page["Events"]
        while page.get("NextMarker"):
            page = service.get_history(arn, page["NextMarker"])
            events.extend(page["Events"])
    if settings().json:
        render.print_json({"Events": events})
    else:
        render.print_history(events)


@click.command("stop", short_help="Stop a running execution.")
@click.argument("execution", metavar=EXECUTION)
@click.option("--error-type", metavar="TYPE", help="ErrorType recorded for the stop.")
@click.option("--error-message", metavar="TEXT", help="ErrorMessage recorded for the stop.")
@database_options
def stop(execution: str, error_type: str | None, error_message: str | None) -> None:
    """Stop a RUNNING execution (StopDurableExecution).

    EXECUTION is its ARN (in single quotes), its name, or the start of its id.
    """
    error = None
    if error_type is not None or error_message is not None:
        error = ErrorObject(ErrorType=error_type or "Execution.Stopped", ErrorMessage=error_message)
    with open_engine(create=False) as engine:
        arn = execution_arn(engine.service, execution)
        out = engine.stop_execution(arn, error)
    if settings().json:
        stamp = out.get("StopTimestamp")
        render.print_json({**out, "StopTimestamp": render.iso(stamp)} if isinstance(stamp, int) else out)
    else:
        render.print_line(f"Stopped {quoted(arn)} at {render.clock(out.get('StopTimestamp'), date=True)} UTC")
