"""Approvals: which tool calls need a person, what the person is asked, and how an answer is read.

An answer is JSON: ``{"decision": "approve"}``, ``{"decision": "reject", "message": "..."}`` (the
model sees the message), ``{"decision": "edit", "args": {...}}`` (validated against the
tool's schema), or ``{"decision": "stop", "message": "..."}`` (reject the call and end the run with
``AgentStopped``; an agent with compensations undoes the tools that ran). An answer that cannot
be used is recorded and the approval is asked again; nothing runs meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

ApprovalPolicy = Callable[[str, Mapping[str, Any]], str | None]
"""``policy(tool_name, args)``: the reason a person must approve this call, or None to run it."""

DECISIONS = ("approve", "reject", "edit", "stop")


def require_approval(*tools: str, when: Callable[[str, Mapping[str, Any]], bool] | None = None,
                     reason: str = "needs a person's approval") -> ApprovalPolicy:
    """A policy: calls of ``tools`` (all tools if none are named) need approval, if ``when`` says so.

    ``require_approval("refund", when=lambda name, args: args["amount"] > 100)``.
    """
    def policy(name: str, args: Mapping[str, Any]) -> str | None:
        if tools and name not in tools:
            return None
        if when is not None and not when(name, args):
            return None
        return f"{name} {reason}"
    return policy


@dataclass(frozen=True)
class ApprovalRequest:
    """What a person is asked before a tool call runs."""

    tool: str
    args: dict[str, Any]
    call_id: str
    reason: str
    callback_id: str
    note: str | None = None
    """Why it is asked again (the previous answer could not be used)."""

    @property
    def how_to_answer(self) -> str:
        return (f"durably callback success {self.callback_id} --payload '{{\"decision\": \"approve\"}}' "
                "(or {\"decision\": \"reject\", \"message\": \"...\"}, {\"decision\": \"edit\", \"args\": {...}}, "
                "or {\"decision\": \"stop\", \"message\": \"...\"} to end the run)")


def read_answer(answer: Any, tool: BaseTool | None) -> tuple[dict[str, Any] | None, str | None]:
    """A usable decision from a person's answer, or None and why it cannot be used."""
    try:
        parsed = json.loads(answer) if isinstance(answer, str) else answer
    except ValueError:
        return None, f"the answer {str(answer)[:200]!r} is not JSON"
    if not isinstance(parsed, dict) or parsed.get("decision") not in DECISIONS:
        return None, f"the answer {json.dumps(parsed)[:200]} has no decision among {', '.join(DECISIONS)}"
    if parsed["decision"] == "edit":
        args = parsed.get("args")
        if not isinstance(args, dict):
            return None, "an edit needs \"args\": an object of the tool's arguments"
        problem = _invalid(tool, args)
        if problem is not None:
            return None, f"the edited arguments do not fit the tool: {problem}"
    return parsed, None


def _invalid(tool: BaseTool | None, args: dict[str, Any]) -> str | None:
    # the schema the model sees: arguments langchain injects (the call id) are not the person's to give
    schema = getattr(tool, "tool_call_schema", None) or getattr(tool, "args_schema", None)
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return None
