"""The durable agent loop: every model call and tool call a step, every approval a callback.

``agent.run(context, input)`` runs in a child context (SubType ``Agent``). Each turn calls the
model in one step (its ``AIMessage`` checkpointed in langchain-core's serialised form), then runs
the turn's tool calls, each in a child context named after the tool and the call id: one call as a
context of its own (SubType ``ToolCall``), several as the branches of a durable ``parallel``. A call
that needs approval waits on its own callback first. Replay: the loop runs again
from the top, but model and tool steps return their recorded results, so the model is never
asked the same question twice and a finished tool never runs again; the transcript, the counts
and the token totals are rebuilt from those results, which is what makes the limits durable.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durably.agents._approval import ApprovalPolicy, ApprovalRequest, read_answer
from durably.agents._messages import MESSAGES, RESULTS
from durably.agents._result import AgentResult
from durably.core import (
    AsyncDurableContext,
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    ChildConfig,
    ChildContextError,
    DurableContext,
    DurableFunction,
    DurableOperationError,
    Duration,
    ParallelBranch,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    durable_execution,
    error_type_name,
)
from durably.sagas import (
    AsyncSaga,
    Compensation,
    Saga,
    SagaCompensationFailed,
    SagaConfig,
    SagaRolledBack,
    saga,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.tools import BaseTool, StructuredTool

AGENT_SUBTYPE = "Agent"
TOOL_CALL_SUBTYPE = "ToolCall"
"""The child context of a turn's only tool call (several calls are the branches of a parallel)."""
AGENT_TOOL = "durably_agent"
"""The metadata key of a tool that stands for an agent (see :meth:`Agent.as_tool`)."""
RUN: ChildConfig[AgentResult] = ChildConfig(sub_type=AGENT_SUBTYPE, serdes=RESULTS)
ONE_CALL: ChildConfig[dict[str, Any]] = ChildConfig(sub_type=TOOL_CALL_SUBTYPE)
Notify = Callable[[ApprovalRequest], None]
_log = logging.getLogger("durably.agents")


@dataclass(frozen=True)
class AgentEvent:
    """Something a run did, for an application that shows progress (``Agent(on_event=...)``).

    ``kind``: ``turn_started``, ``model_answered``, ``tool_ran``, ``approval_requested``,
    ``approval_answered`` or ``extension_requested``. Events fire from the step that does the work,
    so a replay fires none again; a step that runs again (a retry, or a crash before its result was
    recorded) fires its event again.
    """

    kind: str
    agent: str
    turn: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentLimits:
    """Budgets of one run; None means no limit. Token counts come from the model's usage metadata."""

    max_turns: int | None = 20
    max_model_calls: int | None = None
    max_tool_calls: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    ask_to_extend: bool = False
    """At a limit, ask a person (a callback named ``extend <limit>``) instead of ending the run: the
    answer ``{"decision": "extend", "by": N}`` raises that limit by N, ``{"decision": "stop"}`` ends the
    run with :class:`AgentLimitReached`; an answer that cannot be used is asked again."""
    extension_config: CallbackConfig = field(default_factory=lambda: CallbackConfig(timeout=Duration.from_days(1)))


class AgentLimitReached(DurableOperationError):
    """A run reached one of its limits: ``limit`` names it, ``used`` and ``allowed`` say by how much."""

    def __init__(self, message: str | None = None, error_type: str | None = None, data: str | None = None,
                 stack_trace: list[str] | None = None) -> None:
        super().__init__(message, error_type, data, stack_trace)
        details = json.loads(data) if data else {}
        self.limit: str = details.get("limit", "")
        self.used: int = details.get("used", 0)
        self.allowed: int = details.get("allowed", 0)

    @classmethod
    def of(cls, limit: str, used: int, allowed: int) -> AgentLimitReached:
        return cls(f"the agent reached its limit {limit}: {used} used, {allowed} allowed", None,
                   json.dumps({"limit": limit, "used": used, "allowed": allowed}))


AgentLimitReached.__module__ = "durably.agents"


