"""Printing results: AWS response shapes as JSON, or readable rich tables."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
from durably.cli.resolve import quoted
from durably.cli.settings import settings
from durably.cli.waiting import Waiting
from durably.core.engine.history import render_timestamps
from durably.sagas import COMPENSATION_SUBTYPE, ROLLBACK_SUBTYPE, SAGA_SUBTYPE
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

DETAILS_WIDTH = 80
UNBOUNDED = 1_000_000
"""The width of output that is not a terminal: no line is cut or wrapped."""
GAP = 3
"""Between two columns of a table: a space either side of rich's (blank) column divider."""
MIN_FLEXIBLE = 6
ID_SHOWN = 8
"""The characters of an execution's id that tables show (any unique prefix of 6 or more names it)."""
STATUS_STYLES = {"SUCCEEDED": "green", "RUNNING": "cyan", "FAILED": "red", "TIMED_OUT": "red",
                 "STOPPED": "yellow"}
QUIET_DETAILS = frozenset({"ExecutionTimeout", "RequestId", "ExecutedVersion", "StartTimestamp", "EndTimestamp"})
INDENT = "  "
"""Per level of nesting, in the Name column: an operation is indented under its parent (ParentId)."""

COMPENSATION_MARK = "↩ undo "
SAGA_STYLE = "bold"
COMPENSATION_STYLE = "magenta"
SAGA_ERROR_PREFIX = "durably.sagas."
SAGA_OUTCOMES = {"rolled_back": "rolled back", "compensation_failed": "COMPENSATION FAILED",
                 "forward_recovery_failed": "forward recovery failed"}
OUTCOME_STYLES = {"rolled_back": "yellow", "compensation_failed": "bold red", "forward_recovery_failed": "red"}
LISTED_STEPS = 8
"""Steps named in a saga outcome before ``+N more``."""
OUTCOME_WIDTH = 240
LISTED_WAITS = 10
"""What an execution waits on, listed before ``+N more``."""
LC_AI_MESSAGE = "AIMessage"
"""The last part of the id langchain-core's serialisation gives an AIMessage (an agent's model step)."""


def console() -> Console:
    """A console on stdout: the terminal's width, or unbounded when stdout is not a terminal, so that
    piped output has one line per row whatever its length (and whatever COLUMNS says)."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, width=UNBOUNDED)
    return out


def emit(*renderables: Any) -> None:
    """Print to stdout; without a terminal, as plain lines with no trailing blanks.

    A line of text is left for the terminal to wrap (an ARN in it stays whole when copied).
    """
    out = console()
    if out.is_terminal:
        for renderable in renderables:
            out.print(renderable, soft_wrap=isinstance(renderable, Text))
        return
    with out.capture() as captured:
        for renderable in renderables:
            out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def fitted_widths(natural: list[int], available: int) -> list[int]:
    """Widths for columns that naturally take ``natural`` and together get ``available``: the narrow
    ones keep theirs, the wide ones share the rest equally (each at least MIN_FLEXIBLE)."""
    widths = list(natural)
    left, pending = available, sorted(range(len(natural)), key=natural.__getitem__)
    while pending:
        share = max(left // len(pending), MIN_FLEXIBLE)
        if natural[pending[0]] > share:
            for i in pending:
                widths[i] = share
            break
        left -= natural[pending[0]]
        pending.pop(0)
    return widths


def tabulate(headers: list[str], rows: list[list[Text]], flexible: frozenset[int] = frozenset(),
             under: int | None = None, right: frozenset[int] = frozenset()) -> list[Any]:
    """A table whose rows take one line each, as renderables for ``emit``.

    Without a terminal, or when it fits the terminal, it is a plain table. Otherwise the
    ``flexible`` columns (by index) share the width the others leave, cut with ``…``, and the
    ``under`` column (long details) moves to a line of its own under each row.
    """
    natural = [max([len(h), *(row[i].cell_len for row in rows)]) for i, h in enumerate(headers)]
    width = console().width
    if width >= UNBOUNDED or sum(natural) + GAP * (len(headers) - 1) <= width:
        return [_table(headers, rows, natural, right)]
    kept = [i for i in range(len(headers)) if i != under]
    shares = [i for i in kept if i in flexible]
    fixed = sum(natural[i] for i in kept if i not in flexible)
    caps = fitted_widths([natural[i] for i in shares], width - fixed - GAP * (len(kept) - 1))
    widths = {**{i: natural[i] for i in kept}, **dict(zip(shares, caps, strict=True))}
    if under is None:
        return [_table(headers, rows, [widths[i] for i in kept], right)]
    return _stacked(headers, rows, widths, under, right)


def _table(headers: list[str], rows: list[list[Text]], widths: list[int], right: frozenset[int]) -> Table:
    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, header in enumerate(headers):
        out.add_column(header, no_wrap=True, overflow="ellipsis", max_width=widths[i],
                       justify="right" if i in right else "left")
    for row in rows:
        out.add_row(*row)
    return out


def _stacked(headers: list[str], rows: list[list[Text]], widths: dict[int, int], under: int,
             right: frozenset[int]) -> list[Text]:
    """The table as lines, each row's ``under`` cell on a line of its own, below the row and indented."""
    def line(cells: list[Text]) -> Text:
        out = Text()
        for i, width in widths.items():
            cell = cells[i].copy()
            cell.truncate(width, overflow="ellipsis")
            cell.align("right" if i in right else "left", width)
            out.append_text(cell).append(" " * GAP)
        out.rstrip()
        return out

    indent = " " * (next(iter(widths.values())) + GAP)
    rule = Text("─" * (sum(widths.values()) + GAP * (len(widths) - 1)))
    lines = [line([Text(h, style="bold") for h in headers]), rule]
    for row in rows:
        lines.append(line(row))
        if row[under].plain:
            lines.append(Text(indent).append_text(row[under]))
    return lines


