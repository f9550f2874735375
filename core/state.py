"""The operation log of one invocation, and the checkpoints that extend it.

Updates are either *queued* (the START of an at-least-once step or of a child context: the body
runs at once and the START travels with the next write) or *written* (everything that must be
durable before the call returns). A queued update that is still waiting after
``QUEUED_FLUSH_SECONDS`` is written by a background thread, so a long-running step has its
``StepStarted`` on record promptly.

Writes from concurrent branches share checkpoints (group commit): while one thread's checkpoint
is in flight, the others' updates gather, and the next checkpoint carries them all. Each
``write`` still returns only once its own updates are durable.

A failed checkpoint (refused because another worker took the execution over, or not written)
halts the invocation for good: that write, and every later ``queue`` or ``write``, raises
:class:`~durably.core.errors.CheckpointFailedError`, so no user code runs after it. A batch the
background flusher could not write is never dropped silently: the next write reports it.

In a replay check (``replay_check`` set) nothing is queued or written: the check refuses the first
update, and the START of an operation found STARTED (:meth:`InvocationState.rerun`), by raising.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Mapping

from durably.core.backend import Backend, ReplayCheck
from durably.core.errors import CheckpointFailedError, SuspendExecution
from durably.core.model import Operation, OperationUpdate
from durably.core.plugins import (
    NO_PLUGINS,
    OperationChangeInfo,
    Plugins,
    RecordedOperation,
    operation_infos,
)
from durably.core.records import OperationRecords

QUEUED_FLUSH_SECONDS = 0.02


class InvocationState:
    """Operations known to this invocation, keyed by id, and the checkpoint token chain."""

    def __init__(self, arn: str, token: str, operations: Iterable[Operation] | OperationRecords, backend: Backend,
                 plugins: Plugins = NO_PLUGINS, updated_ids: Iterable[str] = (),
                 replay_check: ReplayCheck | None = None) -> None:
        self.arn = arn
        self.token: str | None = token
        self.ops = operations if isinstance(operations, OperationRecords) else OperationRecords.of(operations)
        """Recorded operations (stored documents are decoded as read) and those checkpoints returned."""
        self.backend = backend
        self.plugins = plugins
        self.updated_ids = set(updated_ids)
        self.replay_check = replay_check
        self._queued: list[OperationUpdate] = []
        self._queued_at = 0.0
        self._watched = False
        """Whether the flusher holds this state; it lets go (under ``_lock``) once nothing is queued."""
        self._lock = threading.RLock()
        self._requested = 0
        """Writes asked for so far; a write is durable once ``_written`` reaches its number."""
        self._written = 0
        self._sending = False
        self._gates: list[tuple[int, threading.Lock]] = []
        """Writers waiting for a checkpoint, with their numbers."""
        self._halted: BaseException | None = None
        """Why checkpointing stopped for good (the first failed checkpoint's error), if it did."""

    def get(self, op_id: str) -> Operation | None:
        return self.ops.get(op_id)

    def queue(self, update: OperationUpdate) -> None:
        """Send ``update`` with the next write (or within ``QUEUED_FLUSH_SECONDS``)."""
        if self.replay_check is not None:
            self.replay_check.refuse([update])
        self._observe_start(update)
        with self._lock:
            if self._halted is not None:
                raise self._halt()
            if not self._queued:
                self._queued_at = time.monotonic()
                if not self._watched:
                    self._watched = True
                    _flusher.watch(self)
            self._queued.append(update)

    def write(self, *updates: OperationUpdate) -> None:
        """Make the queued updates and ``updates`` durable before returning."""
        if self.replay_check is not None and updates:
            self.replay_check.refuse(updates)
        for update in updates:
            self._observe_start(update)
        with self._lock:
            if self._halted is not None:
                raise self._halt()
            self._queued.extend(updates)
            self._requested += 1
            mine = self._requested
            while self._written < mine:
                if not self._sending:
                    self._send_queued()
                    continue
                gate = threading.Lock()
                gate.acquire()
                self._gates.append((mine, gate))
                self._lock.release()
                try:
                    gate.acquire()  # released once write ``mine`` is durable, or to send the next checkpoint
                finally:
                    self._lock.acquire()
            if self._halted is not None:
                raise self._halt()
        for update in updates:
            self._observe_end(update)

    def rerun(self, start: OperationUpdate) -> None:
        """An operation found STARTED is about to run its body again without a new START (an
        at-least-once step after a crash); a replay check refuses ``start`` instead."""
        if self.replay_check is not None:
            self.replay_check.refuse([start])

    def _send_queued(self) -> None:
        """Send everything gathered so far as one checkpoint; called with the lock held."""
        batch, self._queued = self._queued, []
        upto = self._requested
        self._sending = True
        self._lock.release()
        try:
            if batch:
                self._send(batch)
        except BaseException as exc:
            if self._halted is None:
                self._halted = exc
        finally:
            self._lock.acquire()
            self._sending = False
            self._written = upto
            if self._gates:
                self._open_gates()

    def _halt(self) -> BaseException:
        """The error for an operation after checkpointing stopped (a suspension stays one)."""
        reason = self._halted
        if isinstance(reason, SuspendExecution):
            return reason
        error = CheckpointFailedError(
            f"a checkpoint of this invocation of {self.arn} failed ({type(reason).__name__}: {reason}); "
            "it runs no further code and the engine invokes the handler again")
        error.__cause__ = reason
        return error

    def _open_gates(self) -> None:
        """Wake the writers made durable, and one other (if any) to send the next checkpoint."""
        waiting = []
        for number, gate in self._gates:
            if number <= self._written:
                gate.release()
            else:
                waiting.append((number, gate))
        if waiting:
            waiting.pop(0)[1].release()
        self._gates = waiting

    def flush_if_stale(self, now: float) -> None:
        """Write what has been queued too long; once nothing is queued, the flusher lets go."""
        with self._lock:
            stale = bool(self._queued) and not self._sending and now - self._queued_at >= QUEUED_FLUSH_SECONDS
        try:
            if stale:  # written without holding the lock, so the invocation's writers can join it
                self.write()
        finally:
            with self._lock:
                if not self._queued:
                    self._watched = False
                    _flusher.discard(self)

    def _observe_start(self, update: OperationUpdate) -> None:
        """``on_operation_start``, before the START of an operation is sent."""
        if not self.plugins.plugins or update.Action != "START":
            return
        self.plugins.operation_starting(update, self.ops.get(update.Id), self.arn)

    def _observe_end(self, update: OperationUpdate) -> None:
        """``on_operation_end`` once an operation's SUCCEED or FAIL is durable, from its record."""
        if not self.plugins.plugins or update.Action not in ("SUCCEED", "FAIL"):
            return
        recorded = self.ops.get(update.Id)
        if recorded is not None and recorded.is_terminal:
            self.plugins.operation_ended(recorded, self.arn)

    def observe_replayed(self, op: Operation) -> None:
        """An operation the code meets on replay: the end hook of one the engine finished while the
        execution was suspended, or the replayed start hook of one still unfinished (each once)."""
        if self.replay_check is not None:
            self.replay_check.replayed(op)
        if not self.plugins.plugins or op.Type == "EXECUTION":
            return
        if op.is_terminal:
            if op.Id in self.updated_ids:
                self.plugins.operation_ended(op, self.arn)
        elif op.Status != "READY":
            self.plugins.operation_replayed(op, self.arn)

    def end_unobserved(self) -> None:
        """Before ``on_invocation_end``: the end hooks of the operations the engine finished while
        the execution was suspended that no code of this invocation reached."""
        for op_id in sorted(self.updated_ids):
            op = self.ops.get(op_id)
            if op is not None and op.is_terminal and op.Type != "EXECUTION":
                self.plugins.operation_ended(op, self.arn)

    def _send(self, batch: list[OperationUpdate]) -> None:
        if self.token is None:
            raise SuspendExecution("checkpointing was revoked by the engine")
        response = self.backend.checkpoint(self.arn, self.token, batch)
        previous = {op.Id: op.Status for op in response.NewExecutionState.Operations
                    if op.Id in self.ops} if self.plugins.changes else {}
        self.token = response.CheckpointToken
        for op in response.NewExecutionState.Operations:
            self.ops[op.Id] = op
        if self.plugins.changes:
            self._report_changes(response.NewExecutionState.Operations, previous)
        if self.plugins.records:
            last_action = {update.Id: update.Action for update in batch}  # a START and its SUCCEED: one record
            for op_id, action in last_action.items():
                recorded = self.ops.get(op_id)
                if recorded is not None:
                    self.plugins.emit("on_operation_recorded", RecordedOperation(self.arn, recorded, action))
        if self.token is None and not any(u.Type == "EXECUTION" for u in batch):
            raise SuspendExecution("checkpointing was revoked by the engine")


    def _report_changes(self, returned: list[Operation], previous: Mapping[str, str]) -> None:
        changed = [op for op in returned if previous.get(op.Id) != op.Status]
        if changed:
            self.plugins.emit("on_operation_change", OperationChangeInfo(
                self.arn, operation_infos(changed, self.arn), operation_infos(self.ops.values(), self.arn)))


class _Flusher:
    """One daemon thread per process that writes queued updates older than the threshold."""

    def __init__(self) -> None:
        self._states: weakref.WeakSet[InvocationState] = weakref.WeakSet()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, state: InvocationState) -> None:
        with self._cond:
            self._states.add(state)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="durably-flusher", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._states:
                    self._cond.wait()
            time.sleep(QUEUED_FLUSH_SECONDS / 2)
            self._flush_stale()

    def _flush_stale(self) -> None:
        # A separate frame, so no finished invocation stays referenced while the thread sleeps.
        with self._cond:
            states = list(self._states)
        now = time.monotonic()
        for state in states:
            try:
                state.flush_if_stale(now)
            except BaseException:  # the invocation's own writes report the failure
                pass

    def discard(self, state: InvocationState) -> None:
        with self._cond:
            self._states.discard(state)


_flusher = _Flusher()
