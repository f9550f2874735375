"""Tracing reads the agents' shapes as data (it runs without langchain-core): the names it looks
for are the ones durably.agents records."""

from __future__ import annotations

import pytest
from durably.agents import AGENT_SUBTYPE, TOOL_CALL_SUBTYPE
from durably.integrations.otel import _plugin, _record


def test_the_agent_shapes_tracing_reads_are_the_ones_agents_record() -> None:
    assert _record.AGENT_SUBTYPE == AGENT_SUBTYPE
    assert _record.TOOL_CALL_SUBTYPES == {TOOL_CALL_SUBTYPE, "ParallelBranch"}
    assert _record.MODEL_STEP == "model"  # Agent's model step (tests/agents: test_every_model_call_...)


def test_langchains_own_instrumentation_turns_the_genai_spans_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGSMITH_OTEL_ENABLED", raising=False)
    assert _plugin.langchain_traces_model_calls() is False
    monkeypatch.setenv("LANGSMITH_OTEL_ENABLED", "true")
    assert _plugin.langchain_traces_model_calls() is True
