"""An invocation's operations by id, kept as the stored documents until the code reads one.

A replay meets each recorded operation once, in order. Decoding the whole log up front costs
a validation per operation and keeps every decoded object alive for the whole invocation (the
garbage collector then walks them all, again and again). :class:`OperationRecords` keeps the
JSON documents the engine read and decodes one when it is asked for, without keeping the
result: a recorded operation is a fact of the log that nothing changes. What a checkpoint
returns is kept as the object it already is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping

from durably.core.model import Operation

decode_operation = Operation.__pydantic_validator__.validate_json
"""``Operation.model_validate_json`` without its Python wrapper (about 1 µs an operation)."""


class OperationRecords(MutableMapping[str, Operation]):
    """Operations by id, in the order they were first recorded; a stored document is decoded on
    each read (so an operation read twice is decoded twice, and none is held decoded)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Operation | str] | None = None) -> None:
        """``items``: an operation or its stored document, by id; a dict is taken over as it is (the
        caller hands it over), anything else is copied."""
        self._items: dict[str, Operation | str] = items if isinstance(items, dict) else dict(items or {})

    @classmethod
    def of(cls, operations: Iterable[Operation]) -> OperationRecords:
        records = cls()
        records.extend(operations)
        return records

    def extend(self, operations: Iterable[Operation]) -> None:
        for op in operations:
            self._items[op.Id] = op

    def get(self, op_id: str, default: Operation | None = None) -> Operation | None:  # type: ignore[override]
        value = self._items.get(op_id)
        if value is None:
            return default
        return decode_operation(value) if isinstance(value, str) else value

    def __getitem__(self, op_id: str) -> Operation:
        value = self._items[op_id]
        return decode_operation(value) if isinstance(value, str) else value

    def __setitem__(self, op_id: str, op: Operation) -> None:
        self._items[op_id] = op

    def __delitem__(self, op_id: str) -> None:
        del self._items[op_id]

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def only_execution(self) -> bool:
        """Whether nothing but the EXECUTION operation is recorded (an execution's first invocation)."""
        if len(self._items) > 1:
            return False
        return all(op.Type == "EXECUTION" for op in self.values())
