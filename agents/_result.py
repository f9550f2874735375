"""What an agent run produced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage


@dataclass
class AgentResult:
    """What a run produced: the final message, the transcript, usage, each tool call and approval."""

    final: AIMessage
    messages: list[BaseMessage]
    usage: dict[str, int]
    tool_calls: list[dict[str, Any]]
    """Each call: ``call_id``, ``tool``, ``args`` (as run), ``outcome`` (ran / error / rejected), ``content``."""
    approvals: list[dict[str, Any]]
    """Each approval: ``call_id``, ``tool``, ``decision``, the answer's ``message`` / ``args``, ``answered_at``."""
    turns: int

    @property
    def text(self) -> str:
        """The final message's text (a property of ``AIMessage`` in langchain-core 1, a method before)."""
        text: Any = self.final.text
        return str(text() if callable(text) and not isinstance(text, str) else text)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (for a handler's return value)."""
        return {"final": self.text, "usage": self.usage, "turns": self.turns, "tool_calls": self.tool_calls,
                "approvals": self.approvals}
