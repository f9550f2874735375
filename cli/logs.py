"""What ``run`` and ``worker`` print on stderr: engine events, workflow logs and the CLI's own lines.

One readable line per record (``--log-format text``, the default) or one JSON object per line
(``--log-format json``). stdout stays the command's output.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from durably.core.logger import JsonFormatter

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
CLI_LOGGER = logging.getLogger("durably.cli")
"""The command's own lines (banner, progress); ``--quiet`` keeps only its warnings and errors."""

F = TypeVar("F", bound=Callable[..., Any])
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_UNNAMED = frozenset({"durably.workflow", "durably.cli"})
_TEXT_HIDDEN = frozenset({"operationId", "parentId", "eventType"})
_ARN = re.compile(r"arn:aws:lambda:[^:]*:\d+:function:([^:/]+)(?::[^/]*)?/durable-execution/([^/]+)/[^/\s]+")


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def short_arn(arn: str) -> str:
    """``<function>/<execution name>``: unique, since a name is unique within its function."""
    match = _ARN.fullmatch(arn)
    return f"{match[1]}/{match[2]}" if match else arn


def _mentions(message: str, value: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", message) is not None


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> [<logger>: ]<message>  [<function>/<execution>] key=value ...`` on one line.

    The record's ``executionArn`` is shortened, in the message too; an extra the message already
    states is left out, and so is ``attempt=1``. With ``tracebacks`` an exception's traceback
    follows on the next lines, else only its type and text.
    """

    def __init__(self, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        source = "" if record.name in _UNNAMED else record.name.removeprefix("durably.") + ": "
        message = record.getMessage()
        fields = extras(record)
        arn = fields.pop("executionArn", None)
        if isinstance(arn, str) and arn in message:
            message = message.replace(arn, short_arn(arn))
        parts = [f"{stamp} {record.levelname:<7} {source}{message}"]
        if isinstance(arn, str) and not _mentions(message, short_arn(arn)):
            parts.append(f"[{short_arn(arn)}]")
        for key, value in fields.items():
            if key in _TEXT_HIDDEN or value is None or (key == "attempt" and value == 1) \
                    or _mentions(message, value if isinstance(value, str) else f"{key} {value}"):
                continue
            shown = value if isinstance(value, str | int | float) else json.dumps(value, default=str)
            parts.append(f"{key}={shown}")
        if record.exc_info and record.exc_info[1] is not None and not self.tracebacks:
            parts.append(f"({type(record.exc_info[1]).__name__}: {record.exc_info[1]})")
        line = "  ".join(parts).replace("\r", "\\r").replace("\n", "\\n")
        if record.exc_info and self.tracebacks:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonLinesFormatter(JsonFormatter):
    """The workflow logger's JSON records, plus the logger's name and every other ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = json.loads(super().format(record))
        out["logger"] = record.name
        for key, value in extras(record).items():
            out.setdefault(key, value)
        return json.dumps(out, default=str, ensure_ascii=False)


def log_options(f: F) -> F:
    """``--log-level``, ``--log-format`` and ``--quiet``, as ``run`` and ``worker`` take them."""
    f = click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on stderr.")(f)
    f = click.option("--log-format", type=click.Choice(FORMATS), default="text", show_default=True,
                     help="stderr as readable lines, or JSON lines.")(f)
    f = click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="INFO",
                     show_default=True, help="Engine and workflow logs from this level.")(f)
    return f


@contextmanager
def stderr_logs(level: str = "INFO", log_format: str = "text", quiet: bool = False) -> Iterator[None]:
    """Send the ``durably`` loggers to stderr in ``log_format`` while the block runs."""
    root, cli = logging.getLogger("durably"), CLI_LOGGER
    handler = logging.StreamHandler(sys.stderr)
    level = "WARNING" if quiet else level.upper()
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else TextFormatter(level == "DEBUG"))
    saved = root.level, root.propagate, cli.level
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    cli.setLevel("WARNING" if quiet else "INFO")
    try:
        yield
    finally:
        handler.flush()
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]
        cli.setLevel(saved[2])


@contextmanager
def engine_logs_at_least(level: str) -> Iterator[None]:
    """For ``run``: the engine's own records (``durably.engine``) from WARNING, unless ``level`` is DEBUG.

    The progress of the run already tells what the engine's INFO records would.
    """
    logger = logging.getLogger("durably.engine")
    saved = logger.level
    if level.upper() != "DEBUG":
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved)
