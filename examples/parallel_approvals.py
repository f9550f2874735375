"""Two refunds in one model turn, each waiting for its own approval, each running once it is approved.

Run it (``refund_agent.py`` next to this file has the desk, its tools and the ledger):

    durably run examples/parallel_approvals.py:handler --input '{"order_id": "C-3"}'

The model looks order C-3 up, then asks, in one turn, for two refunds: the sofa (450) and the rug
(160). Both are over the threshold, so the agent asks two approvals, two callbacks named ``approve
refund`` that the run logs with the refund each one is about (``call call_2`` is the sofa, ``call
call_3`` the rug). The tool calls of a turn are a durable ``parallel``: answer the rug's callback
first and the rug is refunded at once, while the sofa still waits; the model is asked again only
when both are answered (approved, rejected or edited, each on its own):

    durably callback success RUG_ID --payload '{"decision": "approve"}'
    durably callback success SOFA_ID --payload '{"decision": "reject", "message": "send a photo first"}'
    python examples/refund_agent.py     # the ledger: what was refunded, and when

With a real model the turn is whatever it asks; plug it in as ``refund_agent.py`` says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durably import DurableContext, durable_execution
from langchain_core.messages import AIMessage

if TYPE_CHECKING:  # mypy, run at the repository's root, sees this folder inside the package
    from .refund_agent import call, desk_of, offline_model, support_agent, tools_for
else:  # run, the file is loaded by its path, with its folder on sys.path
    from refund_agent import call, desk_of, offline_model, support_agent, tools_for

QUESTION = "The sofa and the rug both arrived torn."


def script_for(order_id: str) -> list[AIMessage]:
    """Look the order up; then two refunds in one turn (the parallel part); then say what happened."""
    return [
        AIMessage("", tool_calls=[call("lookup_order", "call_1", order_id=order_id)]),
        AIMessage("", tool_calls=[call("refund", "call_2", order_id=order_id, item="sofa", amount=450,
                                       reason="arrived torn"),
                                  call("refund", "call_3", order_id=order_id, item="rug", amount=160,
                                       reason="arrived torn")]),
        AIMessage(""),  # filled in from what the tools answered
    ]


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order_id = event.get("order_id", "C-3")
    desk = desk_of(event, context)
    agent = support_agent(offline_model(script_for(order_id), desk), tools_for(desk))
    result = agent.run(context, f"Order {order_id}: {event.get('question', QUESTION)}")
    return {"order_id": order_id, **result.to_json()}