class AgentStopped(DurableOperationError):
    """A person answered an approval with ``{"decision": "stop"}``: that call did not run and the run
    ended there (the turn's other calls finished first). ``tool``, ``call_id`` and ``reason`` say which
    call and why."""

    def __init__(self, message: str | None = None, error_type: str | None = None, data: str | None = None,
                 stack_trace: list[str] | None = None) -> None:
        super().__init__(message, error_type, data, stack_trace)
        details = json.loads(data) if data else {}
        self.tool: str = details.get("tool", "")
        self.call_id: str = details.get("call_id", "")
        self.reason: str = details.get("reason", "")

    @classmethod
    def of(cls, tool: str, call_id: str, reason: str) -> AgentStopped:
        return cls(f"a person stopped the run at the call {call_id} of {tool}: {reason}", None,
                   json.dumps({"tool": tool, "call_id": call_id, "reason": reason}))


AgentStopped.__module__ = "durably.agents"


@dataclass(frozen=True)
class Agent:
    """A model, its tools and the rules of a run; ``run`` it inside any durable handler.

    ``approval`` decides which tool calls need a person (see ``require_approval``); ``notify``
    tells the person (default: a warning in the log with the command that answers). An approval
    unanswered within ``approval_config.timeout`` counts as ``on_timeout`` ("reject" by default).
    ``tool_errors="return"`` hands a tool's error to the model as an error ``ToolMessage``;
    ``"raise"`` fails the run. Stopping the whole execution (``durably stop``) ends it where it is,
    as Lambda does, with no code run and so nothing compensated: to end a run and undo its tools,
    answer an approval with ``{"decision": "stop"}``.
    """

    model: BaseChatModel
    tools: Sequence[BaseTool] = ()
    system_prompt: str | None = None
    approval: ApprovalPolicy | None = None
    notify: Notify | None = None
    approval_config: CallbackConfig = field(default_factory=lambda: CallbackConfig(timeout=Duration.from_days(1)))
    on_timeout: str = "reject"
    limits: AgentLimits = field(default_factory=AgentLimits)
    model_config: StepConfig = field(default_factory=lambda: StepConfig(retry_strategy=RetryPresets.default()))
    tool_config: StepConfig | None = None
    tool_errors: str = "return"
    name: str = "agent"
    on_event: Callable[[AgentEvent], None] | None = None
    compensations: Mapping[str, Compensation] = field(default_factory=dict)
    """Tool name -> how to undo one of its calls (``undo(step, Undo)``: ``Undo.result`` is the tool's
    output, ``Undo.args[0]`` its arguments). With any, a run that fails undoes the calls that ran, latest
    first, as a saga does (``saga_config`` sets its retries and escalation) and raises its outcome."""
    saga_config: SagaConfig | None = None

    def __post_init__(self) -> None:
        if self.on_timeout not in ("reject", "approve"):
            raise ValueError(f"on_timeout must be 'reject' or 'approve', not {self.on_timeout!r}")
        if self.tool_errors not in ("return", "raise"):
            raise ValueError(f"tool_errors must be 'return' or 'raise', not {self.tool_errors!r}")
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {sorted(n for n in names if names.count(n) > 1)}")

    def run(self, context: DurableContext | Saga, input: str | Sequence[BaseMessage]) -> AgentResult:
        """Run the agent on ``input`` (a user message, or messages) until the model stops calling tools.

        The run is a child context whose result is the whole :class:`AgentResult`: once the run
        ended, a replay returns it without going through the turns again. Given a saga instead of a
        context, the run is a step of that saga: its compensable tool calls that ran join the saga's
        completed steps, so a later failure of the saga undoes them too (with its own).
        """
        outer = context if isinstance(context, Saga) else None
        ctx = context.context if isinstance(context, Saga) else context
        try:
            result = ctx.run_in_child_context(self._loop(input), name=self.name, config=RUN)
        except ChildContextError as exc:
            raise _own_error(exc)  # noqa: B904 - its cause is set: the run's recorded failure
        self._hand_over(result, outer)
        return result

    async def arun(self, context: AsyncDurableContext | AsyncSaga, input: str | Sequence[BaseMessage]) -> AgentResult:
        """As :meth:`run`, in an ``async def`` handler (the loop runs in a worker thread, the model
        and tools through their sync interface; ``async def`` tools are awaited in their steps)."""
        outer = context if isinstance(context, AsyncSaga) else None
        ctx = context.context if isinstance(context, AsyncSaga) else context
        try:
            result: AgentResult = await ctx.run_in_child_context(self._loop(input), name=self.name, config=RUN)
        except ChildContextError as exc:
            raise _own_error(exc)  # noqa: B904 - its cause is set: the run's recorded failure
        self._hand_over(result, outer)
        return result

    def as_handler(self) -> DurableFunction:
        """A whole durable handler that runs this agent and returns ``AgentResult.to_json()``.

        Its event is the question (a string), ``{"input": "..."}``, or ``{"messages": [...]}`` (what
        langchain-core's ``convert_to_messages`` reads: ``{"role": "user", "content": "..."}``, ...).
        ``handler = agent.as_handler()`` in a module makes it ``durably run module.py:handler``.
        """
        def handler(event: Any, context: DurableContext) -> dict[str, Any]:
            return self.run(context, _event_input(event)).to_json()

        handler.__name__ = handler.__qualname__ = self.name
        return durable_execution(handler)

    def _hand_over(self, result: AgentResult, outer: Saga | AsyncSaga | None) -> None:
        """Remember the run's compensable calls that ran in ``outer`` (from the recorded result, so
        the same on every replay)."""
        if outer is None:
            return
        for call in result.tool_calls:
            undo = self.compensations.get(call["tool"])
            if undo is not None and call["outcome"] == "ran":
                outer.remember(call["tool"], undo, call["content"], call["args"])

    def as_tool(self, name: str | None = None, description: str | None = None) -> BaseTool:
        """This agent as a tool of another agent: its run is a child context of the calling turn."""
        def refuse(question: str) -> str:
            raise TypeError("an agent tool runs inside a durable agent, not on its own")

        return StructuredTool.from_function(
            refuse, name=name or self.name, description=description or f"Ask the {self.name} agent a question.",
            metadata={AGENT_TOOL: self})

    def _loop(self, input: str | Sequence[BaseMessage]) -> Callable[[DurableContext], AgentResult]:
        messages = _initial(self.system_prompt, input)

        def loop(run: DurableContext) -> AgentResult:
            if not self.compensations:
                return _Run(self, run).loop(list(messages))
            with saga(run, f"{self.name} tools", config=self.saga_config) as undoable:
                return _Run(self, undoable.context, undoable).loop(list(messages))
        return loop


