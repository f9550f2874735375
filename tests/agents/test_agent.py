"""The durable agent loop: model and tool steps, approvals as callbacks, limits, replay.

The model is durably.agents.testing.ScriptedChatModel (langchain-core's BaseChatModel with real
tool calls); each test counts model and tool calls to show that replay asks and runs nothing twice.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from durably import (
    AsyncDurableContext,
    DurableContext,
    Duration,
    ErrorObject,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durably.agents import Agent, AgentLimitReached, AgentLimits, AgentStopped, ApprovalRequest, require_approval
from durably.agents.testing import ScriptedChatModel
from durably.sagas import SagaRolledBack, Undo, saga
from durably.testing import DurableTestRunner, TestResult
from langchain_core.messages import AIMessage
from langchain_core.tools import InjectedToolCallId, tool

RAN: list[str] = []


@pytest.fixture(autouse=True)
def clear() -> None:
    RAN.clear()


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order."""
    RAN.append(f"lookup {order_id}")
    return json.dumps({"order_id": order_id, "total": 250})


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    RAN.append(f"refund {order_id} {amount}")
    if amount < 0:
        raise ValueError("a refund cannot be negative")
    return f"refunded {amount} on {order_id}"


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def usage(total: int) -> dict[str, int]:
    return {"input_tokens": total - 10, "output_tokens": 10, "total_tokens": total}


def handler_for(agent: Agent) -> Any:
    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        return agent.run(ctx, event["question"]).to_json()
    return handler


def test_every_model_call_and_tool_call_is_a_named_step(make_runner: Any) -> None:
    model = ScriptedChatModel(script=[
        AIMessage("", tool_calls=[call("lookup_order", "c1", order_id="A-1")], usage_metadata=usage(100)),
        AIMessage("Order A-1 totals 250.", usage_metadata=usage(150)),
    ])
    result = make_runner(handler_for(Agent(model, [lookup_order], system_prompt="You are support."))).run(
        {"question": "What is A-1's total?"})
    assert result.status == "SUCCEEDED", result.error
    assert result.value["final"] == "Order A-1 totals 250."
    assert result.value["usage"] == {"input_tokens": 230, "output_tokens": 20, "total_tokens": 250}
    assert result.value["tool_calls"] == [{"call_id": "c1", "tool": "lookup_order", "args": {"order_id": "A-1"},
                                           "outcome": "ran", "content": '{"order_id": "A-1", "total": 250}'}]
    agent_op = result.get_context("agent")
    assert agent_op.SubType == "Agent"
    models = [op for op in result.operations if op.Type == "STEP" and op.Name == "model"]
    assert len(models) == 2 and all(op.ParentId == agent_op.Id for op in models)
    assert result.get_step("lookup_order").Status == "SUCCEEDED"
    assert result.get_context("lookup_order c1").SubType == "ToolCall"  # a turn's only call: no parallel
    assert models[0].StepDetails is not None
    stored = json.loads(models[0].StepDetails.Result or "{}")
    assert stored["id"][-1] == "AIMessage" and stored["kwargs"]["tool_calls"][0]["id"] == "c1"  # langchain's form
    assert model.calls == [0, 1] and RAN == ["lookup A-1"]


OVER_100 = require_approval("refund", when=lambda name, args: args["amount"] > 100)
"""Refunds over 100 need a person."""


def answered(runner: DurableTestRunner, callback: str, answer: str) -> TestResult:
    """Start the runner's handler, answer its callback ``callback`` once it waits, and run it on."""
    arn = runner.run_async()
    assert runner.resume(arn).status == "RUNNING"
    runner.send_callback_success(runner.callback_id(arn, callback), answer)
    return runner.resume(arn)


def refund_agent(script: list[AIMessage], requests: list[ApprovalRequest], **options: Any) -> tuple[Any, Any]:
    model = ScriptedChatModel(script=script)
    agent = Agent(model, [lookup_order, refund], notify=requests.append,
                  approval=OVER_100, **options)
    return handler_for(agent), model


