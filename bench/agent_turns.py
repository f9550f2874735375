"""A1: the durable agent loop against the same model and tool called in a plain Python loop.

Imported only when langchain-core is installed (``run.py`` skips the A1 row otherwise). Both
sides call the same :class:`ScriptedChatModel` and the same ``@tool``: ``n`` answers that each
call ``lookup`` once, then a final answer without tool calls (the model answers from the
transcript, so it keeps no state between runs). Both pass the whole transcript to the model on
every turn, as the agent does, so langchain-core's own cost per call grows with the turn number.
What the durable side adds per turn: the model step (its ``AIMessage`` checkpointed in
langchain-core's serialised form), a durable ``parallel`` of one branch, the tool step in it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from durably.agents import Agent, AgentLimits
from durably.agents.testing import ScriptedChatModel
from durably.core import DurableContext, Engine, durable_execution
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

QUESTION = "Look the orders up one by one."


@tool
def lookup(order_id: str) -> str:
    """Look up an order."""
    return order_id + ": 250"


def script(n: int) -> list[AIMessage]:
    """``n`` answers of one ``lookup`` call each, then the final answer."""
    calls = [AIMessage("", tool_calls=[{"name": "lookup", "args": {"order_id": f"A-{i}"}, "id": f"c{i}",
                                        "type": "tool_call"}]) for i in range(n)]
    return [*calls, AIMessage("All looked up.")]


CURRENT: dict[str, Agent] = {}
"""The agent the handler runs (set by :func:`a1` before it starts the execution)."""


@durable_execution
def agent_handler(event: dict[str, Any], ctx: DurableContext) -> int:
    result = CURRENT["agent"].run(ctx, QUESTION)
    return len(result.tool_calls)


def plain_loop(model: ScriptedChatModel, n: int) -> int:
    """The floor: the agent's loop without durability (model, then each tool call, until no calls)."""
    tools = {lookup.name: lookup}
    messages: list[BaseMessage] = [HumanMessage(QUESTION)]
    ran = 0
    while True:
        answer = model.invoke(list(messages))
        assert isinstance(answer, AIMessage)
        messages.append(answer)
        if not answer.tool_calls:
            break
        for call in answer.tool_calls:
            content = tools[call["name"]].invoke(dict(call["args"]))
            messages.append(ToolMessage(content=content, tool_call_id=str(call["id"]), name=call["name"],
                                        status="success"))
            ran += 1
    if ran != n:
        raise RuntimeError(f"the plain loop ran {ran} tool calls, not {n}")
    return ran


def scripted_model(n: int) -> ScriptedChatModel:
    """The model both sides call, asked once before either is timed: langchain-core describes a
    model for its tracing on its first call (a ``cached_property`` that prints the model, the whole
    script included), a one-off cost that grows with the script and is no part of a turn."""
    model = ScriptedChatModel(script=script(n))
    model.invoke([HumanMessage(QUESTION)])
    return model


def a1(workdir: Path, sync: str, n: int) -> dict[str, float]:
    """``n`` tool-calling turns (and the final answer) in a plain loop, then in ``Agent.run`` inside
    a durable handler on the embedded engine, back to back and with the same model object; seconds
    for each (``plain``, ``agent``)."""
    model = scripted_model(n)
    start = time.perf_counter()
    plain_loop(model, n)
    plain = time.perf_counter() - start

    return {"plain": plain, "agent": durable_loop(workdir / "a1.db", sync, model, n)}


def durable_loop(db: Path, sync: str, model: ScriptedChatModel, n: int) -> float:
    """Seconds to run ``Agent.run`` (``model``, the ``lookup`` tool) to its end in a durable handler,
    driven in this thread on a fresh engine."""
    CURRENT["agent"] = Agent(model, [lookup], limits=AgentLimits(max_turns=None))
    engine = Engine(db, synchronous=sync)
    try:
        start = time.perf_counter()
        arn = engine.start_execution(agent_handler, {"n": n})
        execution = engine.run_until_complete(arn, timeout=600)
        elapsed = time.perf_counter() - start
        if execution["Status"] != "SUCCEEDED" or execution.get("Result") != str(n):
            raise RuntimeError(f"the agent execution did not succeed: {execution}")
        return elapsed
    finally:
        CURRENT.clear()
        engine.close()
        engine.store.close()
