"""Shared fixtures. Tests import durably from the installed package, never from the root."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.execution import DurableFunction
from durably.testing import DurableTestRunner


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long campaigns marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow campaign: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "durably.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    """An engine on a fresh database whose clock skips over waits and retry delays."""
    eng = Engine(db_path, synchronous="OFF", clock=SkippingClock())
    yield eng
    eng.close()


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


def _as_schema_4(db: Path) -> None:
    """Undo schemas 5 (redrive) and 6 (code versions) in a database, as durably wrote it with schema 4."""
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX executions_redrive")
        conn.execute("ALTER TABLE executions DROP COLUMN redrive_of")
        conn.execute("ALTER TABLE executions DROP COLUMN code_sha256")
        conn.execute("DROP TABLE versions")
        conn.execute("DROP TABLE aliases")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()


@pytest.fixture
def as_schema_4() -> Callable[[Path], None]:
    """``as_schema_4(db)``: turn a database of the current schema into one of schema 4, to test migrations."""
    return _as_schema_4