REFUND_200 = [AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=200)]), AIMessage("Done.")]


@pytest.mark.parametrize(("answers", "ran", "outcome", "content"), [
    (['{"decision": "approve"}'], ["refund A-1 200"], "ran", "refunded 200 on A-1"),
    (['{"decision": "reject", "message": "too much"}'], [], "rejected",
     "A person rejected this call of refund: too much"),
    (['{"decision": "edit", "args": {"order_id": "A-1", "amount": 120}}'], ["refund A-1 120"], "ran",
     "refunded 120 on A-1"),
    (["sure", '{"decision": "edit", "args": {"amount": "lots"}}', '{"decision": "approve"}'], ["refund A-1 200"],
     "ran", "refunded 200 on A-1"),
])
def test_a_tool_that_needs_approval_waits_for_a_person(make_runner: Any, answers: list[str], ran: list[str],
                                                       outcome: str, content: str) -> None:
    requests: list[ApprovalRequest] = []
    handler, model = refund_agent(REFUND_200, requests)
    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async({"question": "Refund 200 on A-1"})
    for answer in answers:
        assert runner.resume(arn).status == "RUNNING"  # waiting on the approval; nothing ran
        assert RAN == []
        runner.send_callback_success(runner.callback_id(arn, "approve refund"), answer)
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED", result.error
    assert RAN == ran
    record = result.value["tool_calls"][0]
    assert (record["outcome"], record["content"]) == (outcome, content)
    assert result.value["approvals"][0]["decision"] == json.loads(answers[-1])["decision"]
    assert model.calls == [0, 1], "a resumed agent asked the model again"
    assert [r.note is None for r in requests] == [True] + [False] * (len(answers) - 1)
    if len(answers) > 1:
        assert requests[1].note is not None and "not JSON" in requests[1].note
        assert requests[2].note is not None and "amount" in requests[2].note and "order_id" in requests[2].note
    assert requests[0].tool == "refund" and requests[0].args == {"order_id": "A-1", "amount": 200}
    assert requests[0].callback_id in requests[0].how_to_answer


def test_an_unanswered_approval_times_out_as_a_rejection(make_runner: Any) -> None:
    handler, _ = refund_agent(REFUND_200, [])
    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async({"question": "Refund 200 on A-1"})
    assert runner.resume(arn).status == "RUNNING"
    runner.advance_time(86_401)
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED" and RAN == []
    assert result.value["tool_calls"][0]["outcome"] == "rejected"
    assert "timed out" in result.value["approvals"][0]["message"]


def test_parallel_approvals_are_answered_and_resumed_independently(make_runner: Any) -> None:
    script = [AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=200),
                                        call("refund", "r2", order_id="B-2", amount=300),
                                        call("lookup_order", "l1", order_id="C-3")]),
              AIMessage("Both handled.")]
    requests: list[ApprovalRequest] = []
    handler, model = refund_agent(script, requests)
    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async({"question": "two refunds"})
    assert runner.resume(arn).status == "RUNNING"
    assert RAN == ["lookup C-3"]  # the call that needs no approval ran at once
    by_call = {r.call_id: r.callback_id for r in requests}
    runner.send_callback_success(by_call["r2"], '{"decision": "approve"}')  # the second one first
    assert runner.resume(arn).status == "RUNNING"
    assert RAN == ["lookup C-3", "refund B-2 300"], "the second approval did not run its tool at once"
    runner.send_callback_success(by_call["r1"], '{"decision": "reject", "message": "no"}')
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED"
    assert [c["outcome"] for c in result.value["tool_calls"]] == ["rejected", "ran", "ran"]
    assert model.calls == [0, 1] and RAN == ["lookup C-3", "refund B-2 300"]


