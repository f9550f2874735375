"""langchain-core messages in the history: serialised with langchain-core's own format.

A model step's result is the ``AIMessage`` as ``langchain_core.load.dumps`` writes it (tool calls
and usage metadata included), read back with ``loads`` restricted to message classes.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from durably.agents._result import AgentResult
from durably.core import SerDes, SerDesContext, SerDesError
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage


class MessageSerDes(SerDes[AIMessage]):
    """The serdes of a model step: an ``AIMessage`` in langchain-core's serialised form."""

    def serialize(self, value: AIMessage, serdes_context: SerDesContext) -> str:
        if not isinstance(value, AIMessage):
            raise SerDesError(f"a model call returned a {type(value).__qualname__}, not an AIMessage")
        return dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> AIMessage:
        message = _loads(data)
        if not isinstance(message, AIMessage):
            raise SerDesError(f"the recorded model answer is a {type(message).__qualname__}, not an AIMessage")
        return message


MESSAGES = MessageSerDes()


def _loads(data: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loads is marked beta by langchain-core
        return loads(data, allowed_objects="messages")


class AgentResultSerDes(SerDes[AgentResult]):
    """The serdes of a whole run's result: its messages in langchain-core's form, the rest as JSON."""

    def serialize(self, value: AgentResult, serdes_context: SerDesContext) -> str:
        return dumps({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})

    def deserialize(self, data: str, serdes_context: SerDesContext) -> AgentResult:
        return AgentResult(**_loads(data))


RESULTS = AgentResultSerDes()
