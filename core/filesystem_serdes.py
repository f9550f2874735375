"""Large payloads offloaded to files: the checkpoint keeps a reference, the file keeps the value.

``StepConfig(serdes=FileSystemSerDes("/mnt/shared"))`` writes each step result to a file under
``/mnt/shared`` and checkpoints ``{"file": "<path>"}`` (with ``"preview"`` when a preview generator
is configured). In OVERFLOW mode a value stays inline as ``{"data": "<serialised>"}`` unless that
envelope is over 255 KiB. On replay the reference is read back from the file, so the directory
must be one every worker sees (on Lambda: EFS or S3 Files, never ``/tmp``). Names, defaults and
the stored envelope follow AWS's SDK (``aws_durable_execution_sdk_python.filesystem_serdes``), so
references written by either read back on the other when both see the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from durably.core.errors import SerDesError
from durably.core.serdes import ExtendedTypeSerDes, SerDes, SerDesContext

__all__ = [
    "OVERFLOW_THRESHOLD_BYTES",
    "FileSystemPathEncoding",
    "FileSystemSerDes",
    "FileSystemSerDesConfig",
    "FileSystemSerDesMode",
    "GeneratePreview",
]

OVERFLOW_THRESHOLD_BYTES = 256 * 1024 - 1024
"""OVERFLOW mode writes a file when the inline envelope is larger than this (AWS's figure)."""

_EXECUTION_ARN = re.compile(
    r"^arn:[^:]*:lambda:[^:]*:[^:]*:function:([^:/]+):[^:/]+/durable-execution/([^/]+)/([^/]+)$")


class FileSystemSerDesMode(StrEnum):
    """ALWAYS: every value goes to a file; OVERFLOW: inline unless over the threshold."""

    ALWAYS = "ALWAYS"
    OVERFLOW = "OVERFLOW"


class FileSystemPathEncoding(StrEnum):
    """URI: ``<function>/<execution name>/<execution id>/<percent-encoded operation id>.json``
    (an ARN of another shape becomes one percent-encoded folder); HASH: the ARN and the
    operation id each replaced by their SHA-256 hex digest."""

    URI = "URI"
    HASH = "HASH"


class GeneratePreview(Protocol):
    def __call__(self, value: Any) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class FileSystemSerDesConfig:
    """``serdes`` writes the value into the file (and inline in OVERFLOW mode); AWS's default, the
    tagged :class:`ExtendedTypeSerDes`. ``generate_preview`` (e.g. ``lambda v: build_preview(v, cfg)``)
    adds a small inline copy next to the reference, readable without the file."""

    storage_mode: FileSystemSerDesMode = FileSystemSerDesMode.ALWAYS
    path_encoding: FileSystemPathEncoding = FileSystemPathEncoding.URI
    generate_preview: GeneratePreview | None = None
    serdes: SerDes[Any] = ExtendedTypeSerDes()


def _segment(value: str, encoding: FileSystemPathEncoding) -> str:
    if encoding is FileSystemPathEncoding.HASH:
        return hashlib.sha256(value.encode()).hexdigest()
    return quote(value, safe="")


class FileSystemSerDes(SerDes[Any]):
    """Stores values in files under ``base_path`` and checkpoints a reference to them."""

    def __init__(self, base_path: str | os.PathLike[str], config: FileSystemSerDesConfig | None = None) -> None:
        self.base_path = os.fspath(base_path)
        self.config = config or FileSystemSerDesConfig()

    def path_for(self, serdes_context: SerDesContext) -> str:
        """The file that holds the value of this operation of this execution."""
        encoding = self.config.path_encoding
        arn = serdes_context.durable_execution_arn
        parts = _EXECUTION_ARN.match(arn) if encoding is FileSystemPathEncoding.URI else None
        folder = os.path.join(self.base_path, *parts.groups()) if parts else \
            os.path.join(self.base_path, _segment(arn, encoding))
        return os.path.join(folder, f"{_segment(serdes_context.operation_id, encoding)}.json")

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        if self.config.storage_mode is FileSystemSerDesMode.OVERFLOW:
            inline = json.dumps({"data": self.config.serdes.serialize(value, serdes_context)})
            if len(inline.encode("utf-8")) <= OVERFLOW_THRESHOLD_BYTES:
                return inline
        envelope: dict[str, Any] = {"file": self._write(value, serdes_context)}
        preview = self.config.generate_preview(value) if self.config.generate_preview else None
        if preview:
            envelope["preview"] = preview
        return json.dumps(envelope)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        try:
            envelope = json.loads(data)
        except ValueError as exc:
            raise SerDesError(f"operation {serdes_context.operation_id}: the stored value is not a "
                              f"file-system serdes envelope: {exc}") from exc
        if isinstance(envelope, dict) and isinstance(envelope.get("file"), str):
            path = envelope["file"]
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason})"
                raise SerDesError(f"operation {serdes_context.operation_id}: cannot read its stored value "
                                  f"from {path}: {reason or exc}") from exc
            return self.config.serdes.deserialize(text, serdes_context)
        if isinstance(envelope, dict) and isinstance(envelope.get("data"), str):
            return self.config.serdes.deserialize(envelope["data"], serdes_context)
        raise SerDesError(f"operation {serdes_context.operation_id}: the stored value has neither "
                          f"\"file\" nor \"data\": {data[:200]}")

    def _write(self, value: Any, serdes_context: SerDesContext) -> str:
        """Write the serialised value to its file (atomically: a reader never sees half a file)."""
        path = self.path_for(serdes_context)
        text = self.config.serdes.serialize(value, serdes_context)
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            raise SerDesError(f"operation {serdes_context.operation_id}: cannot write its value "
                              f"to {path}: {exc.strerror or exc}") from exc
        return path
