"""Which code runs for a function name: registrations and handler references.

A handler reference is ``package.module:attr`` or ``path/to/file.py:attr``. Registrations made
with :func:`register_durable_function` / :func:`register_function` live in this process and are
recorded in the database (with their reference, when the object is importable), so a worker in
another process can run them too.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from durably.core.engine.errors import HandlerImportError, InvalidParameterValueException
from durably.core.execution import DurableFunction

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_EXECUTION_TIMEOUT = 31_622_400
DEFAULT_RETENTION_DAYS = 14


@dataclass(frozen=True)
class FunctionSpec:
    """A function the engine can run: durable (a handler) or plain (``fn(payload)``)."""

    name: str
    durable: bool
    ref: str | None
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT
    retention_days: int = DEFAULT_RETENTION_DAYS
    obj: Any = None
    version: str = "$LATEST"
    """The published version whose snapshot ``ref`` names, or ``$LATEST`` (the code as it is now)."""


_registry: dict[str, FunctionSpec] = {}


def check_name(name: str) -> str:
    if not FUNCTION_NAME.match(name):
        raise InvalidParameterValueException(
            f"function name {name!r} is not a valid Lambda function name ([A-Za-z0-9_-]{{1,64}})")
    return name


def ref_of(obj: Any) -> str | None:
    """The reference another process imports ``obj`` by (for a handler file's object: the file's
    absolute path); None when it has none."""
    target = getattr(obj, "func", obj)
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        return None
    return f"{_file_modules.get(module, module)}:{qualname}"


def durable_spec(name: str, handler: Any, execution_timeout: int | None = None,
                 retention_period_days: int | None = None) -> FunctionSpec:
    """A validated spec for a durable handler (not registered anywhere yet)."""
    if not isinstance(handler, DurableFunction):
        raise InvalidParameterValueException(
            f"register_durable_function({name!r}): the handler must be decorated with @durable_execution")
    check_name(name.split(":")[0])
    return FunctionSpec(name, True, ref_of(handler), execution_timeout or DEFAULT_EXECUTION_TIMEOUT,
                        retention_period_days or DEFAULT_RETENTION_DAYS, handler)


def plain_spec(name: str, fn: Any) -> FunctionSpec:
    """A validated spec for a plain function ``fn(payload)`` (not registered anywhere yet)."""
    if not callable(fn):
        raise InvalidParameterValueException(f"register_function({name!r}): {fn!r} is not callable")
    check_name(name.split(":")[0])
    return FunctionSpec(name, False, ref_of(fn), obj=fn)


def register_durable_function(name: str, handler: Any, execution_timeout: int | None = None,
                              retention_period_days: int | None = None) -> FunctionSpec:
    """Make ``handler`` invokable as ``name`` by every engine this process creates."""
    spec = _registry[name] = durable_spec(name, handler, execution_timeout, retention_period_days)
    return spec


def register_function(name: str, fn: Any) -> FunctionSpec:
    """Make a plain function ``fn(payload)`` invokable as ``name`` by every engine this process creates."""
    spec = _registry[name] = plain_spec(name, fn)
    return spec


def registered() -> dict[str, FunctionSpec]:
    return dict(_registry)


_file_imports = threading.RLock()
"""Held while a handler file runs its module code: another thread must not see it half-loaded."""
_file_modules: dict[str, str] = {}
"""The module name each handler file loaded by path runs under (private to this process), and its path."""


def _load_file(path: Path) -> ModuleType:
    module_name = f"_durably_handler_{abs(hash(str(path)))}"
    with _file_imports:
        module = sys.modules.get(module_name)
        if module is not None:
            return module
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # before it runs, as import does (it may import itself)
        _file_modules[module_name] = str(path)  # before it runs: its module code may register functions
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name], _file_modules[module_name]
            raise
        return module


def load_reference(ref: str) -> Any:
    """Import the object a handler reference names.

    The working directory is put on ``sys.path``; for a file reference, so is the file's folder,
    so the handler file can import its siblings the way ``python path/file.py`` would.
    """
    module_part, sep, attr = ref.rpartition(":")
    if not sep or not module_part or not attr:
        raise HandlerImportError(f"{ref!r} is not a handler reference (MODULE:FUNCTION or path/file.py:FUNCTION)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_part.endswith(".py") or os.sep in module_part:
            path = Path(module_part).resolve()
            if not path.is_file():
                raise HandlerImportError(f"cannot import {ref!r}: no file {path}")
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            module = _load_file(path)
        else:
            module = importlib.import_module(module_part)
    except HandlerImportError:
        raise
    except Exception as exc:
        raise HandlerImportError(f"cannot import {ref!r}: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise HandlerImportError(f"cannot import {ref!r}: {module_part} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def absolute_reference(ref: str) -> str:
    """A reference that works from any directory (file paths made absolute)."""
    module_part, _, attr = ref.rpartition(":")
    if module_part.endswith(".py") or os.sep in module_part:
        return f"{Path(module_part).resolve()}:{attr}"
    return ref


def name_from_reference(ref: str) -> str:
    """The function name a reference runs under: ``<module basename>-<attr>``."""
    module_part, _, attr = ref.rpartition(":")
    base = Path(module_part).stem if module_part.endswith(".py") else module_part.rsplit(".", 1)[-1]
    return check_name(re.sub(r"[^A-Za-z0-9_-]", "_", f"{base}-{attr}")[:64])


def spec_for_object(name: str, obj: Any, ref: str | None) -> FunctionSpec:
    if isinstance(obj, DurableFunction):
        return FunctionSpec(name, True, ref, obj=obj)
    if callable(obj):
        return FunctionSpec(name, False, ref, obj=obj)
    raise HandlerImportError(f"{ref or name!r} is not callable")
