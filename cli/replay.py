"""``durably replay --check``: do stored histories still replay against the current code?"""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from typing import Any

import click
from durably.cli import render
from durably.cli.errors import EXIT_FAILED, BadInput
from durably.cli.execute import cwd_on_path
from durably.cli.resolve import execution_arn, quoted
from durably.cli.settings import command_options, open_reader, settings
from durably.core.engine.errors import HandlerImportError
from durably.core.engine.functions import load_reference
from durably.core.engine.lambda_contract import is_aws_sdk_handler
from durably.core.engine.service import Service
from durably.core.execution import DurableFunction
from durably.core.replay_check import OperationRef, ReplayReport, check_replay
from rich.text import Text

PAGE = 1000


@click.command("replay", short_help="Check that stored histories replay against the current code.")
@click.option("--check", is_flag=True, help="Check only: nothing runs but the code between operations, "
                                            "nothing is written (required).")
@click.argument("handler", metavar="MODULE:FUNCTION")
@click.argument("refs", nargs=-1, metavar="[ARN_OR_NAME]...")
@click.option("--function", "function_name", metavar="NAME", help="Every execution of this function.")
@click.option("--all", "all_", is_flag=True, help="Every durable execution in the database, running or closed.")
@command_options
def replay(check: bool, handler: str, refs: tuple[str, ...], function_name: str | None, all_: bool) -> None:
    """Replay the histories of executions against MODULE:FUNCTION (or path/file.py:FUNCTION) without
    running any step body or writing anything, and report per execution whether it replays and,
    where it diverges, what the history has there and what the code asks for.

    \b
    durably replay --check app.py:handler 'ARN' order-17
    durably replay --check app.py:handler --function app-handler
    durably replay --check app.py:handler --all --output json

    A history replays when the code asks for the recorded operations in order, up to the end of
    the history or to the first thing not on record (a new operation, or the body of a step that
    was running); there the check stops. Exit code 0 when every history replays, 1 when one
    diverges or the code raises where the history does not (run it in CI before a deploy),
    2 for a usage error.
    """
    if not check:
        raise BadInput("durably replay only checks histories for now: add --check")
    if sum((bool(refs), function_name is not None, all_)) != 1:
        raise BadInput("say which histories: ARNs or names, --function NAME, or --all (one of them)")
    target = _durable_handler(handler)
    with open_reader() as service:
        executions = _selected(service, refs, function_name)
        with redirect_stdout(sys.stderr):  # handler code that prints: stdout is the report
            checked = [(execution, check_replay(target, execution["DurableExecutionArn"],
                                                service.all_operations(execution["DurableExecutionArn"])))
                       for execution in executions]
    if settings().json:
        render.print_json({"Executions": [_as_json(e, r) for e, r in checked],
                           "AllReplay": all(r.ok for _, r in checked)})
    else:
        _print_reports(checked)
    if not all(r.ok for _, r in checked):
        sys.exit(EXIT_FAILED)


def _durable_handler(ref: str) -> DurableFunction:
    cwd_on_path()
    obj = load_reference(ref)
    if is_aws_sdk_handler(obj):
        raise HandlerImportError(f"{ref} is an AWS SDK handler: the replay check runs @durable_execution "
                                 "handlers only")
    if not isinstance(obj, DurableFunction):
        raise HandlerImportError(f"{ref} is not a @durable_execution handler")
    return obj


def _selected(service: Service, refs: tuple[str, ...], function_name: str | None) -> list[dict[str, Any]]:
    """The executions to check: those named, or all (of one function), oldest first."""
    if refs:
        return [service.get_execution(execution_arn(service, ref)) for ref in refs]
    items: list[dict[str, Any]] = []
    marker = None
    while True:
        page = service.list_executions(function_name=function_name, reverse=False, marker=marker, max_items=PAGE)
        items.extend(page["DurableExecutions"])
        marker = page.get("NextMarker")
        if not marker:
            return items


def _as_json(execution: dict[str, Any], report: ReplayReport) -> dict[str, Any]:
    return {"name": execution["DurableExecutionName"], "status": execution["Status"], **report.to_dict()}


def _print_reports(checked: list[tuple[dict[str, Any], ReplayReport]]) -> None:
    if not checked:
        render.print_line("No executions to check.")
        return
    lines: list[Text] = []
    for execution, report in checked:
        line = Text.assemble(("✓ " if report.ok else "✗ ", "green" if report.ok else "bold red"),
                             (execution["DurableExecutionName"], "bold"), f" ({execution['Status']}): ",
                             _summary(report))
        lines.append(line)
        if report.divergence is not None:
            d = report.divergence
            lines.append(Text(f"    history: {_side(d.recorded)}"))
            lines.append(Text(f"    code:    {_side(d.code)}"))
        if not report.ok:
            lines.append(Text(f"    {quoted(report.arn)}", "dim"))
    failed = sum(not r.ok for _, r in checked)
    lines.append(Text(f"{len(checked)} checked: {len(checked) - failed} replay, {failed} do not",
                      "bold red" if failed else "green"))
    render.emit(*lines)


def _summary(report: ReplayReport) -> str:
    replayed = f"{report.operations_replayed} operation{'s' if report.operations_replayed != 1 else ''} replayed"
    d, f = report.divergence, report.frontier
    if d is not None:
        where = f"{d.position}" + (f" (in {' > '.join(repr(n) for n in d.within)})" if d.within else "")
        return f"diverges at {where}: the history has {d.recorded.describe()}, the code asks for {d.code.describe()}"
    if report.outcome == "frontier" and f is not None:
        what = "new" if f.status is None else f"{f.status} in the history: its body would run again"
        return f"{replayed}, then stops before {f.describe()} ({what})"
    if report.outcome == "waiting":
        return f"{replayed}, up to " + (f"{f.describe()} ({f.status})" if f else "what the execution waits on")
    if report.outcome == "returned":
        return f"{replayed}; the handler returns"
    if report.outcome == "failed":
        return f"{replayed}; the handler raises, as the execution failed: {report.error}"
    return f"{replayed}; then the handler raises where the history does not: {report.error}"


def _side(ref: OperationRef) -> str:
    status = f", {ref.status}" if ref.status else ""
    return f"{ref.describe()}{status}" + (f" (id {ref.id[:12]})" if ref.id else "")
