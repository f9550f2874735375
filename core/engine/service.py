"""The service side of the durable execution API over a store (``durably.core.engine.stores``).

Each public method is one transaction. State changes follow the Lambda durable execution
service: the operation lifecycle, history events, single-use checkpoint tokens, timers for
waits, retries and callbacks, and chained invokes run as child executions. Every rule lives
here; a store only keeps rows (each change to an execution is one journal row, see
:mod:`durably.core.engine.journal`).

A checkpoint token is the current invocation's secret and the journal position it was issued
at: a checkpoint is accepted only while no other checkpoint was written since that position
(rows written by anything else, such as an answered callback, do not use it up).
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from durably.core.engine import code_versions, history, redrive
from durably.core.engine.clock import Clock
from durably.core.engine.code_versions import LATEST, qualifier_of
from durably.core.engine.documents import lines, load_op, load_ops
from durably.core.engine.errors import (
    CallbackTimeoutException,
    DurableExecutionAlreadyStartedException,
    InvalidParameterValueException,
    RequestTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from durably.core.engine.functions import (
    DEFAULT_EXECUTION_TIMEOUT,
    DEFAULT_RETENTION_DAYS,
    FunctionSpec,
    absolute_reference,
    check_name,
)
from durably.core.engine.journal import Changes, Pending, View, Views, find_operation, fold
from durably.core.engine.liveness import UNKNOWN_START, host_identity, hostname_of, owner_is_gone, process_start_time
from durably.core.engine.stores.base import CHECKPOINT, ExecutionQuery, ExecutionRow, JournalRow, Store, StoreTx
from durably.core.limits import MAX_ERROR_DATA, MAX_EXECUTION_RESULT, MAX_OPERATION_PAYLOAD, utf8_size
from durably.core.model import (
    TERMINAL_STATUSES,
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointResponse,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    ExecutionState,
    InvocationOutput,
    Operation,
    OperationStatusName,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)
from durably.core.records import OperationRecords

T = TypeVar("T")
ACCOUNT = "000000000000"
VALID_ACTIONS = {
    "STEP": {"START", "SUCCEED", "FAIL", "RETRY"},
    "CONTEXT": {"START", "SUCCEED", "FAIL"},
    "WAIT": {"START", "CANCEL"},
    "CALLBACK": {"START"},
    "CHAINED_INVOKE": {"START"},
    "EXECUTION": {"SUCCEED", "FAIL"},
}
MAX_INVOCATION_FAILURES = 5
MAX_INVALID_PENDING = 3
OUTSTANDING_TYPES = frozenset({"CALLBACK", "CHAINED_INVOKE", "STEP", "WAIT"})
OUTSTANDING_STATUSES = frozenset({"STARTED", "PENDING", "READY"})
"""An operation of these types in these statuses can still resume a suspended execution."""
_checkpoint_response = CheckpointResponse.__pydantic_validator__.validate_python
"""``CheckpointResponse.model_validate`` without its Python wrapper."""
_new_operation = Operation.__pydantic_validator__.validate_python
"""An ``Operation`` from a dict of its fields; details nested in it cost far less than a model built apart."""


@dataclass(frozen=True)
class Takeover:
    """An invocation of a dead worker that this worker recorded as crashed."""

    arn: str
    owner: str
    reason: str


TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
"""A W3C trace context ``traceparent`` (version 00, no all-zero ids)."""


@dataclass(frozen=True)
class OpenCallback:
    """A callback waiting for its answer; the timeouts are when it fails unanswered (epoch ms)."""

    arn: str
    execution_name: str
    function_name: str
    operation: Operation
    timeout_due: int | None
    heartbeat_due: int | None


@dataclass
class Claim:
    """An invocation a worker now owns."""

    arn: str
    token: str
    invocation_id: str
    function_name: str
    ref: str | None
    durable: bool
    input: str | None
    started: int
    updated_ids: list[str] = field(default_factory=list)
    trace_header: str | None = None
    """The trace context the execution was started with (W3C ``traceparent`` or X-Ray header)."""


class Service:
    def __init__(self, store: Store, clock: Clock | None = None, region: str = "us-east-1") -> None:
        self.store = store
        self.clock = clock or Clock()
        self.region = region
        self.host_id = host_identity()
        self.host = hostname_of(self.host_id)
        self.pid = os.getpid()
        self.pstart = process_start_time(self.pid) or UNKNOWN_START
        self.owner = f"{self.host}:{self.pid}:{secrets.token_hex(6)}"
        self._views = Views()

    # ------------------------------------------------------------------ plumbing
    def function_arn(self, function_name: str, version: str = LATEST) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{function_name}:{version}"

    def _write(self, fn: Callable[[StoreTx, Changes], T], durable: bool = True) -> T:
        """Run ``fn`` in a transaction, appending the journal rows of what it changed."""
        def run(tx: StoreTx) -> T:
            changes = Changes(tx)
            out = fn(tx, changes)
            changes.flush()
            return out
        return self.store.transact(run, durable)

    @staticmethod
    def _row(tx: StoreTx, arn: str, lock: bool = False) -> ExecutionRow:
        row = tx.execution(arn, lock=lock)
        if row is None:
            raise ResourceNotFoundException(f"no durable execution {arn}")
        return row

    @staticmethod
    def _set(tx: StoreTx, row: ExecutionRow, **changes: Any) -> None:
        """Change columns of ``row`` in the database and in ``row`` itself."""
        for name, value in changes.items():
            setattr(row, name, value)
        tx.update_execution(row.key, **changes)

    # ------------------------------------------------------------------ functions
    def save_function(self, spec: FunctionSpec) -> None:
        self.store.transact(lambda tx: tx.save_function(spec))

    def stored_function(self, name: str) -> FunctionSpec | None:
        return self.store.read(lambda tx: tx.function(name))

    # ------------------------------------------------------------------ versions
    def publish_version(self, function_name: str, source_ref: str, description: str = "") -> dict[str, Any]:
        """Snapshot the code ``source_ref`` imports as the function's next version (see ``code_versions``).

        The snapshot is imported in a fresh process before the version is kept; a reference that cannot
        be imported there is refused (HandlerImportError) and nothing is kept. The function is recorded
        too if it is not yet, its ``$LATEST`` being ``source_ref``.
        """
        check_name(function_name)
        folder = code_versions.version_folder(self.store.code_folder, function_name, 0).parent
        now = self.clock.now_ms()

        def reserve(tx: StoreTx) -> int:
            version = tx.last_version(function_name) + 1
            tx.reserve_version(function_name, version, now, description)
            return version

        version = self.store.transact(reserve)
        dest = folder / str(version)
        try:
            ref = code_versions.snapshot(source_ref, dest, folder.parent.parent)
            sha = code_versions.tree_sha256(dest)  # before the import check can add a __pycache__
            archive = code_versions.pack(dest)
            code_versions.check_importable(ref, dest)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            self.store.transact(lambda tx: tx.drop_version(function_name, version))
            raise

        def keep(tx: StoreTx) -> None:
            tx.publish_version(function_name, version, ref, sha)
            tx.save_code_archive(function_name, version, archive)
            tx.save_function(FunctionSpec(function_name, True, absolute_reference(source_ref),
                                          DEFAULT_EXECUTION_TIMEOUT, DEFAULT_RETENTION_DAYS), replace=False)

        self.store.transact(keep)
        return {"FunctionName": function_name, "Version": str(version),
                "FunctionArn": self.function_arn(function_name, str(version)), "CodeSha256": sha,
                "Description": description, "CreatedTimestamp": now}

    def list_versions(self, function_name: str) -> dict[str, Any]:
        """The function's published versions (oldest first) and its aliases."""
        def read(tx: StoreTx) -> dict[str, Any]:
            versions = [{"Version": str(v.version), "FunctionArn": self.function_arn(function_name, str(v.version)),
                         "CodeSha256": v.code_sha256, "Description": v.description, "CreatedTimestamp": v.created_ts,
                         "Ref": v.ref} for v in tx.versions(function_name)]
            aliases = [{"Name": a, "FunctionVersion": str(v), "AliasArn": self.function_arn(function_name, a)}
                       for a, v in tx.aliases(function_name)]
            if not versions and tx.function(function_name) is None:
                raise ResourceNotFoundException(f"no function {function_name!r}")
            return {"FunctionName": function_name, "Versions": versions, "Aliases": aliases}
        return self.store.read(read)

    def update_alias(self, function_name: str, alias: str, version: int | str) -> dict[str, Any]:
        """Point ``alias`` at a published version (creating the alias if new)."""
        if not code_versions.ALIAS_NAME.match(alias):
            raise InvalidParameterValueException(
                f"alias name {alias!r} must be letters, digits, - and _ (1 to 128), and not only digits "
                "(a number names a version)")
        number = _version_number(version)

        def tx_fn(tx: StoreTx) -> None:
            if tx.version_ref(function_name, number) is None:
                raise ResourceNotFoundException(f"{function_name!r} has no published version {number}")
            tx.set_alias(function_name, alias, number)

        self.store.transact(tx_fn)
        return {"Name": alias, "FunctionVersion": str(number), "AliasArn": self.function_arn(function_name, alias)}

    def resolve_version(self, function_name: str, qualifier: str) -> tuple[str, str | None]:
        """What ``NAME:QUALIFIER`` runs: (the version, ``$LATEST`` or a number; the reference it imports)."""
        def read(tx: StoreTx) -> tuple[str, str | None]:
            if qualifier == LATEST:
                spec = tx.function(function_name)
                if spec is None:
                    raise ResourceNotFoundException(f"no function {function_name!r}")
                return LATEST, spec.ref
            if qualifier.isdigit():
                number = int(qualifier)
            else:
                aliased = tx.alias(function_name, qualifier)
                if aliased is None:
                    raise ResourceNotFoundException(f"{function_name!r} has no alias {qualifier!r}")
                number = aliased
            ref = tx.version_ref(function_name, number)
            if ref is None:
                raise ResourceNotFoundException(f"{function_name!r} has no published version {number}")
            return str(number), ref
        return self.store.read(read)

    def has_versions(self, function_name: str) -> bool:
        return self.store.read(lambda tx: tx.version_count(function_name)) > 0

    def code_changed(self, arn: str) -> bool | None:
        """Whether the file a ``$LATEST`` execution imports changed since it started (replays then run other
        code than the first invocation did); None when unknown (a published version, or no hash recorded)."""
        row = self.store.read(lambda tx: self._row(tx, arn))
        if qualifier_of(arn) != LATEST or row.code_sha256 is None:
            return None
        return bool(code_versions.code_sha256(row.ref) != row.code_sha256)

    # ------------------------------------------------------------------ start
    def start_execution(self, spec: FunctionSpec, input_payload: str | None, name: str | None = None,
                        tenant_id: str | None = None, trace_header: str | None = None,
                        code_sha256: str | None = None) -> tuple[str, bool]:
        """Create an execution of ``spec`` at ``spec.version`` (idempotent by name); answer its ARN and whether
        it is new.

        ``trace_header`` (a W3C ``traceparent``) is handed to every invocation, for tracing. ``code_sha256``:
        the hash of the code it starts on, for :meth:`code_changed`."""
        if input_payload is not None and utf8_size(input_payload) > MAX_EXECUTION_RESULT:
            raise RequestTooLargeException(
                f"the input is {utf8_size(input_payload)} bytes, over the {MAX_EXECUTION_RESULT}-byte limit")
        if trace_header is not None and not TRACEPARENT.fullmatch(trace_header):
            raise InvalidParameterValueException(
                f"the trace context {trace_header[:100]!r} is not a W3C traceparent "
                "(00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>)")
        return self._write(lambda tx, changes: self._insert_execution(
            tx, changes, spec, input_payload, name, tenant_id=tenant_id, trace_header=trace_header,
            code_sha256=code_sha256))

    def _insert_execution(self, tx: StoreTx, changes: Changes, spec: FunctionSpec, input_payload: str | None,
                          name: str | None, parent: tuple[str, str] | None = None,
                          tenant_id: str | None = None, trace_header: str | None = None,
                          code_sha256: str | None = None,
                          redrive_of: tuple[str, int] | None = None) -> tuple[str, bool]:
        """``redrive_of``: the ARN of the execution this one redrives, and how many operations it keeps."""
        now = self.clock.now_ms()
        if name is not None:
            existing = tx.named_execution(spec.name, name)
            if existing is not None:
                if existing.input == input_payload:
                    return existing.arn, False
                raise DurableExecutionAlreadyStartedException(
                    f"an execution named {name!r} of {spec.name} already exists with a different input")
        exec_id = secrets.token_hex(16)
        name = name or secrets.token_hex(8)
        arn = f"{self.function_arn(spec.name, spec.version)}/durable-execution/{name}/{exec_id}"
        row = ExecutionRow(
            key=0, arn=arn, exec_id=exec_id, name=name, function_name=spec.name, ref=spec.ref,
            durable=spec.durable, status="RUNNING", input=input_payload, result=None, error=None, start_ts=now,
            end_ts=None, execution_timeout=spec.execution_timeout, retention_days=spec.retention_days, ready=True,
            parent_arn=parent[0] if parent else None, parent_op=parent[1] if parent else None, tenant_id=tenant_id,
            trace_header=trace_header, redrive_of=redrive_of[0] if redrive_of else None, code_sha256=code_sha256)
        row.key = tx.insert_execution(row)
        op = Operation(Id=exec_id, Type="EXECUTION", Status="STARTED", Name=name, StartTimestamp=now,
                       ExecutionDetails=ExecutionDetails(InputPayload=input_payload))
        started: dict[str, Any] = {"Input": history.result(input_payload), "ExecutionTimeout": spec.execution_timeout}
        if redrive_of is not None:
            started["RedriveOf"], started["KeptOperations"] = redrive_of
        pending = changes.start(row)
        pending.put(op)
        pending.event("ExecutionStarted", now, started, op)
        tx.set_timer(row.key, exec_id, "exec_timeout", now + spec.execution_timeout * 1000)
        return arn, True

    # ------------------------------------------------------------------ reads
    def get_execution(self, arn: str) -> dict[str, Any]:
        row = self.store.read(lambda tx: self._row(tx, arn))
        out: dict[str, Any] = {
            "DurableExecutionArn": arn, "DurableExecutionName": row.name,
            "FunctionArn": self.function_arn(row.function_name, qualifier_of(arn)), "Status": row.status,
            "StartTimestamp": row.start_ts, "Version": qualifier_of(arn),
            "DurableConfig": {"ExecutionTimeout": row.execution_timeout,
                              "RetentionPeriodInDays": row.retention_days},
        }
        if row.input is not None:
            out["InputPayload"] = row.input
        if row.end_ts is not None:
            out["EndTimestamp"] = row.end_ts
        if row.result is not None:
            out["Result"] = row.result
        if row.error is not None:
            out["Error"] = json.loads(row.error)
        if row.redrive_of is not None:
            out["RedriveOf"] = row.redrive_of  # a durably extension: the execution this one redrives
        return out

    def get_history(self, arn: str, marker: str | None = None, max_items: int = 1000,
                    reverse: bool = False, include_data: bool = True) -> dict[str, Any]:
        start = _int_marker(marker)
        limit = max(1, min(max_items or 1000, 1000))

        def read(tx: StoreTx) -> list[JournalRow]:
            row = self._row(tx, arn)
            return tx.journal(row.key, from_event=0 if reverse else start)

        numbered = [(event_id, doc) for journal_row in self.store.read(read)
                    for event_id, doc in _numbered_events(journal_row)]
        if reverse:
            end = start if marker else 2**62
            numbered = [item for item in reversed(numbered) if item[0] <= end]
        else:
            numbered = [item for item in numbered if item[0] >= start]
        events = [json.loads(doc) for _, doc in numbered[:limit]]
        if not include_data:
            events = [_withhold(e) for e in events]
        out: dict[str, Any] = {"Events": events}
        if len(numbered) > limit:
            out["NextMarker"] = str(numbered[limit][0])
        return out

    def get_state(self, arn: str, token: str | None = None, marker: str | None = None,
                  max_items: int = 1000) -> ExecutionState:
        """A page of ``arn``'s operations. A history of more than one page is kept folded
        (``journal.Views``), so the next pages read only the journal's tail and what was written since."""
        start = _int_marker(marker)
        limit = max(1, min(max_items or 1000, 1000))
        docs = list(self._operation_docs(arn, token, keep=lambda count: count > start + limit).values())
        ops = load_ops(docs[start:start + limit])
        return ExecutionState(Operations=ops, NextMarker=str(start + limit) if len(docs) > start + limit else None)

    def all_operations(self, arn: str, token: str | None = None) -> list[Operation]:
        """Every operation of ``arn`` in order, in one read (``token`` checked as by get_state)."""
        return load_ops(self._operation_docs(arn, token, keep=lambda _count: False).values())

    def invocation_records(self, arn: str, token: str | None = None) -> OperationRecords:
        """An invocation's first read: every operation of ``arn``, as documents decoded when the code
        reaches them (``token``, if given, checked as by get_state); the execution is kept folded for
        its checkpoints."""
        return OperationRecords(self._operation_docs(arn, token, keep=lambda _count: True))

    def _operation_docs(self, arn: str, token: str | None, keep: Callable[[int], bool]) -> dict[str, str]:
        """Each operation's document by id, in order: from this process's view of the execution, caught
        up, else folded from the journal (and kept as its view if ``keep(operation count)``)."""
        def read(tx: StoreTx) -> dict[str, str]:
            row, tail = tx.execution_with_tail(arn)
            if row is None:
                raise ResourceNotFoundException(f"no durable execution {arn}")
            if token is not None and _token_secret(token) != row.token:
                raise InvalidParameterValueException("Invalid checkpoint token")
            view = self._views.current(tx, row.key, tail, keep)
            with view.lock:
                return dict(view.docs)
        return self.store.read(read)

    def list_executions(self, function_name: str | None = None, name: str | None = None,
                        statuses: list[str] | None = None, started_after: int | None = None,
                        started_before: int | None = None, reverse: bool = True,
                        marker: str | None = None, max_items: int = 100,
                        search: str | None = None) -> dict[str, Any]:
        """Executions, newest first, as ``ListDurableExecutionsByFunction`` answers; ``search``: a
        part of the name or of the ARN (a durably extension, for the dashboard)."""
        limit = max(1, min(max_items or 100, 1000))
        offset = _int_marker(marker)
        query = ExecutionQuery(function_name=function_name.split(":")[0] if function_name else None, name=name or None,
                               statuses=tuple(statuses or ()), started_after=started_after,
                               started_before=started_before, search=search or None, newest_first=reverse,
                               offset=offset, limit=limit + 1)
        rows = self.store.read(lambda tx: tx.list_executions(query))
        items = []
        for summary in rows[:limit]:
            item: dict[str, Any] = {
                "DurableExecutionArn": summary.arn, "DurableExecutionName": summary.name,
                "FunctionArn": self.function_arn(summary.function_name, qualifier_of(summary.arn)),
                "Status": summary.status, "StartTimestamp": summary.start_ts}
            if summary.end_ts is not None:
                item["EndTimestamp"] = summary.end_ts
            items.append(item)
        out: dict[str, Any] = {"DurableExecutions": items}
        if len(rows) > limit:
            out["NextMarker"] = str(offset + limit)
        return out

    def get_logs(self, arn: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The log records of ``arn``'s handler (``context.logger``), oldest first, after record ``after``."""
        records = self.store.read(lambda tx: tx.logs(self._row(tx, arn).key, after, max(1, min(limit, 10_000))))
        return [{"Id": r.id, "Timestamp": r.ts, "Level": r.level, "Message": r.message, **json.loads(r.fields)}
                for r in records]

    def find_executions(self, ref: str, limit: int = 10) -> list[dict[str, Any]]:
        """Executions a person may mean by ``ref``: its ARN, its name, or the start of its id; newest first."""
        return [{"DurableExecutionArn": s.arn, "DurableExecutionName": s.name, "Status": s.status,
                 "StartTimestamp": s.start_ts}
                for s in self.store.read(lambda tx: tx.find_executions(ref, limit))]

    def function_names(self) -> list[str]:
        """The functions that have durable executions, by name."""
        return self.store.read(lambda tx: tx.function_names())

    def open_callbacks(self, limit: int = 500, arn: str | None = None) -> list[OpenCallback]:
        """The callbacks that wait for an answer, in running executions (or in ``arn``), oldest first."""
        def read(tx: StoreTx) -> list[OpenCallback]:
            key = None
            if arn is not None:
                row = tx.execution(arn)
                if row is None:
                    return []
                key = row.key
            found = []
            rows: dict[int, ExecutionRow | None] = {}
            for cb_key, op_id in tx.open_callbacks(key):
                row = rows[cb_key] if cb_key in rows else rows.setdefault(cb_key, tx.execution(cb_key))
                op = find_operation(tx, cb_key, op_id)
                if row is None or op is None or op.Status != "STARTED":
                    continue
                timeout, heartbeat = (tx.timer(cb_key, op_id, kind) for kind in ("cb_timeout", "cb_heartbeat"))
                found.append(OpenCallback(row.arn, row.name, row.function_name, op,
                                          timeout[0] if timeout else None, heartbeat[0] if heartbeat else None))
            return found
        found = self.store.read(read)
        found.sort(key=lambda c: (c.operation.StartTimestamp or 0, c.arn))
        return found[:limit]

    # ------------------------------------------------------------------ checkpoint
    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate],
                   targets: dict[str, FunctionSpec | None] | None = None) -> CheckpointResponse:
        """Apply ``updates`` atomically. ``targets`` resolves CHAINED_INVOKE function names."""
        response, key, before, written = self.store.transact(
            lambda tx: self._checkpoint(tx, arn, token, updates, targets or {}))
        if response.CheckpointToken is None:
            self._views.forget(key)
        else:  # only now that the checkpoint has committed
            self._views.advance(key, before, *written)
        return response

    def _checkpoint(self, tx: StoreTx, arn: str, token: str, updates: list[OperationUpdate],
                    targets: dict[str, FunctionSpec | None],
                    ) -> tuple[CheckpointResponse, int, int, tuple[JournalRow, dict[str, str]]]:
        """The response, the execution's key, the journal position before, and the row written with
        the documents in it (for the caller's view, once the commit is durable)."""
        row, tail = tx.execution_with_tail(arn, lock=True, with_input=False)
        if row is None:
            raise ResourceNotFoundException(f"no durable execution {arn}")
        if row.status != "RUNNING":
            raise InvalidParameterValueException(f"Invalid checkpoint token: the execution is {row.status}")
        secret, issued_at = _parse_token(token)
        last = tail.seq if tail else 0
        if secret != row.token or issued_at > last or (issued_at < last and any(
                later.writer == CHECKPOINT for later in tx.journal(row.key, after=issued_at))):
            raise InvalidParameterValueException("Invalid checkpoint token")
        view = self._views.current(tx, row.key, tail)
        now = self.clock.now_ms()
        _validate_batch(updates)
        if updates and row.failed_invocations:  # progress: crashed invocations count only in a row without any
            self._set(tx, row, failed_invocations=0)
        changes = Changes(tx)
        pending = changes.of(row, CHECKPOINT, tail)
        touched: dict[str, Operation] = {}
        completed = False
        for update in updates:
            if update.Type == "EXECUTION":
                self._complete_execution_update(tx, changes, row, update, now)
                completed = True
                continue
            op = self._apply(tx, changes, pending, view, update, now, targets)
            touched[op.Id] = op
        changes.flush(always=row.key)
        written = changes.written[row.key]
        new_token = None if completed else f"{secret}.{written[0].seq}"
        response = _checkpoint_response(
            {"CheckpointToken": new_token, "NewExecutionState": {"Operations": list(touched.values())}})
        return response, row.key, last, written

    def _apply(self, tx: StoreTx, changes: Changes, pending: Pending, view: View, u: OperationUpdate, now: int,
               targets: dict[str, FunctionSpec | None]) -> Operation:
        op = pending.ops.get(u.Id)
        if op is None and u.Id in view.docs:
            op = load_op(view.docs[u.Id])
        if u.ParentId is not None:
            parent = pending.ops.get(u.ParentId)
            if (parent.Type if parent is not None else view.type_of(u.ParentId)) != "CONTEXT":
                raise InvalidParameterValueException(f"Invalid parent operation id: {u.ParentId}")
        if op is not None:
            for field_name, label in (("Type", "type"), ("SubType", "subtype"), ("Name", "name"),
                                      ("ParentId", "parent operation id")):
                sent = getattr(u, field_name)
                if sent is not None and getattr(op, field_name) != sent:
                    raise InvalidParameterValueException(f"Inconsistent operation {label} for {u.Id}")
        if u.Payload is not None and utf8_size(u.Payload) > MAX_OPERATION_PAYLOAD:
            raise RequestTooLargeException(
                f"operation {u.Id}: payload of {utf8_size(u.Payload)} bytes is over {MAX_OPERATION_PAYLOAD}")
        is_new = op is None
        if op is None:  # a step has its details from its start, built in the same call
            op = _new_operation({"Id": u.Id, "ParentId": u.ParentId, "Name": u.Name, "Type": u.Type,
                                 "SubType": u.SubType, "Status": "STARTED", "StartTimestamp": now,
                                 "StepDetails": {} if u.Type == "STEP" else None})
        self._APPLY[u.Type](self, tx, changes, pending, op, u, now, is_new, targets)
        pending.put(op)
        return op

    def _apply_step(self, tx: StoreTx, _changes: Changes, pending: Pending, op: Operation, u: OperationUpdate,
                    now: int, is_new: bool, _targets: Any) -> None:
        d = op.StepDetails
        if d is None:
            op.StepDetails = d = StepDetails()
        if not is_new:
            if u.Action == "START" and op.Status != "READY":
                raise InvalidParameterValueException(f"step {u.Id} cannot START from {op.Status}")
            if u.Action != "START" and op.Status not in ("STARTED", "READY"):
                raise InvalidParameterValueException(f"step {u.Id} cannot {u.Action} from {op.Status}")
        if u.Action == "START":
            if not is_new:  # a next attempt, from READY
                op.Status = "STARTED"
                d.NextAttemptTimestamp = None
            pending.event("StepStarted", now, {}, op)
            return
        d.Attempt += 1
        if u.Action == "SUCCEED":
            if u.Error is not None:
                raise InvalidParameterValueException("SUCCEED cannot carry an Error")
            op.Status, op.EndTimestamp, d.Result, d.Error = "SUCCEEDED", now, u.Payload, None
            pending.event("StepSucceeded", now, {
                "Result": history.result(u.Payload), "RetryDetails": {"CurrentAttempt": d.Attempt}}, op)
        elif u.Action == "FAIL":
            if u.Payload is not None:
                raise InvalidParameterValueException("FAIL cannot carry a Payload")
            op.Status, op.EndTimestamp, d.Error = "FAILED", now, (u.Error or ErrorObject()).bounded()
            pending.event("StepFailed", now, {
                "Error": history.error(d.Error), "RetryDetails": {"CurrentAttempt": d.Attempt}}, op)
        else:  # RETRY
            if u.StepOptions is None:
                raise InvalidParameterValueException("RETRY needs StepOptions")
            if u.Error is not None and u.Payload is not None:
                raise InvalidParameterValueException("RETRY cannot carry both Error and Payload")
            delay = max(u.StepOptions.NextAttemptDelaySeconds, 1)
            op.Status = "PENDING"
            d.NextAttemptTimestamp = now + delay * 1000
            d.Result, d.Error = u.Payload, u.Error and u.Error.bounded()
            retry = {"CurrentAttempt": d.Attempt, "NextAttemptDelaySeconds": delay}
            if d.Error is not None:
                pending.event("StepFailed", now, {"Error": history.error(d.Error), "RetryDetails": retry}, op)
            else:
                pending.event("StepSucceeded", now, {"Result": history.result(u.Payload), "RetryDetails": retry}, op)
            tx.set_timer(pending.row.key, op.Id, "retry", d.NextAttemptTimestamp)

    def _apply_context(self, _tx: StoreTx, _changes: Changes, pending: Pending, op: Operation, u: OperationUpdate,
                       now: int, is_new: bool, _targets: Any) -> None:
        if u.Action == "START":
            if not is_new:
                raise InvalidParameterValueException(f"context {u.Id} already exists")
            pending.event("ContextStarted", now, {}, op)
            return
        if not is_new and op.Status != "STARTED":
            raise InvalidParameterValueException(f"context {u.Id} cannot {u.Action} from {op.Status}")
        op.EndTimestamp = now
        if u.Action == "SUCCEED":
            replay = bool(u.ContextOptions and u.ContextOptions.ReplayChildren)
            op.Status = "SUCCEEDED"
            op.ContextDetails = ContextDetails(Result=u.Payload, ReplayChildren=replay or None)
            pending.event("ContextSucceeded", now, {"Result": history.result(u.Payload)}, op)
        else:
            op.Status = "FAILED"
            op.ContextDetails = ContextDetails(Error=(u.Error or ErrorObject()).bounded())
            pending.event("ContextFailed", now, {"Error": history.error(op.ContextDetails.Error)}, op)

    def _apply_wait(self, tx: StoreTx, _changes: Changes, pending: Pending, op: Operation, u: OperationUpdate,
                    now: int, is_new: bool, _targets: Any) -> None:
        if u.Action == "START":
            if not is_new or u.WaitOptions is None:
                raise InvalidParameterValueException(f"wait {u.Id}: START needs WaitOptions and a new id")
            seconds = u.WaitOptions.WaitSeconds
            end = now + seconds * 1000
            op.WaitDetails = WaitDetails(ScheduledEndTimestamp=end)
            pending.event("WaitStarted", now, {"Duration": seconds, "ScheduledEndTimestamp": end}, op)
            tx.set_timer(pending.row.key, op.Id, "wait", end)
            return
        if is_new or op.Status != "STARTED":
            raise InvalidParameterValueException(f"wait {u.Id} cannot be cancelled")
        op.Status, op.EndTimestamp = "CANCELLED", now
        tx.delete_timers(pending.row.key, op.Id)
        error = u.Error.bounded() if u.Error else None
        pending.event("WaitCancelled", now, {"Error": history.error(error)}, op)

    def _apply_callback(self, tx: StoreTx, _changes: Changes, pending: Pending, op: Operation, u: OperationUpdate,
                        now: int, is_new: bool, _targets: Any) -> None:
        if not is_new:
            raise InvalidParameterValueException(f"callback {u.Id} already exists")
        options = u.CallbackOptions
        timeout = options.TimeoutSeconds if options else 0
        heartbeat = options.HeartbeatTimeoutSeconds if options else 0
        callback_id = secrets.token_hex(20)
        op.CallbackDetails = CallbackDetails(CallbackId=callback_id)
        key = pending.row.key
        tx.add_callback(callback_id, key, op.Id)
        details: dict[str, Any] = {"CallbackId": callback_id}
        if timeout:
            details["Timeout"] = timeout
            tx.set_timer(key, op.Id, "cb_timeout", now + timeout * 1000)
        if heartbeat:
            details["HeartbeatTimeout"] = heartbeat
            tx.set_timer(key, op.Id, "cb_heartbeat", now + heartbeat * 1000, heartbeat)
        pending.event("CallbackStarted", now, details, op)

    def _apply_chained_invoke(self, tx: StoreTx, changes: Changes, pending: Pending, op: Operation,
                              u: OperationUpdate, now: int, is_new: bool,
                              targets: dict[str, FunctionSpec | None]) -> None:
        if not is_new or u.ChainedInvokeOptions is None:
            raise InvalidParameterValueException(f"invoke {u.Id}: START needs ChainedInvokeOptions and a new id")
        fn = u.ChainedInvokeOptions.FunctionName
        tenant = u.ChainedInvokeOptions.TenantId
        spec = targets.get(fn)
        child_arn = None
        if spec is not None:
            child_arn, _ = self._insert_execution(tx, changes, spec, u.Payload, None, parent=(pending.row.arn, op.Id),
                                                  tenant_id=tenant, trace_header=u.ChainedInvokeOptions.XAmznTraceId)
        details: dict[str, Any] = {"FunctionName": fn, "Input": history.result(u.Payload),
                                   "ExecutedVersion": spec.version if spec else LATEST,
                                   "DurableExecutionArn": child_arn}
        if tenant is not None:
            details["TenantId"] = tenant
        pending.event("ChainedInvokeStarted", now, details, op)
        if spec is None:
            op.Status, op.EndTimestamp = "FAILED", now
            err = ErrorObject(ErrorType="ResourceNotFoundException",
                              ErrorMessage=f"Function not found: {fn} (register it or use MODULE:FUNCTION)")
            op.ChainedInvokeDetails = ChainedInvokeDetails(Error=err)
            pending.event("ChainedInvokeFailed", now, {"Error": history.error(err)}, op)

    _APPLY = {"STEP": _apply_step, "CONTEXT": _apply_context, "WAIT": _apply_wait, "CALLBACK": _apply_callback,
              "CHAINED_INVOKE": _apply_chained_invoke}

    def _complete_execution_update(self, tx: StoreTx, changes: Changes, row: ExecutionRow, u: OperationUpdate,
                                   now: int) -> None:
        if u.Payload is not None and utf8_size(u.Payload) > MAX_EXECUTION_RESULT:
            raise RequestTooLargeException(
                f"execution result of {utf8_size(u.Payload)} bytes is over {MAX_EXECUTION_RESULT}")
        if u.Action == "SUCCEED":
            self._finish(tx, changes, row, "SUCCEEDED", now, result=u.Payload)
        else:
            self._finish(tx, changes, row, "FAILED", now, error=(u.Error or ErrorObject()).bounded())

    # ------------------------------------------------------------------ execution end
    def _finish(self, tx: StoreTx, changes: Changes, row: ExecutionRow, status: str, now: int,
                result: str | None = None, error: ErrorObject | None = None) -> None:
        self._set(tx, row, status=status, result=result, error=json.dumps(error.to_wire()) if error else None,
                  end_ts=now, ready=False, token=None)
        payload = row.input if row.input is not None else tx.execution_input(row.key)  # a row read without it
        op = Operation(Id=row.exec_id, Type="EXECUTION", Status=cast(OperationStatusName, status), Name=row.name,
                       StartTimestamp=row.start_ts, EndTimestamp=now,
                       ExecutionDetails=ExecutionDetails(InputPayload=payload))
        tx.delete_timers(row.key)
        event = {"SUCCEEDED": "ExecutionSucceeded", "FAILED": "ExecutionFailed",
                 "TIMED_OUT": "ExecutionTimedOut", "STOPPED": "ExecutionStopped"}[status]
        details = {"Result": history.result(result)} if status == "SUCCEEDED" else {"Error": history.error(error)}
        pending = changes.of(row)
        pending.put(op)
        pending.event(event, now, details, op)
        if row.parent_arn and row.parent_op:
            self._finish_invoke(tx, changes, row.parent_arn, row.parent_op, status, now, result, error)

    def _finish_invoke(self, tx: StoreTx, changes: Changes, arn: str, op_id: str, status: str, now: int,
                       result: str | None, error: ErrorObject | None) -> None:
        row = tx.execution(arn, lock=True)
        if row is None or row.status != "RUNNING":
            return
        op = changes.operation(row, op_id)
        if op is None or op.is_terminal:
            return
        op.Status, op.EndTimestamp = cast(OperationStatusName, status), now
        pending = changes.of(row)
        if status == "SUCCEEDED":
            op.ChainedInvokeDetails = ChainedInvokeDetails(Result=result)
            pending.event("ChainedInvokeSucceeded", now, {"Result": history.result(result)}, op)
        else:
            op.ChainedInvokeDetails = ChainedInvokeDetails(Error=error or ErrorObject())
            event = {"FAILED": "ChainedInvokeFailed", "TIMED_OUT": "ChainedInvokeTimedOut",
                     "STOPPED": "ChainedInvokeStopped"}[status]
            pending.event(event, now, {"Error": history.error(error)}, op)
        pending.put(op)
        self._mark_ready(tx, row, op_id)

    def stop_execution(self, arn: str, error: ErrorObject | None = None) -> dict[str, Any]:
        error = error.bounded() if error is not None else None

        def tx_fn(tx: StoreTx, changes: Changes) -> dict[str, Any]:
            row = self._row(tx, arn, lock=True)
            if row.status != "RUNNING":
                raise InvalidParameterValueException(f"execution {arn} is already {row.status}")
            now = self.clock.now_ms()
            self._finish(tx, changes, row, "STOPPED", now, error=error or ErrorObject(
                ErrorType="Execution.Stopped", ErrorMessage="Execution stopped by user request"))
            self._set(tx, row, lease_owner=None, invocation_id=None)
            return {"StopTimestamp": now}
        return self._write(tx_fn)

    # ------------------------------------------------------------------ redrive
    def redrive_execution(self, arn: str, from_operation: str | None = None, name: str | None = None) -> str:
        """Start a redrive of the ended execution ``arn`` (see :mod:`durably.core.engine.redrive`): a new
        execution of its function and input, holding the operations it keeps and their events; its ARN.
        ``name`` defaults to ``<original name>-redrive-<n>``."""
        return self._write(lambda tx, changes: self._redrive(tx, changes, arn, from_operation, name))

    def _redrive(self, tx: StoreTx, changes: Changes, arn: str, from_operation: str | None,
                 name: str | None) -> str:
        row = self._row(tx, arn)
        redrive.check_redrivable(arn, row.status, row.durable)
        journal = tx.journal(row.key)
        operations = load_ops(fold(row.ops for row in journal).values())
        events = [json.loads(doc) for journal_row in journal for doc in lines(journal_row.events)]
        selection = redrive.select(operations, events, from_operation)
        spec = FunctionSpec(row.function_name, True, row.ref, row.execution_timeout, row.retention_days)

        def taken(candidate: str) -> bool:
            return tx.named_execution(spec.name, candidate) is not None

        if name is None:
            name = redrive.default_name(row.name, tx.redrive_count(arn), taken)
        elif taken(name):
            raise DurableExecutionAlreadyStartedException(
                f"an execution named {name!r} of {spec.name} already exists; choose another name")
        new_arn, _ = self._insert_execution(tx, changes, spec, row.input, name, tenant_id=row.tenant_id,
                                            redrive_of=(arn, len(selection.operations)))
        pending = changes.of(self._row(tx, new_arn))
        for op in selection.operations:
            pending.put(op)
        for event in selection.events(events):
            pending.event_id += 1
            pending.events.append(history.encode({**event, "EventId": pending.event_id}))
        return new_arn

    # ------------------------------------------------------------------ callbacks
    @staticmethod
    def _open_callback(tx: StoreTx, changes: Changes, callback_id: str) -> tuple[ExecutionRow, Operation]:
        found = tx.callback(callback_id)
        if found is None:
            raise ResourceNotFoundException(f"no callback {callback_id!r}")
        row = tx.execution(found[0], lock=True)
        op = changes.operation(row, found[1]) if row is not None else None
        if row is None or op is None:
            raise ResourceNotFoundException(f"no callback {callback_id!r}")
        if op.Status == "TIMED_OUT":
            raise CallbackTimeoutException(f"callback {callback_id!r} already timed out")
        if op.Status != "STARTED":
            raise ResourceNotFoundException(f"callback {callback_id!r} is already {op.Status}")
        if row.status != "RUNNING":
            raise ResourceNotFoundException(f"callback {callback_id!r}: its execution is {row.status}")
        return row, op

    def send_callback_success(self, callback_id: str, result: str | None) -> None:
        """An empty answer is stored as no result (as AWS's service does)."""
        result = result or None
        if result is not None and utf8_size(result) > MAX_OPERATION_PAYLOAD:
            raise RequestTooLargeException(
                f"callback result of {utf8_size(result)} bytes is over the {MAX_OPERATION_PAYLOAD}-byte limit")
        self._write(lambda tx, changes: self._close_callback(tx, changes, callback_id, "SUCCEEDED", result=result))

    def send_callback_failure(self, callback_id: str, error: ErrorObject) -> None:
        """ErrorData over its limit is refused, as a result would be; a longer message or stack
        trace is cut to its limit (``ErrorObject.bounded``)."""
        if error.ErrorData is not None and utf8_size(error.ErrorData) > MAX_ERROR_DATA:
            raise RequestTooLargeException(
                f"callback ErrorData of {utf8_size(error.ErrorData)} bytes is over the {MAX_ERROR_DATA}-byte limit")
        bounded = error.bounded()
        self._write(lambda tx, changes: self._close_callback(tx, changes, callback_id, "FAILED", error=bounded))

    def send_callback_heartbeat(self, callback_id: str) -> None:
        def tx_fn(tx: StoreTx, changes: Changes) -> None:
            row, op = self._open_callback(tx, changes, callback_id)
            timer = tx.timer(row.key, op.Id, "cb_heartbeat")
            if timer and timer[1]:
                tx.set_timer(row.key, op.Id, "cb_heartbeat", self.clock.now_ms() + timer[1] * 1000, timer[1])
        self._write(tx_fn)

    def _close_callback(self, tx: StoreTx, changes: Changes, callback_id: str, status: str,
                        result: str | None = None, error: ErrorObject | None = None) -> None:
        row, op = self._open_callback(tx, changes, callback_id)
        self._end_callback(tx, changes, row, op, status, self.clock.now_ms(), result, error)

    def _end_callback(self, tx: StoreTx, changes: Changes, row: ExecutionRow, op: Operation, status: str, now: int,
                      result: str | None = None, error: ErrorObject | None = None) -> None:
        assert op.CallbackDetails is not None
        op.Status, op.EndTimestamp = cast(OperationStatusName, status), now
        op.CallbackDetails.Result, op.CallbackDetails.Error = result, error
        pending = changes.of(row)
        if status == "SUCCEEDED":
            pending.event("CallbackSucceeded", now, {"Result": history.result(result)}, op)
        else:
            event = "CallbackFailed" if status == "FAILED" else "CallbackTimedOut"
            pending.event(event, now, {"Error": history.error(error)}, op)
        pending.put(op)
        tx.delete_timers(row.key, op.Id)
        if op.CallbackDetails.CallbackId:
            tx.close_callback(op.CallbackDetails.CallbackId)
        self._mark_ready(tx, row, op.Id)

    # ------------------------------------------------------------------ timers
    def next_due(self, kinds: Collection[str] | None = None) -> int | None:
        """When the earliest timer (of these kinds) is due."""
        return self.store.read(lambda tx: tx.next_due(kinds))

    def has_timers(self, arn: str) -> bool:
        """Whether ``arn`` has a timer other than its execution timeout (a wait, retry, callback timeout...)."""
        return self.store.read(lambda tx: tx.has_timers(self._row(tx, arn).key, "exec_timeout"))

    def fire_due_timers(self, limit: int = 500) -> int:
        now = self.clock.now_ms()
        due = self.store.read(lambda tx: tx.due_timers(now, limit))
        if not due:
            return 0

        def tx_fn(tx: StoreTx, changes: Changes) -> int:
            fired = 0
            for key, op_id, kind in due:
                if tx.take_timer(key, op_id, kind, now):
                    self._fire(tx, changes, key, op_id, kind, now)
                    fired += 1
            return fired
        return self._write(tx_fn)

    def _fire(self, tx: StoreTx, changes: Changes, key: int, op_id: str, kind: str, now: int) -> None:
        row = tx.execution(key, lock=True)
        if row is None or row.status != "RUNNING":
            return
        if kind == "exec_timeout":
            self._finish(tx, changes, row, "TIMED_OUT", now, error=ErrorObject(
                ErrorType="Execution.TimedOut", ErrorMessage="the execution ran past its execution timeout"))
            self._set(tx, row, lease_owner=None, invocation_id=None)
            return
        if kind == "reinvoke":
            self._mark_ready(tx, row, None)
            return
        op = changes.operation(row, op_id)
        if op is None or op.is_terminal:
            return
        if kind == "wait":
            op.Status, op.EndTimestamp = "SUCCEEDED", now
            seconds = ((op.WaitDetails.ScheduledEndTimestamp or now) - (op.StartTimestamp or now)) // 1000 \
                if op.WaitDetails else 0
            pending = changes.of(row)
            pending.event("WaitSucceeded", now, {"Duration": seconds}, op)
            pending.put(op)
            self._mark_ready(tx, row, op.Id)
        elif kind == "retry":
            if op.Status != "PENDING" or op.StepDetails is None:
                return
            op.Status = "READY"
            op.StepDetails.NextAttemptTimestamp = None
            changes.of(row).put(op)
            self._mark_ready(tx, row, op.Id)
        elif kind in ("cb_timeout", "cb_heartbeat"):
            error_type = "Callback.Timeout" if kind == "cb_timeout" else "Callback.Heartbeat"
            message = "Callback timed out" if kind == "cb_timeout" else "Callback heartbeat timed out"
            self._end_callback(tx, changes, row, op, "TIMED_OUT", now,
                               error=ErrorObject(ErrorType=error_type, ErrorMessage=message))

    def purge_expired(self) -> int:
        """Delete closed executions older than their retention period."""
        now = self.clock.now_ms()

        def tx_fn(tx: StoreTx) -> int:
            keys = tx.expired_executions(now)
            tx.delete_executions(keys)
            return len(keys)
        return self.store.transact(tx_fn)

    def delete_function(self, function_name: str) -> dict[str, Any]:
        """Delete a function: its registration, published versions (and their code), aliases, and its closed
        executions with their histories and logs. Refused while one of its executions is RUNNING."""
        check_name(function_name)

        def tx_fn(tx: StoreTx) -> dict[str, Any]:
            if tx.function(function_name) is None and not tx.executions_of(function_name, limit=1):
                raise ResourceNotFoundException(f"no function named {function_name!r}")
            running = tx.executions_of(function_name, running_only=True, limit=6)
            if running:
                listed = "; ".join(running[:5]) + ("; ..." if len(running) > 5 else "")
                raise ResourceConflictException(f"{function_name} has RUNNING executions ({listed}): stop them "
                                                "(durably stop) or let them end first")
            keys = [row.key for arn in tx.executions_of(function_name) if (row := tx.execution(arn)) is not None]
            tx.delete_executions(keys)
            versions = tx.version_count(function_name)
            tx.delete_function(function_name)
            return {"FunctionName": function_name, "DeletedExecutions": len(keys), "DeletedVersions": versions}

        deleted = self.store.transact(tx_fn)
        if self.store.code_folder is not None:
            shutil.rmtree(code_versions.version_folder(self.store.code_folder, function_name, 0).parent,
                          ignore_errors=True)
        return deleted

    # ------------------------------------------------------------------ invocations
    def claim(self, lease_ms: int = 60_000, arn: str | None = None,
              skip_functions: Collection[str] = ()) -> Claim | None:
        """Take one execution that needs an invocation (optionally a given one), with a lease.

        Executions of ``skip_functions`` (functions this worker cannot import just now) are left
        to other workers.
        """
        candidates = self.store.read(lambda tx: tx.ready_executions(8, skip_functions, arn))
        for candidate in candidates:
            # A claim an OS crash loses leaves the execution ready, as it was: no wait for the disk.
            claim = self.store.transact(functools.partial(self._claim, arn=candidate, lease_ms=lease_ms),
                                        durable=False)
            if claim is not None:
                return claim
        return None

    def _claim(self, tx: StoreTx, arn: str, lease_ms: int) -> Claim | None:
        row, tail = tx.execution_with_tail(arn, lock="skip")
        if row is None or not row.ready or row.status != "RUNNING" or row.lease_owner is not None:
            return None
        now = self.clock.now_ms()
        seq = tail.seq if tail else 0
        secret, invocation_id = secrets.token_hex(16), secrets.token_hex(16)
        updated_ids = list(row.updated_ids)
        self._set(tx, row, lease_owner=self.owner, lease_expiry=now + lease_ms, lease_host=self.host_id,
                  lease_pid=self.pid, lease_pstart=self.pstart, token=secret, invocation_id=invocation_id,
                  invocation_start=now, invocation_seq=seq, ready=False)
        return Claim(arn=arn, token=f"{secret}.{seq}", invocation_id=invocation_id, function_name=row.function_name,
                     ref=row.ref, durable=row.durable, input=row.input, started=now, updated_ids=updated_ids,
                     trace_header=row.trace_header)

    def renew_leases(self, arns: list[str], lease_ms: int = 60_000) -> None:
        if not arns:
            return
        expiry = self.clock.now_ms() + lease_ms

        def tx_fn(tx: StoreTx) -> None:
            for arn in arns:
                row = tx.execution(arn, lock=True)
                if row is not None and row.lease_owner == self.owner:
                    tx.update_execution(row.key, lease_expiry=expiry)
        self.store.transact(tx_fn)

    def take_over_dead(self, running: Collection[str] = ()) -> list[Takeover]:
        """Record the invocations of dead workers as crashed, so their executions run again.

        A lease is dead when it expired, or at once when its owner ran on this host (same host
        identity) and its process is gone. This worker's own expired leases are taken over too,
        unless their invocation is still ``running`` here (the end of an invocation that could
        not be recorded). Each takeover checks, in its transaction, that the lease is still the
        one judged dead, so a lease renewed meanwhile is left alone.
        """
        now = self.clock.now_ms()
        taken: list[Takeover] = []
        for row in self.store.read(lambda tx: tx.leased_executions()):
            owner = row.lease_owner or ""
            expired = row.lease_expiry is not None and row.lease_expiry < now
            if owner == self.owner:
                if row.arn in running or not expired:
                    continue
                reason = "this worker could not record the end of its invocation, and its lease expired"
            elif row.lease_host == self.host_id and owner_is_gone(row.lease_pid or 0, row.lease_pstart or 0):
                host = hostname_of(row.lease_host)
                reason = f"the worker process {row.lease_pid} on {host} exited during the invocation"
            elif expired:
                reason = f"the lease of worker {owner} expired during the invocation"
            else:
                continue
            claim = Claim(arn=row.arn, token="", invocation_id=row.invocation_id or "", function_name="", ref=None,
                          durable=True, input=None, started=row.invocation_start or 0)
            if self.complete_invocation(claim, None, ErrorObject(ErrorType="Runtime.ExitError", ErrorMessage=reason),
                                        retry_delay_ms=0, lease=(owner, row.lease_expiry)):
                taken.append(Takeover(row.arn, owner, reason))
        return taken

    def complete_invocation(self, claim: Claim, output: InvocationOutput | None,
                            invocation_error: ErrorObject | None = None, retry_delay_ms: int = 1000,
                            lease: tuple[str, int | None] | None = None, counted: bool = True) -> bool:
        """Record the end of an invocation, and the execution's end if it finished.

        ``counted=False`` keeps an invocation error out of the execution's budget of failed
        invocations (see ``_after_invocation``).

        False (and nothing written) when the invocation is no longer the execution's current one,
        or, with ``lease`` (owner, expiry), when the lease changed since it was read.

        The ids of operations updated while the execution was suspended (``UpdatedOperationIds``)
        are kept until an invocation that received them ends without an invocation error; after one
        that crashed or failed they are handed to the next invocation again, with the operations
        that ended during the lost invocation, so whatever reports them (a tracing plugin) still can.
        """
        def tx_fn(tx: StoreTx, changes: Changes) -> int | None:
            row, tail = tx.execution_with_tail(claim.arn, lock=True, with_input=False)
            if row is None or row.invocation_id != claim.invocation_id:
                return None
            if lease is not None and (row.lease_owner, row.lease_expiry) != lease:
                return None
            now = self.clock.now_ms()
            docs = _Lazy(lambda: self._views.current(tx, row.key, tail).docs)
            details: dict[str, Any] = {"StartTimestamp": claim.started, "EndTimestamp": now,
                                       "RequestId": claim.invocation_id}
            updated_ids = list(row.updated_ids)
            if invocation_error is not None:
                details["Error"] = history.error(invocation_error)
                tx.set_invocation_error(row.key, now, row.lease_owner or self.owner,
                                        json.dumps(invocation_error.to_wire()))
                updated_ids += [op.Id for op in load_ops(docs().values())
                                if op.Type != "EXECUTION" and op.EndTimestamp is not None
                                and op.EndTimestamp >= claim.started and op.Id not in updated_ids]
            else:
                tx.clear_invocation_error(row.key)
                updated_ids = updated_ids[len(claim.updated_ids):]  # what arrived during the invocation
            changes.of(row, tail=tail).event("InvocationCompleted", now, details)
            failures = row.failed_invocations
            if row.status == "RUNNING":
                failures = self._after_invocation(tx, changes, row, docs, output, invocation_error, retry_delay_ms,
                                                  failures, now, counted)
            self._set(tx, row, lease_owner=None, lease_expiry=None, invocation_id=None, token=None,
                      failed_invocations=failures, updated_ids=updated_ids)
            return row.key
        key = self._write(tx_fn)
        if key is None:
            return False
        self._views.forget(key)
        return True

    def release(self, claim: Claim, problem: ErrorObject) -> bool:
        """Give an invocation back without running it (this worker cannot import the handler).

        Nothing is added to the history and the execution's budget of failed invocations is not
        touched: the execution is ready again at once for any worker, and ``problem`` is kept as
        its last invocation error. False when the invocation is no longer current.
        """
        def tx_fn(tx: StoreTx) -> bool:
            row = tx.execution(claim.arn, lock=True)
            if row is None or row.invocation_id != claim.invocation_id or row.status != "RUNNING":
                return False
            self._set(tx, row, lease_owner=None, lease_expiry=None, invocation_id=None, token=None, ready=True)
            tx.set_invocation_error(row.key, self.clock.now_ms(), self.owner, json.dumps(problem.to_wire()))
            return True
        return self.store.transact(tx_fn)

    def last_invocation_error(self, arn: str) -> dict[str, Any] | None:
        """The last error of an invocation of a RUNNING execution: Timestamp, Worker and Error."""
        def read(tx: StoreTx) -> tuple[int, str, str] | None:
            row = tx.execution(arn)
            return tx.invocation_error(row.key) if row is not None and row.status == "RUNNING" else None
        found = self.store.read(read)
        if found is None:
            return None
        return {"Timestamp": found[0], "Worker": found[1], "Error": json.loads(found[2])}

    def invocation_state(self, arn: str) -> dict[str, Any]:
        """How ``arn`` stands with the workers (a durably extension, for diagnosis): HandlerReference
        (what a worker imports), Ready (waits for a worker to claim it), FailedInvocations (in a row;
        the execution fails at MAX_INVOCATION_FAILURES), Invocation (the one in progress: Worker,
        StartTimestamp, LeaseExpiry) and NextInvocationTimestamp (a failed invocation's retry)."""
        def read(tx: StoreTx) -> tuple[ExecutionRow, tuple[int, int | None] | None]:
            row = self._row(tx, arn)
            return row, tx.timer(row.key, "-", "reinvoke")
        row, due = self.store.read(read)
        invocation = None if row.lease_owner is None else {
            "Worker": row.lease_owner, "StartTimestamp": row.invocation_start, "LeaseExpiry": row.lease_expiry}
        return {"HandlerReference": row.ref, "Ready": row.ready, "FailedInvocations": row.failed_invocations,
                "Invocation": invocation, "NextInvocationTimestamp": due[0] if due else None}

    def _after_invocation(self, tx: StoreTx, changes: Changes, row: ExecutionRow, docs: _Lazy,
                          output: InvocationOutput | None, invocation_error: ErrorObject | None,
                          retry_delay_ms: int, failures: int, now: int, counted: bool = True) -> int:
        """Finish, retry or resume the execution after an invocation; its new count of failed invocations.

        An invocation error that is not ``counted`` (the engine's storage failed, not the handler)
        only schedules the next invocation after ``retry_delay_ms``.
        """
        if invocation_error is not None and not counted:
            tx.set_timer(row.key, "-", "reinvoke", now + retry_delay_ms)
            return failures
        if invocation_error is not None:
            failures += 1
            if failures >= MAX_INVOCATION_FAILURES:
                self._finish(tx, changes, row, "FAILED", now, error=invocation_error)
            elif retry_delay_ms <= 0:
                self._mark_ready(tx, row, None)
            else:
                tx.set_timer(row.key, "-", "reinvoke", now + retry_delay_ms * failures)
            return failures
        assert output is not None
        if output.Status == "SUCCEEDED":
            self._finish(tx, changes, row, "SUCCEEDED", now, result=output.Result)
        elif output.Status == "FAILED":
            self._finish(tx, changes, row, "FAILED", now, error=output.Error or ErrorObject())
        elif not row.ready and not self._has_outstanding(tx, row, docs):
            # a suspension that nothing can resume: tried again, then failed (an output is progress otherwise)
            if failures + 1 >= MAX_INVALID_PENDING:
                self._finish(tx, changes, row, "FAILED", now, error=ErrorObject(
                    ErrorType="InvalidParameterValueException",
                    ErrorMessage="the handler suspended with nothing outstanding (no wait, retry, "
                                 "callback or invoke) that could ever resume it"))
            else:
                self._mark_ready(tx, row, None)
            return failures + 1
        return 0

    @staticmethod
    def _has_outstanding(tx: StoreTx, row: ExecutionRow, docs: _Lazy) -> bool:
        """Whether anything can resume the suspended execution. The newest operations are looked at
        first, and decoded one by one: what it waits on is nearly always among the last."""
        if tx.has_timers(row.key, "exec_timeout"):
            return True
        return any(op.Type in OUTSTANDING_TYPES and op.Status in OUTSTANDING_STATUSES
                   for op in map(load_op, reversed(docs().values())))

    def finish_plain(self, claim: Claim, result: str | None, error: ErrorObject | None) -> None:
        """Record the outcome of a plain (non-durable) function run as a chained invoke target."""
        def tx_fn(tx: StoreTx, changes: Changes) -> None:
            row = tx.execution(claim.arn, lock=True)
            if row is None or row.invocation_id != claim.invocation_id or row.status != "RUNNING":
                return
            now = self.clock.now_ms()
            self._set(tx, row, lease_owner=None, invocation_id=None)
            if error is None:
                self._finish(tx, changes, row, "SUCCEEDED", now, result=result)
            else:
                self._finish(tx, changes, row, "FAILED", now, error=error)
        self._write(tx_fn)

    @staticmethod
    def _mark_ready(tx: StoreTx, row: ExecutionRow, op_id: str | None) -> None:
        if row.status != "RUNNING":
            return
        if op_id is None:
            Service._set(tx, row, ready=True)
        else:
            Service._set(tx, row, ready=True, updated_ids=[*row.updated_ids, op_id])