def print_json(value: Any) -> None:
    """The value with ISO 8601 timestamps, as the AWS CLI prints a response."""
    click.echo(json.dumps(render_timestamps(value, "iso"), indent=2, ensure_ascii=False))


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 with a time zone (for fields render_timestamps does not know)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def clock(ms: int | None, date: bool = False) -> str:
    if ms is None:
        return ""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S") if date else t.strftime("%H:%M:%S.%f")[:-3]


def took(ms: int) -> str:
    """A duration for people: ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``5 h 2 min``, ``3 d 4 h``."""
    ms = abs(ms)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def stamp(ms: int) -> str:
    """``2026-12-02 17:05:22.123``: the date and time (UTC) to the millisecond."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def shorten(text: str, width: int = DETAILS_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def error_line(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    kind, message = error.get("ErrorType"), error.get("ErrorMessage")
    return ": ".join(str(x) for x in (kind, message) if x) or "(no details)"


def trace_text(stack_trace: list[str]) -> str:
    """A recorded StackTrace as lines (an entry is a frame: its location, then its source)."""
    return "\n".join(entry.rstrip("\n") for entry in stack_trace)


def stack_traces(events: list[dict[str, Any]]) -> list[Text]:
    """The stack traces recorded in a history's errors, each once, headed by the events with it."""
    found: dict[tuple[str, ...], list[str]] = {}
    for event in events:
        error = (event.get(f"{event['EventType']}Details") or {}).get("Error")
        payload = error.get("Payload") if isinstance(error, dict) else None
        trace = payload.get("StackTrace") if isinstance(payload, dict) else None
        if trace:
            found.setdefault(tuple(trace), []).append(str(event.get("EventId", "?")))
    return [Text(f"\nStack trace of EventId {', '.join(ids)}:\n{trace_text(list(trace))}")
            for trace, ids in found.items()]


