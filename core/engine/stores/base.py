"""What the engine keeps in a database, and the calls a database module answers (one module each).

The service (``core/engine/service.py``) holds every rule of the durable execution API; a store
only reads and writes rows. What a store keeps:

- ``executions``: one row per execution (identity, status, input/result/error, configuration,
  the current invocation and its lease, whether it is ready for a worker), keyed by an integer
  ``key`` as well as by its ARN.
- ``journal``: the execution's operations and history, append-only. Each change to an execution
  (a checkpoint batch, an answered callback, a fired timer, its end) is one :class:`JournalRow`:
  the documents of the operations it changed and the history events it recorded. The state is
  the last document of each operation, in the order they first appeared; the history is the
  events of the rows in order. A checkpoint is one row: nothing else is updated per step.
- ``timers`` (waits, retries, callback timeouts, re-invocations, execution timeouts, by due
  time), ``callbacks`` (callback id to its operation), ``invocation_errors``, ``logs``,
  ``functions``, ``versions`` and ``aliases``.

A store runs a function in a transaction (:meth:`Store.transact`) or for reading
(:meth:`Store.read`), handing it a :class:`StoreTx`: the rows in that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from durably.core.engine.functions import FunctionSpec

T = TypeVar("T")

CHECKPOINT = 1
"""A journal row an invocation wrote through a checkpoint (it advances the checkpoint token)."""
OTHER = 0
"""A journal row written by anything else: a start, a callback answer, a timer, a stop, a redrive."""


@dataclass(slots=True)
class ExecutionRow:
    """An ``executions`` row. ``error`` is the ErrorObject's wire JSON; ``token`` is the secret of the
    current invocation (the checkpoint token adds the journal position to it); ``invocation_seq`` is
    the journal position when that invocation was claimed."""

    key: int
    arn: str
    exec_id: str
    name: str
    function_name: str
    ref: str | None
    durable: bool
    status: str
    input: str | None
    result: str | None
    error: str | None
    start_ts: int
    end_ts: int | None
    execution_timeout: int
    retention_days: int
    token: str | None = None
    invocation_id: str | None = None
    invocation_start: int | None = None
    invocation_seq: int = 0
    lease_owner: str | None = None
    lease_expiry: int | None = None
    lease_host: str | None = None
    lease_pid: int | None = None
    lease_pstart: int | None = None
    ready: bool = False
    updated_ids: list[str] = field(default_factory=list)
    failed_invocations: int = 0
    parent_arn: str | None = None
    parent_op: str | None = None
    tenant_id: str | None = None
    trace_header: str | None = None
    redrive_of: str | None = None
    code_sha256: str | None = None


UPDATABLE = frozenset({
    "status", "result", "error", "end_ts", "token", "invocation_id", "invocation_start", "invocation_seq",
    "lease_owner", "lease_expiry", "lease_host", "lease_pid", "lease_pstart", "ready", "updated_ids",
    "failed_invocations",
})
"""The columns :meth:`StoreTx.update_execution` may change (the others are fixed at the start)."""


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One change to an execution. ``ops``: operation documents (JSON objects whose first member is
    ``Id``), one per line; ``events``: history event documents, one per line, numbered consecutively
    up to ``last_event`` (which, with no events, repeats the row before's). ``writer`` is
    :data:`CHECKPOINT` or :data:`OTHER`."""

    seq: int
    ops: str
    events: str
    last_event: int
    writer: int = OTHER


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    """A ``list_executions`` filter. ``search``: a part of the name or ARN (matched literally)."""

    function_name: str | None = None
    name: str | None = None
    statuses: tuple[str, ...] = ()
    started_after: int | None = None
    started_before: int | None = None
    search: str | None = None
    newest_first: bool = True
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    arn: str
    name: str
    function_name: str
    status: str
    start_ts: int
    end_ts: int | None


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: int
    ref: str
    code_sha256: str
    created_ts: int
    description: str


@dataclass(frozen=True, slots=True)
class LogRow:
    id: int
    ts: int
    level: str
    message: str
    fields: str
    """JSON object of the record's other fields."""


Lock = Literal[False, True, "skip"]
"""``True``: hold the row until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite serialises
writers anyway); ``"skip"``: the same, but answer None if another transaction holds it."""


