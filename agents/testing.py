"""A scripted chat model for tests and offline examples, on langchain-core's chat model classes.

It answers the n-th model call of a conversation with the n-th scripted message, n counted from
the AI messages already in the conversation, so it needs no state of its own: a replay, or a run
resumed in another process, gets the same answers. Each call is counted (``calls``) so a test can
show that a resumed agent did not ask the model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    """``ScriptedChatModel(script=[AIMessage(tool_calls=[...]), AIMessage("done")])``."""

    script: list[AIMessage]
    model_name: str = "scripted"
    """What the answers say the model was (a real chat model's ``model_name``)."""
    calls: list[int] = Field(default_factory=list)
    """The index of the scripted answer of each call made to this object, in order."""

    @property
    def _llm_type(self) -> str:
        return "durably-scripted"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        index = sum(isinstance(m, AIMessage) for m in messages)
        if index >= len(self.script):
            raise IndexError(f"the script has {len(self.script)} answers; call {index + 1} has none")
        self.calls.append(index)
        return ChatResult(generations=[ChatGeneration(message=self.script[index])])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """The script names its tool calls itself: binding changes nothing."""
        return self
