"""What an agent records reads as text in `durably history`, not as langchain JSON: a model step's
answer, and a whole run's result."""

from __future__ import annotations

import json

import pytest
from durably.cli.render import readable

messages = pytest.importorskip("langchain_core.messages")
load = pytest.importorskip("langchain_core.load")


def stored(message: object) -> str:
    return json.dumps(load.dumpd(message))


def test_a_model_answer_shows_its_text_tool_calls_and_tokens() -> None:
    answer = messages.AIMessage(
        "Let me check.", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A-1"}, "id": "c1"}],
        usage_metadata={"input_tokens": 90, "output_tokens": 10, "total_tokens": 100})
    assert readable(stored(answer)) == ('AIMessage "Let me check."; calls: lookup_order({"order_id":"A-1"}); '
                                            "tokens: 90 in, 10 out")


def test_content_blocks_show_their_text() -> None:
    answer = messages.AIMessage([{"type": "text", "text": "Refunded."}, {"type": "image_url", "image_url": "x"}])
    assert readable(stored(answer)) == 'AIMessage "Refunded."'


@pytest.mark.parametrize("payload", ['{"lc": 1, "type": "constructor", "id": ["x", "HumanMessage"], "kwargs": {}}',
                                     '{"lc": broken', '"plain"', '{"order": 1}', "42"])
def test_other_payloads_are_left_alone(payload: str) -> None:
    assert readable(payload) is None


def test_a_run_result_shows_its_final_answer_turns_and_tools() -> None:
    final = load.dumpd(messages.AIMessage("Refunded 40."))
    payload = json.dumps({"final": final, "messages": [], "usage": {}, "turns": 3,
                          "tool_calls": [{"tool": "lookup_order"}, {"tool": "refund"}], "approvals": []})
    assert readable(payload) == 'final: AIMessage "Refunded 40."; 3 turns; tool calls: lookup_order, refund'
