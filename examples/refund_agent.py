r"""A support agent that looks up an order and refunds it; a person approves refunds over 100.

Run it (needs ``pip install 'durably[agents]'``, i.e. langchain-core):

    durably run examples/refund_agent.py:handler --input '{"order_id": "B-2", "question": "My lamp arrived broken."}'

The agent is ``durably.agents.Agent``: every model call is a step named ``model``, every tool call a
step named after its tool (``lookup_order``, ``refund``). The refund of the 180 lamp is over the
threshold, so before it runs the agent waits on a callback named ``approve refund``; the run logs
its id and the command that answers it (``durably worker`` logs the same line):

    durably callback success ID --payload '{"decision": "approve"}'
    durably callback success ID --payload '{"decision": "reject", "message": "refund half"}'
    durably callback success ID --payload \
        '{"decision": "edit", "args": {"order_id": "B-2", "item": "lamp", "amount": 90}}'

A rejection reaches the model as the tool's answer (with the message); an edit runs the tool with
the person's arguments (checked against its schema). ``{"order_id": "A-1", "question": "The kettle
leaks."}`` refunds 40: no one is asked.

Offline, the model is ``durably.agents.testing.ScriptedChatModel`` with a script written from the
order (real tool calls, no network). A real model is two lines, in ``handler`` (plus
``pip install langchain-openai``), the rest unchanged:

    from langchain_openai import ChatOpenAI
    model = ChatOpenAI(model="gpt-4o-mini")

The tools keep their effects in a SQLite ledger next to the durably database (``refunds.db``; the
input's ``"ledger"``, else next to ``$DURABLY_DB``, else ``.durably/refunds.db``); ``python
examples/refund_agent.py`` shows it. Every model call and tool run is a row of ``calls`` (there you
see what ran twice), every refund a row of ``refunds`` (what happened). Kill the process at any
point and run ``durably worker``: the agent resumes without asking the model again for an answer it
has, and a tool that finished does not run again. A tool that was running when the process died
does run again (tool steps are at-least-once), so ``refund`` deduplicates itself by the model's tool
call id (it takes it as an ``InjectedToolCallId`` argument, which the model never sees): a repeat
of one call answers the first refund and refunds nothing. ``"latency"`` (seconds) in the input makes
each tool run take that long, half before its effect and half after, to aim a kill.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from durably import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryStrategyConfig,
    StepConfig,
    create_retry_strategy,
    durable_execution,
)
from durably.agents import Agent, AgentLimits, require_approval
from durably.agents.testing import ScriptedChatModel
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, InjectedToolCallId, tool

APPROVAL_THRESHOLD = 100
"""Refunds above this amount wait for a person."""

ORDERS: dict[str, dict[str, Any]] = {
    "A-1": {"customer": "Ada", "status": "delivered", "items": {"kettle": 40}},
    "B-2": {"customer": "Ben", "status": "delivered", "items": {"lamp": 180, "bulbs": 12}},
    "C-3": {"customer": "Cleo", "status": "delivered", "items": {"sofa": 450, "rug": 160, "cushion": 30}},
}
"""The shop's orders (a real desk asks its order system); what was refunded is in the ledger."""

SYSTEM_PROMPT = (
    "You are the support desk of a small shop. Look the order up before anything else. Refund only "
    "items of the order, at most what was paid for them, and say what you did in one or two sentences. "
    f"Refunds over {APPROVAL_THRESHOLD} need a person's approval: propose them anyway, the system asks.")

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, pid INTEGER NOT NULL, execution TEXT NOT NULL, name TEXT NOT NULL,
    detail TEXT NOT NULL, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY, execution TEXT NOT NULL, call_id TEXT NOT NULL, order_id TEXT NOT NULL, item TEXT NOT NULL,
    amount REAL NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL, UNIQUE (execution, call_id));
