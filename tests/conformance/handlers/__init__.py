"""Conformance handlers, one per requirement id, in one module per suite.

``REGISTRY`` maps a requirement id to its :class:`~.registry.Case`. A suite module whose
durably API cannot be imported yet is recorded in ``IMPORT_ERRORS`` instead.
"""

from __future__ import annotations

import importlib

from .registry import REGISTRY, STATE_ENV, WORKER_ENV, Case

SUITE_MODULES = ("step", "wait", "child", "callback", "invoke", "wait_for_condition", "wait_for_callback",
                 "parallel", "map", "plugin")
IMPORT_ERRORS: dict[str, str] = {}

for _module in SUITE_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ImportError as exc:
        IMPORT_ERRORS[_module] = f"{type(exc).__name__}: {exc}"

__all__ = ["IMPORT_ERRORS", "REGISTRY", "STATE_ENV", "SUITE_MODULES", "WORKER_ENV", "Case"]
