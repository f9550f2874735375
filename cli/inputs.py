"""Parsing and checking what the user passes (``--input``, ``--payload``, names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from durably.cli.errors import BadInput
from durably.core.engine.functions import FUNCTION_NAME
from durably.core.model import ErrorObject

FILE_PREFIX = "file://"
ERROR_FIELDS = ("ErrorType", "ErrorMessage", "ErrorData", "StackTrace")


def read_text(value: str, option: str) -> str:
    """The option's text, or the contents of ``file://PATH`` (as the AWS CLI reads it)."""
    if not value.startswith(FILE_PREFIX):
        return value
    path = Path(value[len(FILE_PREFIX):]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{option}: cannot read {path}: {exc}") from exc


def json_text(value: str, option: str) -> str:
    """``value`` (or the file it names), checked to be one JSON document."""
    text = read_text(value, option)
    try:
        json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{option} is not valid JSON: {exc}") from exc
    return text


def error_object(value: str, option: str = "--payload") -> ErrorObject:
    """A callback failure: ``{"ErrorType": ..., "ErrorMessage": ..., "ErrorData": ...}``."""
    doc: Any = json.loads(json_text(value, option))
    if not isinstance(doc, dict):
        raise BadInput(f"{option} must be a JSON object with ErrorType, ErrorMessage and ErrorData")
    unknown = sorted(set(doc) - set(ERROR_FIELDS))
    if unknown:
        raise BadInput(f"{option} has unknown fields {unknown}; expected {list(ERROR_FIELDS)}")
    data = doc.get("ErrorData")
    if data is not None and not isinstance(data, str):
        doc["ErrorData"] = json.dumps(data, separators=(",", ":"))
    for key in ("ErrorType", "ErrorMessage"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise BadInput(f"{option}: {key} must be a string")
    trace = doc.get("StackTrace")
    if trace is not None and not (isinstance(trace, list) and all(isinstance(x, str) for x in trace)):
        raise BadInput(f"{option}: StackTrace must be a list of strings")
    return ErrorObject.model_validate(doc)


def lambda_name(value: str | None, option: str) -> str | None:
    """A name that must match ``[A-Za-z0-9_-]{1,64}`` (execution and function names)."""
    if value is not None and not FUNCTION_NAME.match(value):
        raise BadInput(f"{option} {value!r} must match [A-Za-z0-9_-]{{1,64}}")
    return value
