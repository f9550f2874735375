"""The SQLite store: one database file in WAL mode, with group commit (see ``stores.base``).

Writers hand a function to :meth:`Store.transact`; whichever caller gets the write lock first
runs every queued function in one transaction (each under its own savepoint, so one failure does
not undo the others) and commits once. With one writer this is a plain commit per call; with
many concurrent executions they share commits.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from durably.core.engine.errors import DatabaseFileGone, NotADurablyDatabase
from durably.core.engine.stores.base import StoreTx
from durably.core.engine.stores.sqlite_tx import SQLiteTx, migrate_to_7

T = TypeVar("T")

APPLICATION_ID = 0x64757261  # "dura"
SCHEMA_VERSION = 8
DENIED = frozenset({"SQLITE_READONLY", "SQLITE_READONLY_DIRECTORY", "SQLITE_READONLY_CANTINIT", "SQLITE_PERM"})
"""SQLite's answers when the file, or the folder that must hold its -wal and -shm, is not writable."""
NO_WAL_INDEX = frozenset({"SQLITE_READONLY_DIRECTORY", "SQLITE_READONLY_CANTINIT", "SQLITE_CANTOPEN"})
"""SQLite's answers to a read-only connection that cannot open or create the -shm file."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions(
    name TEXT PRIMARY KEY, durable INTEGER NOT NULL, ref TEXT,
    execution_timeout INTEGER NOT NULL, retention_days INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS executions(
    key INTEGER PRIMARY KEY, arn TEXT NOT NULL UNIQUE, exec_id TEXT NOT NULL, name TEXT NOT NULL,
    function_name TEXT NOT NULL, ref TEXT, durable INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL,
    input TEXT, result TEXT, error TEXT, start_ts INTEGER NOT NULL, end_ts INTEGER,
    execution_timeout INTEGER NOT NULL, retention_days INTEGER NOT NULL,
    token TEXT, invocation_id TEXT, invocation_start INTEGER, invocation_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT, lease_expiry INTEGER, lease_host TEXT, lease_pid INTEGER, lease_pstart INTEGER,
    ready INTEGER NOT NULL DEFAULT 0, updated_ids TEXT NOT NULL DEFAULT '[]',
    failed_invocations INTEGER NOT NULL DEFAULT 0,
    parent_arn TEXT, parent_op TEXT, tenant_id TEXT, trace_header TEXT, redrive_of TEXT, code_sha256 TEXT);
CREATE INDEX IF NOT EXISTS executions_ready ON executions(ready) WHERE ready = 1;
CREATE INDEX IF NOT EXISTS executions_leased ON executions(lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS executions_fn ON executions(function_name, start_ts);
CREATE INDEX IF NOT EXISTS executions_named ON executions(function_name, name);
CREATE INDEX IF NOT EXISTS executions_start ON executions(start_ts);
CREATE INDEX IF NOT EXISTS executions_name ON executions(name);
CREATE INDEX IF NOT EXISTS executions_end ON executions(end_ts) WHERE end_ts IS NOT NULL;
CREATE INDEX IF NOT EXISTS executions_redrive ON executions(redrive_of) WHERE redrive_of IS NOT NULL;
CREATE TABLE IF NOT EXISTS journal(
    id INTEGER PRIMARY KEY, ops TEXT NOT NULL, events TEXT NOT NULL, last_event INTEGER NOT NULL,
    writer INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS timers(
    key INTEGER NOT NULL, op_id TEXT NOT NULL, kind TEXT NOT NULL, due INTEGER NOT NULL, period INTEGER,
    PRIMARY KEY(key, op_id, kind)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_due ON timers(due);
CREATE TABLE IF NOT EXISTS callbacks(
    callback_id TEXT PRIMARY KEY, key INTEGER NOT NULL, op_id TEXT NOT NULL, open INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS callbacks_open ON callbacks(key) WHERE open = 1;
CREATE INDEX IF NOT EXISTS callbacks_key ON callbacks(key);
CREATE TABLE IF NOT EXISTS invocation_errors(
    key INTEGER PRIMARY KEY, ts INTEGER NOT NULL, owner TEXT NOT NULL, error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs(
    id INTEGER PRIMARY KEY, key INTEGER NOT NULL, ts INTEGER NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL,
    fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_key ON logs(key, id);
CREATE TABLE IF NOT EXISTS versions(
    function TEXT NOT NULL, version INTEGER NOT NULL, ref TEXT NOT NULL, code_sha256 TEXT,
    created_ts INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '', PRIMARY KEY(function, version));
CREATE TABLE IF NOT EXISTS aliases(
    function TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY(function, alias));
CREATE TABLE IF NOT EXISTS code_archives(
    function TEXT NOT NULL, version INTEGER NOT NULL, archive BLOB NOT NULL, PRIMARY KEY(function, version));
"""
MIGRATIONS = {
    2: "CREATE TABLE IF NOT EXISTS invocation_errors(arn TEXT PRIMARY KEY, ts INTEGER NOT NULL,"
       " owner TEXT NOT NULL, error TEXT NOT NULL) WITHOUT ROWID;",
    3: "ALTER TABLE executions ADD COLUMN trace_header TEXT;",
    4: "CREATE TABLE IF NOT EXISTS logs(id INTEGER PRIMARY KEY, arn TEXT NOT NULL, ts INTEGER NOT NULL,"
       " level TEXT NOT NULL, message TEXT NOT NULL, fields TEXT NOT NULL);"
       " CREATE INDEX IF NOT EXISTS logs_arn ON logs(arn, id);",
    5: "ALTER TABLE executions ADD COLUMN redrive_of TEXT;"
       " CREATE INDEX IF NOT EXISTS executions_redrive ON executions(redrive_of) WHERE redrive_of IS NOT NULL;",
    6: "ALTER TABLE executions ADD COLUMN code_sha256 TEXT;"
       " CREATE TABLE IF NOT EXISTS versions(function TEXT NOT NULL, version INTEGER NOT NULL, ref TEXT NOT NULL,"
       " code_sha256 TEXT, created_ts INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '',"
       " PRIMARY KEY(function, version));"
       " CREATE TABLE IF NOT EXISTS aliases(function TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,"
       " PRIMARY KEY(function, alias));",
    8: "CREATE TABLE IF NOT EXISTS code_archives(function TEXT NOT NULL, version INTEGER NOT NULL,"
       " archive BLOB NOT NULL, PRIMARY KEY(function, version));",
}
"""What takes a database of the previous version to each version (applied when it is opened for writing);
version 7 (the journal) is :func:`migrate_to_7`, which moves the rows as well."""