def summarize(event: dict[str, Any]) -> str:
    """The interesting part of an event's details, on one line."""
    details = event.get(f"{event['EventType']}Details") or {}
    parts: list[str] = []
    if "CallbackId" in details:
        parts.append(f"CallbackId={details['CallbackId']}")
    if event["EventType"] == "InvocationCompleted" and details.get("EndTimestamp") is not None:
        parts.append(f"{details['EndTimestamp'] - details.get('StartTimestamp', details['EndTimestamp'])} ms")
    for key, value in details.items():
        if key in QUIET_DETAILS or key == "CallbackId" or value is None:
            continue
        if isinstance(value, dict) and ("Payload" in value or "Truncated" in value):
            payload = value.get("Payload")
            if isinstance(payload, dict):
                parts.append(f"{key}: {error_line(payload)}")
            elif payload is not None:
                parts.append(f"{key}: {readable(payload) or payload}")
            elif value.get("Truncated"):
                parts.append(f"{key}: (withheld)")
        elif key == "RetryDetails" and isinstance(value, dict):
            parts.append(f"Attempt={value.get('CurrentAttempt', '?')}")
        elif key == "Duration":
            parts.append(f"Duration={value}s")
        elif key.endswith("Timestamp") and isinstance(value, int):
            parts.append(f"{key.removesuffix('Timestamp')}={clock(value)}")
        elif isinstance(value, str | int | float | bool):
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={json.dumps(value, separators=(',', ':'))}")
    return shorten("; ".join(" ".join(p.split()) for p in parts))


def readable(payload: Any) -> str | None:
    """A payload an agent recorded, as a person reads it; None for any other payload.

    A model step's ``AIMessage`` (langchain-core's serialised form) reads ``AIMessage "text"; calls:
    tool(args), ...; tokens: N in, M out``; a whole run's result ``final: AIMessage "..."; 3 turns;
    tool calls: lookup_order, refund``.
    """
    if not isinstance(payload, str) or not payload.startswith('{"'):
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    answer = _ai_message(data)
    if answer is not None:
        return answer
    final = _ai_message(data.get("final")) if isinstance(data, dict) and isinstance(data.get("turns"), int) else None
    if final is None:
        return None
    tools = [str(c.get("tool")) for c in data.get("tool_calls") or [] if isinstance(c, dict)]
    turns = data["turns"]
    return (f"final: {final}; {turns} turn{'s' if turns != 1 else ''}"
            + (f"; tool calls: {_listed(tools)}" if tools else ""))


