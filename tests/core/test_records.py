"""OperationRecords: an invocation's operations, kept as documents and decoded when read."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any

import pytest
from durably import DurableContext, durable_execution
from durably.core import records
from durably.core.engine.documents import dump_op
from durably.core.engine.engine import Engine
from durably.core.model import Operation
from durably.core.records import OperationRecords


def _op(op_id: str, op_type: str = "STEP", **fields: Any) -> Operation:
    return Operation.model_validate({"Id": op_id, "Type": op_type, "Status": "SUCCEEDED", "StartTimestamp": 1,
                                     **fields})


def test_a_document_is_decoded_on_each_read_and_not_held() -> None:
    step = _op("s1", Name="charge", StepDetails={"Result": "42", "Attempt": 1})
    held = OperationRecords({"s1": dump_op(step)})
    first = held["s1"]
    assert first == step and held.get("s1") == step
    assert held.get("s1") is not first  # decoded again: no decoded copy is kept
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None
    assert held.get("missing") is None and "missing" not in held and "s1" in held
    with pytest.raises(KeyError):
        held["missing"]


def test_an_operation_set_is_kept_as_the_object_in_log_order() -> None:
    held = OperationRecords({"e": dump_op(_op("e", "EXECUTION")), "s1": dump_op(_op("s1"))})
    newer = _op("s1", Name="again")
    held["s1"] = newer
    held.extend([_op("s2")])
    assert held["s1"] is newer
    assert list(held) == ["e", "s1", "s2"] and len(held) == 3
    assert [op.Id for op in held.values()] == ["e", "s1", "s2"]


def test_only_execution_tells_a_first_invocation() -> None:
    assert OperationRecords.of([_op("e", "EXECUTION")]).only_execution()
    assert OperationRecords().only_execution()
    assert not OperationRecords.of([_op("e", "EXECUTION"), _op("s1")]).only_execution()
    assert not OperationRecords.of([_op("s1")]).only_execution()


@durable_execution
def finished_child_then_callback(event: Any, context: DurableContext) -> Any:
    def part(i: int) -> Any:
        return lambda _: i

    def child(ctx: DurableContext) -> int:
        return sum(ctx.step(part(i), name=f"part {i}") for i in range(40))
    total = context.run_in_child_context(child, name="parts")
    return {"total": total, "answer": context.create_callback(name="approve").result()}


def test_an_invocation_decodes_only_the_operations_its_code_reaches(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """On resume the finished child context answers from its own record: its 40 steps stay documents."""
    engine = Engine(tmp_path / "x.db")
    try:
        arn = engine.start_execution(finished_child_then_callback, {})
        assert engine.run_until_complete(arn, stop_when_blocked=True)["Status"] == "RUNNING"
        ops = {op.Name: op for op in engine.service.all_operations(arn)}
        assert len(ops) == 40 + 3
        decoded: list[str] = []
        real = records.decode_operation

        def counting(doc: str) -> Operation:
            op: Operation = real(doc)
            decoded.append(op.Name or op.Type)
            return op
        monkeypatch.setattr(records, "decode_operation", counting)
        details = ops["approve"].CallbackDetails
        assert details is not None and details.CallbackId is not None
        engine.send_callback_success(details.CallbackId, "yes")
        execution = engine.run_until_complete(arn)
        assert execution["Status"] == "SUCCEEDED", execution
        assert json.loads(execution["Result"]) == {"total": 780, "answer": "yes"}
        assert not any(name.startswith("part ") for name in decoded), decoded
        assert "parts" in decoded and "approve" in decoded
    finally:
        engine.close()
        engine.store.close()
