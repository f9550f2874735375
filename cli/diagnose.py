"""``durably diagnose ARN_OR_NAME``: why an execution is stuck, slow or failed, and what to do."""

from __future__ import annotations

import shlex
from typing import Any

import click
from durably.cli import render
from durably.cli.diagnosis import SEVERITIES, Detail, Diagnosis, Facts, Finding, Moment, Span, diagnose
from durably.cli.resolve import execution_arn, quoted
from durably.cli.settings import command_options, open_reader, settings
from durably.core.engine.service import Service
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

SEVERITY_STYLES = {"error": "bold red", "warning": "yellow", "info": "dim"}
LABEL_WIDTH = 9
SAID_MIN = 4
"""Shorter details (``3``, ``0 ms``) are shown even when the summary has the same characters."""


@click.command("diagnose", short_help="Find out why an execution is stuck, slow or failed.")
@click.argument("execution", metavar="ARN_OR_NAME")
@command_options
def diagnose_cmd(execution: str) -> None:
    """Run the troubleshooting playbook on one execution (its ARN, name or the start of its id).

    Checks: its status and how long it has run; whether a worker runs it; timers that fell due
    unfired; open operations and their age; an open callback (its id, the time left, the command
    that answers it); failed operations (error, stack trace, attempts) and steps retrying; the
    execution timeout and the slowest operations; invocation errors (a handler that cannot be
    imported, crashes); non-determinism; when a closed execution is purged.

    Each finding has a severity (error, warning, info) and, where there is one, a command to run.
    Exit code 0 whatever it finds; --output json for scripts.
    """
    with open_reader() as service:
        found = diagnose(read_facts(service, execution_arn(service, execution)), _command())
    if settings().json:
        render.print_json(as_json(found))
    else:
        show(readable(found))


def read_facts(service: Service, arn: str) -> Facts:
    """Everything the diagnosis of ``arn`` looks at, read now."""
    page = service.get_history(arn)
    events: list[dict[str, Any]] = page["Events"]
    while page.get("NextMarker"):
        page = service.get_history(arn, page["NextMarker"])
        events.extend(page["Events"])
    return Facts(execution=service.get_execution(arn), operations=service.all_operations(arn), events=events,
                 callbacks=service.open_callbacks(arn=arn), invocation=service.invocation_state(arn),
                 problem=service.last_invocation_error(arn), now=service.clock.now_ms(),
                 code_changed=service.code_changed(arn))


def _command() -> str:
    """``durably``, with the ``--db`` this command was given (for the commands it recommends)."""
    db = settings().db
    return f"durably --db {shlex.quote(db)}" if db else "durably"


# ---------------------------------------------------------------------------- JSON
def as_json(found: Diagnosis) -> dict[str, Any]:
    """The diagnosis with stable keys: times as ISO 8601, lengths of time in ms (keys ending ``_ms``)."""
    return {"execution_arn": found.arn, "name": found.name, "function": found.function_name,
            "handler": found.handler, "status": found.status, "elapsed_ms": found.elapsed_ms,
            "findings": [{"kind": f.kind, "severity": f.severity, "summary": f.summary,
                          "details": {key: _json_value(value) for key, value in f.details.items()},
                          "recommendation": f.recommendation} for f in found.findings]}


def _json_value(value: Detail | Any) -> Any:
    if isinstance(value, Moment):
        return render.iso(value.ms)
    if isinstance(value, Span):
        return value.ms
    if isinstance(value, list):
        return [{k: _json_value(v) for k, v in row.items()} if isinstance(row, dict) else row for row in value]
    return value


# ---------------------------------------------------------------------------- people
def readable(found: Diagnosis) -> list[RenderableType | str]:
    """A header, then each finding: its severity and summary, its details indented, its commands.

    ARNs and commands come as plain strings, to print as they are: a terminal wraps them, and
    they paste whole.
    """
    counts = [f"{n} {severity}{'s' if n != 1 and severity != 'info' else ''}" for severity in SEVERITIES
              if (n := sum(f.severity == severity for f in found.findings))]
    out: list[RenderableType | str] = [
        Text.assemble(("Diagnosis of ", "bold"), (found.name, "bold"), f" ({found.function_name}): ",
                      render.status_text(found.status), f"; {', '.join(counts)}"),
        quoted(found.arn),
    ]
    for finding in found.findings:
        grid = Table.grid()
        grid.add_column(width=LABEL_WIDTH, no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row(Text(finding.severity.upper(), style=SEVERITY_STYLES[finding.severity]),
                     Text(finding.summary, style="bold"))
        grid.add_row("", _details(finding))
        out += ["", grid, *(f"{' ' * LABEL_WIDTH}→ {line}" for line in (finding.recommendation or "").splitlines())]
    return out


def show(parts: list[RenderableType | str]) -> None:
    for part in parts:
        if isinstance(part, str):
            click.echo(part)
        else:
            render.emit(part)


def _details(finding: Finding) -> Group:
    parts: list[RenderableType] = []
    for key, value in finding.details.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            parts.append(Text(f"{_label(key)}:", style="dim"))
            parts.append(_rows(value))
        elif isinstance(value, list):
            parts.append(Text(f"{_label(key)}:", style="dim"))
            parts.extend(Text("  " + str(line)) for line in value)
        elif not _said(_text(key, value), finding.summary):
            parts.append(Text.assemble((f"{_label(key)}: ", "dim"), _text(key, value)))
    return Group(*parts)


def _said(text: str, summary: str) -> bool:
    """Whether the summary already says ``text`` (people read it once; JSON keeps every detail)."""
    return len(text) >= SAID_MIN and text in summary


def _rows(rows: list[Any]) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2), header_style="dim")
    columns = [key for key in rows[0] if key != "more"]
    for key in columns:
        table.add_column(_label(key), overflow="fold")
    for row in rows:
        if "more" in row:
            table.add_row(f"+{row['more']} more", *[""] * (len(columns) - 1))
        else:
            table.add_row(*(_text(key, row.get(key)) for key in columns))
    return table


def _label(key: str) -> str:
    for unit in ("_ms", "_s", "_percent"):
        key = key.removesuffix(unit)
    return key.replace("_", " ")


def _text(key: str, value: Any) -> str:
    if isinstance(value, Moment):
        return f"{render.clock(value.ms, date=True)} UTC"
    if isinstance(value, Span):
        return render.took(value.ms)
    if value is None:
        return "none"
    if key.endswith("_s") and isinstance(value, int):
        return render.took(value * 1000)
    if key.endswith("_percent"):
        return f"{value} %"
    return str(value)