def _ai_message(data: Any) -> str | None:
    """langchain-core's serialised ``AIMessage`` on one line, or None for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), list) or data["id"][-1:] != [LC_AI_MESSAGE]:
        return None
    kwargs = data.get("kwargs")
    if not isinstance(kwargs, dict):
        return None
    content = kwargs.get("content")
    if isinstance(content, list):  # content blocks: their text parts
        content = " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    parts = [f"{LC_AI_MESSAGE} {json.dumps(content)}" if content else LC_AI_MESSAGE]
    calls = [f"{c.get('name')}({json.dumps(c.get('args'), separators=(',', ':'))})"
             for c in kwargs.get("tool_calls") or [] if isinstance(c, dict)]
    if calls:
        parts.append("calls: " + ", ".join(calls))
    usage = kwargs.get("usage_metadata")
    if isinstance(usage, dict) and "input_tokens" in usage:
        parts.append(f"tokens: {usage.get('input_tokens')} in, {usage.get('output_tokens')} out")
    return "; ".join(parts)


def depths(events: list[dict[str, Any]]) -> dict[str, int]:
    """Each operation's nesting level: 0 at the top, one more than its parent's (from ParentId).

    A parent starts before its children, so one pass in history order sees it first; a parent
    that is not in the list (a partial history) counts as one level up from the top.
    """
    found: dict[str, int] = {}
    for event in events:
        op_id = event.get("Id")
        if not op_id or op_id in found:
            continue
        parent = event.get("ParentId")
        found[op_id] = 0 if not parent else found.get(parent, 0) + 1
    return found


def saga_outcome(event: dict[str, Any]) -> tuple[str, str] | None:
    """How a saga ended, read from the error its context (or the execution) failed with: the line
    to show and its style; None for any other event."""
    details = event.get(f"{event['EventType']}Details") or {}
    error = details.get("Error")
    payload = error.get("Payload") if isinstance(error, dict) else None
    if not isinstance(payload, dict) or not str(payload.get("ErrorType", "")).startswith(SAGA_ERROR_PREFIX):
        return None
    try:
        data = json.loads(payload.get("ErrorData") or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("outcome") not in SAGA_OUTCOMES:
        return None
    outcome = data["outcome"]
    kind = str(payload["ErrorType"]).removeprefix(SAGA_ERROR_PREFIX)
    cause = error_line(data.get("error") if isinstance(data.get("error"), dict) else None) or "an error"
    parts = [f"{SAGA_OUTCOMES[outcome]} ({kind}) after {cause}"]
    if outcome == "compensation_failed":
        parts += _rollback_parts(data.get("compensated"), str(data.get("failed") or "?"),
                                 data.get("compensation_error"), data.get("escalation"), data.get("not_compensated"))
    elif outcome == "rolled_back":
        parts += _rollback_parts(data.get("compensated"))
    return shorten("; ".join(parts), OUTCOME_WIDTH), OUTCOME_STYLES[outcome]


def rollback_result(event: dict[str, Any]) -> tuple[str, str] | None:
    """What a saga's rollback context reports when it ends: what was undone, which undo failed."""
    if event.get("SubType") != ROLLBACK_SUBTYPE or event["EventType"] != "ContextSucceeded":
        return None
    result = (event.get("ContextSucceededDetails") or {}).get("Result")
    try:
        data = json.loads(result["Payload"]) if isinstance(result, dict) else None
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("compensated"), list):
        return None
    failed = data.get("failed")
    if not isinstance(failed, dict):
        return shorten("; ".join(_rollback_parts(data["compensated"])), OUTCOME_WIDTH), ""
    parts = _rollback_parts(data["compensated"], str(failed.get("step") or "?"), failed.get("failed"),
                            failed.get("escalation"), data.get("not_compensated"))
    return shorten("; ".join(parts), OUTCOME_WIDTH), OUTCOME_STYLES["compensation_failed"]


def _rollback_parts(compensated: Any, failed: str | None = None, error: Any = None, escalation: Any = None,
                    not_compensated: Any = None) -> list[str]:
    """``could not undo X: error; escalation: ...; undone: a, b; not undone: c`` (the parts that apply)."""
    parts = []
    if failed is not None:
        parts.append(f"could not undo {failed}" + (f": {error_line(error)}" if isinstance(error, dict) else ""))
        if isinstance(escalation, dict):
            parts.append(f"escalation: {escalation.get('decision', '?')}"
                         + (f" ({escalation['reason']})" if escalation.get("reason") else ""))
    undone = [_compensated(c) for c in compensated or [] if isinstance(c, dict)]
    parts.append(f"undone: {_listed(undone) or 'nothing'}")
    if failed is not None and not_compensated:
        parts.append(f"not undone: {_listed([str(s) for s in not_compensated])}")
    return parts


def _compensated(entry: dict[str, Any]) -> str:
    step = str(entry.get("step", "?"))
    if entry.get("resolution") == "resolved":
        return f"{step} (resolved by a person{': ' + str(entry['note']) if entry.get('note') else ''})"
    return step


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_STEPS])
    return shown + (f" +{len(names) - LISTED_STEPS} more" if len(names) > LISTED_STEPS else "")


