"""What the dashboard reads from a history: graph, timeline, approvals (no server, no browser)."""

from __future__ import annotations

from pathlib import Path

from durably.core.engine.engine import Engine
from durably.server.dashboard import _reading

from .handlers import populate


def test_the_graph_has_a_node_per_operation_and_compensations_point_back(engine: Engine, tmp_path: Path) -> None:
    shown = populate(engine, tmp_path)
    operations = engine.service.all_operations(shown.rolled_back)
    graph = _reading.graph(operations)
    assert sorted(n["id"] for n in graph["nodes"]) == sorted(op.Id for op in operations if op.Type != "EXECUTION")
    names = {n["id"]: n["label"] for n in graph["nodes"]}
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    undo = [(names[e["from"]], kinds[e["from"]], names[e["to"]], kinds[e["to"]])
            for e in graph["edges"] if e["kind"] == "undo"]
    assert sorted(undo) == [("charge_payment", "Compensation", "charge_payment", "Step"),
                            ("reserve_inventory", "Compensation", "reserve_inventory", "Step")]
    saga = next(g for g in graph["groups"] if g["kind"] == "Saga")
    assert len(saga["members"]) == len(graph["nodes"]) - 1  # every other operation is in the saga


def test_map_items_fan_out_and_fan_in(engine: Engine, tmp_path: Path) -> None:
    shown = populate(engine, tmp_path)
    graph = _reading.graph(engine.service.all_operations(shown.fan_out))
    by_id = {n["id"]: n for n in graph["nodes"]}
    labels = next(n for n in graph["nodes"] if n["label"] == "labels")
    items = [e["to"] for e in graph["edges"] if e["from"] == labels["id"]]
    assert sorted(by_id[i]["label"] for i in items) == ["map-item-0", "map-item-1", "map-item-2"]
    send = next(n for n in graph["nodes"] if n["label"] == "send")
    into_send = [by_id[e["from"]]["label"] for e in graph["edges"] if e["to"] == send["id"]]
    assert into_send == ["label", "label", "label"]  # the last step of each item


def test_the_timeline_shows_each_attempt_and_the_retry_waits(engine: Engine, tmp_path: Path) -> None:
    shown = populate(engine, tmp_path)
    operations = engine.service.all_operations(shown.retried)
    timeline = _reading.timeline(operations, engine.get_history(shown.retried), engine.clock.now_ms())
    row = next(r for r in timeline.rows if r.label == "flaky")
    assert [b.kind for b in row.bars] == ["failed", "retry-wait", "failed", "retry-wait", "attempt"]
    assert all(0 <= timeline.left(b) <= 100 and 0 <= timeline.width(b) <= 100 for b in row.bars)
    assert timeline.rows[-1].label == "invocations" and len(timeline.rows[-1].bars) == 3


def test_an_agent_approval_names_the_tool_call_and_its_arguments(engine: Engine, tmp_path: Path) -> None:
    shown = populate(engine, tmp_path)
    [waiting] = [c for c in engine.service.open_callbacks() if c.arn == shown.agent]
    request = _reading.approval_request(waiting.operation, engine.service.all_operations(shown.agent))
    assert request is not None and request.tool == "refund" and request.call_id == "call_2"
    assert request.args == {"order_id": "B-2", "item": "lamp", "amount": 180, "reason": "My lamp arrived broken."}
    assert _reading.callback_label(waiting.operation, engine.service.all_operations(shown.agent)) == "approve refund"
    assert waiting.timeout_due is not None and waiting.timeout_due > engine.clock.now_ms()


def test_open_callbacks_are_those_of_running_executions_only(engine: Engine, tmp_path: Path) -> None:
    shown = populate(engine, tmp_path)
    assert sorted(c.arn for c in engine.service.open_callbacks()) == sorted([shown.agent, shown.sign_off])
    engine.stop_execution(shown.sign_off)
    assert [c.arn for c in engine.service.open_callbacks()] == [shown.agent]


def test_search_matches_part_of_a_name_or_arn_literally(engine: Engine, tmp_path: Path) -> None:
    shown = populate(engine, tmp_path)
    found = engine.service.list_executions(search="order-A")["DurableExecutions"]
    assert sorted(e["DurableExecutionName"] for e in found) == ["order-A-1", "order-A-2"]
    assert engine.service.list_executions(search="order_A")["DurableExecutions"] == []  # _ is not a wildcard
    tail = shown.hostile.rsplit("/", 1)[-1][:10]
    assert [e["DurableExecutionName"] for e in engine.service.list_executions(search=tail)["DurableExecutions"]] \
        == ["hostile"]
