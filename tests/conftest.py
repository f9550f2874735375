"""Shared fixtures. Tests import durably from the installed package, never from the root."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pg_store
import pytest
from durably.core.engine import stores
from durably.core.engine.clock import SkippingClock
from durably.core.engine.documents import doc_id, lines
from durably.core.engine.engine import Engine
from durably.core.engine.stores.base import Store
from durably.core.execution import DurableFunction
from durably.testing import DurableTestRunner


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long campaigns marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if pg_store.POSTGRES:
        sqlite_only = pytest.mark.skip(reason="about the SQLite file itself")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(sqlite_only)
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow campaign: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def postgres_for_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In PostgreSQL mode (``pg_store``), every SQLite file the test opens is a PostgreSQL database."""
    if not pg_store.POSTGRES:
        yield
        return
    opened: set[str] = set()
    original = stores.open_store

    def open_store(db: str | Path, synchronous: str = "FULL", readonly: bool = False) -> Store:
        target = pg_store.database(db)
        if target != str(db):
            opened.add(pg_store.database_name(db))
        return original(target, synchronous, readonly)

    for module in ("durably.core.engine.stores", "durably.core.engine.engine", "durably.cli.settings"):
        monkeypatch.setattr(f"{module}.open_store", open_store)
    from durably.cli import settings

    file_exists = settings.database_exists

    def database_exists() -> bool:  # the CLI's check that --db names a database: a file's, here PostgreSQL's
        return file_exists() or pg_store.exists(settings.settings().db_path)

    for module in ("durably.cli.settings", "durably.cli.inspect_cmds"):
        monkeypatch.setattr(f"{module}.database_exists", database_exists)
    yield
    if opened:
        pg_store.drop(opened)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "durably.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    """An engine on a fresh database whose clock skips over waits and retry delays."""
    eng = Engine(db_path, synchronous="OFF", clock=SkippingClock())
    yield eng
    eng.close()
    eng.store.close()


def _execution_status(db: Path, arn: str) -> str:
    engine = Engine(db)
    try:
        return str(engine.get_execution(arn)["Status"])
    finally:
        engine.close()
        engine.store.close()


@pytest.fixture
def status_of() -> Callable[[Path, str], str]:
    """``status_of(db, arn)``: an execution's status, read by an engine of its own (as another process sees it)."""
    return _execution_status


@pytest.fixture
def make_runner(tmp_path: Path) -> Iterator[Callable[[DurableFunction], DurableTestRunner]]:
    """``make_runner(handler)``: a time-skipping DurableTestRunner, closed after the test."""
    runners: list[DurableTestRunner] = []

    def make(handler: DurableFunction) -> DurableTestRunner:
        runner = DurableTestRunner(handler, db=tmp_path / f"runner-{len(runners)}.db")
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


