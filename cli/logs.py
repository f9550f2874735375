"""Workflow logs of ``run`` and ``worker``: JSON lines on stderr, stdout stays the command's output."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from durably.core.logger import JsonFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@contextmanager
def json_logs(level: str = "INFO") -> Iterator[None]:
    """Send the ``durably`` loggers (``durably.workflow``, ``durably.engine``) to stderr as JSON."""
    logger = logging.getLogger("durably")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        handler.flush()
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
