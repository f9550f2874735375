"""An agent's model step reads as the model's answer in `durably history`, not as langchain JSON."""

from __future__ import annotations

import json

import pytest
from durably.cli.render import model_answer

messages = pytest.importorskip("langchain_core.messages")
load = pytest.importorskip("langchain_core.load")


def stored(message: object) -> str:
    return json.dumps(load.dumpd(message))


def test_a_model_answer_shows_its_text_tool_calls_and_tokens() -> None:
    answer = messages.AIMessage(
        "Let me check.", tool_calls=[{"name": "lookup_order", "args": {"order_id": "A-1"}, "id": "c1"}],
        usage_metadata={"input_tokens": 90, "output_tokens": 10, "total_tokens": 100})
    assert model_answer(stored(answer)) == ('AIMessage "Let me check."; calls: lookup_order({"order_id":"A-1"}); '
                                            "tokens: 90 in, 10 out")


def test_content_blocks_show_their_text() -> None:
    answer = messages.AIMessage([{"type": "text", "text": "Refunded."}, {"type": "image_url", "image_url": "x"}])
    assert model_answer(stored(answer)) == 'AIMessage "Refunded."'


@pytest.mark.parametrize("payload", ['{"lc": 1, "type": "constructor", "id": ["x", "HumanMessage"], "kwargs": {}}',
                                     '{"lc": broken', '"plain"', '{"order": 1}', "42"])
def test_other_payloads_are_left_alone(payload: str) -> None:
    assert model_answer(payload) is None
