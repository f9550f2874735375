"""Durable human-in-the-loop agents on langchain-core: every model call and tool call a step, every
approval a durable callback.

.. code-block:: python

    from durably.agents import Agent, require_approval

    agent = Agent(model=chat_model, tools=[lookup_order, refund], system_prompt="You are support.",
                  approval=require_approval("refund", when=lambda name, args: args["amount"] > 100))

    @durable_execution
    def handler(event, context):
        return agent.run(context, event["question"]).to_json()

Any langchain-core ``BaseChatModel`` works unchanged; tools are ``BaseTool`` / ``@tool``. Needs
the ``agents`` extra (``pip install durably[agents]``).
"""

from durably.agents._agent import (
    AGENT_SUBTYPE,
    TOOL_CALL_SUBTYPE,
    Agent,
    AgentEvent,
    AgentLimitReached,
    AgentLimits,
    AgentStopped,
)
from durably.agents._approval import ApprovalPolicy, ApprovalRequest, require_approval
from durably.agents._messages import MessageSerDes
from durably.agents._result import AgentResult

__all__ = [
    "AGENT_SUBTYPE",
    "TOOL_CALL_SUBTYPE",
    "Agent",
    "AgentEvent",
    "AgentLimitReached",
    "AgentLimits",
    "AgentResult",
    "AgentStopped",
    "ApprovalPolicy",
    "ApprovalRequest",
    "MessageSerDes",
    "require_approval",
]