"""
"""``calls``: a row when a model call or a tool run begins (a tool run's outcome is ``running`` until it
ends: a row left ``running`` is a run its process did not finish; a model call's is ``answered`` at
once). No UNIQUE key on refunds on purpose: a refund that failed to deduplicate shows two rows, not an
error."""


def ledger_path(event: Mapping[str, Any]) -> str:
    """The ledger, absolute: the input's ``"ledger"``, ``refunds.db`` next to ``$DURABLY_DB`` (a file), or in
    .durably/."""
    chosen = event.get("ledger")
    if not chosen:
        durably_db = os.environ.get("DURABLY_DB")
        beside = durably_db if durably_db and "://" not in durably_db else None
        chosen = str(Path(beside).parent / "refunds.db") if beside else os.path.join(".durably", "refunds.db")
    return str(Path(chosen).resolve())


class Desk:
    """The support desk of one execution: the ledger its tools and the offline model write, in short
    transactions (safe across processes), and how long each tool run takes (``latency``)."""

    def __init__(self, ledger: str, execution: str = "", latency: float = 0.0) -> None:
        self.ledger, self.execution, self.latency = ledger, execution, latency

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        Path(self.ledger).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.ledger, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if not Path(self.ledger).exists():
            return []
        db = sqlite3.connect(self.ledger, timeout=60)
        try:
            return list(db.execute(sql, params))
        finally:
            db.close()

    def begin(self, name: str, detail: Mapping[str, Any], outcome: str = "running") -> int:
        """Log that a call begins (committed at once: a crash after this leaves the row ``running``)."""
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO calls (at, pid, execution, name, detail, outcome)"
                                " VALUES (?, ?, ?, ?, ?, ?)",
                                (time.time(), os.getpid(), self.execution, name, json.dumps(detail), outcome))
            return int(cursor.lastrowid or 0)

    @contextmanager
    def run(self, name: str, detail: Mapping[str, Any]) -> Iterator[tuple[sqlite3.Connection, list[str]]]:
        """One tool run: begun, half the latency, its effect and outcome in one transaction, the other half."""
        seq = self.begin(name, detail)
        if self.latency:
            time.sleep(self.latency / 2)
        outcome = ["ok"]
        try:
            with self.transaction() as db:
                yield db, outcome
                db.execute("UPDATE calls SET outcome = ? WHERE seq = ?", (outcome[0], seq))
        except ValueError as exc:
            with self.transaction() as db:
                db.execute("UPDATE calls SET outcome = ? WHERE seq = ?", (f"refused: {exc}", seq))
            raise
        if self.latency:
            time.sleep(self.latency / 2)  # a crash here: the effect happened, the step never heard of it

    # ------------------------------------------------------------------ what the tools do
    def lookup(self, order_id: str) -> dict[str, Any]:
        with self.run("lookup_order", {"order_id": order_id}) as (db, _):
            order = ORDERS.get(order_id)
            if order is None:
                raise ValueError(f"there is no order {order_id}")
            refunded = dict(db.execute("SELECT item, sum(amount) FROM refunds WHERE order_id = ? GROUP BY item",
                                       (order_id,)).fetchall())
        return {"order_id": order_id, **order, "refunded": refunded}

    def refund(self, order_id: str, item: str, amount: float, reason: str, call_id: str) -> dict[str, Any]:
        """Refund ``amount`` for ``item``; a repeat (the same execution and model tool call: a step run again
        after a crash) answers the first refund and refunds nothing."""
        with self.run("refund", {"order_id": order_id, "item": item, "amount": amount}) as (db, outcome):
            first = db.execute("SELECT id FROM refunds WHERE execution = ? AND call_id = ?",
                               (self.execution, call_id)).fetchone()
            if first is not None:
                outcome[0] = "repeat"
                refund_id = first[0]
            else:
                price = ORDERS.get(order_id, {}).get("items", {}).get(item)
                done = db.execute("SELECT coalesce(sum(amount), 0) FROM refunds WHERE order_id = ? AND item = ?",
                                  (order_id, item)).fetchone()[0]
                if price is None:
                    raise ValueError(f"{order_id} has no item {item!r}")
                if amount <= 0:
                    raise ValueError("a refund must be positive")
                if amount > price - done:
                    raise ValueError(f"the {item} of {order_id} cost {price} and {done:g} was refunded already")
                refund_id = f"rf-{db.execute('SELECT count(*) FROM refunds').fetchone()[0] + 1}"
                db.execute("INSERT INTO refunds (id, execution, call_id, order_id, item, amount, reason, at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (refund_id, self.execution, call_id, order_id, item, amount, reason, time.time()))
        return {"refund_id": refund_id, "order_id": order_id, "item": item, "amount": amount}


def tools_for(desk: Desk) -> list[BaseTool]:
    """``lookup_order`` and ``refund``, writing to ``desk`` (built per invocation: they know the execution)."""

    @tool
    def lookup_order(order_id: str) -> str:
        """Look up an order: its customer, status, items with what was paid for each, and what was refunded."""
        return json.dumps(desk.lookup(order_id))

    @tool
    def refund(order_id: str, item: str, amount: float, tool_call_id: Annotated[str, InjectedToolCallId],
               reason: str = "") -> str:
        """Refund ``amount`` for one item of an order (at most what was paid for it, less earlier refunds)."""
        done = desk.refund(order_id, item, amount, reason, tool_call_id)
        return f"refunded {done['amount']:g} for the {item} of {order_id} ({done['refund_id']})"

    return [lookup_order, refund]


# ---------------------------------------------------------------------------- the offline model
class DeskModel(ScriptedChatModel):
    """``ScriptedChatModel`` that logs each call in the desk's ledger and, for its last answer, says what
    the tools answered (a real model words it better). Replay-safe: its answers depend on the
    conversation only."""

    ledger: str = ""
    execution: str = ""

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        index = sum(isinstance(m, AIMessage) for m in messages)
        Desk(self.ledger, self.execution).begin("model", {"answer": index + 1}, outcome="answered")
        result = super()._generate(messages, stop, run_manager, **kwargs)
        if index == len(self.script) - 1 and not self.script[index].content:
            told = [f"{'' if m.status == 'success' else 'not refunded: '}{m.content}" for m in messages
                    if isinstance(m, ToolMessage) and m.name == "refund"]
            summary = "; ".join(told) if told else "nothing was refunded"
            result = ChatResult(generations=[ChatGeneration(message=AIMessage(f"Done: {summary}."))])
        return result


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    """A tool call as a model writes it."""
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def script_for(order_id: str, question: str) -> list[AIMessage]:
    """What a model answers, turn by turn: look the order up, refund the items the question names (else the
    dearest one) in one turn, then say what happened (the empty last answer is filled in by DeskModel)."""
    lookup = AIMessage("", tool_calls=[call("lookup_order", "call_1", order_id=order_id)])
    order = ORDERS.get(order_id)
    if order is None:
        return [lookup, AIMessage(f"I cannot find an order {order_id}; could you check the number?")]
    items: dict[str, int] = order["items"]
    named = [item for item in items if item in question.lower()] or [max(items, key=lambda item: items[item])]
    refunds = [call("refund", f"call_{n}", order_id=order_id, item=item, amount=items[item], reason=question)
               for n, item in enumerate(named, start=2)]
    return [lookup, AIMessage("", tool_calls=refunds), AIMessage("")]


def offline_model(script: Sequence[AIMessage], desk: Desk) -> BaseChatModel:
    return DeskModel(script=list(script), ledger=desk.ledger, execution=desk.execution)


# ---------------------------------------------------------------------------- the agent
TOOL_STEPS = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(
    max_attempts=3, initial_delay=Duration(1), max_delay=Duration(1), jitter_strategy=JitterStrategy.NONE,
    retryable_error_types=[TimeoutError, ConnectionError])))
"""Tool steps retry what a network does; a refusal (ValueError) goes back to the model at once."""


def over_threshold(name: str, args: Mapping[str, Any]) -> bool:
    """Whether a refund needs a person: over the threshold, or an amount that is not a number."""
    try:
        return float(args.get("amount")) > APPROVAL_THRESHOLD  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def support_agent(model: BaseChatModel, tools: Sequence[BaseTool]) -> Agent:
    return Agent(model, tools, system_prompt=SYSTEM_PROMPT, approval=require_approval("refund", when=over_threshold),
                 limits=AgentLimits(max_turns=6, max_tool_calls=10), tool_config=TOOL_STEPS)


def desk_of(event: Mapping[str, Any], context: DurableContext) -> Desk:
    return Desk(ledger_path(event), context.execution_context.durable_execution_arn, float(event.get("latency", 0)))


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order_id, question = event["order_id"], event.get("question", "I would like a refund.")
    desk = desk_of(event, context)
    model = offline_model(script_for(order_id, question), desk)  # or: model = ChatOpenAI(model="gpt-4o-mini")
    result = support_agent(model, tools_for(desk)).run(context, f"Order {order_id}: {question}")
    return {"order_id": order_id, **result.to_json()}


# ---------------------------------------------------------------------------- for people (and tests)
def summary(desk: Desk) -> dict[str, dict[str, Any]]:
    """Per execution: how often the model was asked and each tool ran (repeats and runs left unfinished
    counted apart), and the refunds made."""
    out: dict[str, dict[str, Any]] = {}

    def entry(execution: str) -> dict[str, Any]:
        return out.setdefault(execution, {"calls": {}, "repeats": 0, "interrupted": 0, "refunds": []})

    for execution, name, outcome in desk.rows("SELECT execution, name, outcome FROM calls ORDER BY seq"):
        e = entry(execution)
        e["calls"][name] = e["calls"].get(name, 0) + 1
        e["repeats"] += outcome == "repeat"
        e["interrupted"] += outcome == "running"
    for execution, refund_id, order_id, item, amount in desk.rows(
            "SELECT execution, id, order_id, item, amount FROM refunds ORDER BY at"):
        entry(execution)["refunds"].append(f"{refund_id} {order_id} {item} {amount:g}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python examples/refund_agent.py",
                                     description="What the support desk's ledger holds, execution by execution.")
    parser.add_argument("--ledger", help="the ledger file (default: as the handler resolves it)")
    desk = Desk(ledger_path({"ledger": parser.parse_args(argv).ledger}))
    print(f"ledger {desk.ledger}")
    for execution, entry in summary(desk).items():
        calls = ", ".join(f"{name} x{n}" for name, n in entry["calls"].items())
        name = execution.split("/")[-2] if execution.count("/") > 1 else execution  # as the logs name it
        print(f"{name}  {calls} ({entry['repeats']} repeated, {entry['interrupted']} interrupted)"
              f"  refunds: {'; '.join(entry['refunds']) or '-'}")


if __name__ == "__main__":
    main()