class _Run:
    """One run's state, rebuilt the same way on every replay."""

    def __init__(self, agent: Agent, context: DurableContext, undoable: Saga | None = None) -> None:
        self.agent = agent
        self.context = context
        self.undoable = undoable
        """The saga that remembers compensable tool calls, if the agent has compensations."""
        self.tools = {t.name: t for t in agent.tools}
        self.model = _bound(agent.model, agent.tools)
        self.usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        self.model_calls = 0
        self.tool_calls: list[dict[str, Any]] = []
        self.approvals: list[dict[str, Any]] = []
        self.extended: dict[str, int] = {}
        """What people granted beyond each limit, rebuilt from their recorded answers on replay."""

    def loop(self, messages: list[BaseMessage]) -> AgentResult:
        turn = 0
        while True:
            turn += 1
            self._check("max_turns", turn, self.agent.limits.max_turns)
            self._check("max_model_calls", self.model_calls + 1, self.agent.limits.max_model_calls)
            answer = self._ask(list(messages), turn)
            messages.append(answer)
            if not answer.tool_calls:
                return AgentResult(answer, messages, dict(self.usage), self.tool_calls, self.approvals, turn)
            self._check("max_tool_calls", len(self.tool_calls) + len(answer.tool_calls),
                        self.agent.limits.max_tool_calls)
            messages.extend(self._run_tools(answer, turn))

    def _emit(self, kind: str, turn: int | None = None, **data: Any) -> None:
        """Tell ``on_event`` (called from step bodies only, so replays stay silent); its errors are logged."""
        hook = self.agent.on_event
        if hook is None:
            return
        try:
            hook(AgentEvent(kind, self.agent.name, turn, data))
        except Exception:
            _log.warning("the on_event hook of agent %r raised on %s; ignored", self.agent.name, kind, exc_info=True)

    def _ask(self, messages: list[BaseMessage], turn: int) -> AIMessage:
        def call_model(step: StepContext) -> AIMessage:
            if step.attempt == 1:
                self._emit("turn_started", turn)
            reply = self.model.invoke(messages)
            if not isinstance(reply, AIMessage):
                raise TypeError(f"the model answered a {type(reply).__qualname__}, not an AIMessage")
            reply = _with_request(self.agent.model, reply)
            self._emit("model_answered", turn, tool_calls=[c["name"] for c in reply.tool_calls],
                       usage=dict(reply.usage_metadata or {}))
            return reply

        config = StepConfig(retry_strategy=self.agent.model_config.retry_strategy, serdes=MESSAGES,
                            step_semantics=self.agent.model_config.step_semantics)
        answer: AIMessage = self.context.step(call_model, name="model", config=config)
        self.model_calls += 1
        usage: Mapping[str, Any] = answer.usage_metadata or {}
        for key in self.usage:
            self.usage[key] += int(usage.get(key) or 0)
        limits = self.agent.limits
        self._check("max_input_tokens", self.usage["input_tokens"], limits.max_input_tokens)
        self._check("max_output_tokens", self.usage["output_tokens"], limits.max_output_tokens)
        self._check("max_total_tokens", self.usage["total_tokens"], limits.max_total_tokens)
        return answer

    def _check(self, limit: str, used: int, allowed: int | None) -> None:
        """Raise AgentLimitReached past ``allowed`` (plus what a person granted), or ask for more."""
        if allowed is None:
            return
        while used > allowed + self.extended.get(limit, 0):
            granted = self._ask_to_extend(limit, used, allowed + self.extended.get(limit, 0))
            if granted is None:
                raise AgentLimitReached.of(limit, used, allowed + self.extended.get(limit, 0))
            self.extended[limit] = self.extended.get(limit, 0) + granted

    def _ask_to_extend(self, limit: str, used: int, allowed: int) -> int | None:
        """How much more a person grants (None: stop); replayed from its callback like any answer."""
        limits = self.agent.limits
        if not limits.ask_to_extend:
            return None
        note = None
        while True:
            def submit(callback_id: str, _: Any, note: str | None = note) -> None:
                again = f" (asked again: {note})" if note else ""
                self._emit("extension_requested", limit=limit, used=used, allowed=allowed, callback_id=callback_id)
                _log.warning("agent %r reached %s (%d used, %d allowed)%s; extend with: durably callback success %s "
                             "--payload '{\"decision\": \"extend\", \"by\": 5}' (or {\"decision\": \"stop\"})",
                             self.agent.name, limit, used, allowed, again, callback_id)

            try:
                answer = self.context.wait_for_callback(submit, name=f"extend {limit}", config=limits.extension_config)
            except CallbackTimeoutError:
                return None
            granted, note = _read_extension(answer)
            if note is None:
                return granted

    def _run_tools(self, answer: AIMessage, turn: int) -> list[ToolMessage]:
        out = []
        stopped = None
        for record in self._records(answer.tool_calls, turn):
            self.tool_calls.append({k: v for k, v in record.items() if k != "approval"})
            undo = self.agent.compensations.get(record["tool"])
            if self.undoable is not None and undo is not None and record["outcome"] == "ran":
                self.undoable.remember(record["tool"], undo, record["content"], record["args"])
            if record.get("approval"):
                self.approvals.append(record["approval"])
            if record["outcome"] == "stopped":
                stopped = stopped or record
            out.append(ToolMessage(content=record["content"], tool_call_id=record["call_id"], name=record["tool"],
                                   status="error" if record["outcome"] != "ran" else "success"))
        if stopped is not None:
            raise AgentStopped.of(stopped["tool"], stopped["call_id"],
                                  stopped["approval"].get("message") or "no reason given")
        return out

    def _records(self, calls: Sequence[Mapping[str, Any]], turn: int) -> list[dict[str, Any]]:
        """Each call's record, in the model's order: one call in a context of its own, several in parallel."""
        def named(call: Mapping[str, Any]) -> str:
            return f"{call['name']} {call.get('id')}"

        if len(calls) == 1:
            return [self.context.run_in_child_context(self._tool_branch(dict(calls[0])), name=named(calls[0]),
                                                      config=ONE_CALL)]
        branches = [ParallelBranch(self._tool_branch(dict(call)), name=named(call)) for call in calls]
        batch = self.context.parallel(branches, name=f"tools of turn {turn}")
        batch.throw_if_error()
        records = [item.result for item in sorted(batch.all, key=lambda i: i.index)]
        assert all(record is not None for record in records)
        return records  # type: ignore[return-value]

    def _tool_branch(self, call: dict[str, Any]) -> Callable[[DurableContext], dict[str, Any]]:
        def branch(ctx: DurableContext) -> dict[str, Any]:
            return self._call_tool(ctx, call)
        return branch

    def _call_tool(self, ctx: DurableContext, call: dict[str, Any]) -> dict[str, Any]:
        name, args, call_id = call["name"], dict(call.get("args") or {}), str(call.get("id") or "")
        record: dict[str, Any] = {"call_id": call_id, "tool": name, "args": args}
        tool = self.tools.get(name)
        reason = self.agent.approval(name, args) if self.agent.approval is not None else None
        if reason is not None:
            decision = self._approve(ctx, name, args, call_id, reason, tool)
            record["approval"] = {"call_id": call_id, "tool": name, **decision}
            if decision["decision"] in ("reject", "stop"):
                message = decision.get("message") or "no reason given"
                return {**record, "outcome": "rejected" if decision["decision"] == "reject" else "stopped",
                        "content": f"A person rejected this call of {name}: {message}"}
            if decision["decision"] == "edit":
                args = record["args"] = dict(decision["args"])
        if tool is None:
            return {**record, "outcome": "error", "content": f"there is no tool named {name!r}; "
                    f"the tools are: {', '.join(sorted(self.tools)) or 'none'}"}
        inner = (tool.metadata or {}).get(AGENT_TOOL)
        if isinstance(inner, Agent):
            return {**record, "outcome": "ran", "content": inner.run(ctx, str(args.get("question", ""))).text}
        try:
            content = ctx.step(self._tool_body(tool, args, call_id), name=name, config=self.agent.tool_config)
        except StepError as exc:
            if self.agent.tool_errors == "raise":
                raise
            return {**record, "outcome": "error", "content": f"{exc.error_type}: {exc.message}"}
        return {**record, "outcome": "ran", "content": content}

    def _tool_body(self, tool: BaseTool, args: Mapping[str, Any], call_id: str) -> Callable[[StepContext], Any]:
        # invoked with the whole tool call, so a tool that takes its call id (InjectedToolCallId) gets it
        tool_call = {"name": tool.name, "args": dict(args), "id": call_id, "type": "tool_call"}

        def ran(output: Any) -> str:
            if isinstance(output, ToolMessage):
                output = output.content
            content = output if isinstance(output, str) else _as_text(output)
            self._emit("tool_ran", tool=tool.name, call_id=call_id, args=dict(args), content=content)
            return content

        def run_tool(step: StepContext) -> str:
            return ran(tool.invoke(tool_call))

        async def run_async_tool(step: StepContext) -> str:
            return ran(await tool.ainvoke(tool_call))

        return run_async_tool if _async_only(tool) else run_tool

    def _approve(self, ctx: DurableContext, name: str, args: dict[str, Any], call_id: str, reason: str,
                 tool: BaseTool | None) -> dict[str, Any]:
        """Ask until a usable answer comes (or the time is up); each ask is a callback of its own."""
        note = None
        while True:
            def submit(callback_id: str, _: Any, note: str | None = note) -> None:
                request = ApprovalRequest(name, args, call_id, reason, callback_id, note)
                self._emit("approval_requested", tool=name, call_id=call_id, callback_id=callback_id, reason=reason)
                (self.agent.notify or _log_request)(request)

            def answered_at(step: StepContext) -> str:
                self._emit("approval_answered", tool=name, call_id=call_id)
                return dt.datetime.now(dt.UTC).isoformat()

            try:
                answer = ctx.wait_for_callback(submit, name=f"approve {name}", config=self.agent.approval_config)
            except CallbackTimeoutError:
                return {"decision": self.agent.on_timeout, "message": "no answer before the approval timed out",
                        "answered_at": ctx.step(answered_at, name="approval time")}
            except CallbackError as exc:  # `durably callback failure`: a refusal of this call only
                return {"decision": "reject", "message": exc.message or "the approval was answered with a failure",
                        "answered_at": ctx.step(answered_at, name="approval time")}
            decision, note = read_answer(answer, tool)
            if decision is not None:
                return {**decision, "answered_at": ctx.step(answered_at, name="approval time")}


