"""The PostgreSQL store: one database that workers on many machines share (see ``stores.base``).

Each transaction runs on a connection of a psycopg pool. Writers lock the execution they change
(``FOR UPDATE``), so two workers never interleave on one execution; claims pass over executions
another worker holds (``FOR UPDATE SKIP LOCKED``). PostgreSQL shares the disk flush of commits
that arrive together, so concurrent executions group their commits without the store's help.
A transaction that PostgreSQL asks to run again (a deadlock, a serialisation failure, a name
two machines took at once) is run again, a few times, after a short random pause.

The tables live in the schema ``durably`` of the database the URL names, which is created when
missing (with the schema) unless the store is read-only.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from durably.core.engine.errors import DatabaseUnavailable, NotADurablyDatabase
from durably.core.engine.stores.base import StoreTx
from durably.core.engine.stores.postgres_tx import MIGRATIONS, SCHEMA, SCHEMA_VERSION, WORK_CHANNEL, PostgresTx
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.pq import TransactionStatus

T = TypeVar("T")

SCHEMA_NAME = "durably"
SCHEMA_LOCK = 0x64757261
"""The advisory lock held while the schema is created or migrated ("dura")."""
RETRIED = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.UniqueViolation)
"""What PostgreSQL answers to a transaction that may succeed if run again."""
RETRIES = 8
CONNECT_TIMEOUT = 10
POOL_SIZE = int(os.environ.get("DURABLY_PG_POOL_SIZE", "16"))
"""Connections a store keeps at most (``DURABLY_PG_POOL_SIZE``): a worker's threads share them."""
LISTEN_CHECK_SECONDS = 1.0
"""How often the listening thread checks that the store is still open (and waits before reconnecting)."""
FAILURES: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError,
                                             psycopg_pool.PoolTimeout)
"""Exceptions that mean the database failed (the server is down or unreachable), not the request."""
BEGIN = {True: ("BEGIN",), False: ("BEGIN", "SET LOCAL synchronous_commit TO off")}
"""By ``durable``: a commit that an OS crash of the server may lose need not wait for its disk."""
BEGIN_READ = ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",)