def _file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of a database file; None for an in-memory database."""
    if path == ":memory:":
        return None
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Take a database of schema ``version`` to :data:`SCHEMA_VERSION`, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            if step == 7:
                migrate_to_7(conn)
            else:
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run the statements ``sql`` in one immediate transaction (all or nothing)."""
    try:
        conn.executescript(f"BEGIN IMMEDIATE; {sql} COMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _Request:
    __slots__ = ("done", "durable", "error", "fn", "result")

    def __init__(self, fn: Callable[[StoreTx], Any], durable: bool) -> None:
        self.fn = fn
        self.durable = durable
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class SQLiteStore:
    """One database file; safe to share between threads and between processes.

    ``readonly=True`` opens an existing database for reads only: nothing is created or changed,
    so it works where the file and its folder are not writable (writes fail).
    """

    failures: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: str | Path, synchronous: str = "FULL", readonly: bool = False) -> None:
        self.path = self.url = self.shown = str(path)
        self.code_folder = None if self.path == ":memory:" else Path(self.path).resolve().parent
        """Published versions are kept beside the database file."""
        self.readonly = readonly
        self._version = SCHEMA_VERSION
        self._copy: sqlite3.Connection | None = None
        """An older database opened read-only is read from a copy in memory, migrated."""
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._uri = self.path
        if readonly:
            self._conn = self._open_readonly()
        else:
            self._conn = self._open()
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Request] = []
        self._local = threading.local()
        self._file_id = _file_id(self.path)

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except PermissionError as exc:
                raise self._denied(f"cannot create the folder {exc.filename}") from exc
            if os.path.exists(self.path) and not os.access(self.path, os.W_OK):
                raise self._denied()  # SQLite would open it read-only and fail at the first write
        conn = self._connect(wal=False)  # WAL only once the file is known to be ours
        try:
            if not self._check_schema(conn):
                self._create_schema(conn)
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._failure(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection. Where SQLite cannot set up the WAL index (no -shm file, and a folder
        it cannot create one in) the file is opened ``immutable``: sound only with no -wal file either,
        and then nothing can be writing to it."""
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"no database at {self.path}")
        uri = "file:" + quote(os.path.abspath(self.path)) + "?mode=ro"
        try:
            return self._readable(uri)
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorname not in NO_WAL_INDEX:
                raise self._failure(exc) from exc
            if Path(f"{self.path}-wal").exists():
                raise PermissionError(f"cannot read {self.path}: its write-ahead log {self.path}-wal needs "
                                      f"{self.path}-shm, which cannot be created here (permission denied)") from exc
        try:
            return self._readable(uri + "&immutable=1")
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from exc

    def _readable(self, uri: str) -> sqlite3.Connection:
        self._uri = uri
        conn = self._connect()
        try:
            if not self._check_schema(conn):
                raise NotADurablyDatabase(f"{self.path} is empty: not a durably database")
            if self._version < SCHEMA_VERSION:  # read an upgraded copy: the file itself is left as it is
                copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                conn.backup(copy)
                conn.close()
                _migrate(copy, self._version)
                self._copy = conn = copy
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def _folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def _denied(self, detail: str = "") -> PermissionError:
        """``cannot write PATH: permission denied``, saying which of the file and its folder is not writable."""
        exists = os.path.exists(self.path)
        if not detail and exists and not os.access(self.path, os.W_OK):
            detail = "the file is read-only"
        elif not detail and not os.access(self._folder, os.W_OK):
            detail = (f"its folder {self._folder} is not writable, and SQLite keeps its -wal and -shm files there"
                      if exists else f"the folder {self._folder} is not writable")
        return PermissionError(f"cannot write {self.path}: permission denied" + (f" ({detail})" if detail else ""))

    def _failure(self, exc: sqlite3.DatabaseError) -> Exception:
        """What a failure to open amounts to: a permission problem, or a file that is not a durably database."""
        name = exc.sqlite_errorname
        if self.readonly and name == "SQLITE_CANTOPEN" and not os.access(self.path, os.R_OK):
            return PermissionError(f"cannot read {self.path}: permission denied")
        cannot_create = name == "SQLITE_CANTOPEN" and not os.access(self._folder, os.W_OK)
        if not self.readonly and (name in DENIED or cannot_create):
            return self._denied()
        return NotADurablyDatabase(f"{self.path} is not a durably database ({exc})")

    def _connect(self, wal: bool = True) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._uri, isolation_level=None, check_same_thread=False, timeout=30,
                                   uri=self.readonly)
            conn.execute("PRAGMA busy_timeout = 30000")
            if not self.readonly:
                if wal:
                    conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.DatabaseError as exc:
            raise self._failure(exc) from exc
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """True if ``conn`` holds durably's schema, False if it is empty; else NotADurablyDatabase."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id != APPLICATION_ID and tables:
            raise NotADurablyDatabase(
                f"{self.path} is an SQLite database that durably did not create (tables: "
                f"{', '.join(sorted(tables)[:5])}); point --db / DURABLY_DB at another file")
        if app_id != APPLICATION_ID:
            return False
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise NotADurablyDatabase(
                f"{self.path} has durably schema {row[0] if row else '?'}, newer than this "
                f"durably ({SCHEMA_VERSION}); upgrade durably")
        version = self._version = int(row[0])
        if version < SCHEMA_VERSION and not self.readonly:
            _migrate(conn, version)
        return True

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        _script(conn, f"{SCHEMA} INSERT OR REPLACE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                      f" PRAGMA application_id = {APPLICATION_ID};")

    def transact(self, fn: Callable[[StoreTx], T], durable: bool = True) -> T:
        """Run ``fn(conn)`` inside a committed transaction (possibly shared with other callers).

        ``durable=False`` is for a change that an OS crash may lose without harm: its commit does
        not wait for the disk (the next durable commit flushes it, since the log is written in order).
        """
        if self._write_lock.acquire(blocking=False):
            try:
                if not self._queue:  # no other caller to share the commit with
                    return self._commit_alone(fn, durable)
            finally:
                self._write_lock.release()
        request = _Request(fn, durable)
        with self._queue_lock:
            self._queue.append(request)
        with self._write_lock:
            if not request.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                if len(batch) == 1:  # this request alone
                    return self._commit_alone(fn, durable)
                self._commit(batch)
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[no-any-return]

    def _relax(self, durable: bool) -> bool:
        """Let the next commit skip its fsync, if it need not be durable and the level syncs commits."""
        if durable or self.synchronous not in ("FULL", "EXTRA"):
            return False
        self._conn.execute("PRAGMA synchronous = NORMAL")
        return True

    def _commit_alone(self, fn: Callable[[StoreTx], T], durable: bool) -> T:
        conn = self._conn
        relaxed = self._relax(durable)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(SQLiteTx(conn))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if relaxed:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return result

    def _commit(self, batch: list[_Request]) -> None:
        conn = self._conn
        relaxed = self._relax(any(req.durable for req in batch))
        try:
            conn.execute("BEGIN IMMEDIATE")
            for req in batch:
                conn.execute("SAVEPOINT req")
                try:
                    req.result = req.fn(SQLiteTx(conn))
                except BaseException as exc:
                    req.error = exc
                    conn.execute("ROLLBACK TO req")
                conn.execute("RELEASE req")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for req in batch:
                if req.error is None:
                    req.error = exc
        finally:
            if relaxed:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            for req in batch:
                req.done = True

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in one read transaction on this thread's own connection (WAL readers never block
        the writer)."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return fn(SQLiteTx(conn))
        finally:
            conn.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        if self._copy is not None:
            return self._copy
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def on_work(self, callback: Callable[[], None]) -> bool:
        """SQLite cannot tell other processes of its writes: their workers poll the file."""
        return False

    def check(self) -> None:
        """Raise :class:`DatabaseFileGone` if the file was deleted or replaced since it was opened.

        SQLite goes on writing to a deleted file's open inode, so without this check a worker
        would carry on silently with writes that nobody can ever read.
        """
        if self._file_id is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise DatabaseFileGone(f"the database file {self.path} was deleted while this process used it; "
                                   "restart it on the right file") from None
        if (st.st_dev, st.st_ino) != self._file_id:
            raise DatabaseFileGone(f"the database file {self.path} was replaced while this process used it; "
                                   "restart it to use the new file")

    def close(self) -> None:
        with self._write_lock:
            self._conn.close()