def _read_extension(answer: Any) -> tuple[int | None, str | None]:
    """(how much more, None) or (None, None) to stop, from a person's answer; (None, why) if unusable."""
    try:
        parsed = json.loads(answer) if isinstance(answer, str) else answer
    except ValueError:
        return None, f"the answer {str(answer)[:200]!r} is not JSON"
    decision = parsed.get("decision") if isinstance(parsed, dict) else None
    if decision == "stop":
        return None, None
    by = parsed.get("by") if isinstance(parsed, dict) else None
    if decision != "extend" or not isinstance(by, int) or isinstance(by, bool) or by < 1:
        return None, 'the answer needs {"decision": "extend", "by": N} with N >= 1, or {"decision": "stop"}'
    return by, None


_OWN_ERRORS = {error_type_name(cls): cls
               for cls in (AgentLimitReached, AgentStopped, SagaRolledBack, SagaCompensationFailed)}


def _own_error(exc: ChildContextError) -> Exception:
    """A run's own outcome (a limit reached, its tools rolled back) as itself, whether it just
    happened or is replayed; any other failure of the run as the ChildContextError it is."""
    cls = _OWN_ERRORS.get(exc.error_type or "")
    if cls is None:
        return exc
    own = cls(exc.message, exc.error_type, exc.data, exc.stack_trace)
    own.__cause__ = exc
    return own


