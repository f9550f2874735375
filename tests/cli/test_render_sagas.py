"""``durably run`` and ``durably history`` show a saga's structure: operations indented under the
context they belong to, compensations marked ``↩ undo <step>`` in the order they ran, and the end
of the saga saying how it ended. ``--output json`` keeps the AWS shapes (no marks, no indentation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from durably.cli import render

ORDER = '''
from durably import DurableContext, RetryDecision, StepConfig, durable_execution
from durably.sagas import SagaConfig, saga

NO_RETRY = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.no_retry())
ONCE = SagaConfig(compensation_retry=lambda error, attempt: RetryDecision.no_retry())


def reserve(step, order):
    return "res-" + order["id"]


def release(step, undo):
    return None


def charge(step, order):
    return {"charged": order["amount"]}


def refund(step, undo):
    if undo.saga_input.get("refund") == "down":
        raise ConnectionError("refund API down")


def notify(step, order):
    return "mailed"


def unmail(step, undo):
    return None


def label(step, order):
    raise ValueError("no label printer")


@durable_execution
def handler(event, context: DurableContext):
    context.step(lambda _: "checked", name="check")
    context.run_in_child_context(lambda child: child.step(lambda _: 1, name="inside"), name="block")
    with saga(context, "order", input=event, config=ONCE) as s:
        s.step(reserve, event, compensate=release, name="reserve")
        s.step(charge, event, compensate=refund, name="charge")
        with s.saga("mail") as inner:
            inner.step(notify, event, compensate=unmail, name="notify")
        s.step(label, event, name="label", config=NO_RETRY)
    return "shipped"
'''


@dataclass
class Row:
    event_id: int
    event_type: str
    sub_type: str
    name: str
    """The Name cell without its indentation."""
    depth: int
    details: str


def table_rows(stdout: str) -> list[Row]:
    """The rows of the history table in ``stdout`` (plain text: no terminal, so one line a row)."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("EventId"))
    header = lines[at]
    cols = [header.index(title) for title in ("EventType", "SubType", "Name", "Details")]
    rows = []
    for line in lines[at + 2:]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        line = line.ljust(cols[-1])
        event_type, sub_type, name, details = (line[start:end] for start, end in
                                               zip(cols, [*cols[1:], len(line)], strict=True))
        cell = name.rstrip()
        indent = len(cell) - len(cell.lstrip(" "))
        assert indent % len(render.INDENT) == 0, line
        rows.append(Row(int(line.split()[0]), event_type.strip(), sub_type.strip(), cell.strip(),
                        indent // len(render.INDENT), details.strip()))
    return rows


def run_order(durably: Any, event: dict[str, Any]) -> tuple[str, list[Row]]:
    (durably.root / "order_saga.py").write_text(ORDER)
    result = durably("run", "order_saga.py:handler", "--input", json.dumps(event))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    arn = result.stdout.splitlines()[0].removeprefix("Execution: ").strip("'")
    rows = table_rows(result.stdout)
    history = durably("history", arn)
    assert history.exit_code == 0, history.stderr
    assert table_rows(history.stdout) == rows  # run and history show the same table
    return arn, rows


def only(rows: list[Row], event_type: str, name: str) -> Row:
    found = [r for r in rows if r.event_type == event_type and r.name == name]
    assert len(found) == 1, (event_type, name, rows)
    return found[0]


def test_a_rolled_back_saga_shows_its_nesting_and_its_compensations_in_order(durably: Any) -> None:
    arn, rows = run_order(durably, {"id": "A-1", "amount": 5})

    # nesting: top-level operations at the left, a context's operations one level under it
    assert only(rows, "StepSucceeded", "check").depth == 0
    block, inside = only(rows, "ContextStarted", "block"), only(rows, "StepSucceeded", "inside")
    assert (block.depth, inside.depth) == (0, 1)
    order = only(rows, "ContextStarted", "order")
    assert (order.sub_type, order.depth) == ("Saga", 0)
    for step in ("reserve", "charge", "label"):
        assert only(rows, "StepStarted", step).depth == 1, step
    mail = only(rows, "ContextStarted", "mail")
    assert (mail.sub_type, mail.depth) == ("Saga", 1)
    assert only(rows, "StepSucceeded", "notify").depth == 2

    # the rollback: compensations marked, latest first, under the saga (in its rollback context)
    undone = [r for r in rows if r.sub_type == "Compensation"]
    assert [(r.event_type, r.name) for r in undone] == [
        (kind, f"↩ undo {step}") for step in ("notify", "charge", "reserve")
        for kind in ("StepStarted", "StepSucceeded")]
    rollback = only(rows, "ContextStarted", "rollback")
    assert (rollback.sub_type, rollback.depth) == ("SagaRollback", 1)
    assert {r.depth for r in undone} == {rollback.depth + 1}
    assert rows.index(only(rows, "StepFailed", "label")) < rows.index(rollback) < rows.index(undone[0])
    assert only(rows, "ContextSucceeded", "rollback").details == "undone: notify, charge, reserve"

    # the end of the saga (and of the execution) says how it ended
    outcome = "rolled back (SagaRolledBack) after ValueError: no label printer; undone: notify, charge, reserve"
    assert only(rows, "ContextFailed", "order").details == outcome
    assert only(rows, "ExecutionFailed", arn.split("/")[-2]).details == outcome  # named after the execution

    # the JSON keeps the recorded names: no mark, no indentation
    events = durably.events(arn)
    assert [e["Name"] for e in events if e.get("SubType") == "Compensation"] == [
        step for step in ("notify", "charge", "reserve") for _ in range(2)]
    assert events[-1]["ExecutionFailedDetails"]["Error"]["Payload"]["ErrorType"] == "durably.sagas.SagaRolledBack"


def test_a_compensation_that_fails_is_marked_and_the_saga_end_says_what_was_not_undone(durably: Any) -> None:
    _, rows = run_order(durably, {"id": "A-2", "amount": 5, "refund": "down"})
    undone = [(r.event_type, r.name) for r in rows if r.sub_type == "Compensation"]
    assert undone == [("StepStarted", "↩ undo notify"), ("StepSucceeded", "↩ undo notify"),
                      ("StepStarted", "↩ undo charge"), ("StepFailed", "↩ undo charge")]
    assert only(rows, "StepFailed", "↩ undo charge").details.startswith("Error: ConnectionError: refund API down")
    end = only(rows, "ContextFailed", "order").details
    assert end == ("COMPENSATION FAILED (SagaCompensationFailed) after ValueError: no label printer; "
                   "could not undo charge: ConnectionError: refund API down; undone: notify; not undone: reserve")
    assert only(rows, "ContextSucceeded", "rollback").details == (
        "could not undo charge: ConnectionError: refund API down; undone: notify; not undone: reserve")


def _saga_failed(data: dict[str, Any], error_type: str) -> dict[str, Any]:
    payload = {"ErrorType": f"durably.sagas.{error_type}", "ErrorMessage": "saga 'order' ...",
               "ErrorData": json.dumps({"saga": "order", "error": {"ErrorType": "ValueError", "ErrorMessage": "bad"},
                                        **data})}
    return {"EventType": "ContextFailed", "EventId": 9, "Id": "s", "Name": "order", "SubType": "Saga",
            "ContextFailedDetails": {"Error": {"Payload": payload, "Truncated": False}}}


@pytest.mark.parametrize(("data", "error_type", "expected"), [
    ({"outcome": "rolled_back", "compensated": [{"step": "charge", "resolution": "resolved", "note": "by hand"},
                                                {"step": "reserve", "resolution": "compensated"}]},
     "SagaRolledBack",
     "rolled back (SagaRolledBack) after ValueError: bad; undone: charge (resolved by a person: by hand), reserve"),
    ({"outcome": "compensation_failed", "compensated": [], "failed": "charge",
      "compensation_error": {"ErrorType": "ConnectionError", "ErrorMessage": "down"},
      "escalation": {"decision": "abort", "reason": "no answer within 60 s"}, "not_compensated": ["reserve"]},
     "SagaCompensationFailed",
     "COMPENSATION FAILED (SagaCompensationFailed) after ValueError: bad; could not undo charge: ConnectionError: "
     "down; escalation: abort (no answer within 60 s); undone: nothing; not undone: reserve"),
    ({"outcome": "forward_recovery_failed"}, "SagaForwardRecoveryFailed",
     "forward recovery failed (SagaForwardRecoveryFailed) after ValueError: bad"),
    ({"outcome": "rolled_back", "compensated": [{"step": f"s{i}"} for i in range(10, 0, -1)]}, "SagaRolledBack",
     "rolled back (SagaRolledBack) after ValueError: bad; undone: s10, s9, s8, s7, s6, s5, s4, s3 +2 more"),
])
def test_each_saga_outcome_reads_as_such(data: dict[str, Any], error_type: str, expected: str) -> None:
    outcome = render.saga_outcome(_saga_failed(data, error_type))
    assert outcome is not None and outcome[0] == expected


def test_an_error_that_only_looks_like_a_saga_outcome_is_shown_as_an_error() -> None:
    event = _saga_failed({"outcome": "rolled_back"}, "SagaRolledBack")
    event["ContextFailedDetails"]["Error"]["Payload"]["ErrorData"] = "not json"
    assert render.saga_outcome(event) is None
    event = _saga_failed({"outcome": "something new"}, "SagaSomethingNew")
    assert render.saga_outcome(event) is None
    assert render.summarize(event) == "Error: durably.sagas.SagaSomethingNew: saga 'order' ..."


def test_depths_follow_parent_ids_and_tolerate_a_missing_parent() -> None:
    events = [{"EventType": "ContextStarted", "Id": "a"}, {"EventType": "StepStarted", "Id": "b", "ParentId": "a"},
              {"EventType": "StepStarted", "Id": "c", "ParentId": "b"}, {"EventType": "StepStarted", "Id": "d",
                                                                          "ParentId": "elsewhere"},
              {"EventType": "InvocationCompleted"}]
    assert render.depths(events) == {"a": 0, "b": 1, "c": 2, "d": 1}