class LocalPorts:
    """Free loopback ports, and waiting until a server process listens on one."""

    @staticmethod
    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    @staticmethod
    def wait_listening(process: subprocess.Popen[str], port: int, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, f"{what} did not start"
                time.sleep(0.1)


@pytest.fixture(scope="session")
def local_ports() -> LocalPorts:
    return LocalPorts()


ServeProcess = Callable[..., tuple[subprocess.Popen[str], str]]


@pytest.fixture
def durably_serve(tmp_path: Path, local_ports: LocalPorts) -> Iterator[ServeProcess]:
    """``durably_serve(*args, env=..., cwd=...)``: ``durably serve ARGS --port P`` as a real process,
    answered once it listens, with its URL (on 127.0.0.1); stopped with Ctrl-C after the test,
    which must not have printed a traceback."""
    started: list[subprocess.Popen[str]] = []

    def serve(*args: str, env: Mapping[str, str], cwd: Path = tmp_path) -> tuple[subprocess.Popen[str], str]:
        port = local_ports.free()
        process = subprocess.Popen([sys.executable, "-m", "durably", "serve", *args, "--port", str(port)],
                                   cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        started.append(process)
        local_ports.wait_listening(process, port, "durably serve")
        return process, f"http://127.0.0.1:{port}"

    yield serve
    for process in started:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert "Traceback" not in stderr, stderr


SCHEMA_6 = """

CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions(
    name TEXT PRIMARY KEY, durable INTEGER NOT NULL, ref TEXT,
    execution_timeout INTEGER NOT NULL, retention_days INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS executions(
    arn TEXT PRIMARY KEY, exec_id TEXT NOT NULL, name TEXT NOT NULL, function_name TEXT NOT NULL,
    ref TEXT, durable INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL,
    input TEXT, result TEXT, error TEXT, start_ts INTEGER NOT NULL, end_ts INTEGER,
    execution_timeout INTEGER NOT NULL, retention_days INTEGER NOT NULL,
    token TEXT, invocation_id TEXT, invocation_start INTEGER,
    lease_owner TEXT, lease_expiry INTEGER, lease_host TEXT, lease_pid INTEGER, lease_pstart INTEGER,
    ready INTEGER NOT NULL DEFAULT 0, updated_ids TEXT NOT NULL DEFAULT '[]',
    event_seq INTEGER NOT NULL DEFAULT 0, op_seq INTEGER NOT NULL DEFAULT 0,
    failed_invocations INTEGER NOT NULL DEFAULT 0,
    parent_arn TEXT, parent_op TEXT, tenant_id TEXT, trace_header TEXT, redrive_of TEXT, code_sha256 TEXT);
CREATE INDEX IF NOT EXISTS executions_ready ON executions(ready) WHERE ready = 1;
CREATE INDEX IF NOT EXISTS executions_leased ON executions(lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS executions_fn ON executions(function_name, start_ts);
CREATE INDEX IF NOT EXISTS executions_start ON executions(start_ts);
CREATE INDEX IF NOT EXISTS executions_name ON executions(name);
CREATE INDEX IF NOT EXISTS executions_end ON executions(end_ts) WHERE end_ts IS NOT NULL;
CREATE INDEX IF NOT EXISTS executions_redrive ON executions(redrive_of) WHERE redrive_of IS NOT NULL;
CREATE TABLE IF NOT EXISTS operations(
    arn TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, callback_id TEXT, doc TEXT NOT NULL,
    PRIMARY KEY(arn, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS operations_seq ON operations(arn, seq);
CREATE UNIQUE INDEX IF NOT EXISTS operations_callback ON operations(callback_id) WHERE callback_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS events(
    arn TEXT NOT NULL, event_id INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY(arn, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers(
    arn TEXT NOT NULL, op_id TEXT NOT NULL, kind TEXT NOT NULL, due INTEGER NOT NULL, period INTEGER,
    PRIMARY KEY(arn, op_id, kind)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_due ON timers(due);
CREATE TABLE IF NOT EXISTS invocation_errors(
    arn TEXT PRIMARY KEY, ts INTEGER NOT NULL, owner TEXT NOT NULL, error TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs(
    id INTEGER PRIMARY KEY, arn TEXT NOT NULL, ts INTEGER NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL,
    fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_arn ON logs(arn, id);
CREATE TABLE IF NOT EXISTS versions(
    function TEXT NOT NULL, version INTEGER NOT NULL, ref TEXT NOT NULL, code_sha256 TEXT,
    created_ts INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '', PRIMARY KEY(function, version));
CREATE TABLE IF NOT EXISTS aliases(
    function TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY(function, alias));
"""
"""Schema 6 (durably before the journal): operations, events and executions updated per checkpoint."""
_COLUMNS_6 = ("arn, exec_id, name, function_name, ref, durable, status, input, result, error, start_ts, end_ts,"
              " execution_timeout, retention_days, token, invocation_id, invocation_start, lease_owner, lease_expiry,"
              " lease_host, lease_pid, lease_pstart, ready, updated_ids, failed_invocations, parent_arn, parent_op,"
              " tenant_id, trace_header, redrive_of, code_sha256")


def _as_schema_6(db: Path) -> None:
    """Rewrite a database of the current schema as schema 6 wrote it."""
    with sqlite3.connect(db) as conn:
        old = {name: conn.execute(f"SELECT * FROM {name}").fetchall() for name in ("functions", "versions", "aliases")}
        executions = conn.execute(f"SELECT key, {_COLUMNS_6} FROM executions").fetchall()
        journal = conn.execute("SELECT id, ops, events, last_event FROM journal ORDER BY id").fetchall()
        timers = conn.execute("SELECT e.arn, t.op_id, t.kind, t.due, t.period FROM timers t"
                              " JOIN executions e ON e.key = t.key").fetchall()
        logs = conn.execute("SELECT l.id, e.arn, l.ts, l.level, l.message, l.fields FROM logs l"
                            " JOIN executions e ON e.key = l.key").fetchall()
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            conn.execute(f"DROP TABLE {table}")
        conn.executescript(SCHEMA_6)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '6')")
        for table, rows in old.items():
            for row in rows:
                conn.execute(f"INSERT INTO {table} VALUES ({','.join('?' * len(row))})", row)
        for key, *columns in executions:
            arn = columns[0]
            docs: dict[str, str] = {}
            events: list[tuple[int, str]] = []
            for row_id, ops, evs, last in journal:
                if row_id >> 32 == key:
                    docs.update((doc_id(doc), doc) for doc in lines(ops))
                    events += list(enumerate(lines(evs), last - len(lines(evs)) + 1))
            conn.execute(f"INSERT INTO executions({_COLUMNS_6}, op_seq, event_seq) VALUES "
                         f"({','.join('?' * (len(columns) + 2))})", (*columns, len(docs) - 1, len(events)))
            for seq, doc in enumerate(docs.values()):
                callback = json.loads(doc).get("CallbackDetails", {}).get("CallbackId")
                conn.execute("INSERT INTO operations VALUES (?, ?, ?, ?, ?)", (arn, doc_id(doc), seq, callback, doc))
            conn.executemany("INSERT INTO events VALUES (?, ?, ?)", [(arn, i, doc) for i, doc in events])
        conn.executemany("INSERT INTO timers VALUES (?, ?, ?, ?, ?)", timers)
        conn.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?)", logs)
    conn.close()


def _as_schema_4(db: Path) -> None:
    """Undo schemas 5 (redrive) and 6 (code versions) too, as durably wrote it with schema 4."""
    _as_schema_6(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX executions_redrive")
        conn.execute("ALTER TABLE executions DROP COLUMN redrive_of")
        conn.execute("ALTER TABLE executions DROP COLUMN code_sha256")
        conn.execute("DROP TABLE versions")
        conn.execute("DROP TABLE aliases")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()


@pytest.fixture
def as_schema_6() -> Callable[[Path], None]:
    """``as_schema_6(db)``: turn a database of the current schema into one of schema 6, to test migrations."""
    return _as_schema_6


@pytest.fixture
def as_schema_4() -> Callable[[Path], None]:
    """``as_schema_4(db)``: turn a database of the current schema into one of schema 4, to test migrations."""
    return _as_schema_4