def _with_request(model: BaseChatModel, reply: AIMessage) -> AIMessage:
    """``reply`` with the model and provider asked (LangSmith's ``ls_model_name`` and ``ls_provider``)
    in its ``response_metadata`` where the answer does not carry them, so the record names them
    (a trace built from it, for one)."""
    try:
        params: Mapping[str, Any] = model._get_ls_params()
    except Exception:  # a model whose tracing parameters cannot be read: nothing to add
        return reply
    extra = {key: params[key] for key in ("ls_provider", "ls_model_name")
             if params.get(key) and key not in reply.response_metadata}
    if not extra:
        return reply
    return reply.model_copy(update={"response_metadata": {**reply.response_metadata, **extra}})


def _async_only(tool: BaseTool) -> bool:
    """A tool made from an ``async def`` (its step body awaits it, on the step's own event loop)."""
    return isinstance(tool, StructuredTool) and tool.func is None and tool.coroutine is not None


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _bound(model: BaseChatModel, tools: Sequence[BaseTool]) -> Any:
    """The model with the tools' schemas bound, where the model supports tool binding."""
    if not tools:
        return model
    try:
        return model.bind_tools(list(tools))
    except NotImplementedError:  # a scripted or fake model: it names its tool calls itself
        return model


def _event_input(event: Any) -> str | list[BaseMessage]:
    """The question or messages of an :meth:`Agent.as_handler` event; a clear error for anything else."""
    if isinstance(event, str) and event:
        return event
    if isinstance(event, dict) and isinstance(event.get("input"), str) and event["input"]:
        return str(event["input"])
    if isinstance(event, dict) and isinstance(event.get("messages"), list) and event["messages"]:
        try:
            return convert_to_messages(event["messages"])
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise ValueError(f"the event's messages cannot be read as chat messages: {exc}") from exc
    raise ValueError('an agent handler takes a question: "...", {"input": "..."} or {"messages": [...]}, '
                     f"not {json.dumps(event, default=str)[:200]}")


def _initial(system_prompt: str | None, input: str | Sequence[BaseMessage]) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage(system_prompt)] if system_prompt else []
    if isinstance(input, str):
        messages.append(HumanMessage(input))
    else:
        messages.extend(input)
    return messages


def _log_request(request: ApprovalRequest) -> None:
    again = f" (asked again: {request.note})" if request.note else ""
    _log.warning("approval needed: %s(%s), call %s: %s%s; answer with %s", request.tool, request.args,
                 request.call_id, request.reason, again, request.how_to_answer)
