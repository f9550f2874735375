"""The import rule of ../shared/DESIGN.md, checked on the source: each layer imports only what is below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACE = {"durably", "durably.cli", "durably.server", "durably.testing", "durably.__main__"}
ALLOWED = {
    "core": ("durably.core",),
    "sagas": ("durably.core", "durably.sagas"),
    "agents": ("durably.core", "durably.sagas", "durably.agents"),
    "integrations": ("durably.core", "durably.sagas", "durably.agents", "durably.integrations"),
}
"""What each layer may import from durably (its own package included)."""


def _durably_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "durably"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (always import durably.<layer>...)"
            if node.module and node.module.split(".")[0] == "durably":
                found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_what_is_below_it(layer: str) -> None:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, module in _durably_imports(path):
            if not any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED[layer]):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


def test_layers_use_only_the_public_faces_below_them() -> None:
    """Layers stand on the public API of the layers below them (``durably.core``, ``durably.sagas``,
    ``durably.agents``), not on their internals."""
    internals = {"sagas": ("durably.core.",), "agents": ("durably.core.", "durably.sagas."),
                 "integrations": ("durably.core.", "durably.sagas.", "durably.agents.")}
    bad = []
    for layer, below in internals.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            bad += [f"{path.relative_to(ROOT)}:{line} imports {module}" for line, module in _durably_imports(path)
                    if module.startswith(below)]
    assert bad == []


def test_the_face_is_not_imported_by_any_layer() -> None:
    for layer in ("core", "sagas", "agents", "integrations"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            assert not [m for _, m in _durably_imports(path) if m in FACE], path


def test_the_base_import_loads_no_optional_dependency() -> None:
    """``import durably`` works with the base install: langchain-core, boto3 and OTel load only where used."""
    import subprocess
    import sys

    code = ("import sys, durably, durably.sagas; "
            "print(sorted(m for m in ('langchain_core', 'boto3', 'opentelemetry') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