def test_a_tool_error_goes_back_to_the_model(make_runner: Any) -> None:
    script = [AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=-5),
                                        call("nope", "n1")]), AIMessage("Sorry.")]
    model = ScriptedChatModel(script=script)
    agent = Agent(model, [refund], tool_config=None)
    result = make_runner(handler_for(agent)).run({"question": "refund -5"})
    assert result.status == "SUCCEEDED"
    errors = [(c["outcome"], c["content"]) for c in result.value["tool_calls"]]
    assert errors[0][0] == "error" and "a refund cannot be negative" in errors[0][1]
    assert errors[1] == ("error", "there is no tool named 'nope'; the tools are: refund")


@pytest.mark.parametrize(("limits", "name"), [
    (AgentLimits(max_turns=1), "max_turns"),
    (AgentLimits(max_model_calls=1), "max_model_calls"),
    (AgentLimits(max_tool_calls=1), "max_tool_calls"),
    (AgentLimits(max_total_tokens=120), "max_total_tokens"),
])
def test_each_limit_ends_the_run_with_a_typed_outcome(make_runner: Any, limits: AgentLimits, name: str) -> None:
    script = [AIMessage("", tool_calls=[call("lookup_order", "a", order_id="1"), call("lookup_order", "b",
                                                                                     order_id="2")],
                        usage_metadata=usage(100)),
              AIMessage("", tool_calls=[call("lookup_order", "c", order_id="3")], usage_metadata=usage(100)),
              AIMessage("done", usage_metadata=usage(100))]
    agent = Agent(ScriptedChatModel(script=script), [lookup_order], limits=limits)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            agent.run(ctx, "go")
        except AgentLimitReached as exc:
            return {"limit": exc.limit, "used": exc.used, "allowed": exc.allowed}
        return "no limit reached"

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED" and result.value["limit"] == name


def test_tool_messages_reach_the_model_with_their_call_ids(make_runner: Any) -> None:
    seen: list[list[Any]] = []

    class Recording(ScriptedChatModel):
        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            seen.append([(type(m).__name__, getattr(m, "tool_call_id", None)) for m in messages])
            return super()._generate(messages, stop, run_manager, **kwargs)

    model = Recording(script=[AIMessage("", tool_calls=[call("lookup_order", "c9", order_id="Z")]),
                              AIMessage("ok")])
    result = make_runner(handler_for(Agent(model, [lookup_order]))).run({"question": "Z?"})
    assert result.status == "SUCCEEDED"
    assert seen[1] == [("HumanMessage", None), ("AIMessage", None), ("ToolMessage", "c9")]


def test_an_async_agent_waits_for_approval_and_resumes(make_runner: Any) -> None:
    model = ScriptedChatModel(script=REFUND_200)
    agent = Agent(model, [refund], approval=require_approval("refund"), notify=lambda request: None)

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        return (await agent.arun(ctx, "refund please")).to_json()

    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async()
    assert runner.resume(arn).status == "RUNNING" and RAN == []
    runner.send_callback_success(runner.callback_id(arn, "approve refund"), '{"decision": "approve"}')
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED", result.error
    assert result.value["final"] == "Done." and RAN == ["refund A-1 200"] and model.calls == [0, 1]


def test_a_finished_run_replays_as_its_recorded_result(make_runner: Any) -> None:
    model = ScriptedChatModel(script=[AIMessage("", tool_calls=[call("lookup_order", "c1", order_id="A")]),
                                      AIMessage("A totals 250.")])
    agent = Agent(model, [lookup_order])
    seen: list[tuple[str, int, int]] = []

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        result = agent.run(ctx, "A?")
        seen.append((result.text, len(result.messages), result.turns))
        ctx.wait(Duration(1), name="then")
        return result.usage

    outcome = make_runner(handler).run()
    assert outcome.status == "SUCCEEDED"
    assert seen == [("A totals 250.", 4, 2)] * 2  # the replayed result is the recorded one, whole
    assert model.calls == [0, 1] and RAN == ["lookup A"]


