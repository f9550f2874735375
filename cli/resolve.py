"""What a person types for an execution: its ARN, its name, or the start of its id."""

from __future__ import annotations

import re

from durably.core.engine.errors import InvalidParameterValueException, ResourceNotFoundException
from durably.core.engine.service import Service

MIN_ID_PREFIX = 6
"""Fewer characters of an id are too likely to match several executions."""
_MANGLED = re.compile(r":function:[A-Za-z0-9_-]+:/durable-execution/")


def quoted(arn: str) -> str:
    """An ARN ready to paste into a shell (``$LATEST`` would be expanded unquoted)."""
    return "'" + arn.replace("'", "'\\''") + "'"


def execution_arn(service: Service, ref: str) -> str:
    """The ARN of the one execution ``ref`` names; a clear error when none or several match."""
    ref = ref.strip()
    if not ref:
        raise InvalidParameterValueException("give an execution's ARN, name or the start of its id")
    found = service.find_executions(ref)
    exact = [e for e in found if e["DurableExecutionArn"] == ref]
    if exact:
        return ref
    if ref.startswith("arn:"):
        if _MANGLED.search(ref):
            raise ResourceNotFoundException(
                f"no execution has the ARN {ref}: it looks cut where '$LATEST' was, which an unquoted shell "
                "argument loses; put the ARN in single quotes")
        raise ResourceNotFoundException(f"no execution has the ARN {ref}")
    named = [e for e in found if e["DurableExecutionName"] == ref]
    candidates = named or ([e for e in found if e["DurableExecutionArn"].rsplit("/", 1)[-1].startswith(ref)]
                           if len(ref) >= MIN_ID_PREFIX else [])
    if len(candidates) == 1:
        return str(candidates[0]["DurableExecutionArn"])
    if not candidates:
        hint = f" (an id prefix needs at least {MIN_ID_PREFIX} characters)" if len(ref) < MIN_ID_PREFIX else ""
        raise ResourceNotFoundException(f"no execution is named {ref!r} or has an id starting with it{hint}")
    listed = "; ".join(quoted(e["DurableExecutionArn"]) for e in candidates[:5])
    raise InvalidParameterValueException(
        f"{ref!r} matches {len(candidates)}{'+' if len(found) >= 10 else ''} executions; give one ARN: {listed}")
