"""Workflow logs of ``run`` and ``worker``: JSON lines on stderr, stdout stays the command's output."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from durably.core.logger import JsonFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@contextmanager
def engine_logs_at_least(level: int) -> Iterator[None]:
    """Keep the engine's own records (``durably.engine``) at ``level`` or above while it runs."""
    logger = logging.getLogger("durably.engine")
    saved = logger.level
    logger.setLevel(max(level, logging.getLogger("durably").getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(saved)


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
