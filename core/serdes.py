"""Serialisation of checkpointed values.

durably's default codec writes compact plain JSON (``{"sum":3}``, ``"task-1"``). Values JSON
cannot hold (pydantic models, dataclasses, datetimes, UUIDs, ...) are converted with pydantic;
on read, a value is rebuilt with a pydantic ``TypeAdapter`` when the producing function has a
return annotation, so a step annotated ``-> Order`` returns an ``Order`` on the first run and on
replay alike. :class:`ExtendedTypeSerDes` writes the AWS SDK's tagged envelope instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import inspect
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar, get_type_hints

from durably.core.errors import SerDesError
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

T = TypeVar("T")

__all__ = ["ExtendedTypeSerDes", "JsonSerDes", "PassThroughSerDes", "SerDes", "SerDesContext"]


@dataclass(frozen=True)
class SerDesContext:
    operation_id: str
    durable_execution_arn: str


class SerDes(ABC, Generic[T]):
    """Turns a value into the text stored in the history, and back."""

    @abstractmethod
    def serialize(self, value: T, serdes_context: SerDesContext) -> str: ...

    @abstractmethod
    def deserialize(self, data: str, serdes_context: SerDesContext) -> T: ...


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact plain JSON; pydantic-convertible values are converted. Raises TypeError/ValueError."""
    try:
        return _ENCODER.encode(value)
    except TypeError:
        try:
            converted = to_jsonable_python(value)
        except PydanticSerializationError as exc:
            raise TypeError(str(exc)) from None
        return _ENCODER.encode(converted)


_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(text: str) -> Any:
    """``json.loads(text)``, without its Python layers when ``text`` is exactly one JSON value
    (no surrounding whitespace); anything else (bytes, errors included) goes through ``json.loads``."""
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, TypeError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


@lru_cache(maxsize=512)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


_PLAIN = (str, int, float, bool, type(None), list, dict, Any, inspect.Signature.empty)


def return_type(func: Callable[..., Any]) -> Any:
    """The return annotation of ``func`` if it asks for a rebuild (a model, a date, ...), else None."""
    target = getattr(func, "__wrapped__", func)
    if "return" not in getattr(target, "__annotations__", {"return": None}):
        return None
    try:
        hint = get_type_hints(target).get("return", None)
    except Exception:
        return None
    if hint is None or hint in _PLAIN:
        return None
    return hint


_COMES_BACK_AS = ((set, "a list"), (frozenset, "a list"), (dt.datetime, "a string"), (dt.date, "a string"),
                  (dt.time, "a string"), (dt.timedelta, "a number"), (decimal.Decimal, "a string"),
                  (uuid.UUID, "a string"), (bytes, "a string"), (enum.Enum, "its value"))


def unfaithful(value: Any, path: str = "the value") -> str | None:
    """Why plain JSON cannot give ``value`` back as it is (a set, a datetime, ... inside plain
    containers), or None. Models and dataclasses are converted to objects on purpose."""
    for kind, becomes in _COMES_BACK_AS:
        if isinstance(value, kind):
            return f"{path} is a {type(value).__qualname__}, which JSON gives back as {becomes}"
    if isinstance(value, dict):
        return next((why for k, v in value.items() if (why := unfaithful(v, f"{path}[{k!r}]"))), None)
    if isinstance(value, (list, tuple)):
        return next((why for i, v in enumerate(value) if (why := unfaithful(v, f"{path}[{i}]"))), None)
    return None


class JsonSerDes(SerDes[Any]):
    """durably's default: compact plain JSON, typed read-back when a ``return_type`` is known.

    Without a ``return_type``, a value JSON cannot give back as it is (a set, a datetime, a
    Decimal, bytes, ... in plain containers) is refused rather than silently changed.
    """

    def __init__(self, return_type: Any = None) -> None:
        self.return_type = return_type

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        try:
            return _ENCODER.encode(value)
        except (TypeError, ValueError):
            pass  # not plain JSON: converted below, if that keeps it
        if self.return_type is None and (why := unfaithful(value)) is not None:
            raise SerDesError(
                f"{why}: annotate the function's return type (e.g. -> set[int], -> datetime) so it is read "
                "back as that type, convert it yourself, or give the operation serdes=ExtendedTypeSerDes()")
        try:
            return dumps(value)
        except (TypeError, ValueError) as exc:
            raise SerDesError(
                f"operation {serdes_context.operation_id}: cannot serialise a value of type "
                f"{type(value).__qualname__} as JSON: {exc}"
            ) from exc

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        try:
            if self.return_type is not None:
                return _adapter(self.return_type).validate_json(data)
            return loads(data)
        except (ValueError, PydanticValidationError) as exc:
            raise SerDesError(
                f"operation {serdes_context.operation_id}: cannot read back the stored value: {exc}"
            ) from exc


class PassThroughSerDes(SerDes[str]):
    """Stores and returns the text unchanged (callback results without a serdes)."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return value

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data


_SCALARS = (str, int, float, bool, type(None))


class ExtendedTypeSerDes(SerDes[Any]):
    """The AWS SDK's tagged envelope (``{"t": tag, "v": value}``), for byte-compatibility."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        if isinstance(value, _SCALARS) or (
            isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value)
        ):
            return json.dumps(value, separators=(",", ":"))
        try:
            return json.dumps(self._tag(value), separators=(",", ":"))
        except TypeError as exc:
            raise SerDesError(f"operation {serdes_context.operation_id}: {exc}") from exc

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        raw = loads(data)
        if isinstance(raw, dict) and set(raw) == {"t", "v"}:
            return self._untag(raw)
        return raw

    def _tag(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {"t": "n", "v": None}
        if isinstance(value, bool):
            return {"t": "b", "v": value}
        if isinstance(value, int):
            return {"t": "i", "v": value}
        if isinstance(value, float):
            return {"t": "f", "v": value}
        if isinstance(value, str):
            return {"t": "s", "v": value}
        if isinstance(value, bytes):
            return {"t": "B", "v": base64.b64encode(value).decode()}
        if isinstance(value, uuid.UUID):
            return {"t": "u", "v": str(value)}
        if isinstance(value, decimal.Decimal):
            return {"t": "d", "v": str(value)}
        if isinstance(value, dt.datetime):
            return {"t": "dt", "v": value.isoformat()}
        if isinstance(value, dt.date):
            return {"t": "D", "v": value.isoformat()}
        if isinstance(value, tuple):
            return {"t": "t", "v": [self._tag(v) for v in value]}
        if isinstance(value, list):
            return {"t": "l", "v": [self._tag(v) for v in value]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"t": "m", "v": {k: self._tag(v) for k, v in value.items()}}
        raise TypeError(f"unsupported type for the extended serdes: {type(value).__qualname__}")

    def _untag(self, node: dict[str, Any]) -> Any:
        tag, v = node["t"], node["v"]
        if tag in ("n", "b", "i", "f", "s"):
            return v
        if tag == "B":
            return base64.b64decode(v)
        if tag == "u":
            return uuid.UUID(v)
        if tag == "d":
            return decimal.Decimal(v)
        if tag == "dt":
            return dt.datetime.fromisoformat(v)
        if tag == "D":
            return dt.date.fromisoformat(v)
        if tag == "t":
            return tuple(self._untag(x) for x in v)
        if tag == "l":
            return [self._untag(x) for x in v]
        if tag == "m":
            return {k: self._untag(x) for k, x in v.items()}
        raise SerDesError(f"unknown extended serdes tag {tag!r}")


DEFAULT_SERDES = JsonSerDes()
