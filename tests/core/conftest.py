"""Fixtures of the core runtime tests: test runners on the test's tmp_path, and a log capture."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from durably import StepContext
from durably.core.execution import DurableFunction
from durably.testing import DurableTestRunner

T = TypeVar("T")
MakeRunner = Callable[[DurableFunction], DurableTestRunner]


def recording(runs: list[str], label: str, value: T) -> Callable[[StepContext], T]:
    """A step function that appends ``label`` to ``runs`` each time it runs and returns ``value``."""

    def body(_: StepContext) -> T:
        runs.append(label)
        return value

    return body


class CapturedLog(logging.Handler):
    """A private logger and the records sent to it."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    def close(self) -> None:
        self.logger.removeHandler(self)
        super().close()


@pytest.fixture
def captured_log(request: pytest.FixtureRequest) -> Iterator[CapturedLog]:
    capture = CapturedLog(f"tests.core.{request.node.name}")
    yield capture
    capture.close()
