"""``durably serve`` in a background thread of this process: for tests and notebooks."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from durably.core.engine.engine import Engine
from durably.server._app import create_app


class BackgroundServer:
    """The Lambda durable endpoint of ``engine`` on ``host``, in a daemon thread, until :meth:`close`.

    ``port=0`` picks a free port; :attr:`url` is where it listens. Further keyword arguments go to
    :func:`~durably.server.create_app`.
    """

    def __init__(self, engine: Engine, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        self._server = uvicorn.Server(uvicorn.Config(create_app(engine, **app_options), host=host, port=port,
                                                     log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, name="durably-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"durably serve did not start on {host}:{port}")
            time.sleep(0.01)
        self.port: int = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
