"""What a running execution waits on: ``waiting_on`` over its operations, and ``list`` and ``get`` showing it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from durably.cli.waiting import Waiting, waiting_on
from durably.core.engine.engine import Engine
from durably.core.model import (
    CallbackDetails,
    ErrorObject,
    Operation,
    StepDetails,
    WaitDetails,
)

WAITS = '''
from durably import DurableContext, Duration, RetryDecision, StepConfig, durable_execution


@durable_execution
def sleepy(event, context: DurableContext):
    context.wait(Duration.from_seconds(3600), name="pause")


def flaky(step):
    raise ValueError("down")


@durable_execution
def retrying(event, context: DurableContext):
    again = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.retry(Duration.from_seconds(600)))
    context.step(flaky, name="flaky", config=again)


@durable_execution
def parent(event, context: DurableContext):
    return context.invoke("handlers.py:approval", {}, name="child")


@durable_execution
def submitted(event, context: DurableContext):
    return context.wait_for_callback(lambda callback_id, ctx: None, name="sign-off")
'''


def test_each_kind_of_wait_is_found_in_operation_order() -> None:
    ops = [
        Operation(Id="e", Type="EXECUTION", Status="STARTED"),
        Operation(Id="c1", Type="CALLBACK", Status="SUCCEEDED", Name="done", CallbackDetails=CallbackDetails(
            CallbackId="old")),
        Operation(Id="ctx", Type="CONTEXT", SubType="WaitForCallback", Status="STARTED", Name="sign-off"),
        Operation(Id="c2", ParentId="ctx", Type="CALLBACK", Status="STARTED", Name="sign-off create callback id",
                  CallbackDetails=CallbackDetails(CallbackId="cb-2")),
        Operation(Id="w", Type="WAIT", Status="STARTED", Name="pause", WaitDetails=WaitDetails(
            ScheduledEndTimestamp=5000)),
        Operation(Id="s", Type="STEP", Status="PENDING", Name="charge", StepDetails=StepDetails(
            Attempt=2, NextAttemptTimestamp=7000, Error=ErrorObject(ErrorType="IOError", ErrorMessage="busy"))),
        Operation(Id="q", Type="STEP", SubType="WaitForCondition", Status="PENDING", Name="ready",
                  StepDetails=StepDetails(Attempt=3, NextAttemptTimestamp=9000)),
        Operation(Id="running", Type="STEP", Status="STARTED", Name="busy", StepDetails=StepDetails()),
        Operation(Id="i", Type="CHAINED_INVOKE", Status="STARTED", Name="child"),
        Operation(Id="i2", Type="CHAINED_INVOKE", Status="SUCCEEDED", Name="finished"),
    ]
    assert waiting_on(ops) == [
        Waiting("callback", "sign-off", "c2", callback_id="cb-2"),
        Waiting("wait", "pause", "w", until=5000),
        Waiting("retry", "charge", "s", until=7000, attempt=2, error=ErrorObject(ErrorType="IOError",
                                                                                  ErrorMessage="busy")),
        Waiting("condition", "ready", "q", until=9000, attempt=3),
        Waiting("invoke", "child", "i"),
    ]
    assert waiting_on(ops[:2]) == []
    assert [w.label for w in waiting_on(ops)][:2] == ["callback 'sign-off'", "wait 'pause'"]
    assert Waiting("wait", None, "x").label == "wait (unnamed)"


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _operations(durably: Any, arn: str) -> dict[str, Operation]:
    engine = Engine(durably.db)
    try:
        return {op.Name or "": op for op in engine.service.all_operations(arn)}
    finally:
        engine.close()
        engine.store.close()


def test_list_and_get_show_what_each_running_execution_waits_on(durably: Any) -> None:
    (durably.root / "waits.py").write_text(WAITS)
    arns = {name: durably.start(f"waits.py:{handler}", "--name", name)["DurableExecutionArn"]
            for name, handler in (("nap", "sleepy"), ("shaky", "retrying"), ("caller", "parent"),
                                  ("signed", "submitted"))}
    durably("run", "handlers.py:double", "--input", '{"n": 1}', "--name", "over")
    pause = _operations(durably, arns["nap"])["pause"]
    flaky = _operations(durably, arns["shaky"])["flaky"]
    assert pause.WaitDetails and pause.WaitDetails.ScheduledEndTimestamp
    assert flaky.StepDetails and flaky.StepDetails.NextAttemptTimestamp
    sign_off = durably.callback_id(arns["signed"])

    listed = durably("list")
    assert listed.exit_code == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if line.startswith(("RUNNING", "SUCCEEDED"))}
    assert rows["nap"].rstrip().endswith("wait 'pause'")
    assert rows["shaky"].rstrip().endswith("retry 'flaky'")
    assert rows["caller"].rstrip().endswith("invoke 'child'")
    assert rows["signed"].rstrip().endswith("callback 'sign-off'")
    assert rows["over"].startswith("SUCCEEDED") and "'" not in rows["over"]
    below = listed.stdout.split("\nWaiting on:\n", 1)[1].splitlines()
    nap_id, shaky_id, signed_id = (arns[n].rsplit("/", 1)[-1][:8] for n in ("nap", "shaky", "signed"))
    assert f"  nap {nap_id}: wait 'pause' until {_utc(pause.WaitDetails.ScheduledEndTimestamp)} UTC" in below
    assert (f"  shaky {shaky_id}: retry 'flaky' at {_utc(flaky.StepDetails.NextAttemptTimestamp)} UTC, "
            "after attempt 1 failed: ValueError: down") in below
    assert (f"  signed {signed_id}: callback 'sign-off': durably --db {durably.db} callback success {sign_off} "
            "--payload TEXT") in below

    shown = durably("get", "signed").stdout.splitlines()
    assert shown[shown.index("Waiting on:") + 1] == (
        f"  callback 'sign-off': durably --db {durably.db} callback success {sign_off} --payload TEXT")
    assert "Waiting on:" not in durably("get", "over").stdout
    # --output json keeps AWS's shapes
    assert set(durably.json("get", "signed")) == set(durably.json("get", "over")) - {"EndTimestamp", "Result"}
    assert all(set(e) <= {"DurableExecutionArn", "DurableExecutionName", "FunctionArn", "Status", "StartTimestamp",
                          "EndTimestamp"} for e in durably.json("list")["DurableExecutions"])

    assert durably("callback", "success", sign_off, "--payload", "ok").exit_code == 0
    assert json.loads(durably.json("run", "waits.py:submitted", "--name", "signed")["Result"]) == "ok"
    assert "signed" not in durably("list").stdout.split("\nWaiting on:\n", 1)[1]
