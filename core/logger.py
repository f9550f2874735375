"""The replay-aware logger: a line logged during replay is not emitted again.

Records go to the stdlib logger ``durably.workflow`` (replace it with ``set_logger``) with the
fields ``executionArn``, ``operationId``, ``operationName``, ``attempt`` and ``parentId`` as
``extra``, plus what functions registered with :func:`register_log_fields` add (tracing adds
``trace_id`` and ``span_id``). :class:`JsonFormatter` renders them as one JSON object per line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

WORKFLOW_LOGGER = logging.getLogger("durably.workflow")
def _never() -> bool:
    return False


RecordSink = Callable[[int, str, dict[str, Any]], None]
"""``sink(level, message, fields)``: sees every record a durable logger emits, whatever the levels
of the stdlib loggers (the embedded engine keeps them with the execution)."""
_record_sinks: list[RecordSink] = []


def add_record_sink(sink: RecordSink) -> None:
    if sink not in _record_sinks:
        _record_sinks.append(sink)


def remove_record_sink(sink: RecordSink) -> None:
    if sink in _record_sinks:
        _record_sinks.remove(sink)


_FIELDS = ("executionArn", "operationId", "operationName", "attempt", "parentId", "trace_id", "span_id")
_added_fields: list[Callable[[dict[str, Any]], Mapping[str, Any]]] = []


def register_log_fields(add: Callable[[dict[str, Any]], Mapping[str, Any]]) -> None:
    """Have ``add(fields)`` contribute fields to every durable log record (called with the record's
    durable fields; registering the same function again does nothing)."""
    if add not in _added_fields:
        _added_fields.append(add)


class DurableLogger:
    """Logger bound to a context or an operation.

    While ``mode_aware`` (the default) it drops records while its context replays; with
    ``mode_aware=False`` code that runs again on replay logs again.
    """

    def __init__(self, is_replaying: Callable[[], bool], fields: dict[str, Any],
                 base: logging.Logger | logging.LoggerAdapter[Any] | None = None, mode_aware: bool = True) -> None:
        self._is_replaying = is_replaying
        self._fields = fields
        self.base = base or WORKFLOW_LOGGER
        self.mode_aware = mode_aware

    def for_running_code(self, **fields: Any) -> DurableLogger:
        """A logger for code that is running now (a step body): never suppressed."""
        return DurableLogger(_never, {**self._fields, **fields}, self.base, self.mode_aware)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.mode_aware and self._is_replaying():
            return
        extra = {**self._fields, **kwargs.pop("extra", {})}
        for add in _added_fields:
            try:
                extra.update(add(extra))
            except Exception:  # a field that cannot be had never costs the record
                pass
        kwargs.setdefault("stacklevel", 3)
        if _record_sinks:
            _to_sinks(level, msg, args, extra, kwargs.get("exc_info"))
        self.base.log(level, msg, *args, extra=extra, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self.log(logging.ERROR, msg, *args, **kwargs)


def _to_sinks(level: int, msg: object, args: tuple[object, ...], fields: dict[str, Any], exc_info: Any) -> None:
    try:
        message = str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        message = f"{msg} {args}"
    if exc_info:
        error = sys.exc_info() if exc_info is True else exc_info
        if isinstance(error, BaseException):
            error = (type(error), error, error.__traceback__)
        if isinstance(error, tuple) and error[0] is not None:
            message += "\n" + "".join(traceback.format_exception(*error)).rstrip()
    for sink in list(_record_sinks):
        try:
            sink(level, message, fields)
        except Exception:  # keeping a record never costs the code that logs it
            pass


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp``, ``level``, ``message`` and the durable fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        for key in _FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)