class _Lazy:
    """A value computed at its first use (the execution's operations, which a completion may not need)."""

    __slots__ = ("_get", "_value")

    def __init__(self, get: Callable[[], dict[str, str]]) -> None:
        self._get = get
        self._value: dict[str, str] | None = None

    def __call__(self) -> dict[str, str]:
        if self._value is None:
            self._value = self._get()
        return self._value


def _parse_token(token: str) -> tuple[str, int]:
    """(the invocation's secret, the journal position) of a checkpoint token."""
    secret, _, position = token.rpartition(".")
    if not secret or not position.isdigit():
        raise InvalidParameterValueException("Invalid checkpoint token")
    return secret, int(position)


def _token_secret(token: str) -> str:
    return token.rpartition(".")[0]


def _numbered_events(row: JournalRow) -> list[tuple[int, str]]:
    """A journal row's events with their ids (consecutive, ending at ``last_event``)."""
    docs = lines(row.events)
    first = row.last_event - len(docs) + 1
    return list(enumerate(docs, first))


def _version_number(version: int | str) -> int:
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise InvalidParameterValueException(f"version {text!r} is not a published version number (1, 2, ...)")
    return int(text)


def _validate_batch(updates: list[OperationUpdate]) -> None:
    executions = [i for i, u in enumerate(updates) if u.Type == "EXECUTION"]
    if len(executions) > 1:
        raise InvalidParameterValueException("Cannot checkpoint multiple EXECUTION updates.")
    if executions and executions[0] != len(updates) - 1:
        raise InvalidParameterValueException("EXECUTION checkpoint must be the last update.")
    seen: dict[str, OperationUpdate] = {}
    for u in updates:
        if u.Type not in VALID_ACTIONS:
            raise InvalidParameterValueException(f"Unknown operation type: {u.Type}")
        if u.Action not in VALID_ACTIONS[u.Type]:
            raise InvalidParameterValueException(
                f"Invalid action for the given operation type: {u.Action} on {u.Type}")
        if u.Type in ("CONTEXT", "EXECUTION"):
            if u.Action == "SUCCEED" and u.Error is not None:
                raise InvalidParameterValueException(f"{u.Type} SUCCEED cannot carry an Error")
            if u.Action == "FAIL" and u.Payload is not None:
                raise InvalidParameterValueException(f"{u.Type} FAIL cannot carry a Payload")
        earlier = seen.get(u.Id)
        if earlier is not None and not (u.Type in ("STEP", "CONTEXT") and earlier.Action == "START"
                                        and u.Action != "START"):
            raise InvalidParameterValueException("Cannot checkpoint multiple operations with the same ID.")
        seen[u.Id] = u


def _int_marker(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        return int(marker)
    except ValueError:
        raise InvalidParameterValueException(f"invalid pagination marker {marker!r}") from None


def _withhold(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("Details") and isinstance(value, dict):
            for part in ("Result", "Error", "Input"):
                if isinstance(value.get(part), dict):
                    value[part] = {"Truncated": True}
    return event


__all__ = ["TERMINAL_STATUSES", "Claim", "Service"]
