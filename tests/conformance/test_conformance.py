"""One test per conformance requirement, run on the embedded engine (see harness.py).

Requirements listed in EXCEPTIONS.md are expected to fail (``xfail(strict=True)``): each entry
there gives the reason. Suites whose durably API is missing are skipped.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from durably import DurableContext, durable_execution

from . import harness
from .handlers import IMPORT_ERRORS

EXCEPTIONS_FILE = Path(__file__).with_name("EXCEPTIONS.md")
EXCEPTION_ROW = re.compile(r"^\|\s*(\d+-\d+)\s*\|\s*(.+?)\s*\|\s*$")


def read_exceptions() -> dict[str, str]:
    """Requirement id -> reason, from the table rows of EXCEPTIONS.md."""
    if not EXCEPTIONS_FILE.exists():
        return {}
    rows = (EXCEPTION_ROW.match(line) for line in EXCEPTIONS_FILE.read_text(encoding="utf-8").splitlines())
    return {m.group(1): m.group(2) for m in rows if m}


def missing_api(suite: str) -> str | None:
    """Why a suite cannot run yet, or None."""
    if suite in IMPORT_ERRORS:
        return f"not implemented yet ({IMPORT_ERRORS[suite]})"
    needs = {"map": "map", "parallel": "parallel", "wait_for_condition": "wait_for_condition"}
    if suite in needs and not hasattr(DurableContext, needs[suite]):
        return "not implemented yet"
    if suite == "plugin" and "plugins" not in inspect.signature(durable_execution).parameters:
        return "not implemented yet"
    return None


def _params() -> list[Any]:
    exceptions = read_exceptions()
    params = []
    for req in harness.load_requirements():
        marks: list[Any] = []
        reason = missing_api(req.suite)
        if reason is not None:
            marks.append(pytest.mark.skip(reason=reason))
        elif req.req_id in exceptions:
            marks.append(pytest.mark.xfail(strict=True, reason=exceptions[req.req_id]))
        params.append(pytest.param(req, id=req.req_id, marks=marks))
    return params


@pytest.mark.parametrize("req", _params())
def test_requirement(req: harness.Requirement, tmp_path: Path) -> None:
    outcome = harness.run(req, tmp_path)
    errors = outcome.errors(req)
    if errors:
        detail = "\n".join(errors[:20])
        history = "\n".join(json.dumps(e, separators=(",", ":"))[:400] for e in outcome.history)
        pytest.fail(f"{req.req_id} ({req.spec.get('description')}) does not conform:\n{detail}\n"
                    f"status={outcome.status} result={outcome.result!r}\nhistory:\n{history}", pytrace=False)


def test_every_requirement_has_one_handler() -> None:
    from .handlers import REGISTRY

    ids = {req.req_id for req in harness.load_requirements()}
    assert len(ids) == 155
    assert ids == set(REGISTRY)


def test_exceptions_name_real_requirements() -> None:
    ids = {req.req_id for req in harness.load_requirements()}
    assert set(read_exceptions()) <= ids