class StoreTx(Protocol):
    """The rows, within one transaction (or one read). Writes are only valid in :meth:`Store.transact`."""

    # ---------------------------------------------------------------- executions
    def execution(self, ref: str | int, lock: Lock = False) -> ExecutionRow | None:
        """The execution with this ARN (str) or key (int)."""

    def execution_with_tail(self, arn: str, lock: Lock = False, with_input: bool = True,
                            ) -> tuple[ExecutionRow | None, JournalRow | None]:
        """:meth:`execution` and its :meth:`journal_tail`, read after the lock is taken (a server
        database sends both queries at once). ``with_input=False`` leaves ``input`` unread (None;
        :meth:`execution_input` reads it), so a checkpoint does not copy a large input each time."""

    def execution_input(self, key: int) -> str | None:
        """The input of the execution with this key."""

    def named_execution(self, function_name: str, name: str) -> ExecutionRow | None:
        """The execution of ``function_name`` called ``name`` (names are unique per function)."""

    def insert_execution(self, row: ExecutionRow) -> int:
        """Add an execution (``row.key`` is ignored); its new key."""

    def update_execution(self, key: int, **changes: Any) -> None:
        """Set columns of :data:`UPDATABLE` (``updated_ids`` a list, ``ready`` a bool)."""

    def ready_executions(self, limit: int, skip_functions: Collection[str] = (),
                         arn: str | None = None) -> list[str]:
        """ARNs of RUNNING executions that are ready and not leased (only ``arn``, if given)."""

    def leased_executions(self) -> list[ExecutionRow]:
        """RUNNING executions with a lease (an invocation in progress somewhere)."""

    def executions_of(self, function_name: str, running_only: bool = False, limit: int | None = None) -> list[str]:
        """ARNs of ``function_name``'s executions (RUNNING only, if asked)."""

    def expired_executions(self, now: int) -> list[int]:
        """Keys of ended executions whose retention period has passed."""

    def redrive_count(self, arn: str) -> int:
        """How many executions redrive ``arn``."""

    def list_executions(self, query: ExecutionQuery) -> list[ExecutionSummary]:
        """Durable executions matching ``query``, ordered by start time then ARN (newest first if asked)."""

    def find_executions(self, ref: str, limit: int) -> list[ExecutionSummary]:
        """Durable executions whose ARN or name is ``ref``, or whose id starts with it; newest first."""

    def function_names(self) -> list[str]:
        """Names of the functions that have durable executions, sorted."""

    def delete_executions(self, keys: list[int]) -> None:
        """Delete executions with everything kept of them (journal, timers, callbacks, errors, logs)."""

    # ---------------------------------------------------------------- journal
    def journal(self, key: int, after: int = 0, from_event: int = 0) -> list[JournalRow]:
        """The rows after position ``after`` whose ``last_event`` is at least ``from_event``, in order."""

    def journal_ops(self, key: int, after: int = 0) -> list[str]:
        """The ``ops`` column of the rows after position ``after``, in order (what state is folded
        from, without the rows' history events)."""

    def journal_backwards(self, key: int) -> Iterator[JournalRow]:
        """The rows from the last to the first, read as the caller goes (it stops when it has found enough)."""

    def journal_tail(self, key: int) -> JournalRow | None:
        """The last row's ``seq``, ``last_event`` and ``writer``; its ``ops`` and ``events`` are left
        unread (empty), so a checkpoint after a large result does not read that result again."""

    def append_journal(self, key: int, row: JournalRow) -> None:
        """Add ``row``, whose ``seq`` is one more than the last row's."""

    # ---------------------------------------------------------------- timers
    def set_timer(self, key: int, op_id: str, kind: str, due: int, period: int | None = None) -> None:
        """Add or replace the timer (key, op_id, kind)."""

    def timer(self, key: int, op_id: str, kind: str) -> tuple[int, int | None] | None:
        """(due, period) of a timer."""

    def delete_timers(self, key: int, op_id: str | None = None) -> None:
        """Delete the execution's timers (only those of ``op_id``, if given)."""

    def take_timer(self, key: int, op_id: str, kind: str, now: int) -> bool:
        """Delete the timer if it is due by ``now``; whether it was."""

    def due_timers(self, now: int, limit: int) -> list[tuple[int, str, str]]:
        """(key, op_id, kind) of timers due by ``now``, earliest first."""

    def next_due(self, kinds: Collection[str] | None = None) -> int | None:
        """The earliest due time of any timer (of these kinds, if given)."""

    def has_timers(self, key: int, except_kind: str) -> bool:
        """Whether the execution has a timer of another kind than ``except_kind``."""

    # ---------------------------------------------------------------- callbacks
    def add_callback(self, callback_id: str, key: int, op_id: str) -> None:
        """Record a new callback (open)."""

    def callback(self, callback_id: str) -> tuple[int, str] | None:
        """(key, op_id) of a callback, open or not."""

    def close_callback(self, callback_id: str) -> None:
        """Mark a callback answered, failed or timed out."""

    def open_callbacks(self, key: int | None = None) -> list[tuple[int, str]]:
        """(key, op_id) of the open callbacks of RUNNING executions (of ``key`` only, if given)."""

    # ---------------------------------------------------------------- invocation errors
    def set_invocation_error(self, key: int, ts: int, owner: str, error: str) -> None:
        """Keep ``error`` (ErrorObject wire JSON) as the execution's last invocation error."""

    def clear_invocation_error(self, key: int) -> None: ...

    def invocation_error(self, key: int) -> tuple[int, str, str] | None:
        """(ts, owner, error JSON) of the execution's last invocation error."""

    # ---------------------------------------------------------------- logs
    def add_logs(self, rows: list[tuple[str, int, str, str, str]]) -> None:
        """Add log records (arn, ts, level, message, fields JSON), skipping those of executions that are gone."""

    def logs(self, key: int, after: int, limit: int) -> list[LogRow]:
        """The execution's log records with ids after ``after``, oldest first."""

    # ---------------------------------------------------------------- functions, versions, aliases
    def save_function(self, spec: FunctionSpec, replace: bool = True) -> None:
        """Record a function (name, durable, ref, timeouts); ``replace=False`` keeps one already there."""

    def function(self, name: str) -> FunctionSpec | None: ...

    def delete_function(self, name: str) -> None:
        """Delete the function's registration, versions and aliases (not its executions)."""

    def last_version(self, function_name: str) -> int:
        """The highest version number, published or reserved (0 for none)."""

    def reserve_version(self, function_name: str, version: int, created_ts: int, description: str) -> None:
        """Add a version that is not published yet (no code)."""

    def publish_version(self, function_name: str, version: int, ref: str, code_sha256: str) -> None: ...

    def drop_version(self, function_name: str, version: int) -> None: ...

    def save_code_archive(self, function_name: str, version: int, archive: bytes) -> None:
        """Keep the published code of a version (``code_versions.pack``), for every machine to run."""

    def code_archive(self, function_name: str, version: int) -> tuple[bytes, str] | None:
        """(archive, code SHA-256) of a published version, if its code is kept in the database."""

    def versions(self, function_name: str) -> list[VersionRow]:
        """Published versions, oldest first."""

    def version_ref(self, function_name: str, version: int) -> str | None:
        """The reference a published version imports."""

    def version_count(self, function_name: str) -> int:
        """Versions, published or reserved."""

    def set_alias(self, function_name: str, alias: str, version: int) -> None: ...

    def alias(self, function_name: str, alias: str) -> int | None: ...

    def aliases(self, function_name: str) -> list[tuple[str, int]]:
        """(alias, version), by alias."""


class Store(Protocol):
    """A database. ``url`` names it (the SQLite file's path, or a PostgreSQL URL) and ``shown`` is
    that name without a password; ``code_folder`` keeps the code of published versions on this
    machine (None: nowhere, for an in-memory database); ``failures`` are the exceptions that mean
    the database failed rather than the request; ``readonly`` stores refuse writes."""

    url: str
    shown: str
    code_folder: Path | None
    failures: tuple[type[BaseException], ...]
    readonly: bool

    def transact(self, fn: Callable[[StoreTx], T], durable: bool = True) -> T:
        """Run ``fn`` in a committed transaction (perhaps shared with other callers: group commit).
        ``durable=False``: a change an OS crash may lose without harm (its commit need not wait for
        the disk). ``fn`` may run more than once where the database asks for a retry, so it must not
        change anything outside the transaction."""

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` over a consistent view of the database (no writes)."""

    def check(self) -> None:
        """Raise if the database this store writes is gone (a deleted SQLite file)."""

    def on_work(self, callback: Callable[[], None]) -> bool:
        """Have ``callback`` called (from a thread of the store's) when a transaction of any process may
        have made work ready: an execution started or released, a timer set. False if this database
        cannot tell (its workers poll)."""

    def close(self) -> None: ...
