"""Operation documents as the journal keeps them: compact JSON, ``Id`` first, one per line."""

from __future__ import annotations

import json
from collections.abc import Iterable

from durably.core.model import Operation
from durably.core.records import decode_operation
from pydantic_core import to_json

_serialize_op = Operation.__pydantic_serializer__.to_json
_ID_PREFIX = '{"Id":"'


def dump_op(op: Operation) -> str:
    """``op.model_dump_json(exclude_none=True)`` without its Python wrapper (no line breaks: JSON escapes them)."""
    return _serialize_op(op, exclude_none=True).decode()


def load_op(doc: str) -> Operation:
    return decode_operation(doc)  # type: ignore[no-any-return]


def load_ops(docs: Iterable[str]) -> list[Operation]:
    """Parse operation documents, in order."""
    return list(map(decode_operation, docs))


def doc_id(doc: str) -> str:
    """The ``Id`` of an operation document, read without parsing the rest (it is the first member)."""
    end = doc.find('"', 7)
    if doc.startswith(_ID_PREFIX) and doc.find("\\", 7, end) < 0:
        return doc[7:end]
    value, _ = json.JSONDecoder().raw_decode(doc, doc.index(":") + 1)
    return str(value)


def id_prefix(op_id: str) -> str:
    """How a document of operation ``op_id`` begins (to find it in a journal row without parsing)."""
    return '{"Id":' + to_json(op_id).decode() + ","


def lines(text: str) -> list[str]:
    """The documents of a journal column (one per line; none in an empty column)."""
    return text.split("\n") if text else []
