"""``durably list``, ``get``, ``history`` and ``stop``: the service API's read and stop calls."""

from __future__ import annotations

from typing import Any

import click
from durably.cli import render
from durably.cli.errors import BadInput
from durably.cli.settings import command_options, database_exists, open_engine, open_reader, settings
from durably.core.model import ErrorObject

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")
PAGE = 1000


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
@command_options
def list_(function_name: str | None, statuses: tuple[str, ...], name: str | None, max_items: int | None) -> None:
    """List durable executions, newest first (ListDurableExecutions)."""
    wanted = _statuses(statuses)
    items: list[dict[str, Any]] = []
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
    if settings().json:
        render.print_json({"DurableExecutions": items})
    else:
        render.print_executions(items)


@click.command("get", short_help="Show one execution.")
@click.argument("arn")
@command_options
def get(arn: str) -> None:
    """Show one execution: status, input, result or error (GetDurableExecution).

    A running execution whose last invocation failed (an import error, a crash) also shows that
    error, with when and on which worker it happened.
    """
    with open_reader() as service:
        execution = service.get_execution(arn)
        problem = service.last_invocation_error(arn)
    if settings().json:
        render.print_json(execution)
    else:
        render.print_execution(execution, problem)


@click.command("history", short_help="Show the events of an execution.")
@click.argument("arn")
@command_options
def history(arn: str) -> None:
    """Show every event of an execution (GetDurableExecutionHistory, all pages)."""
    with open_reader() as service:
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
@click.argument("arn")
@click.option("--error-type", metavar="TYPE", help="ErrorType recorded for the stop.")
@click.option("--error-message", metavar="TEXT", help="ErrorMessage recorded for the stop.")
@command_options
def stop(arn: str, error_type: str | None, error_message: str | None) -> None:
    """Stop a RUNNING execution (StopDurableExecution)."""
    error = None
    if error_type is not None or error_message is not None:
        error = ErrorObject(ErrorType=error_type or "Execution.Stopped", ErrorMessage=error_message)
    with open_engine(create=False) as engine:
        out = engine.stop_execution(arn, error)
    if settings().json:
        stamp = out.get("StopTimestamp")
        render.print_json({**out, "StopTimestamp": render.iso(stamp)} if isinstance(stamp, int) else out)
    else:
        render.print_line(f"Stopped {arn} at {render.clock(out.get('StopTimestamp'), date=True)} UTC")