def history_table(events: list[dict[str, Any]]) -> list[Any]:
    """The history as a table. Operations are indented under the context they belong to (a saga, a
    child context, a map or parallel branch); a compensation reads ``↩ undo <step>``; the end of a
    saga that did not complete says how it ended (rolled back, or which compensation failed)."""
    rows: list[list[Text]] = []
    levels = depths(events)
    for event in events:
        failed = event["EventType"].endswith(("Failed", "TimedOut", "Stopped"))
        sub_type = event.get("SubType") or ""
        name = Text(INDENT * levels.get(event.get("Id") or "", 0))
        sub_style = ""
        if sub_type == COMPENSATION_SUBTYPE:
            sub_style = COMPENSATION_STYLE
            name.append(COMPENSATION_MARK, style=COMPENSATION_STYLE)
            name.append(event.get("Name") or "")
        elif sub_type in (SAGA_SUBTYPE, ROLLBACK_SUBTYPE):
            sub_style = SAGA_STYLE if sub_type == SAGA_SUBTYPE else COMPENSATION_STYLE
            name.append(event.get("Name") or "", style=sub_style)
        else:
            name.append(event.get("Name") or "")
        outcome = saga_outcome(event) if failed else rollback_result(event)
        details = Text(*outcome) if outcome else Text(summarize(event))
        rows.append([Text(str(event.get("EventId", ""))), Text(stamp(event["EventTimestamp"])),
                     Text(event["EventType"], style="red" if failed else ""), Text(sub_type, style=sub_style),
                     name, details])
    return tabulate(["EventId", "Time (UTC)", "EventType", "SubType", "Name", "Details"], rows,
                    flexible=frozenset({4}), under=5, right=frozenset({0}))


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def summary(execution: dict[str, Any]) -> Text:
    """``STATUS  result: ...`` or ``STATUS  error: Type: message``."""
    line = Text("Status: ").append(status_text(execution["Status"]))
    if execution.get("Result") is not None:
        line.append(f"  Result: {shorten(execution['Result'], 400)}")
    if execution.get("Error"):
        line.append(f"  Error: {shorten(error_line(execution['Error']), 400)}", style="red")
    return line


def waiting_text(wait: Waiting, prefix: str) -> str:
    """What ``wait`` is and when it ends; for a callback, the command that answers it (``prefix``
    starts it: ``durably``, with the ``--db`` in use)."""
    until = f"{clock(wait.until, date=True)} UTC" if wait.until is not None else "(not set)"
    if wait.kind == "callback":
        return f"{wait.label}: {prefix} callback success {wait.callback_id} --payload TEXT"
    if wait.kind == "wait":
        return f"{wait.label} until {until}"
    if wait.kind == "retry":
        failed = f", after attempt {wait.attempt} failed: {error_line(wait.error.model_dump())}" if wait.error else ""
        return f"{wait.label} at {until}{failed}"
    if wait.kind == "condition":
        return f"{wait.label} checked again at {until}" + (f" (after check {wait.attempt})" if wait.attempt else "")
    return f"{wait.label}: until the execution it started ends"


def waiting_short(waits: list[Waiting]) -> str:
    """The first thing waited on, and how many more: ``callback 'approve' +2``."""
    if not waits:
        return ""
    return waits[0].label + (f" +{len(waits) - 1}" if len(waits) > 1 else "")


def waiting_lines(waits: list[Waiting], prefix: str, indent: str = "") -> list[Text]:
    shown = [Text(indent + waiting_text(wait, prefix)) for wait in waits[:LISTED_WAITS]]
    if len(waits) > LISTED_WAITS:
        shown.append(Text(f"{indent}+{len(waits) - LISTED_WAITS} more"))
    return shown


def print_run(execution: dict[str, Any], events: list[dict[str, Any]], waits: list[Waiting],
              prefix: str) -> None:
    """What ``durably run`` shows: the ARN, the history, the outcome, and how to go on."""
    parts: list[Any] = [Text(f"Execution: {quoted(execution['DurableExecutionArn'])}"), *history_table(events),
                        *stack_traces(events), summary(execution)]
    if execution["Status"] == "RUNNING":
        if waits:
            parts += [Text("Waiting on:"), *waiting_lines(waits, prefix, INDENT)]
        parts.append(Text(f"Run `{prefix} worker` to drive it on (waits, retries, answered callbacks)."))
    emit(*parts)


def print_history(events: list[dict[str, Any]]) -> None:
    emit(*history_table(events), *stack_traces(events))


