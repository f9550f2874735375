"""Previews: a small, filtered copy of a value, kept inline next to a reference to the full value.

``build_preview(order, PreviewConfig(PreviewMode.EXCLUDE_ALL, include=[PreviewField("id")]))``
answers ``{"id": ...}``. Names and rules follow AWS's SDK (``aws_durable_execution_sdk_python.preview``):
an excluded field is never shown; a masked field is shown as ``mask_string``; fields of list items
are merged at the list's path; field names with dots are skipped (dots separate path segments);
fields are added in order until the preview's JSON would exceed ``max_preview_bytes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["FieldMatchMode", "PreviewConfig", "PreviewField", "PreviewMode", "build_preview"]


class PreviewMode(StrEnum):
    """Whether fields start visible (then excluded) or hidden (then included)."""

    INCLUDE_ALL = "INCLUDE_ALL"
    EXCLUDE_ALL = "EXCLUDE_ALL"


class FieldMatchMode(StrEnum):
    """ANYWHERE: the name matches a field at any depth; PATH: the exact dotted path from the root."""

    ANYWHERE = "ANYWHERE"
    PATH = "PATH"


@dataclass(frozen=True)
class PreviewField:
    name: str
    match: FieldMatchMode = FieldMatchMode.ANYWHERE

    def matches(self, path: str) -> bool:
        if self.match is FieldMatchMode.PATH:
            return path == self.name
        return self.name in path.split(".")


@dataclass(frozen=True)
class PreviewConfig:
    mode: PreviewMode
    include: list[PreviewField] = field(default_factory=list)
    exclude: list[PreviewField] = field(default_factory=list)
    mask: list[PreviewField] = field(default_factory=list)
    mask_string: str = "***"
    max_preview_bytes: int = 4096


def _any(fields: list[PreviewField], path: str) -> bool:
    return any(f.matches(path) for f in fields)


def _visible_leaves(value: Any, prefix: str, config: PreviewConfig, out: list[tuple[str, Any]]) -> None:
    """Append the (dotted path, shown value) of every visible leaf under ``value``, in order."""
    if isinstance(value, list):
        for item in value:
            _visible_leaves(item, prefix, config, out)
        return
    if not isinstance(value, dict):
        return
    for key, child in value.items():
        if "." in str(key):
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if _any(config.exclude, path):
            continue
        masked = _any(config.mask, path)
        shown = masked or config.mode is PreviewMode.INCLUDE_ALL or _any(config.include, path)
        if masked:
            out.append((path, config.mask_string))
        elif shown and not isinstance(child, dict | list):
            out.append((path, child))
        else:
            _visible_leaves(child, path, config, out)


def build_preview(value: Any, config: PreviewConfig) -> dict[str, Any] | None:
    """The preview of ``value`` (a dict) as a nested dict; None when nothing is visible or fits."""
    if not isinstance(value, dict):
        return None
    leaves: list[tuple[str, Any]] = []
    _visible_leaves(value, "", config, leaves)
    preview: dict[str, Any] = {}
    size = len("{}")
    for path, leaf in leaves:
        entry = len(f'"{path}":{json.dumps(leaf)},'.encode())
        if size + entry > config.max_preview_bytes:
            break
        size += entry
        node = preview
        *parents, last = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = leaf
    return preview or None