def redacted(url: str) -> str:
    """``url`` without its password, to show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def code_folder_for(url: str) -> Path:
    """Where this machine keeps the code of published versions for the database ``url``:
    ``DURABLY_CODE_DIR``, or a folder under ``~/.durably/code`` named after the server and database."""
    chosen = os.environ.get("DURABLY_CODE_DIR")
    if chosen:
        return Path(chosen)
    parts = urlsplit(url)
    name = f"{parts.hostname or 'local'}-{parts.port or 5432}-{parts.path.lstrip('/') or 'postgres'}"
    return Path.home() / ".durably" / "code" / re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _missing_database(exc: psycopg.OperationalError) -> bool:
    return "does not exist" in str(exc) and "database" in str(exc)


class PostgresStore:
    """A PostgreSQL database, by URL (``postgresql://user:password@host:port/database``).

    ``readonly=True`` refuses writes and creates nothing (the database and its tables must exist).
    """

    failures = FAILURES

    def __init__(self, url: str, readonly: bool = False, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.readonly = readonly
        self.shown = redacted(url)
        self.code_folder: Path | None = code_folder_for(url)
        self._closed = False
        self._connect_check()
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), open=False, configure=self._configure,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}, name="durably")
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            self._prepare_schema()
        except BaseException:
            self._pool.close()
            raise
        self._lock = threading.Lock()
        self._on_work: list[Callable[[], None]] = []
        self._listener: threading.Thread | None = None

    # ------------------------------------------------------------------ opening
    def _connect_check(self) -> None:
        """Connect once, to fail with a clear message (and create the database if it is missing)."""
        try:
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.OperationalError as exc:
            if not _missing_database(exc) or self.readonly:
                raise DatabaseUnavailable(f"cannot connect to {self.shown}: {_first_line(exc)}") from exc
            self._create_database()

    def _create_database(self) -> None:
        parts = urlsplit(self.url)
        server = urlunsplit(parts._replace(path="/postgres"))
        name = _database_of(self.url)
        try:
            with psycopg.connect(server, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except pg_errors.DuplicateDatabase:
            pass  # another worker created it meanwhile
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"the database {name!r} does not exist at {redacted(server)}, and it could "
                                      f"not be created: {_first_line(exc)}") from exc

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET search_path TO {SCHEMA_NAME}")

    def _prepare_schema(self) -> None:
        """Check the tables, creating or migrating them if this store may write (under an advisory lock,
        so workers starting together do it once)."""
        with self._pool.connection() as conn:
            conn.execute("BEGIN")
            try:
                if not self.readonly:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                tables = {r[0] for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (SCHEMA_NAME,))}
                if not tables:
                    if self.readonly:
                        raise NotADurablyDatabase(f"{self.shown} has no durably tables (schema {SCHEMA_NAME!r})")
                    self._create_schema(conn)
                elif "meta" not in tables:
                    raise NotADurablyDatabase(
                        f"{self.shown} has a schema {SCHEMA_NAME!r} that durably did not create (tables: "
                        f"{', '.join(sorted(tables)[:5])}); use another database")
                else:
                    self._check_version(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _create_schema(conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA_NAME}")
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('schema_version', %s)", (str(SCHEMA_VERSION),))

    def _check_version(self, conn: psycopg.Connection[Any]) -> None:
        found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(found[0]) if found else 0
        if version > SCHEMA_VERSION or found is None:
            raise NotADurablyDatabase(f"{self.shown} has durably schema {found[0] if found else '?'}, newer than "
                                      f"this durably ({SCHEMA_VERSION}); upgrade durably")
        if version < SCHEMA_VERSION:
            if self.readonly:
                raise NotADurablyDatabase(f"{self.shown} has durably schema {version}, older than this durably "
                                          f"({SCHEMA_VERSION}); open it for writing once to migrate it")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute(MIGRATIONS[step])
            conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------------ transactions
    def transact(self, fn: Callable[[StoreTx], T], durable: bool = True) -> T:
        """Run ``fn`` in a committed transaction, again (after a short random pause) if PostgreSQL
        reports a deadlock, a serialisation failure or a unique name taken meanwhile."""
        if self.readonly:
            raise PermissionError(f"cannot write {self.shown}: it was opened read-only")
        for attempt in range(RETRIES):
            try:
                return self._run(BEGIN[durable], fn, commit=True)
            except RETRIED:
                if attempt == RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, 0.002 * 2 ** attempt))
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` over one snapshot of the database (a read-only repeatable-read transaction)."""
        return self._run(BEGIN_READ, fn, commit=False)

    def _run(self, begin: tuple[str, ...], fn: Callable[[StoreTx], T], commit: bool) -> T:
        """Run ``fn`` in pipeline mode: statements whose results nobody reads (BEGIN, an INSERT, COMMIT)
        travel with the next one that is read, so a checkpoint costs fewer round trips. A connection
        the server closed while it was idle fails before anything is committed: ``fn`` runs again on
        another."""
        for fresh in (False, True):
            with self._pool.connection() as conn:
                committing = False
                try:
                    with conn.pipeline():
                        for statement in begin:
                            conn.execute(statement)
                        result = fn(PostgresTx(conn))
                        committing = True
                        conn.execute("COMMIT" if commit else "ROLLBACK")
                except psycopg.OperationalError:
                    if fresh or committing or not conn.broken:
                        raise
                    continue
                except BaseException:
                    if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                    raise
                return result
        raise AssertionError("unreachable")

    def check(self) -> None:
        """Nothing to check: a PostgreSQL database does not vanish under its users unnoticed."""

    def on_work(self, callback: Callable[[], None]) -> bool:
        """``LISTEN`` on a connection of its own (in a thread, reconnecting after a failure, when every
        callback is called once to cover the gap) for the notifications of the transactions that make
        work ready, whichever machine ran them."""
        with self._lock:
            self._on_work.append(callback)
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="durably-listen", daemon=True)
                self._listener.start()
        return True

    def _listen(self) -> None:
        while not self._closed:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
                    conn.execute(f"LISTEN {WORK_CHANNEL}")
                    self._work_ready()  # what was made ready while nobody listened
                    while not self._closed:
                        for _ in conn.notifies(timeout=LISTEN_CHECK_SECONDS):
                            self._work_ready()
            except psycopg.Error:
                if not self._closed:
                    time.sleep(LISTEN_CHECK_SECONDS)  # the workers' poll covers the gap meanwhile

    def _work_ready(self) -> None:
        with self._lock:
            callbacks = list(self._on_work)
        for callback in callbacks:
            callback()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
