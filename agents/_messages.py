"""langchain-core messages in the history: serialised with langchain-core's own format.

A model step's result is the ``AIMessage`` as ``langchain_core.load.dumps`` writes it (tool calls
and usage metadata included), read back with ``loads`` restricted to message classes.
"""

from __future__ import annotations

import warnings
from typing import Any

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # loads is marked beta by langchain-core
            message: Any = loads(data, allowed_objects="messages")
        if not isinstance(message, AIMessage):
            raise SerDesError(f"the recorded model answer is a {type(message).__qualname__}, not an AIMessage")
        return message


MESSAGES = MessageSerDes()