def test_an_agent_can_be_a_tool_of_another_agent(make_runner: Any) -> None:
    researcher = Agent(ScriptedChatModel(script=[
        AIMessage("", tool_calls=[call("lookup_order", "i1", order_id="Q")]), AIMessage("Q totals 250.")]),
        [lookup_order], name="researcher")
    lead = Agent(ScriptedChatModel(script=[
        AIMessage("", tool_calls=[call("researcher", "o1", question="What is Q's total?")]),
        AIMessage("The researcher says Q totals 250.")]), [researcher.as_tool()], name="lead")
    result = make_runner(handler_for(lead)).run({"question": "Q?"})
    assert result.status == "SUCCEEDED", result.error
    assert result.value["tool_calls"][0]["content"] == "Q totals 250."
    inner = result.get_context("researcher")
    assert inner.SubType == "Agent" and inner.ParentId == result.get_context("researcher o1").Id
    assert RAN == ["lookup Q"]


def test_progress_events_fire_once_each_although_the_run_replays(make_runner: Any) -> None:
    events: list[tuple[str, int | None]] = []
    model = ScriptedChatModel(script=REFUND_200)
    agent = Agent(model, [refund], approval=require_approval("refund"), notify=lambda request: None,
                  on_event=lambda event: events.append((event.kind, event.turn)))
    runner: DurableTestRunner = make_runner(handler_for(agent))
    arn = runner.run_async({"question": "refund"})
    assert runner.resume(arn).status == "RUNNING"
    runner.send_callback_success(runner.callback_id(arn, "approve refund"), '{"decision": "approve"}')
    assert runner.resume(arn).status == "SUCCEEDED"
    assert events == [("turn_started", 1), ("model_answered", 1), ("approval_requested", None),
                      ("approval_answered", None), ("tool_ran", None), ("turn_started", 2), ("model_answered", 2)]


def test_a_failing_event_hook_does_not_break_the_run(make_runner: Any) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("dashboard down")

    agent = Agent(ScriptedChatModel(script=[AIMessage("hi")]), on_event=broken)
    assert make_runner(handler_for(agent)).run({"question": "hello"}).value["final"] == "hi"


def test_compensable_tools_are_undone_in_reverse_when_the_run_fails(make_runner: Any) -> None:
    def undo_refund(step: StepContext, undo: Undo) -> None:
        RAN.append(f"undo {undo.args[0]['order_id']} ({undo.result})")

    script = [AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=20)]),
              AIMessage("", tool_calls=[call("refund", "r2", order_id="B-2", amount=30),
                                        call("lookup_order", "l1", order_id="B-2")]),
              AIMessage("", tool_calls=[call("lookup_order", "l2", order_id="C-3")])]
    agent = Agent(ScriptedChatModel(script=script), [refund, lookup_order], limits=AgentLimits(max_turns=2),
                  compensations={"refund": undo_refund})

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            agent.run(ctx, "refund things")
        except SagaRolledBack as exc:
            return {"original": exc.original.ErrorType, "undone": [c["step"] for c in exc.compensated]}
        return "finished"

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.value == {"original": "durably.agents.AgentLimitReached", "undone": ["refund", "refund"]}
    assert RAN[0] == "refund A-1 20" and sorted(RAN[1:3]) == ["lookup B-2", "refund B-2 30"]  # one turn, in parallel
    assert RAN[3:] == ["undo B-2 (refunded 30 on B-2)", "undo A-1 (refunded 20 on A-1)"]


@pytest.mark.parametrize(("answers", "status"), [
    (["more please", '{"decision": "extend", "by": 1}'], "finished"),
    (['{"decision": "stop"}'], "max_turns"),
])
def test_a_limit_can_ask_a_person_to_extend_it(make_runner: Any, answers: list[str], status: str) -> None:
    script = [AIMessage("", tool_calls=[call("lookup_order", "a", order_id="1")]), AIMessage("done")]
    model = ScriptedChatModel(script=script)
    agent = Agent(model, [lookup_order], limits=AgentLimits(max_turns=1, ask_to_extend=True))

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            return agent.run(ctx, "go").text
        except AgentLimitReached as exc:
            return exc.limit

    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async()
    for answer in answers:
        assert runner.resume(arn).status == "RUNNING"
        runner.send_callback_success(runner.callback_id(arn, "extend max_turns"), answer)
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED" and result.value == ("done" if status == "finished" else "max_turns")
    assert model.calls == ([0, 1] if status == "finished" else [0])