def print_execution(execution: dict[str, Any], problem: dict[str, Any] | None, waits: list[Waiting],
                    prefix: str) -> None:
    """GetDurableExecution: the ARN on a line of its own, then a two-column table; a running
    execution also shows its last invocation error and, below, what it waits on."""
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column("Field", style="bold", no_wrap=True)
    grid.add_column("Value", overflow="fold")
    rows: list[tuple[str, Text]] = [
        ("Name", Text(execution.get("DurableExecutionName", ""))),
        ("Function", Text(function_name(execution.get("FunctionArn", "")))),
        ("Status", status_text(execution["Status"])),
        ("Started", Text(clock(execution.get("StartTimestamp"), date=True))),
    ]
    if execution.get("Version", "$LATEST") != "$LATEST":
        rows.insert(2, ("Version", Text(str(execution["Version"]))))
    if execution.get("RedriveOf"):
        rows.append(("Redrive of", Text(quoted(execution["RedriveOf"]))))
    if execution.get("EndTimestamp") is not None:
        rows.append(("Ended", Text(clock(execution["EndTimestamp"], date=True))))
    if execution.get("InputPayload") is not None:
        rows.append(("Input", Text(shorten(execution["InputPayload"], 400))))
    if execution.get("Result") is not None:
        rows.append(("Result", Text(shorten(execution["Result"], 400))))
    if execution.get("Error"):
        rows.append(("Error", Text(error_line(execution["Error"]), style="red")))
        if execution["Error"].get("StackTrace"):
            rows.append(("Stack trace", Text(trace_text(execution["Error"]["StackTrace"]))))
    if problem is not None:
        when = clock(problem["Timestamp"], date=True)
        rows.append(("Last invocation error", Text(f"{error_line(problem['Error'])} ({when}, worker "
                                                   f"{problem['Worker']})", style="yellow")))
    for field, value in rows:
        grid.add_row(field, value)
    running = execution["Status"] == "RUNNING" and waits
    waiting = [Text("Waiting on:"), *waiting_lines(waits, prefix, INDENT)] if running else []
    emit(Text(f"Execution: {quoted(execution['DurableExecutionArn'])}"), grid, *waiting)


def function_name(function_arn: str) -> str:
    return function_arn.split(":function:")[-1].removesuffix(":$LATEST")


def short_ref(arn: str) -> tuple[str, str]:
    """An execution's name and the start of its id, from its ARN (``.../NAME/ID``)."""
    _, name, exec_id = arn.rsplit("/", 2)
    return name, exec_id[:ID_SHOWN]


def print_executions(items: list[dict[str, Any]], waits: dict[str, list[Waiting]], prefix: str) -> None:
    """ListDurableExecutions as a table, newest first; what the running ones wait on below it, and
    the command that shows one."""
    if not items:
        emit(Text("No durable executions."))
        return
    rows: list[list[Text]] = []
    for item in items:
        arn, start, end = item["DurableExecutionArn"], item.get("StartTimestamp"), item.get("EndTimestamp")
        rows.append([status_text(item["Status"]), Text(item.get("DurableExecutionName", "")),
                     Text(short_ref(arn)[1]),
                     Text(function_name(item.get("FunctionArn", ""))),
                     Text(clock(start, date=True)),
                     Text(took(end - start) if end is not None and start is not None else ""),
                     Text(waiting_short(waits.get(arn, [])))])
    parts = tabulate(["Status", "Name", "Id", "Function", "Started (UTC)", "Took", "Waiting on"], rows,
                     flexible=frozenset({1, 3, 6}))
    waiting = [item for item in items if waits.get(item["DurableExecutionArn"])]
    if waiting:
        parts.append(Text("\nWaiting on:"))
        for item in waiting:
            name, exec_id = short_ref(item["DurableExecutionArn"])
            parts += waiting_lines(waits[item["DurableExecutionArn"]], prefix, f"{INDENT}{name} {exec_id}: ")
    parts.append(Text(f"\nMore on one: {prefix} get {quoted(items[0]['DurableExecutionArn'])} "
                      "(or its name, or the start of its id)"))
    emit(*parts)


def print_line(text: str) -> None:
    emit(Text(text))


def print_answer(answer: Any, line: str) -> None:
    """A command's answer: ``answer`` as JSON with ``--output json``, else ``line`` for people."""
    if settings().json:
        print_json(answer)
    else:
        print_line(line)
