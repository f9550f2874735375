"""Shared fixtures. Tests import durably from the installed package, never from the root."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
