"""Serdes: durably's JSON default with typed read-back, the AWS tagged envelope, pass-through, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
import uuid
from typing import Any

import pytest
from durably import (
    DurableContext,
    Duration,
    ExtendedTypeSerDes,
    JsonSerDes,
    PassThroughSerDes,
    SerDes,
    SerDesContext,
    SerDesError,
    StepConfig,
    StepContext,
    StepError,
    durable_execution,
)
from pydantic import BaseModel

from .conftest import MakeRunner, recording

CTX = SerDesContext(operation_id="op-123", durable_execution_arn="arn:test")


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Invoice(BaseModel):
    number: str
    total: decimal.Decimal
    issued: dt.date


def issued_at(_: StepContext) -> dt.datetime:
    return dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


def point(_: StepContext) -> Point:
    return Point(1, 2)


def tags(_: StepContext) -> set[str]:
    return {"b", "a"}


def request_id(_: StepContext) -> uuid.UUID:
    return uuid.UUID(int=7)


def invoices(_: StepContext) -> list[Invoice]:
    return [Invoice(number="I-1", total=decimal.Decimal("9.50"), issued=dt.date(2024, 1, 31))]


# ---------------------------------------------------------------------------- JsonSerDes
def test_json_serdes_writes_compact_plain_json() -> None:
    serdes = JsonSerDes()
    assert serdes.serialize({"sum": 3, "name": "é"}, CTX) == '{"sum":3,"name":"é"}'
    assert serdes.serialize("task-1", CTX) == '"task-1"'
    assert serdes.serialize(Point(1, 2), CTX) == '{"x":1,"y":2}'
    assert serdes.deserialize('{"x":1,"y":2}', CTX) == {"x": 1, "y": 2}


def test_json_serdes_rebuilds_the_return_type() -> None:
    serdes = JsonSerDes(return_type=Point)
    assert serdes.deserialize(serdes.serialize(Point(3, 4), CTX), CTX) == Point(3, 4)


@pytest.mark.parametrize("value", [object(), float("inf"), [object()]])
def test_json_serdes_error_names_the_operation_and_the_type(value: Any) -> None:
    with pytest.raises(SerDesError, match=f"operation op-123: cannot serialise a value of type {type(value).__name__}"):
        JsonSerDes().serialize(value, CTX)


def test_json_serdes_read_back_errors_name_the_operation() -> None:
    with pytest.raises(SerDesError, match="operation op-123: cannot read back"):
        JsonSerDes(return_type=Point).deserialize('{"x": "not a number"}', CTX)
    with pytest.raises(SerDesError, match="operation op-123"):
        JsonSerDes().deserialize("{not json", CTX)


@pytest.mark.parametrize(("func", "expected", "stored"), [
    (issued_at, dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC), '"2024-05-06T07:08:09Z"'),
    (point, Point(1, 2), '{"x":1,"y":2}'),
    (tags, {"a", "b"}, None),
    (request_id, uuid.UUID(int=7), '"00000000-0000-0000-0000-000000000007"'),
    (invoices, [Invoice(number="I-1", total=decimal.Decimal("9.50"), issued=dt.date(2024, 1, 31))],
     '[{"number":"I-1","total":"9.50","issued":"2024-01-31"}]'),
], ids=["datetime", "dataclass", "set", "uuid", "list-of-models"])
def test_steps_are_rebuilt_from_their_return_annotation(
        make_runner: MakeRunner, func: Any, expected: Any, stored: str | None) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        seen.append(ctx.step(func, name="typed"))
        ctx.wait(Duration(1), name="after")
        return None

    result = make_runner(handler).run(None)
    assert result.status == "SUCCEEDED"
    assert seen == [expected, expected]
    assert all(type(v) is type(expected) for v in seen)
    if stored is not None:
        details = result.get_step("typed").StepDetails
        assert details is not None and details.Result == stored


@pytest.mark.parametrize(("value", "said"), [
    ({1, 2}, "the value is a set, which JSON gives back as a list"),
    ({"at": dt.datetime(2026, 1, 1)}, "the value['at'] is a datetime, which JSON gives back as a string"),
    ([1, decimal.Decimal("1.5")], "the value[1] is a Decimal"),
    ((b"raw",), "the value[0] is a bytes"),
], ids=["set", "datetime-in-dict", "decimal-in-list", "bytes-in-tuple"])
def test_a_value_json_would_change_is_refused_without_a_return_type(value: Any, said: str) -> None:
    with pytest.raises(SerDesError, match=re.escape(said)) as refused:
        JsonSerDes().serialize(value, CTX)
    assert "annotate the function's return type" in str(refused.value)
    assert JsonSerDes(return_type=type(value)).serialize(value, CTX)  # a typed read-back keeps it


def test_json_serdes_still_converts_models_dataclasses_and_tuples() -> None:
    assert JsonSerDes().serialize({"p": Point(1, 2), "t": (1, 2)}, CTX) == '{"p":{"x":1,"y":2},"t":[1,2]}'


def test_an_unannotated_step_returning_a_set_fails_naming_the_step(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(lambda _: {"a", "b"}, name="tags")

    result = make_runner(handler).run(None)
    assert result.status == "FAILED" and result.error is not None
    assert "tags" in (result.error.ErrorMessage or "") and "set" in (result.error.ErrorMessage or "")


def test_a_handler_result_that_is_not_json_fails_the_execution(make_runner: MakeRunner) -> None:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return object()

    result = make_runner(handler).run(None)
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.ErrorType == "durably.core.errors.SerDesError"
    assert "object" in (result.error.ErrorMessage or "")


# ---------------------------------------------------------------------------- ExtendedTypeSerDes
def test_extended_serdes_writes_scalars_and_scalar_lists_as_plain_json() -> None:
    serdes = ExtendedTypeSerDes()
    assert serdes.serialize("ok@2", CTX) == '"ok@2"'
    assert serdes.serialize(10, CTX) == "10"
    assert serdes.serialize([1, 2, 3], CTX) == "[1,2,3]"
    assert serdes.serialize(None, CTX) == "null"
    assert serdes.serialize({"sum": 3}, CTX) == '{"t":"m","v":{"sum":{"t":"i","v":3}}}'


def test_extended_serdes_round_trips_every_tag() -> None:
    serdes = ExtendedTypeSerDes()
    value = {
        "none": None, "bool": True, "int": 3, "float": 1.25, "str": "s", "bytes": b"\x00\xff",
        "uuid": uuid.UUID(int=5), "decimal": decimal.Decimal("1.10"),
        "datetime": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "date": dt.date(2024, 1, 2),
        "tuple": (1, "a"), "list": [1, {"nested": b"x"}],
    }
    back = serdes.deserialize(serdes.serialize(value, CTX), CTX)
    assert back == value
    assert type(back["tuple"]) is tuple and type(back["bytes"]) is bytes
    assert type(back["decimal"]) is decimal.Decimal and type(back["datetime"]) is dt.datetime


@pytest.mark.parametrize("value", [Point(1, 2), {"a": {1, 2}}, {1: "int key"}])
def test_extended_serdes_refuses_unsupported_types_naming_the_operation(value: Any) -> None:
    with pytest.raises(SerDesError, match="operation op-123"):
        ExtendedTypeSerDes().serialize(value, CTX)


def test_extended_serdes_refuses_an_unknown_tag() -> None:
    with pytest.raises(SerDesError, match="unknown extended serdes tag 'zz'"):
        ExtendedTypeSerDes().deserialize('{"t":"zz","v":1}', CTX)


def test_extended_serdes_per_step_in_an_execution(make_runner: MakeRunner) -> None:
    seen: list[Any] = []
    value = {"id": uuid.UUID(int=9), "when": dt.date(2024, 2, 29), "raw": b"hi"}

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        seen.append(ctx.step(lambda _: value, name="tagged", config=StepConfig(serdes=ExtendedTypeSerDes())))
        ctx.wait(Duration(1), name="after")
        return None

    result = make_runner(handler).run(None)
    assert seen == [value, value]
    details = result.get_step("tagged").StepDetails
    assert details is not None and details.Result is not None
    assert details.Result.startswith('{"t":"m","v":{"id":{"t":"u"')


# ---------------------------------------------------------------------------- others
def test_pass_through_serdes_keeps_text_unchanged() -> None:
    serdes = PassThroughSerDes()
    assert serdes.serialize('{"a": 1}', CTX) == '{"a": 1}'
    assert serdes.deserialize('{"a": 1}', CTX) == '{"a": 1}'


class Exploding(SerDes[Any]):
    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        raise RuntimeError("encoder exploded")

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return data


class NoneWriting(SerDes[Any]):
    """A serdes that stores nothing (a value kept elsewhere): the step replays as None."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> Any:
        return None

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        raise AssertionError("nothing was stored, nothing to read")


def test_a_failing_custom_serdes_fails_the_step_naming_it_without_retry(make_runner: MakeRunner) -> None:
    attempts: list[str] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.step(recording(attempts, "attempt", "v"), name="encode",
                     config=StepConfig(serdes=Exploding()))
        except StepError as exc:
            return [exc.error_type, exc.message]
        return None

    error_type, message = make_runner(handler).run(None).value
    assert attempts == ["attempt"]
    assert error_type == "durably.core.errors.SerDesError"
    assert "step 'encode'" in message and "encoder exploded" in message and "str" in message


def test_a_serdes_that_stores_nothing_gives_none(make_runner: MakeRunner) -> None:
    seen: list[Any] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        seen.append(ctx.step(lambda _: "kept elsewhere", name="external", config=StepConfig(serdes=NoneWriting())))
        ctx.wait(Duration(1), name="after")
        return None

    result = make_runner(handler).run(None)
    assert result.status == "SUCCEEDED"
    assert seen == [None, None]
    details = result.get_step("external").StepDetails
    assert details is not None and details.Result is None
