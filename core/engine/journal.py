"""An execution's journal: its state and history are read from it, and each change appends one row.

Within a transaction, :class:`Changes` gathers what the service changes in each execution it
touches (operations, whose last document wins, and history events) and :meth:`Changes.flush`
appends one row per execution. :class:`Views` remembers, between the checkpoints of the
invocations this process runs, each execution's operations as of a journal position, so a
checkpoint reads only the rows written since (usually none).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from durably.core.engine import history
from durably.core.engine.documents import doc_id, dump_op, id_prefix, lines, load_op
from durably.core.engine.stores.base import OTHER, ExecutionRow, JournalRow, StoreTx
from durably.core.model import Operation

CAPACITY = 1024
"""Executions whose operations a process remembers at once (those its invocations run)."""
BUDGET = 256 * 1024 * 1024
"""Characters of operation documents a process remembers at once, over all executions (the most
recently used execution's are kept even when they alone are more)."""


def fold(ops_columns: Iterable[str], docs: dict[str, str] | None = None) -> dict[str, str]:
    """Each operation's last document, in the order the operations first appeared (onto ``docs``),
    from the ``ops`` columns of journal rows in order."""
    docs = {} if docs is None else docs
    for ops in ops_columns:
        for doc in lines(ops):
            docs[doc_id(doc)] = doc
    return docs


def find_operation(tx: StoreTx, key: int, op_id: str) -> Operation | None:
    """The operation's current state, read from the journal's end backwards."""
    prefix = id_prefix(op_id)
    for row in tx.journal_backwards(key):
        if prefix in row.ops:
            for doc in reversed(lines(row.ops)):
                if doc.startswith(prefix):
                    return load_op(doc)
    return None


@dataclass
class Pending:
    """One execution's changes in the current transaction: its next journal row."""

    row: ExecutionRow
    seq: int
    """The journal position this row follows."""
    event_id: int
    writer: int
    ops: dict[str, Operation] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def put(self, op: Operation) -> None:
        self.ops[op.Id] = op

    def event(self, event_type: str, now: int, details: dict[str, Any], op: Operation | None = None) -> None:
        """Record a history event (ids count on from the journal's last)."""
        self.event_id += 1
        self.events.append(history.event_doc(self.event_id, event_type, now, details, op))


class Changes:
    """What one transaction changes in the journals of the executions it touches."""

    def __init__(self, tx: StoreTx) -> None:
        self.tx = tx
        self._pending: dict[int, Pending] = {}
        self.written: dict[int, tuple[JournalRow, dict[str, str]]] = {}
        """After :meth:`flush`: each execution's new row and the documents of the operations in it."""

    def start(self, row: ExecutionRow) -> Pending:
        """The changes of an execution this transaction creates (its journal is empty)."""
        pending = self._pending[row.key] = Pending(row, 0, 0, OTHER)
        return pending

    def of(self, row: ExecutionRow, writer: int = OTHER, tail: JournalRow | None = None) -> Pending:
        """The pending changes of ``row``'s execution (``tail``: its last journal row, if already read)."""
        pending = self._pending.get(row.key)
        if pending is None:
            if tail is None:
                tail = self.tx.journal_tail(row.key)
            pending = Pending(row, tail.seq if tail else 0, tail.last_event if tail else 0, writer)
            self._pending[row.key] = pending
        elif writer != OTHER:
            pending.writer = writer
        return pending

    def operation(self, row: ExecutionRow, op_id: str, docs: dict[str, str] | None = None) -> Operation | None:
        """The operation as this transaction sees it: changed here, else in ``docs`` (the execution's
        current documents, if the caller has them), else read from the journal."""
        pending = self._pending.get(row.key)
        if pending is not None and op_id in pending.ops:
            return pending.ops[op_id]
        if docs is not None:
            doc = docs.get(op_id)
            return load_op(doc) if doc is not None else None
        return find_operation(self.tx, row.key, op_id)

    def flush(self, always: int | None = None) -> None:
        """Append one row to each touched journal that has changes (and to ``always``'s in any case:
        a checkpoint without updates still uses up its token)."""
        for key, pending in self._pending.items():
            if not (pending.ops or pending.events or key == always):
                continue
            docs = {op_id: dump_op(op) for op_id, op in pending.ops.items()}
            row = JournalRow(pending.seq + 1, "\n".join(docs.values()), "\n".join(pending.events),
                             pending.event_id, pending.writer)
            self.tx.append_journal(key, row)
            self.written[key] = (row, docs)
        self._pending.clear()


class View:
    """An execution's operation documents as of journal position ``seq``."""

    __slots__ = ("docs", "lock", "seq", "size", "types")

    def __init__(self, seq: int, docs: dict[str, str]) -> None:
        self.seq = seq
        self.docs = docs
        self.size = sum(map(len, docs.values()))
        """Characters of its documents (after a catch-up, an upper bound: replaced documents count twice)."""
        self.types: dict[str, str] = {}
        self.lock = threading.Lock()

    def type_of(self, op_id: str) -> str | None:
        known = self.types.get(op_id)
        if known is None:
            doc = self.docs.get(op_id)
            if doc is None:
                return None
            known = self.types[op_id] = load_op(doc).Type
        return known


class Views:
    """The :class:`View` of each execution whose invocations run here, least recently used dropped
    beyond ``capacity`` executions or ``budget`` characters of documents."""

    def __init__(self, capacity: int = CAPACITY, budget: int = BUDGET) -> None:
        self._capacity = capacity
        self._budget = budget
        self._views: OrderedDict[int, View] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def current(self, tx: StoreTx, key: int, tail: JournalRow | None,
                keep: Callable[[int], bool] = lambda _count: True) -> View:
        """The view as of ``tail`` (the journal's last row, read in ``tx``), catching up on the rows
        written since it was last seen (by other writers), or read in full (and then kept if
        ``keep(operation count)``)."""
        last = tail.seq if tail else 0
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
        if view is not None and view.seq <= last:
            with view.lock:
                if view.seq < last:
                    ops = tx.journal_ops(key, after=view.seq)
                    fold(ops, view.docs)
                    view.seq = last
                    self._grow(key, view, sum(map(len, ops)))
            return view
        view = View(last, fold(tx.journal_ops(key)))
        if keep(len(view.docs)):
            self._keep(key, view)
        return view

    def advance(self, key: int, before: int, row: JournalRow, docs: dict[str, str]) -> None:
        """After a commit: the execution's journal went from ``before`` to ``row``, adding ``docs``."""
        with self._lock:
            view = self._views.get(key)
        if view is None:
            return
        with view.lock:
            if view.seq == before:
                view.docs.update(docs)
                view.seq = row.seq
                self._grow(key, view, sum(map(len, docs.values())))
                return
        self.forget(key)

    def forget(self, key: int) -> None:
        with self._lock:
            view = self._views.pop(key, None)
            if view is not None:
                self._size -= view.size

    def _keep(self, key: int, view: View) -> None:
        with self._lock:
            old = self._views.pop(key, None)
            self._size += view.size - (old.size if old is not None else 0)
            self._views[key] = view
            self._drop_beyond_limits()

    def _grow(self, key: int, view: View, added: int) -> None:
        with self._lock:
            view.size += added
            if self._views.get(key) is view:
                self._size += added
                self._views.move_to_end(key)
                self._drop_beyond_limits()

    def _drop_beyond_limits(self) -> None:
        """Drop the least recently used views (never the last one) while over a limit; lock held."""
        while len(self._views) > 1 and (len(self._views) > self._capacity or self._size > self._budget):
            _key, dropped = self._views.popitem(last=False)
            self._size -= dropped.size
