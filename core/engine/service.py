"""The service side of the durable execution API over the store.

Each public method is one transaction. State changes follow the Lambda durable execution
service: the operation lifecycle, history events, single-use checkpoint tokens, timers for
waits, retries and callbacks, and chained invokes run as child executions.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import re
import secrets
import shutil
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, cast

from durably.core.engine import code_versions, history, redrive
from durably.core.engine.clock import Clock
from durably.core.engine.code_versions import LATEST, qualifier_of
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
from durably.core.engine.known_ops import KnownOperations
from durably.core.engine.liveness import UNKNOWN_START, host_identity, hostname_of, owner_is_gone, process_start_time
from durably.core.engine.store import Store, dump_op, load_op, load_ops
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
PREFETCH_MIN_UPDATES = 8
"""A checkpoint that updates at least this many stored operations reads them in one query."""
MAX_INVALID_PENDING = 3
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
        self._known = KnownOperations()

    # ------------------------------------------------------------------ identity
    def function_arn(self, function_name: str, version: str = LATEST) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{function_name}:{version}"

    def _exec_row(self, conn: sqlite3.Connection, arn: str) -> sqlite3.Row:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM executions WHERE arn = ?", (arn,)).fetchone()
        conn.row_factory = None
        if row is None:
            raise ResourceNotFoundException(f"no durable execution {arn}")
        return row  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ functions
    def save_function(self, spec: FunctionSpec) -> None:
        self.store.transact(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO functions VALUES (?, ?, ?, ?, ?)",
            (spec.name, int(spec.durable), spec.ref, spec.execution_timeout, spec.retention_days)))

    def stored_function(self, name: str) -> FunctionSpec | None:
        row = self.store.reader().execute(
            "SELECT name, durable, ref, execution_timeout, retention_days FROM functions WHERE name = ?",
            (name,)).fetchone()
        return FunctionSpec(row[0], bool(row[1]), row[2], row[3], row[4]) if row else None

    # ------------------------------------------------------------------ versions
    def publish_version(self, function_name: str, source_ref: str, description: str = "") -> dict[str, Any]:
        """Snapshot the code ``source_ref`` imports as the function's next version (see ``code_versions``).

        The snapshot is imported in a fresh process before the version is kept; a reference that cannot
        be imported there is refused (HandlerImportError) and nothing is kept. The function is recorded
        too if it is not yet, its ``$LATEST`` being ``source_ref``.
        """
        check_name(function_name)
        folder = code_versions.version_folder(self.store.path, function_name, 0).parent
        now = self.clock.now_ms()

        def reserve(conn: sqlite3.Connection) -> int:
            (last,) = conn.execute("SELECT max(version) FROM versions WHERE function = ?", (function_name,)).fetchone()
            version = (last or 0) + 1
            conn.execute("INSERT INTO versions VALUES (?, ?, '', NULL, ?, ?)",
                         (function_name, version, now, description))
            return int(version)

        version = self.store.transact(reserve)
        dest = folder / str(version)
        try:
            ref = code_versions.snapshot(source_ref, dest, self.store.path)
            code_versions.check_importable(ref, dest)
            sha = code_versions.tree_sha256(dest)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            self.store.transact(lambda conn: conn.execute(
                "DELETE FROM versions WHERE function = ? AND version = ?", (function_name, version)))
            raise

        def keep(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE versions SET ref = ?, code_sha256 = ? WHERE function = ? AND version = ?",
                         (ref, sha, function_name, version))
            conn.execute("INSERT OR IGNORE INTO functions VALUES (?, 1, ?, ?, ?)",
                         (function_name, absolute_reference(source_ref), DEFAULT_EXECUTION_TIMEOUT,
                          DEFAULT_RETENTION_DAYS))

        self.store.transact(keep)
        return {"FunctionName": function_name, "Version": str(version),
                "FunctionArn": self.function_arn(function_name, str(version)), "CodeSha256": sha,
                "Description": description, "CreatedTimestamp": now}

    def list_versions(self, function_name: str) -> dict[str, Any]:
        """The function's published versions (oldest first) and its aliases."""
        conn = self.store.reader()
        versions = [{"Version": str(v), "FunctionArn": self.function_arn(function_name, str(v)), "CodeSha256": sha,
                     "Description": desc, "CreatedTimestamp": ts, "Ref": ref}
                    for v, ref, sha, ts, desc in conn.execute(
                        "SELECT version, ref, code_sha256, created_ts, description FROM versions"
                        " WHERE function = ? AND code_sha256 IS NOT NULL ORDER BY version", (function_name,))]
        aliases = [{"Name": a, "FunctionVersion": str(v), "AliasArn": self.function_arn(function_name, a)}
                   for a, v in conn.execute("SELECT alias, version FROM aliases WHERE function = ? ORDER BY alias",
                                            (function_name,))]
        if not versions and self.stored_function(function_name) is None:
            raise ResourceNotFoundException(f"no function {function_name!r}")
        return {"FunctionName": function_name, "Versions": versions, "Aliases": aliases}

    def update_alias(self, function_name: str, alias: str, version: int | str) -> dict[str, Any]:
        """Point ``alias`` at a published version (creating the alias if new)."""
        if not code_versions.ALIAS_NAME.match(alias):
            raise InvalidParameterValueException(
                f"alias name {alias!r} must be letters, digits, - and _ (1 to 128), and not only digits "
                "(a number names a version)")
        number = _version_number(version)

        def tx(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM versions WHERE function = ? AND version = ? AND code_sha256 IS NOT NULL",
                            (function_name, number)).fetchone() is None:
                raise ResourceNotFoundException(f"{function_name!r} has no published version {number}")
            conn.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)", (function_name, alias, number))

        self.store.transact(tx)
        return {"Name": alias, "FunctionVersion": str(number), "AliasArn": self.function_arn(function_name, alias)}

    def resolve_version(self, function_name: str, qualifier: str) -> tuple[str, str | None]:
        """What ``NAME:QUALIFIER`` runs: (the version, ``$LATEST`` or a number; the reference it imports)."""
        conn = self.store.reader()
        if qualifier == LATEST:
            spec = self.stored_function(function_name)
            if spec is None:
                raise ResourceNotFoundException(f"no function {function_name!r}")
            return LATEST, spec.ref
        if qualifier.isdigit():
            number = int(qualifier)
        else:
            row = conn.execute("SELECT version FROM aliases WHERE function = ? AND alias = ?",
                               (function_name, qualifier)).fetchone()
            if row is None:
                raise ResourceNotFoundException(f"{function_name!r} has no alias {qualifier!r}")
            number = row[0]
        row = conn.execute("SELECT ref FROM versions WHERE function = ? AND version = ? AND code_sha256 IS NOT NULL",
                           (function_name, number)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"{function_name!r} has no published version {number}")
        return str(number), row[0]

    def has_versions(self, function_name: str) -> bool:
        return self.store.reader().execute(
            "SELECT 1 FROM versions WHERE function = ? LIMIT 1", (function_name,)).fetchone() is not None

    def code_changed(self, arn: str) -> bool | None:
        """Whether the file a ``$LATEST`` execution imports changed since it started (replays then run other
        code than the first invocation did); None when unknown (a published version, or no hash recorded)."""
        row = self._exec_row(self.store.reader(), arn)
        if qualifier_of(arn) != LATEST or row["code_sha256"] is None:
            return None
        return bool(code_versions.code_sha256(row["ref"]) != row["code_sha256"])

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
        return self.store.transact(lambda conn: self._insert_execution(
            conn, spec, input_payload, name, tenant_id=tenant_id, trace_header=trace_header, code_sha256=code_sha256))

    def _insert_execution(self, conn: sqlite3.Connection, spec: FunctionSpec, input_payload: str | None,
                          name: str | None, parent: tuple[str, str] | None = None,
                          tenant_id: str | None = None, trace_header: str | None = None,
                          code_sha256: str | None = None,
                          redrive_of: tuple[str, int] | None = None) -> tuple[str, bool]:
        """``redrive_of``: the ARN of the execution this one redrives, and how many operations it keeps."""
        now = self.clock.now_ms()
        if name is not None:
            existing = conn.execute(
                "SELECT arn, input FROM executions WHERE name = ? AND function_name = ?",
                (name, spec.name)).fetchone()
            if existing is not None:
                if existing[1] == input_payload:
                    return existing[0], False
                raise DurableExecutionAlreadyStartedException(
                    f"an execution named {name!r} of {spec.name} already exists with a different input")
        exec_id = secrets.token_hex(16)
        name = name or secrets.token_hex(8)
        arn = f"{self.function_arn(spec.name, spec.version)}/durable-execution/{name}/{exec_id}"
        op = Operation(Id=exec_id, Type="EXECUTION", Status="STARTED", Name=name, StartTimestamp=now,
                       ExecutionDetails=ExecutionDetails(InputPayload=input_payload))
        started: dict[str, Any] = {"Input": history.result(input_payload), "ExecutionTimeout": spec.execution_timeout}
        if redrive_of is not None:
            started["RedriveOf"], started["KeptOperations"] = redrive_of
        with history.EventBuffer(conn, arn, 0) as events:
            history.append(conn, arn, "ExecutionStarted", now, started, op)
            conn.execute(
                "INSERT INTO executions(arn, exec_id, name, function_name, ref, durable, status, input, start_ts,"
                " execution_timeout, retention_days, ready, parent_arn, parent_op, tenant_id, event_seq, trace_header,"
                " code_sha256, redrive_of) VALUES (?, ?, ?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (arn, exec_id, name, spec.name, spec.ref, int(spec.durable), input_payload, now,
                 spec.execution_timeout, spec.retention_days, parent[0] if parent else None,
                 parent[1] if parent else None, tenant_id, events.seq, trace_header, code_sha256,
                 redrive_of[0] if redrive_of else None))
            events.flush(conn)
        conn.execute("INSERT INTO operations VALUES (?, ?, 0, NULL, ?)", (arn, exec_id, dump_op(op)))
        conn.execute("INSERT INTO timers VALUES (?, ?, 'exec_timeout', ?, NULL)",
                     (arn, exec_id, now + spec.execution_timeout * 1000))
        return arn, True

    # ------------------------------------------------------------------ reads
    def get_execution(self, arn: str) -> dict[str, Any]:
        row = self._exec_row(self.store.reader(), arn)
        out: dict[str, Any] = {
            "DurableExecutionArn": arn, "DurableExecutionName": row["name"],
            "FunctionArn": self.function_arn(row["function_name"], qualifier_of(arn)), "Status": row["status"],
            "StartTimestamp": row["start_ts"], "Version": qualifier_of(arn),
            "DurableConfig": {"ExecutionTimeout": row["execution_timeout"],
                              "RetentionPeriodInDays": row["retention_days"]},
        }
        if row["input"] is not None:
            out["InputPayload"] = row["input"]
        if row["end_ts"] is not None:
            out["EndTimestamp"] = row["end_ts"]
        if row["result"] is not None:
            out["Result"] = row["result"]
        if row["error"] is not None:
            out["Error"] = json.loads(row["error"])
        if "redrive_of" in row.keys() and row["redrive_of"] is not None:  # not in a schema-4 database read as it is
            out["RedriveOf"] = row["redrive_of"]  # a durably extension: the execution this one redrives
        return out

    def get_history(self, arn: str, marker: str | None = None, max_items: int = 1000,
                    reverse: bool = False, include_data: bool = True) -> dict[str, Any]:
        conn = self.store.reader()
        self._exec_row(conn, arn)
        start = _int_marker(marker)
        limit = max(1, min(max_items or 1000, 1000))
        if reverse:
            rows = conn.execute("SELECT event_id, doc FROM events WHERE arn = ? AND event_id <= ? "
                                "ORDER BY event_id DESC LIMIT ?",
                                (arn, start if marker else 2**62, limit + 1)).fetchall()
        else:
            rows = conn.execute("SELECT event_id, doc FROM events WHERE arn = ? AND event_id >= ? "
                                "ORDER BY event_id LIMIT ?", (arn, start, limit + 1)).fetchall()
        events = [json.loads(doc) for _, doc in rows[:limit]]
        if not include_data:
            events = [_withhold(e) for e in events]
        out: dict[str, Any] = {"Events": events}
        if len(rows) > limit:
            out["NextMarker"] = str(rows[limit][0])
        return out

    def get_state(self, arn: str, token: str | None = None, marker: str | None = None,
                  max_items: int = 1000) -> ExecutionState:
        conn = self.store.reader()
        row = self._exec_row(conn, arn)
        if token is not None and token != row["token"]:
            raise InvalidParameterValueException("Invalid checkpoint token")
        start = _int_marker(marker)
        limit = max(1, min(max_items or 1000, 1000))
        rows = conn.execute("SELECT seq, doc FROM operations WHERE arn = ? AND seq >= ? ORDER BY seq LIMIT ?",
                            (arn, start, limit + 1)).fetchall()
        ops = load_ops([doc for _, doc in rows[:limit]])
        return ExecutionState(Operations=ops, NextMarker=str(rows[limit][0]) if len(rows) > limit else None)

    def all_operations(self, arn: str, token: str | None = None) -> list[Operation]:
        """Every operation of ``arn`` in ``seq`` order, in one read (``token`` checked as by get_state).

        The rows come in primary-key order and are sorted here: reading them through the ``seq``
        index costs a primary-key search per row, about twice the time.
        """
        conn = self.store.reader()
        row = self._exec_row(conn, arn)
        if token is not None and token != row["token"]:
            raise InvalidParameterValueException("Invalid checkpoint token")
        ops = [(seq, load_op(doc)) for seq, doc in conn.execute(
            "SELECT seq, doc FROM operations WHERE arn = ?", (arn,))]
        ops.sort(key=operator.itemgetter(0))
        ordered = [op for _, op in ops]
        if token is not None:  # an invocation's first read: its first checkpoint needs no read of its own
            self._known.record(arn, token, {op.Id: op.Type for op in ordered})
        return ordered

    def list_executions(self, function_name: str | None = None, name: str | None = None,
                        statuses: list[str] | None = None, started_after: int | None = None,
                        started_before: int | None = None, reverse: bool = True,
                        marker: str | None = None, max_items: int = 100,
                        search: str | None = None) -> dict[str, Any]:
        """Executions, newest first, as ``ListDurableExecutionsByFunction`` answers; ``search``: a
        part of the name or of the ARN (a durably extension, for the dashboard)."""
        where: list[str] = ["durable = 1"]
        args: list[Any] = []
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(name LIKE ? ESCAPE '\\' OR arn LIKE ? ESCAPE '\\')")
            args.extend((pattern, pattern))
        if function_name:
            where.append("function_name = ?")
            args.append(function_name.split(":")[0])
        if name:
            where.append("name = ?")
            args.append(name)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if started_after is not None:
            where.append("start_ts >= ?")
            args.append(started_after)
        if started_before is not None:
            where.append("start_ts < ?")
            args.append(started_before)
        limit = max(1, min(max_items or 100, 1000))
        offset = _int_marker(marker)
        order = "DESC" if reverse else "ASC"
        rows = self.store.reader().execute(
            f"SELECT arn, name, function_name, status, start_ts, end_ts FROM executions WHERE "
            f"{' AND '.join(where)} ORDER BY start_ts {order}, arn {order} LIMIT ? OFFSET ?",
            (*args, limit + 1, offset)).fetchall()
        items = []
        for arn, ename, fn, status, start, end in rows[:limit]:
            item = {"DurableExecutionArn": arn, "DurableExecutionName": ename,
                    "FunctionArn": self.function_arn(fn, qualifier_of(arn)), "Status": status, "StartTimestamp": start}
            if end is not None:
                item["EndTimestamp"] = end
            items.append(item)
        out: dict[str, Any] = {"DurableExecutions": items}
        if len(rows) > limit:
            out["NextMarker"] = str(offset + limit)
        return out

    def get_logs(self, arn: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The log records of ``arn``'s handler (``context.logger``), oldest first, after record ``after``."""
        conn = self.store.reader()
        self._exec_row(conn, arn)
        return [{"Id": rid, "Timestamp": ts, "Level": level, "Message": message, **json.loads(fields)}
                for rid, ts, level, message, fields in conn.execute(
                    "SELECT id, ts, level, message, fields FROM logs WHERE arn = ? AND id > ? ORDER BY id LIMIT ?",
                    (arn, after, max(1, min(limit, 10_000))))]

    def find_executions(self, ref: str, limit: int = 10) -> list[dict[str, Any]]:
        """Executions a person may mean by ``ref``: its ARN, its name, or the start of its id; newest first."""
        pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.store.reader().execute(
            "SELECT arn, name, status, start_ts FROM executions WHERE durable = 1 AND "
            "(arn = ? OR name = ? OR exec_id LIKE ? ESCAPE '\\') ORDER BY start_ts DESC LIMIT ?",
            (ref, ref, pattern, limit)).fetchall()
        return [{"DurableExecutionArn": arn, "DurableExecutionName": name, "Status": status, "StartTimestamp": ts}
                for arn, name, status, ts in rows]

    def function_names(self) -> list[str]:
        """The functions that have durable executions, by name."""
        return [name for (name,) in self.store.reader().execute(
            "SELECT DISTINCT function_name FROM executions WHERE durable = 1 ORDER BY function_name")]

    def open_callbacks(self, limit: int = 500, arn: str | None = None) -> list[OpenCallback]:
        """The callbacks that wait for an answer, in running executions (or in ``arn``), oldest first."""
        rows = self.store.reader().execute(
            "SELECT o.arn, e.name, e.function_name, o.doc, "
            " (SELECT due FROM timers t WHERE t.arn = o.arn AND t.op_id = o.id AND t.kind = 'cb_timeout'),"
            " (SELECT due FROM timers t WHERE t.arn = o.arn AND t.op_id = o.id AND t.kind = 'cb_heartbeat')"
            " FROM operations o JOIN executions e ON e.arn = o.arn"
            " WHERE o.callback_id IS NOT NULL AND e.status = 'RUNNING'" + (" AND o.arn = ?" if arn else ""),
            (arn,) if arn else ()).fetchall()
        found = [OpenCallback(arn, name, fn, op, timeout, heartbeat)
                 for arn, name, fn, doc, timeout, heartbeat in rows if (op := load_op(doc)).Status == "STARTED"]
        found.sort(key=lambda c: (c.operation.StartTimestamp or 0, c.arn))
        return found[:limit]

    # ------------------------------------------------------------------ checkpoint
    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate],
                   targets: dict[str, FunctionSpec | None] | None = None) -> CheckpointResponse:
        """Apply ``updates`` atomically. ``targets`` resolves CHAINED_INVOKE function names."""
        known = self._known.lookup(arn, token)
        response, types, created = self.store.transact(
            lambda conn: self._checkpoint(conn, arn, token, updates, targets or {}, known))
        types.update(created)  # only now that the checkpoint has committed
        self._known.record(arn, response.CheckpointToken, types)
        return response

    def _checkpoint(self, conn: sqlite3.Connection, arn: str, token: str, updates: list[OperationUpdate],
                    targets: dict[str, FunctionSpec | None],
                    known: dict[str, str] | None,
                    ) -> tuple[CheckpointResponse, dict[str, str], list[tuple[str, str]]]:
        """The response, the id -> type map of the operations stored before this checkpoint, and the
        (id, type) of those it creates (added to the map by the caller once the commit is durable)."""
        row = conn.execute("SELECT status, token, op_seq, event_seq FROM executions WHERE arn = ?",
                           (arn,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"no durable execution {arn}")
        status, current, op_seq, event_seq = row
        if status != "RUNNING":
            raise InvalidParameterValueException(f"Invalid checkpoint token: the execution is {status}")
        if token != current:
            raise InvalidParameterValueException("Invalid checkpoint token")
        if known is None:
            known = dict(conn.execute("SELECT id, json_extract(doc, '$.Type') FROM operations WHERE arn = ?",
                                      (arn,)).fetchall())
        now = self.clock.now_ms()
        _validate_batch(updates)
        existing = {u.Id for u in updates if u.Id in known}
        stored = _prefetch(conn, arn, existing) if len(existing) >= PREFETCH_MIN_UPDATES else None
        touched: dict[str, Operation] = {}
        pending: dict[str, Operation] = {}  # touched, row not written yet
        created: dict[str, int] = {}  # the operations this batch creates, with their seq
        completed = False
        # Each operation's row is written once, after all its updates (a START and a SUCCEED often
        # travel together; _apply reads back through ``touched``), and the events go in one batch.
        with history.EventBuffer(conn, arn, event_seq) as events:
            for update in updates:
                if update.Type == "EXECUTION":
                    self._write_operations(conn, arn, pending, created)
                    self._complete_execution_update(conn, arn, update, now)
                    completed = True
                    continue
                op, is_new = self._apply(conn, arn, update, now, touched, known, targets, stored)
                if is_new:
                    op_seq += 1
                    created[op.Id] = op_seq
                touched[op.Id] = pending[op.Id] = op
            new_types: list[tuple[str, str]] = [(op_id, touched[op_id].Type) for op_id in created]
            self._write_operations(conn, arn, pending, created)
            events.flush(conn)
            new_token = None if completed else secrets.token_hex(16)
            # an accepted update is progress: crashed invocations count towards giving up only in a row without any
            progress = ", failed_invocations = 0" if updates else ""
            conn.execute(f"UPDATE executions SET token = ?, op_seq = ?, event_seq = ?{progress} WHERE arn = ?",
                         (new_token, op_seq, events.seq, arn))
        response = _checkpoint_response(
            {"CheckpointToken": new_token, "NewExecutionState": {"Operations": list(touched.values())}})
        return response, known, new_types

    @staticmethod
    def _write_operations(conn: sqlite3.Connection, arn: str, pending: dict[str, Operation],
                          created: dict[str, int]) -> None:
        """Write the rows of ``pending`` operations (insert the ``created`` ones), and empty it."""
        for op_id, op in pending.items():
            seq = created.pop(op_id, None)
            if seq is not None:
                conn.execute("INSERT INTO operations VALUES (?, ?, ?, ?, ?)",
                             (arn, op_id, seq, _callback_id(op), dump_op(op)))
            else:
                conn.execute("UPDATE operations SET doc = ?, callback_id = ? WHERE arn = ? AND id = ?",
                             (dump_op(op), _callback_id(op), arn, op_id))
        pending.clear()

    def _load(self, conn: sqlite3.Connection, arn: str, op_id: str, touched: dict[str, Operation],
              stored: dict[str, Operation | None] | None = None) -> Operation | None:
        if op_id in touched:
            return touched[op_id]
        if stored is not None and op_id in stored:
            return stored[op_id]
        row = conn.execute("SELECT doc FROM operations WHERE arn = ? AND id = ?", (arn, op_id)).fetchone()
        return load_op(row[0]) if row else None

    def _apply(self, conn: sqlite3.Connection, arn: str, u: OperationUpdate, now: int,
               touched: dict[str, Operation], known: dict[str, str], targets: dict[str, FunctionSpec | None],
               stored: dict[str, Operation | None] | None = None) -> tuple[Operation, bool]:
        op = touched.get(u.Id) or (self._load(conn, arn, u.Id, touched, stored) if u.Id in known else None)
        if u.ParentId is not None:
            parent = touched.get(u.ParentId)
            if (parent.Type if parent is not None else known.get(u.ParentId)) != "CONTEXT":
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
        self._APPLY[u.Type](self, conn, arn, op, u, now, is_new, targets)
        return op, is_new

    def _apply_step(self, conn: sqlite3.Connection, arn: str, op: Operation, u: OperationUpdate, now: int,
                    is_new: bool, _targets: Any) -> None:
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
            history.append(conn, arn, "StepStarted", now, {}, op)
            return
        d.Attempt += 1
        if u.Action == "SUCCEED":
            if u.Error is not None:
                raise InvalidParameterValueException("SUCCEED cannot carry an Error")
            op.Status, op.EndTimestamp, d.Result, d.Error = "SUCCEEDED", now, u.Payload, None
            history.append(conn, arn, "StepSucceeded", now, {
                "Result": history.result(u.Payload), "RetryDetails": {"CurrentAttempt": d.Attempt}}, op)
        elif u.Action == "FAIL":
            if u.Payload is not None:
                raise InvalidParameterValueException("FAIL cannot carry a Payload")
            op.Status, op.EndTimestamp, d.Error = "FAILED", now, (u.Error or ErrorObject()).bounded()
            history.append(conn, arn, "StepFailed", now, {
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
                history.append(conn, arn, "StepFailed", now,
                               {"Error": history.error(d.Error), "RetryDetails": retry}, op)
            else:
                history.append(conn, arn, "StepSucceeded", now,
                               {"Result": history.result(u.Payload), "RetryDetails": retry}, op)
            _set_timer(conn, arn, op.Id, "retry", d.NextAttemptTimestamp)

    def _apply_context(self, conn: sqlite3.Connection, arn: str, op: Operation, u: OperationUpdate,
                       now: int, is_new: bool, _targets: Any) -> None:
        if u.Action == "START":
            if not is_new:
                raise InvalidParameterValueException(f"context {u.Id} already exists")
            history.append(conn, arn, "ContextStarted", now, {}, op)
            return
        if not is_new and op.Status != "STARTED":
            raise InvalidParameterValueException(f"context {u.Id} cannot {u.Action} from {op.Status}")
        op.EndTimestamp = now
        if u.Action == "SUCCEED":
            replay = bool(u.ContextOptions and u.ContextOptions.ReplayChildren)
            op.Status = "SUCCEEDED"
            op.ContextDetails = ContextDetails(Result=u.Payload, ReplayChildren=replay or None)
            history.append(conn, arn, "ContextSucceeded", now, {"Result": history.result(u.Payload)}, op)
        else:
            op.Status = "FAILED"
            op.ContextDetails = ContextDetails(Error=(u.Error or ErrorObject()).bounded())
            history.append(conn, arn, "ContextFailed", now, {"Error": history.error(op.ContextDetails.Error)}, op)

    def _apply_wait(self, conn: sqlite3.Connection, arn: str, op: Operation, u: OperationUpdate,
                    now: int, is_new: bool, _targets: Any) -> None:
        if u.Action == "START":
            if not is_new or u.WaitOptions is None:
                raise InvalidParameterValueException(f"wait {u.Id}: START needs WaitOptions and a new id")
            seconds = u.WaitOptions.WaitSeconds
            end = now + seconds * 1000
            op.WaitDetails = WaitDetails(ScheduledEndTimestamp=end)
            history.append(conn, arn, "WaitStarted", now, {"Duration": seconds, "ScheduledEndTimestamp": end}, op)
            _set_timer(conn, arn, op.Id, "wait", end)
            return
        if is_new or op.Status != "STARTED":
            raise InvalidParameterValueException(f"wait {u.Id} cannot be cancelled")
        op.Status, op.EndTimestamp = "CANCELLED", now
        conn.execute("DELETE FROM timers WHERE arn = ? AND op_id = ?", (arn, op.Id))
        error = u.Error.bounded() if u.Error else None
        history.append(conn, arn, "WaitCancelled", now, {"Error": history.error(error)}, op)

    def _apply_callback(self, conn: sqlite3.Connection, arn: str, op: Operation, u: OperationUpdate,
                        now: int, is_new: bool, _targets: Any) -> None:
        if not is_new:
            raise InvalidParameterValueException(f"callback {u.Id} already exists")
        options = u.CallbackOptions
        timeout = options.TimeoutSeconds if options else 0
        heartbeat = options.HeartbeatTimeoutSeconds if options else 0
        op.CallbackDetails = CallbackDetails(CallbackId=secrets.token_hex(20))
        details: dict[str, Any] = {"CallbackId": op.CallbackDetails.CallbackId}
        if timeout:
            details["Timeout"] = timeout
            _set_timer(conn, arn, op.Id, "cb_timeout", now + timeout * 1000)
        if heartbeat:
            details["HeartbeatTimeout"] = heartbeat
            _set_timer(conn, arn, op.Id, "cb_heartbeat", now + heartbeat * 1000, heartbeat)
        history.append(conn, arn, "CallbackStarted", now, details, op)

    def _apply_chained_invoke(self, conn: sqlite3.Connection, arn: str, op: Operation, u: OperationUpdate,
                              now: int, is_new: bool, targets: dict[str, FunctionSpec | None]) -> None:
        if not is_new or u.ChainedInvokeOptions is None:
            raise InvalidParameterValueException(f"invoke {u.Id}: START needs ChainedInvokeOptions and a new id")
        fn = u.ChainedInvokeOptions.FunctionName
        tenant = u.ChainedInvokeOptions.TenantId
        spec = targets.get(fn)
        child_arn = None
        if spec is not None:
            child_arn, _ = self._insert_execution(conn, spec, u.Payload, None, parent=(arn, op.Id),
                                                  tenant_id=tenant, trace_header=u.ChainedInvokeOptions.XAmznTraceId)
        details: dict[str, Any] = {"FunctionName": fn, "Input": history.result(u.Payload),
                                   "ExecutedVersion": spec.version if spec else LATEST,
                                   "DurableExecutionArn": child_arn}
        if tenant is not None:
            details["TenantId"] = tenant
        history.append(conn, arn, "ChainedInvokeStarted", now, details, op)
        if spec is None:
            op.Status, op.EndTimestamp = "FAILED", now
            err = ErrorObject(ErrorType="ResourceNotFoundException",
                              ErrorMessage=f"Function not found: {fn} (register it or use MODULE:FUNCTION)")
            op.ChainedInvokeDetails = ChainedInvokeDetails(Error=err)
            history.append(conn, arn, "ChainedInvokeFailed", now, {"Error": history.error(err)}, op)

    _APPLY = {"STEP": _apply_step, "CONTEXT": _apply_context, "WAIT": _apply_wait, "CALLBACK": _apply_callback,
              "CHAINED_INVOKE": _apply_chained_invoke}

    def _complete_execution_update(self, conn: sqlite3.Connection, arn: str, u: OperationUpdate,
                                   now: int) -> None:
        if u.Payload is not None and utf8_size(u.Payload) > MAX_EXECUTION_RESULT:
            raise RequestTooLargeException(
                f"execution result of {utf8_size(u.Payload)} bytes is over {MAX_EXECUTION_RESULT}")
        if u.Action == "SUCCEED":
            self._finish(conn, arn, "SUCCEEDED", now, result=u.Payload)
        else:
            self._finish(conn, arn, "FAILED", now, error=(u.Error or ErrorObject()).bounded())

    # ------------------------------------------------------------------ execution end
    def _finish(self, conn: sqlite3.Connection, arn: str, status: str, now: int,
                result: str | None = None, error: ErrorObject | None = None) -> None:
        parent_arn, parent_op, name = conn.execute(
            "UPDATE executions SET status = ?, result = ?, error = ?, end_ts = ?, ready = 0, token = NULL"
            " WHERE arn = ? RETURNING parent_arn, parent_op, name",
            (status, result, json.dumps(error.to_wire()) if error else None, now, arn)).fetchone()
        conn.execute("UPDATE operations SET doc = json_set(doc, '$.Status', ?, '$.EndTimestamp', ?)"
                     " WHERE arn = ? AND id = ?", (status, now, arn, arn.rsplit("/", 1)[-1]))
        conn.execute("DELETE FROM timers WHERE arn = ?", (arn,))
        event = {"SUCCEEDED": "ExecutionSucceeded", "FAILED": "ExecutionFailed",
                 "TIMED_OUT": "ExecutionTimedOut", "STOPPED": "ExecutionStopped"}[status]
        details = {"Result": history.result(result)} if status == "SUCCEEDED" else {"Error": history.error(error)}
        history.append(conn, arn, event, now, details,
                       Operation(Id=arn.rsplit("/", 1)[-1], Type="EXECUTION", Status=cast(OperationStatusName, status),
                                 Name=name))
        if parent_arn:
            self._finish_invoke(conn, parent_arn, parent_op, status, now, result, error)

    def _finish_invoke(self, conn: sqlite3.Connection, arn: str, op_id: str, status: str, now: int,
                       result: str | None, error: ErrorObject | None) -> None:
        row = conn.execute("SELECT status FROM executions WHERE arn = ?", (arn,)).fetchone()
        op = self._load(conn, arn, op_id, {})
        if row is None or row[0] != "RUNNING" or op is None or op.is_terminal:
            return
        op.Status, op.EndTimestamp = cast(OperationStatusName, status), now
        if status == "SUCCEEDED":
            op.ChainedInvokeDetails = ChainedInvokeDetails(Result=result)
            history.append(conn, arn, "ChainedInvokeSucceeded", now, {"Result": history.result(result)}, op)
        else:
            op.ChainedInvokeDetails = ChainedInvokeDetails(Error=error or ErrorObject())
            event = {"FAILED": "ChainedInvokeFailed", "TIMED_OUT": "ChainedInvokeTimedOut",
                     "STOPPED": "ChainedInvokeStopped"}[status]
            history.append(conn, arn, event, now, {"Error": history.error(error)}, op)
        conn.execute("UPDATE operations SET doc = ? WHERE arn = ? AND id = ?", (dump_op(op), arn, op_id))
        _mark_ready(conn, arn, op_id)

    def stop_execution(self, arn: str, error: ErrorObject | None = None) -> dict[str, Any]:
        error = error.bounded() if error is not None else None

        def tx(conn: sqlite3.Connection) -> dict[str, Any]:
            row = self._exec_row(conn, arn)
            if row["status"] != "RUNNING":
                raise InvalidParameterValueException(f"execution {arn} is already {row['status']}")
            now = self.clock.now_ms()
            self._finish(conn, arn, "STOPPED", now, error=error or ErrorObject(
                ErrorType="Execution.Stopped", ErrorMessage="Execution stopped by user request"))
            conn.execute("UPDATE executions SET lease_owner = NULL, invocation_id = NULL WHERE arn = ?", (arn,))
            return {"StopTimestamp": now}
        return self.store.transact(tx)

    # ------------------------------------------------------------------ redrive
    def redrive_execution(self, arn: str, from_operation: str | None = None, name: str | None = None) -> str:
        """Start a redrive of the ended execution ``arn`` (see :mod:`durably.core.engine.redrive`): a new
        execution of its function and input, holding the operations it keeps and their events; its ARN.
        ``name`` defaults to ``<original name>-redrive-<n>``."""
        return self.store.transact(lambda conn: self._redrive(conn, arn, from_operation, name))

    def _redrive(self, conn: sqlite3.Connection, arn: str, from_operation: str | None, name: str | None) -> str:
        row = self._exec_row(conn, arn)
        redrive.check_redrivable(arn, row["status"], bool(row["durable"]))
        operations = load_ops(doc for (doc,) in conn.execute(
            "SELECT doc FROM operations WHERE arn = ? ORDER BY seq", (arn,)))
        events = [json.loads(doc) for (doc,) in conn.execute(
            "SELECT doc FROM events WHERE arn = ? ORDER BY event_id", (arn,))]
        selection = redrive.select(operations, events, from_operation)
        spec = FunctionSpec(row["function_name"], True, row["ref"], row["execution_timeout"], row["retention_days"])

        def taken(candidate: str) -> bool:
            return conn.execute("SELECT 1 FROM executions WHERE name = ? AND function_name = ?",
                                (candidate, spec.name)).fetchone() is not None

        if name is None:
            redriven = conn.execute("SELECT count(*) FROM executions WHERE redrive_of = ?", (arn,)).fetchone()[0]
            name = redrive.default_name(row["name"], redriven, taken)
        elif taken(name):
            raise DurableExecutionAlreadyStartedException(
                f"an execution named {name!r} of {spec.name} already exists; choose another name")
        new_arn, _ = self._insert_execution(conn, spec, row["input"], name, tenant_id=row["tenant_id"],
                                            redrive_of=(arn, len(selection.operations)))
        conn.executemany("INSERT INTO operations VALUES (?, ?, ?, NULL, ?)",
                         [(new_arn, op.Id, seq, dump_op(op)) for seq, op in enumerate(selection.operations, 1)])
        event_seq = conn.execute("SELECT event_seq FROM executions WHERE arn = ?", (new_arn,)).fetchone()[0]
        copied = selection.events(events)
        conn.executemany("INSERT INTO events VALUES (?, ?, ?)", [
            (new_arn, event_id, json.dumps({**event, "EventId": event_id}, separators=(",", ":")))
            for event_id, event in enumerate(copied, event_seq + 1)])
        conn.execute("UPDATE executions SET op_seq = ?, event_seq = ? WHERE arn = ?",
                     (len(selection.operations), event_seq + len(copied), new_arn))
        return new_arn

    # ------------------------------------------------------------------ callbacks
    def _open_callback(self, conn: sqlite3.Connection, callback_id: str) -> tuple[str, Operation]:
        row = conn.execute("SELECT arn, doc FROM operations WHERE callback_id = ?", (callback_id,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"no callback {callback_id!r}")
        arn, op = row[0], load_op(row[1])
        if op.Status == "TIMED_OUT":
            raise CallbackTimeoutException(f"callback {callback_id!r} already timed out")
        if op.Status != "STARTED":
            raise ResourceNotFoundException(f"callback {callback_id!r} is already {op.Status}")
        status = conn.execute("SELECT status FROM executions WHERE arn = ?", (arn,)).fetchone()[0]
        if status != "RUNNING":
            raise ResourceNotFoundException(f"callback {callback_id!r}: its execution is {status}")
        return arn, op

    def send_callback_success(self, callback_id: str, result: str | None) -> None:
        """An empty answer is stored as no result (as AWS's service does)."""
        result = result or None
        if result is not None and utf8_size(result) > MAX_OPERATION_PAYLOAD:
            raise RequestTooLargeException(
                f"callback result of {utf8_size(result)} bytes is over the {MAX_OPERATION_PAYLOAD}-byte limit")
        self.store.transact(lambda conn: self._close_callback(conn, callback_id, "SUCCEEDED", result=result))

    def send_callback_failure(self, callback_id: str, error: ErrorObject) -> None:
        """ErrorData over its limit is refused, as a result would be; a longer message or stack
        trace is cut to its limit (``ErrorObject.bounded``)."""
        if error.ErrorData is not None and utf8_size(error.ErrorData) > MAX_ERROR_DATA:
            raise RequestTooLargeException(
                f"callback ErrorData of {utf8_size(error.ErrorData)} bytes is over the {MAX_ERROR_DATA}-byte limit")
        bounded = error.bounded()
        self.store.transact(lambda conn: self._close_callback(conn, callback_id, "FAILED", error=bounded))

    def send_callback_heartbeat(self, callback_id: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            arn, op = self._open_callback(conn, callback_id)
            row = conn.execute("SELECT period FROM timers WHERE arn = ? AND op_id = ? AND kind = 'cb_heartbeat'",
                               (arn, op.Id)).fetchone()
            if row and row[0]:
                _set_timer(conn, arn, op.Id, "cb_heartbeat", self.clock.now_ms() + row[0] * 1000, row[0])
        self.store.transact(tx)

    def _close_callback(self, conn: sqlite3.Connection, callback_id: str, status: str,
                        result: str | None = None, error: ErrorObject | None = None) -> None:
        arn, op = self._open_callback(conn, callback_id)
        now = self.clock.now_ms()
        self._end_callback(conn, arn, op, status, now, result, error)

    def _end_callback(self, conn: sqlite3.Connection, arn: str, op: Operation, status: str, now: int,
                      result: str | None = None, error: ErrorObject | None = None) -> None:
        assert op.CallbackDetails is not None
        op.Status, op.EndTimestamp = cast(OperationStatusName, status), now
        op.CallbackDetails.Result, op.CallbackDetails.Error = result, error
        if status == "SUCCEEDED":
            history.append(conn, arn, "CallbackSucceeded", now, {"Result": history.result(result)}, op)
        else:
            event = "CallbackFailed" if status == "FAILED" else "CallbackTimedOut"
            history.append(conn, arn, event, now, {"Error": history.error(error)}, op)
        conn.execute("UPDATE operations SET doc = ? WHERE arn = ? AND id = ?", (dump_op(op), arn, op.Id))
        conn.execute("DELETE FROM timers WHERE arn = ? AND op_id = ?", (arn, op.Id))
        _mark_ready(conn, arn, op.Id)

    # ------------------------------------------------------------------ timers
    def next_due(self) -> int | None:
        row = self.store.reader().execute("SELECT min(due) FROM timers").fetchone()
        return row[0] if row else None

    def fire_due_timers(self, limit: int = 500) -> int:
        now = self.clock.now_ms()
        due = self.store.reader().execute(
            "SELECT arn, op_id, kind FROM timers WHERE due <= ? ORDER BY due LIMIT ?", (now, limit)).fetchall()
        if not due:
            return 0

        def tx(conn: sqlite3.Connection) -> int:
            fired = 0
            for arn, op_id, kind in due:
                if conn.execute("DELETE FROM timers WHERE arn = ? AND op_id = ? AND kind = ? AND due <= ?"
                                " RETURNING 1", (arn, op_id, kind, now)).fetchone():
                    self._fire(conn, arn, op_id, kind, now)
                    fired += 1
            return fired
        return self.store.transact(tx)

    def _fire(self, conn: sqlite3.Connection, arn: str, op_id: str, kind: str, now: int) -> None:
        row = conn.execute("SELECT status FROM executions WHERE arn = ?", (arn,)).fetchone()
        if row is None or row[0] != "RUNNING":
            return
        if kind == "exec_timeout":
            self._finish(conn, arn, "TIMED_OUT", now, error=ErrorObject(
                ErrorType="Execution.TimedOut", ErrorMessage="the execution ran past its execution timeout"))
            conn.execute("UPDATE executions SET lease_owner = NULL, invocation_id = NULL WHERE arn = ?", (arn,))
            return
        if kind == "reinvoke":
            _mark_ready(conn, arn, None)
            return
        op = self._load(conn, arn, op_id, {})
        if op is None or op.is_terminal:
            return
        if kind == "wait":
            op.Status, op.EndTimestamp = "SUCCEEDED", now
            seconds = ((op.WaitDetails.ScheduledEndTimestamp or now) - (op.StartTimestamp or now)) // 1000 \
                if op.WaitDetails else 0
            history.append(conn, arn, "WaitSucceeded", now, {"Duration": seconds}, op)
            conn.execute("UPDATE operations SET doc = ? WHERE arn = ? AND id = ?", (dump_op(op), arn, op.Id))
            _mark_ready(conn, arn, op.Id)
        elif kind == "retry":
            if op.Status != "PENDING" or op.StepDetails is None:
                return
            op.Status = "READY"
            op.StepDetails.NextAttemptTimestamp = None
            conn.execute("UPDATE operations SET doc = ? WHERE arn = ? AND id = ?", (dump_op(op), arn, op.Id))
            _mark_ready(conn, arn, op.Id)
        elif kind in ("cb_timeout", "cb_heartbeat"):
            error_type = "Callback.Timeout" if kind == "cb_timeout" else "Callback.Heartbeat"
            message = "Callback timed out" if kind == "cb_timeout" else "Callback heartbeat timed out"
            self._end_callback(conn, arn, op, "TIMED_OUT", now,
                               error=ErrorObject(ErrorType=error_type, ErrorMessage=message))

    def purge_expired(self) -> int:
        """Delete closed executions older than their retention period."""
        now = self.clock.now_ms()

        def tx(conn: sqlite3.Connection) -> int:
            arns = [r[0] for r in conn.execute(
                "SELECT arn FROM executions WHERE end_ts IS NOT NULL AND end_ts + retention_days * 86400000 < ?",
                (now,))]
            _delete_executions(conn, arns)
            return len(arns)
        return self.store.transact(tx)

    def delete_function(self, function_name: str) -> dict[str, Any]:
        """Delete a function: its registration, published versions (and their code), aliases, and its closed
        executions with their histories and logs. Refused while one of its executions is RUNNING."""
        check_name(function_name)

        def tx(conn: sqlite3.Connection) -> dict[str, Any]:
            known = conn.execute("SELECT 1 FROM functions WHERE name = ? UNION ALL SELECT 1 FROM executions "
                                 "WHERE function_name = ? LIMIT 1", (function_name, function_name)).fetchone()
            if known is None:
                raise ResourceNotFoundException(f"no function named {function_name!r}")
            running = [r[0] for r in conn.execute(
                "SELECT arn FROM executions WHERE function_name = ? AND status = 'RUNNING' LIMIT 6",
                (function_name,))]
            if running:
                listed = "; ".join(running[:5]) + ("; ..." if len(running) > 5 else "")
                raise ResourceConflictException(f"{function_name} has RUNNING executions ({listed}): stop them "
                                                "(durably stop) or let them end first")
            arns = [r[0] for r in conn.execute("SELECT arn FROM executions WHERE function_name = ?",
                                               (function_name,))]
            _delete_executions(conn, arns)
            (versions,) = conn.execute("SELECT COUNT(*) FROM versions WHERE function = ?", (function_name,)).fetchone()
            for table, column in (("versions", "function"), ("aliases", "function"), ("functions", "name")):
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (function_name,))
            return {"FunctionName": function_name, "DeletedExecutions": len(arns), "DeletedVersions": versions}

        deleted = self.store.transact(tx)
        if self.store.path != ":memory:":
            shutil.rmtree(code_versions.version_folder(self.store.path, function_name, 0).parent, ignore_errors=True)
        return deleted

    # ------------------------------------------------------------------ invocations
    def claim(self, lease_ms: int = 60_000, arn: str | None = None,
              skip_functions: Collection[str] = ()) -> Claim | None:
        """Take one execution that needs an invocation (optionally a given one), with a lease.

        Executions of ``skip_functions`` (functions this worker cannot import just now) are left
        to other workers.
        """
        conn = self.store.reader()
        skip = tuple(skip_functions)
        unless = f" AND function_name NOT IN ({','.join('?' * len(skip))})" if skip else ""
        if arn is not None:
            candidates = [r[0] for r in conn.execute(
                "SELECT arn FROM executions WHERE arn = ? AND ready = 1 AND status = 'RUNNING'"
                f" AND lease_owner IS NULL{unless}", (arn, *skip))]
        else:
            candidates = [r[0] for r in conn.execute(
                "SELECT arn FROM executions WHERE ready = 1 AND status = 'RUNNING' AND lease_owner IS NULL"
                f"{unless} LIMIT 8", skip)]
        for candidate in candidates:
            # A claim an OS crash loses leaves the execution ready, as it was: no wait for the disk.
            claim = self.store.transact(functools.partial(self._claim, arn=candidate, lease_ms=lease_ms),
                                        durable=False)
            if claim is not None:
                return claim
        return None

    def _claim(self, conn: sqlite3.Connection, arn: str, lease_ms: int) -> Claim | None:
        now = self.clock.now_ms()
        row = conn.execute(
            "UPDATE executions SET lease_owner = ?, lease_expiry = ?, lease_host = ?, lease_pid = ?,"
            " lease_pstart = ?, token = ?, invocation_id = ?, invocation_start = ?, ready = 0"
            " WHERE arn = ? AND ready = 1 AND status = 'RUNNING' AND lease_owner IS NULL"
            " RETURNING function_name, ref, durable, input, updated_ids, token, invocation_id, trace_header",
            (self.owner, now + lease_ms, self.host_id, self.pid, self.pstart, secrets.token_hex(16),
             secrets.token_hex(16), now, arn)).fetchone()
        if row is None:
            return None
        return Claim(arn=arn, token=row[5], invocation_id=row[6], function_name=row[0], ref=row[1],
                     durable=bool(row[2]), input=row[3], started=now, updated_ids=json.loads(row[4]),
                     trace_header=row[7])

    def renew_leases(self, arns: list[str], lease_ms: int = 60_000) -> None:
        if not arns:
            return
        expiry = self.clock.now_ms() + lease_ms
        self.store.transact(lambda conn: conn.executemany(
            "UPDATE executions SET lease_expiry = ? WHERE arn = ? AND lease_owner = ?",
            [(expiry, a, self.owner) for a in arns]))

    def take_over_dead(self, running: Collection[str] = ()) -> list[Takeover]:
        """Record the invocations of dead workers as crashed, so their executions run again.

        A lease is dead when it expired, or at once when its owner ran on this host (same host
        identity) and its process is gone. This worker's own expired leases are taken over too,
        unless their invocation is still ``running`` here (the end of an invocation that could
        not be recorded). Each takeover checks, in its transaction, that the lease is still the
        one judged dead, so a lease renewed meanwhile is left alone.
        """
        now = self.clock.now_ms()
        rows = self.store.reader().execute(
            "SELECT arn, invocation_id, invocation_start, lease_owner, lease_host, lease_pid, lease_pstart,"
            " lease_expiry FROM executions WHERE lease_owner IS NOT NULL AND status = 'RUNNING'").fetchall()
        taken: list[Takeover] = []
        for arn, inv_id, started, owner, host, pid, pstart, expiry in rows:
            expired = expiry is not None and expiry < now
            if owner == self.owner:
                if arn in running or not expired:
                    continue
                reason = "this worker could not record the end of its invocation, and its lease expired"
            elif host == self.host_id and owner_is_gone(pid, pstart):
                reason = f"the worker process {pid} on {hostname_of(host)} exited during the invocation"
            elif expired:
                reason = f"the lease of worker {owner} expired during the invocation"
            else:
                continue
            claim = Claim(arn=arn, token="", invocation_id=inv_id, function_name="", ref=None, durable=True,
                          input=None, started=started)
            if self.complete_invocation(claim, None, ErrorObject(ErrorType="Runtime.ExitError", ErrorMessage=reason),
                                        retry_delay_ms=0, lease=(owner, expiry)):
                taken.append(Takeover(arn, owner, reason))
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
        def tx(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT status, invocation_id, ready, failed_invocations, event_seq, lease_owner,"
                               " lease_expiry, updated_ids FROM executions WHERE arn = ?", (claim.arn,)).fetchone()
            if row is None or row[1] != claim.invocation_id:
                return False
            status, _, ready, failures, event_seq, owner, expiry, updated = row
            if lease is not None and (owner, expiry) != lease:
                return False
            now = self.clock.now_ms()
            details: dict[str, Any] = {"StartTimestamp": claim.started, "EndTimestamp": now,
                                       "RequestId": claim.invocation_id}
            updated_ids = json.loads(updated)
            if invocation_error is not None:
                details["Error"] = history.error(invocation_error)
                _record_problem(conn, claim.arn, now, owner or self.owner, invocation_error)
                updated_ids += [op_id for (op_id,) in conn.execute(
                    "SELECT id FROM operations WHERE arn = ? AND json_extract(doc, '$.EndTimestamp') >= ?"
                    " AND json_extract(doc, '$.Type') != 'EXECUTION' ORDER BY seq", (claim.arn, claim.started))
                    if op_id not in updated_ids]
            else:
                conn.execute("DELETE FROM invocation_errors WHERE arn = ?", (claim.arn,))
                updated_ids = updated_ids[len(claim.updated_ids):]  # what arrived during the invocation
            with history.EventBuffer(conn, claim.arn, event_seq) as events:
                history.append(conn, claim.arn, "InvocationCompleted", now, details)
                if status == "RUNNING":
                    failures = self._after_invocation(conn, claim.arn, output, invocation_error, retry_delay_ms,
                                                      bool(ready), failures, now, counted)
                events.flush(conn)
                conn.execute("UPDATE executions SET lease_owner = NULL, lease_expiry = NULL, invocation_id = NULL,"
                             " token = NULL, failed_invocations = ?, event_seq = ?, updated_ids = ? WHERE arn = ?",
                             (failures, events.seq, json.dumps(updated_ids), claim.arn))
            return True
        return self.store.transact(tx)

    def release(self, claim: Claim, problem: ErrorObject) -> bool:
        """Give an invocation back without running it (this worker cannot import the handler).

        Nothing is added to the history and the execution's budget of failed invocations is not
        touched: the execution is ready again at once for any worker, and ``problem`` is kept as
        its last invocation error. False when the invocation is no longer current.
        """
        def tx(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "UPDATE executions SET lease_owner = NULL, lease_expiry = NULL, invocation_id = NULL, token = NULL,"
                " ready = 1 WHERE arn = ? AND invocation_id = ? AND status = 'RUNNING' RETURNING 1",
                (claim.arn, claim.invocation_id)).fetchone()
            if row is None:
                return False
            _record_problem(conn, claim.arn, self.clock.now_ms(), self.owner, problem)
            return True
        return self.store.transact(tx)

    def last_invocation_error(self, arn: str) -> dict[str, Any] | None:
        """The last error of an invocation of a RUNNING execution: Timestamp, Worker and Error."""
        try:
            row = self.store.reader().execute(
                "SELECT p.ts, p.owner, p.error FROM invocation_errors p JOIN executions e ON e.arn = p.arn"
                " WHERE p.arn = ? AND e.status = 'RUNNING'", (arn,)).fetchone()
        except sqlite3.OperationalError:  # a database of schema 1, opened read-only: no such table yet
            return None
        if row is None:
            return None
        return {"Timestamp": row[0], "Worker": row[1], "Error": json.loads(row[2])}

    def invocation_state(self, arn: str) -> dict[str, Any]:
        """How ``arn`` stands with the workers (a durably extension, for diagnosis): HandlerReference
        (what a worker imports), Ready (waits for a worker to claim it), FailedInvocations (in a row;
        the execution fails at MAX_INVOCATION_FAILURES), Invocation (the one in progress: Worker,
        StartTimestamp, LeaseExpiry) and NextInvocationTimestamp (a failed invocation's retry)."""
        conn = self.store.reader()
        row = self._exec_row(conn, arn)
        due = conn.execute("SELECT due FROM timers WHERE arn = ? AND kind = 'reinvoke'", (arn,)).fetchone()
        invocation = None if row["lease_owner"] is None else {
            "Worker": row["lease_owner"], "StartTimestamp": row["invocation_start"], "LeaseExpiry": row["lease_expiry"]}
        return {"HandlerReference": row["ref"], "Ready": bool(row["ready"]),
                "FailedInvocations": row["failed_invocations"], "Invocation": invocation,
                "NextInvocationTimestamp": due[0] if due else None}

    def _after_invocation(self, conn: sqlite3.Connection, arn: str, output: InvocationOutput | None,
                          invocation_error: ErrorObject | None, retry_delay_ms: int, ready: bool,
                          failures: int, now: int, counted: bool = True) -> int:
        """Finish, retry or resume the execution after an invocation; its new count of failed invocations.

        An invocation error that is not ``counted`` (the engine's storage failed, not the handler)
        only schedules the next invocation after ``retry_delay_ms``.
        """
        if invocation_error is not None and not counted:
            _set_timer(conn, arn, "-", "reinvoke", now + retry_delay_ms)
            return failures
        if invocation_error is not None:
            failures += 1
            if failures >= MAX_INVOCATION_FAILURES:
                self._finish(conn, arn, "FAILED", now, error=invocation_error)
            elif retry_delay_ms <= 0:
                _mark_ready(conn, arn, None)
            else:
                _set_timer(conn, arn, "-", "reinvoke", now + retry_delay_ms * failures)
            return failures
        assert output is not None
        if output.Status == "SUCCEEDED":
            self._finish(conn, arn, "SUCCEEDED", now, result=output.Result)
        elif output.Status == "FAILED":
            self._finish(conn, arn, "FAILED", now, error=output.Error or ErrorObject())
        elif not ready and not _has_outstanding(conn, arn):
            # a suspension that nothing can resume: tried again, then failed (an output is progress otherwise)
            if failures + 1 >= MAX_INVALID_PENDING:
                self._finish(conn, arn, "FAILED", now, error=ErrorObject(
                    ErrorType="InvalidParameterValueException",
                    ErrorMessage="the handler suspended with nothing outstanding (no wait, retry, "
                                 "callback or invoke) that could ever resume it"))
            else:
                _mark_ready(conn, arn, None)
            return failures + 1
        return 0

    def finish_plain(self, claim: Claim, result: str | None, error: ErrorObject | None) -> None:
        """Record the outcome of a plain (non-durable) function run as a chained invoke target."""
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT invocation_id, status FROM executions WHERE arn = ?",
                               (claim.arn,)).fetchone()
            if row is None or row[0] != claim.invocation_id or row[1] != "RUNNING":
                return
            now = self.clock.now_ms()
            conn.execute("UPDATE executions SET lease_owner = NULL, invocation_id = NULL WHERE arn = ?",
                         (claim.arn,))
            if error is None:
                self._finish(conn, claim.arn, "SUCCEEDED", now, result=result)
            else:
                self._finish(conn, claim.arn, "FAILED", now, error=error)
        self.store.transact(tx)


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


def _prefetch(conn: sqlite3.Connection, arn: str, op_ids: set[str]) -> dict[str, Operation | None]:
    """The stored operations ``op_ids``, read in one query per 500 (None for any not stored)."""
    ids = list(op_ids)
    found: dict[str, Operation | None] = dict.fromkeys(ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = conn.execute(f"SELECT id, doc FROM operations WHERE arn = ? AND id IN ({','.join('?' * len(chunk))})",
                            (arn, *chunk))
        found.update((op_id, load_op(doc)) for op_id, doc in rows)
    return found


def _record_problem(conn: sqlite3.Connection, arn: str, now: int, owner: str, error: ErrorObject) -> None:
    conn.execute("INSERT OR REPLACE INTO invocation_errors VALUES (?, ?, ?, ?)",
                 (arn, now, owner, json.dumps(error.to_wire())))


def _has_outstanding(conn: sqlite3.Connection, arn: str) -> bool:
    if conn.execute("SELECT 1 FROM timers WHERE arn = ? AND kind != 'exec_timeout' LIMIT 1", (arn,)).fetchone():
        return True
    return conn.execute(
        "SELECT 1 FROM operations WHERE arn = ? AND json_extract(doc, '$.Status') IN ('STARTED', 'PENDING', 'READY')"
        " AND json_extract(doc, '$.Type') IN ('CALLBACK', 'CHAINED_INVOKE', 'STEP', 'WAIT') LIMIT 1",
        (arn,)).fetchone() is not None


def _set_timer(conn: sqlite3.Connection, arn: str, op_id: str, kind: str, due: int, period: int | None = None) -> None:
    conn.execute("INSERT OR REPLACE INTO timers VALUES (?, ?, ?, ?, ?)", (arn, op_id, kind, due, period))


def _mark_ready(conn: sqlite3.Connection, arn: str, op_id: str | None) -> None:
    if op_id is None:
        conn.execute("UPDATE executions SET ready = 1 WHERE arn = ? AND status = 'RUNNING'", (arn,))
        return
    conn.execute("UPDATE executions SET ready = 1, updated_ids = json_insert(updated_ids, '$[#]', ?)"
                 " WHERE arn = ? AND status = 'RUNNING'", (op_id, arn))


def _callback_id(op: Operation) -> str | None:
    return op.CallbackDetails.CallbackId if op.CallbackDetails else None


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


def _delete_executions(conn: sqlite3.Connection, arns: list[str]) -> None:
    """Everything kept of these executions: state, history, timers, logs."""
    for arn in arns:
        for table in ("operations", "events", "timers", "invocation_errors", "logs", "executions"):
            conn.execute(f"DELETE FROM {table} WHERE arn = ?", (arn,))