def test_a_tool_receives_its_call_id(make_runner: Any) -> None:
    @tool
    def stamp(note: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Stamp a note with the call that made it."""
        return f"{note} by {tool_call_id}"

    agent = Agent(ScriptedChatModel(script=[AIMessage("", tool_calls=[call("stamp", "s-42", note="hi")]),
                                            AIMessage("ok")]), [stamp])
    result = make_runner(handler_for(agent)).run({"question": "stamp"})
    assert result.value["tool_calls"][0]["content"] == "hi by s-42"


def test_an_approval_answered_with_a_failure_rejects_that_call_only(make_runner: Any) -> None:
    handler, _ = refund_agent(REFUND_200, [])
    runner: DurableTestRunner = make_runner(handler)
    arn = runner.run_async({"question": "refund"})
    assert runner.resume(arn).status == "RUNNING"
    runner.send_callback_failure(runner.callback_id(arn, "approve refund"),
                                 ErrorObject(ErrorType="Rejected", ErrorMessage="not this one"))
    result = runner.resume(arn)
    assert result.status == "SUCCEEDED" and RAN == []
    assert result.value["tool_calls"][0]["content"] == "A person rejected this call of refund: not this one"


def test_a_stop_answer_ends_the_run_and_undoes_the_tools_that_ran(make_runner: Any) -> None:
    def undo_refund(step: StepContext, undo: Undo) -> None:
        RAN.append(f"undo {undo.args[0]['order_id']} {undo.args[0]['amount']}")

    script = [AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=20)]),
              AIMessage("", tool_calls=[call("refund", "r2", order_id="B-2", amount=30),
                                        call("refund", "r3", order_id="C-3", amount=500)]),
              AIMessage("never asked")]
    model = ScriptedChatModel(script=script)
    agent = Agent(model, [refund], compensations={"refund": undo_refund},
                  approval=OVER_100)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            agent.run(ctx, "refund things")
        except SagaRolledBack as exc:
            return {"original": exc.original.ErrorType, "message": exc.original.ErrorMessage,
                    "undone": [c["step"] for c in exc.compensated]}
        return "finished"

    result = answered(make_runner(handler), "approve refund",
                      '{"decision": "stop", "message": "this customer is a fraud"}')
    assert result.status == "SUCCEEDED", result.error
    assert result.value["original"] == "durably.agents.AgentStopped"
    assert "r3 of refund: this customer is a fraud" in result.value["message"]
    assert result.value["undone"] == ["refund", "refund"]
    assert RAN == ["refund A-1 20", "refund B-2 30", "undo B-2 30", "undo A-1 20"]  # C-3 never ran
    assert model.calls == [0, 1]


def test_a_stop_answer_without_compensations_raises_agent_stopped(make_runner: Any) -> None:
    handler_calls: list[str] = []
    agent = Agent(ScriptedChatModel(script=REFUND_200), [refund],
                  approval=OVER_100)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            agent.run(ctx, "refund")
        except AgentStopped as exc:
            handler_calls.append(exc.call_id)
            return {"tool": exc.tool, "call_id": exc.call_id, "reason": exc.reason}
        return "finished"

    result = answered(make_runner(handler), "approve refund", '{"decision": "stop"}')
    assert result.status == "SUCCEEDED", result.error
    assert result.value == {"tool": "refund", "call_id": "r1", "reason": "no reason given"}
    assert RAN == [] and handler_calls == ["r1"]


@tool
async def fetch_invoice(order_id: str) -> str:
    """Fetch an order's invoice (an async-only tool)."""
    RAN.append(f"invoice {order_id}")
    return f"invoice of {order_id}"


def test_an_async_only_tool_runs_in_a_sync_and_an_async_agent(make_runner: Any) -> None:
    def script() -> list[AIMessage]:
        return [AIMessage("", tool_calls=[call("fetch_invoice", "i1", order_id="A-1")]), AIMessage("sent")]

    sync_agent = Agent(ScriptedChatModel(script=script()), [fetch_invoice])
    result = make_runner(handler_for(sync_agent)).run({"question": "invoice"})
    assert result.status == "SUCCEEDED", result.error
    assert result.value["tool_calls"][0]["content"] == "invoice of A-1"

    async_agent = Agent(ScriptedChatModel(script=script()), [fetch_invoice])

    @durable_execution
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        return (await async_agent.arun(ctx, "invoice")).to_json()

    result = make_runner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.value["tool_calls"][0]["content"] == "invoice of A-1"
    assert RAN == ["invoice A-1", "invoice A-1"]


def test_an_agent_is_a_whole_handler(make_runner: Any) -> None:
    def agent() -> Agent:
        return Agent(ScriptedChatModel(script=[AIMessage("", tool_calls=[call("lookup_order", "c1", order_id="A-1")]),
                                               AIMessage("It totals 250.")]), [lookup_order], name="desk")

    for event in ("What is A-1's total?", {"input": "What is A-1's total?"},
                  {"messages": [{"role": "user", "content": "What is A-1's total?"}]}):
        result = make_runner(agent().as_handler()).run(event)
        assert result.status == "SUCCEEDED", result.error
        assert result.value["final"] == "It totals 250." and result.get_context("desk").SubType == "Agent"


@pytest.mark.parametrize("event", [None, "", {"question": "?"}, {"messages": [{"role": "wizard", "content": "x"}]}])
def test_an_agent_handler_refuses_an_event_it_cannot_read(make_runner: Any, event: Any) -> None:
    model = ScriptedChatModel(script=[AIMessage("hi")])
    result = make_runner(Agent(model).as_handler()).run(event)
    assert result.status == "FAILED"
    assert result.error is not None and result.error.ErrorType == "ValueError"
    assert "question" in (result.error.ErrorMessage or "") or "messages" in (result.error.ErrorMessage or "")
    assert model.calls == []


def test_an_agent_run_is_a_step_of_a_saga_whose_rollback_undoes_its_tools(make_runner: Any) -> None:
    def undo_refund(step: StepContext, undo: Undo) -> None:
        RAN.append(f"undo refund {undo.args[0]['order_id']}")

    def hold(step: StepContext) -> str:
        RAN.append("hold")
        return "held"

    def release(step: StepContext, undo: Undo) -> None:
        RAN.append(f"release ({undo.result})")

    def ship(step: StepContext) -> None:
        RAN.append("ship")
        raise RuntimeError("the courier is closed")

    model = ScriptedChatModel(script=[AIMessage("", tool_calls=[call("refund", "r1", order_id="A-1", amount=200)]),
                                      AIMessage("Refunded.")])
    agent = Agent(model, [refund], compensations={"refund": undo_refund},
                  approval=OVER_100)

    @durable_execution
    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            with saga(ctx, "order") as order:
                order.step(hold, compensate=release)
                answer = agent.run(order, "refund A-1").text
                order.step(ship, config=StepConfig(retry_strategy=RetryPresets.none()))
        except SagaRolledBack as exc:
            return {"answer": answer, "undone": [c["step"] for c in exc.compensated]}
        return "shipped"

    result = answered(make_runner(handler), "approve refund", '{"decision": "approve"}')  # a replay follows
    assert result.status == "SUCCEEDED", result.error
    assert result.value == {"answer": "Refunded.", "undone": ["refund", "hold"]}
    assert RAN == ["hold", "refund A-1 200", "ship", "undo refund A-1", "release (held)"]
    assert model.calls == [0, 1]
