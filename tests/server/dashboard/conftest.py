from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("jinja2")
pytest.importorskip("uvicorn")

from durably.core.engine.engine import Engine
from durably.server import BackgroundServer

from .handlers import Shown, populate


@pytest.fixture
def shown(engine: Engine, tmp_path: Path) -> Shown:
    return populate(engine, tmp_path)


@pytest.fixture
def server(engine: Engine, shown: Shown) -> Iterator[BackgroundServer]:
    with BackgroundServer(engine) as background:
        yield background
