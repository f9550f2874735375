"""What the dashboard shows of an execution, read from its operations and history (no HTML here).

Pure functions over the engine's records: the operation tree, the graph (nodes and edges for the
browser's layout), the timeline (bars from event timestamps), and the approval requests of agents.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durably.core.model import Operation

FAN_OUT = frozenset({"Map", "Parallel"})
"""Context SubTypes whose children run side by side."""
PREVIEW_CHARS = 2000
"""A payload longer than this is shown cut, with a way to see all of it."""


@dataclass
class TreeNode:
    operation: Operation
    children: list[TreeNode] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.operation.SubType or self.operation.Type.title()


def tree(operations: Sequence[Operation]) -> list[TreeNode]:
    """The operations (the EXECUTION one left out) nested by ``ParentId``, each level in start order."""
    nodes = {op.Id: TreeNode(op) for op in operations if op.Type != "EXECUTION"}
    roots: list[TreeNode] = []
    for node in nodes.values():
        parent = nodes.get(node.operation.ParentId or "")
        (parent.children if parent else roots).append(node)
    return roots


def _tails(node: TreeNode) -> list[str]:
    """The operations a flow leaves ``node`` by: its last descendants (every branch's, when fanned out)."""
    if not node.children:
        return [node.operation.Id]
    if node.kind in FAN_OUT:
        return [tail for child in node.children for tail in _tails(child)]
    return _tails(node.children[-1])


def graph(operations: Sequence[Operation]) -> dict[str, Any]:
    """Nodes (one per operation), flow edges (sequence, fan-out, fan-in) and undo edges (from a
    compensation back to the step it undoes), and groups (a context and its descendants)."""
    roots = tree(operations)
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    forward: dict[str, str] = {}

    def visit(level: list[TreeNode], entry: list[str], fanned: bool) -> None:
        previous = entry
        for node in level:
            op = node.operation
            nodes.append({"id": op.Id, "label": op.Name or op.Type.lower(), "kind": node.kind,
                          "type": op.Type, "status": op.Status, "parent": op.ParentId})
            for source in (entry if fanned else previous):
                edges.append({"from": source, "to": op.Id, "kind": "flow"})
            if node.kind == "Compensation" and op.Name in forward:
                edges.append({"from": op.Id, "to": forward[op.Name], "kind": "undo"})
            elif op.Type == "STEP" and op.Name:
                forward[op.Name] = op.Id
            if node.children:
                groups.append({"id": op.Id, "label": op.Name or node.kind, "kind": node.kind,
                               "members": [d.operation.Id for d in _descendants(node)]})
                visit(node.children, [op.Id], node.kind in FAN_OUT)
            previous = _tails(node)

    visit(roots, [], False)
    return {"nodes": nodes, "edges": edges, "groups": groups}


def _descendants(node: TreeNode) -> Iterable[TreeNode]:
    for child in node.children:
        yield child
        yield from _descendants(child)


@dataclass(frozen=True)
class Bar:
    """One span of an operation's row: ``kind`` is attempt, failed, retry-wait, wait, open or span."""

    start: int
    end: int
    kind: str
    title: str


@dataclass
class TimelineRow:
    label: str
    depth: int
    op_id: str | None
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Timeline:
    start: int
    end: int
    rows: list[TimelineRow]

    def left(self, bar: Bar) -> float:
        return 100 * (bar.start - self.start) / max(1, self.end - self.start)

    def width(self, bar: Bar) -> float:
        return 100 * (bar.end - bar.start) / max(1, self.end - self.start)


_ENDS = ("Succeeded", "Failed", "TimedOut", "Stopped")


def timeline(operations: Sequence[Operation], events: Sequence[Mapping[str, Any]], now: int) -> Timeline:
    """A row per operation (in tree order) and one for the invocations; each step attempt is a bar,
    the time between a failed attempt and the next is a retry wait, a wait or callback its whole span."""
    by_op: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    invocations = TimelineRow("invocations", 0, None)
    for event in events:
        kind = event.get("EventType", "")
        if kind == "InvocationCompleted":
            details = event.get("InvocationCompletedDetails") or {}
            start, end = details.get("StartTimestamp"), details.get("EndTimestamp")
            if isinstance(start, int) and isinstance(end, int):
                invocations.bars.append(Bar(start, end, "span", f"invocation {details.get('RequestId', '')}"))
        elif event.get("Id"):
            by_op[event["Id"]].append(event)
    rows: list[TimelineRow] = []

    def visit(level: list[TreeNode], depth: int) -> None:
        for node in level:
            op = node.operation
            row = TimelineRow(op.Name or node.kind, depth, op.Id, _bars(op, by_op.get(op.Id, []), now))
            rows.append(row)
            visit(node.children, depth + 1)

    visit(tree(operations), 0)
    rows.append(invocations)
    stamps = [t for row in rows for bar in row.bars for t in (bar.start, bar.end)]
    execution = next((op for op in operations if op.Type == "EXECUTION"), None)
    start = min([*stamps, *([execution.StartTimestamp] if execution and execution.StartTimestamp else [])] or [now])
    end = max([*stamps, start + 1])
    return Timeline(start, end, rows)


def _bars(op: Operation, events: list[Mapping[str, Any]], now: int) -> list[Bar]:
    bars: list[Bar] = []
    opened: int | None = None
    failed_at: int | None = None
    attempt = 0
    for event in events:
        kind, at = event.get("EventType", ""), event.get("EventTimestamp")
        if not isinstance(at, int):
            continue
        if kind.endswith("Started"):
            if failed_at is not None:
                bars.append(Bar(failed_at, at, "retry-wait", f"waiting to retry {op.Name or ''}".strip()))
                failed_at = None
            opened, attempt = at, attempt + 1
        elif kind.endswith(_ENDS) and opened is not None:
            outcome = "failed" if not kind.endswith("Succeeded") else _span_kind(op)
            bars.append(Bar(opened, at, outcome, f"{kind} (attempt {attempt})" if op.Type == "STEP" else kind))
            if kind == "StepFailed":
                failed_at = at  # a retry wait, if another attempt follows
            opened = None
    if opened is not None:
        bars.append(Bar(opened, max(now, opened), "open", f"{op.Status} since its start"))
    elif failed_at is not None and op.Status in ("PENDING", "READY"):
        bars.append(Bar(failed_at, max(now, failed_at), "retry-wait", "waiting to retry"))
    return bars


def _span_kind(op: Operation) -> str:
    return {"STEP": "attempt", "WAIT": "wait", "CALLBACK": "wait"}.get(op.Type, "span")


@dataclass(frozen=True)
class ApprovalRequest:
    """What an agent asks a person to approve: a tool call and its arguments."""

    tool: str
    call_id: str
    args: Any


def approval_request(callback: Operation, operations: Sequence[Operation]) -> ApprovalRequest | None:
    """The tool call an agent's approval callback is about, from the model call that proposed it."""
    by_id = {op.Id: op for op in operations}
    tool_call = by_id.get(callback.ParentId or "")
    while tool_call is not None and tool_call.SubType != "ToolCall":
        tool_call = by_id.get(tool_call.ParentId or "")
    if tool_call is None or not tool_call.Name or " " not in tool_call.Name:
        return None
    tool, call_id = tool_call.Name.rsplit(" ", 1)
    for op in reversed(operations):
        if op.ParentId == tool_call.ParentId and op.Name == "model" and op.StepDetails and op.StepDetails.Result:
            for call in _tool_calls(op.StepDetails.Result):
                if call.get("id") == call_id:
                    return ApprovalRequest(tool, call_id, call.get("args"))
    return ApprovalRequest(tool, call_id, None)


def callback_label(callback: Operation, operations: Sequence[Operation]) -> str:
    """What a person knows a callback by: its ``wait_for_callback``'s name, else its own."""
    parent = next((op for op in operations if op.Id == callback.ParentId), None)
    if parent is not None and parent.SubType == "WaitForCallback" and parent.Name:
        return parent.Name
    return callback.Name or "callback"


def _tool_calls(result: str) -> list[dict[str, Any]]:
    """The tool calls of a model step's result, langchain-core's serialised ``AIMessage``."""
    try:
        message = json.loads(result)
    except ValueError:
        return []
    kwargs = message.get("kwargs") if isinstance(message, dict) else None
    calls = kwargs.get("tool_calls") if isinstance(kwargs, dict) else None
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def pretty(payload: str | None) -> str:
    """A payload for reading: indented JSON when it is JSON, else the text as stored."""
    if payload is None:
        return ""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload


def payloads(op: Operation) -> list[tuple[str, str]]:
    """(label, text) of what an operation holds: its result, error, callback id, wait end."""
    out: list[tuple[str, str]] = []
    for details in (op.StepDetails, op.ContextDetails, op.CallbackDetails, op.ChainedInvokeDetails):
        if details is None:
            continue
        result = getattr(details, "Result", None)
        if result is not None:
            out.append(("Result", pretty(result)))
        error = getattr(details, "Error", None)
        if error is not None:
            out.append(("Error", json.dumps(error.model_dump(exclude_none=True), indent=2, ensure_ascii=False)))
    if op.CallbackDetails is not None and op.CallbackDetails.CallbackId:
        out.append(("CallbackId", op.CallbackDetails.CallbackId))
    if op.StepDetails is not None and op.StepDetails.Attempt:
        out.append(("Attempt", str(op.StepDetails.Attempt)))
    if op.WaitDetails is not None and op.WaitDetails.ScheduledEndTimestamp:
        out.append(("ScheduledEndTimestamp", str(op.WaitDetails.ScheduledEndTimestamp)))
    return out
