"""The checkpoint protocol (PROTOCOL.md §3): token fencing and the validation rules of §3.5.

Each test drives ``engine.service.checkpoint`` directly against an execution claimed with
``engine.service.claim()``; a refused batch must change nothing (operations, history, token).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from durably.core import DurableContext, durable_execution
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.engine.errors import (
    InvalidParameterValueException,
    RequestTooLargeException,
    ResourceNotFoundException,
    ServiceError,
)
from durably.core.engine.service import Claim
from durably.core.engine.stores.base import StoreTx
from durably.core.limits import MAX_ERROR_DATA, MAX_EXECUTION_RESULT, MAX_OPERATION_PAYLOAD
from durably.core.model import ErrorObject, InvocationOutput, InvocationStatus, OperationUpdate


@durable_execution
def idle(event: Any, ctx: DurableContext) -> Any:
    return None


def U(**fields: Any) -> OperationUpdate:
    return OperationUpdate(**fields)


class Session:
    """A claimed execution and its current checkpoint token."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.arn = engine.start_execution(idle, {"n": 1})
        claim = engine.service.claim(arn=self.arn)
        assert claim is not None
        self.claim: Claim = claim
        self.token: str = claim.token

    def send(self, *updates: OperationUpdate) -> list[Any]:
        response = self.engine.service.checkpoint(self.arn, self.token, list(updates))
        if response.CheckpointToken is not None:
            assert response.CheckpointToken != self.token
            self.token = response.CheckpointToken
        return response.NewExecutionState.Operations

    def snapshot(self) -> tuple[Any, ...]:
        ops = [op.model_dump_json() for op in self.engine.service.all_operations(self.arn)]
        def read(tx: StoreTx) -> tuple[Any, ...]:
            row = tx.execution(self.arn)
            assert row is not None
            return row.status, row.token, row.ready, tx.journal_tail(row.key), tx.next_due()
        return ops, self.engine.get_history(self.arn), self.engine.store.read(read)

    def refused(self, match: str, *updates: OperationUpdate,
                error: type[ServiceError] = InvalidParameterValueException) -> None:
        """The batch is refused with ``match`` in the message, and nothing changed."""
        before = self.snapshot()
        with pytest.raises(error, match=match):
            self.engine.service.checkpoint(self.arn, self.token, list(updates))
        assert self.snapshot() == before
        # the presented token was not consumed by the refused call
        self.send()

    def op(self, op_id: str) -> Any:
        for op in self.engine.service.all_operations(self.arn):
            if op.Id == op_id:
                return op
        return None


@pytest.fixture
def s(engine: Engine) -> Session:
    return Session(engine)


# ---------------------------------------------------------------------------- tokens
def test_accepted_checkpoint_rotates_the_token(s: Session) -> None:
    first = s.token
    ops = s.send(U(Id="a", Type="STEP", Action="START", Name="a", SubType="Step"))
    assert s.token != first
    assert [(o.Id, o.Status) for o in ops] == [("a", "STARTED")]  # the touched operation is echoed


def test_token_is_single_use(s: Session) -> None:
    used = s.token
    s.send(U(Id="a", Type="STEP", Action="START", Name="a"))
    before = s.snapshot()
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        s.engine.service.checkpoint(s.arn, used, [U(Id="a", Type="STEP", Action="SUCCEED", Payload="1")])
    assert s.snapshot() == before
    assert s.op("a").Status == "STARTED"
    s.send(U(Id="a", Type="STEP", Action="SUCCEED", Payload="1"))
    assert s.op("a").Status == "SUCCEEDED"


@pytest.mark.parametrize("token", ["", "0" * 32, "not-a-token", "eyJhcm4iOiJ4In0="])
def test_unknown_token_is_refused(s: Session, token: str) -> None:
    before = s.snapshot()
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        s.engine.service.checkpoint(s.arn, token, [U(Id="a", Type="STEP", Action="START")])
    assert s.snapshot() == before


def test_foreign_token_is_refused(engine: Engine) -> None:
    mine, other = Session(engine), Session(engine)
    before = mine.snapshot(), other.snapshot()
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        engine.service.checkpoint(mine.arn, other.token, [U(Id="a", Type="STEP", Action="START")])
    assert (mine.snapshot(), other.snapshot()) == before


def test_token_of_a_superseded_invocation_is_refused(s: Session) -> None:
    """The token of an invocation that was taken over is fenced off."""
    old = s.token
    # the invocation is recorded as crashed (as a takeover does) and the execution is claimed again
    s.engine.service.complete_invocation(s.claim, None, ErrorObject(ErrorType="Runtime.ExitError"),
                                         retry_delay_ms=0)
    again = s.engine.service.claim(arn=s.arn)
    assert again is not None and again.token != old
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        s.engine.service.checkpoint(s.arn, old, [])
    s.engine.service.checkpoint(s.arn, again.token, [])


def test_empty_checkpoint_rotates_the_token(s: Session) -> None:
    before_ops = s.snapshot()[0]
    first = s.token
    assert s.send() == []
    assert s.token != first
    assert s.snapshot()[0] == before_ops


def test_checkpoint_on_unknown_execution(s: Session) -> None:
    with pytest.raises(ResourceNotFoundException):
        s.engine.service.checkpoint(s.arn + "x", s.token, [])


# ---------------------------------------------------------------------------- batch rules (§3.5 1-4)
def test_multiple_execution_updates(s: Session) -> None:
    s.refused("Cannot checkpoint multiple EXECUTION updates",
              U(Id="e1", Type="EXECUTION", Action="SUCCEED", Payload="1"),
              U(Id="e2", Type="EXECUTION", Action="SUCCEED", Payload="2"))


def test_execution_update_must_be_last(s: Session) -> None:
    s.refused("EXECUTION checkpoint must be the last update",
              U(Id="e1", Type="EXECUTION", Action="SUCCEED", Payload="1"),
              U(Id="a", Type="STEP", Action="START", Name="a"))
    assert s.engine.get_execution(s.arn)["Status"] == "RUNNING"


def test_duplicate_id(s: Session) -> None:
    s.refused("multiple operations with the same ID",
              U(Id="w", Type="WAIT", Action="START", WaitOptions={"WaitSeconds": 5}),
              U(Id="w", Type="WAIT", Action="CANCEL"))
    s.refused("multiple operations with the same ID",
              U(Id="a", Type="STEP", Action="START"), U(Id="a", Type="STEP", Action="START"))
    s.refused("multiple operations with the same ID",
              U(Id="a", Type="STEP", Action="SUCCEED", Payload="1"), U(Id="a", Type="STEP", Action="SUCCEED"))


def test_start_then_finish_in_one_batch_is_allowed(s: Session) -> None:
    ops = s.send(U(Id="a", Type="STEP", Action="START", Name="a"),
                 U(Id="a", Type="STEP", Action="SUCCEED", Name="a", Payload='"x"'),
                 U(Id="c", Type="CONTEXT", Action="START", Name="c"),
                 U(Id="c", Type="CONTEXT", Action="SUCCEED", Name="c", Payload="1"))
    assert {o.Id: o.Status for o in ops} == {"a": "SUCCEEDED", "c": "SUCCEEDED"}
    step = s.op("a")
    assert step.StepDetails.Attempt == 1 and step.StepDetails.Result == '"x"'
    types = [e["EventType"] for e in s.engine.get_history(s.arn)]
    assert types[1:] == ["StepStarted", "StepSucceeded", "ContextStarted", "ContextSucceeded"]


def test_invalid_parent(s: Session) -> None:
    s.refused("Invalid parent operation id", U(Id="a", Type="STEP", Action="START", ParentId="nowhere"))
    s.send(U(Id="st", Type="STEP", Action="SUCCEED", Payload="1"))
    s.refused("Invalid parent operation id", U(Id="a", Type="STEP", Action="START", ParentId="st"))
    # the execution operation is not a CONTEXT either
    exec_id = s.arn.rsplit("/", 1)[-1]
    s.refused("Invalid parent operation id", U(Id="a", Type="STEP", Action="START", ParentId=exec_id))
    # a parent STARTed earlier in the same batch, or already stored, is fine
    s.send(U(Id="ctx", Type="CONTEXT", Action="START", Name="ctx"),
           U(Id="child", Type="STEP", Action="START", ParentId="ctx"))
    s.send(U(Id="child2", Type="WAIT", Action="START", ParentId="ctx", WaitOptions={"WaitSeconds": 1}))
    assert s.op("child").ParentId == "ctx" and s.op("child2").ParentId == "ctx"


def test_refused_batch_leaves_no_parent_behind(s: Session) -> None:
    """A CONTEXT started in a refused batch does not exist for the next checkpoint (same token)."""
    s.send(U(Id="warm", Type="STEP", Action="START"))
    s.refused("cannot be cancelled", U(Id="ctx", Type="CONTEXT", Action="START"),
              U(Id="nope", Type="WAIT", Action="CANCEL"))
    s.refused("Invalid parent operation id", U(Id="child", Type="STEP", Action="START", ParentId="ctx"))


def test_operations_written_by_another_engine_are_seen(engine: Engine, db_path: Path) -> None:
    """An engine's checkpoints see operations another engine created since its own last checkpoint."""
    first = Session(engine)
    first.send(U(Id="a", Type="STEP", Action="START"))
    other = Engine(db_path, synchronous="OFF")
    try:
        engine.service.complete_invocation(first.claim, InvocationOutput(Status=InvocationStatus.PENDING))
        _mark_ready(engine, first.arn)
        theirs = other.service.claim(arn=first.arn)
        assert theirs is not None
        other.service.checkpoint(first.arn, theirs.token, [U(Id="ctx", Type="CONTEXT", Action="START"),
                                                            U(Id="b", Type="STEP", Action="START")])
        other.service.complete_invocation(theirs, InvocationOutput(Status=InvocationStatus.PENDING))
        _mark_ready(engine, first.arn)
        mine = engine.service.claim(arn=first.arn)
        assert mine is not None
        token = engine.service.checkpoint(first.arn, mine.token, [
            U(Id="child", Type="STEP", Action="START", ParentId="ctx")]).CheckpointToken
        assert token is not None
        with pytest.raises(InvalidParameterValueException, match="cannot START from STARTED"):
            engine.service.checkpoint(first.arn, token, [U(Id="b", Type="STEP", Action="START")])
    finally:
        other.close()
        other.store.close()


def _mark_ready(engine: Engine, arn: str) -> None:
    row = engine.store.read(lambda tx: tx.execution(arn))
    assert row is not None
    key = row.key
    engine.store.transact(lambda tx: tx.update_execution(key, ready=True))


def test_parent_must_precede_its_child_in_the_batch(s: Session) -> None:
    s.refused("Invalid parent operation id",
              U(Id="child", Type="STEP", Action="START", ParentId="ctx"),
              U(Id="ctx", Type="CONTEXT", Action="START"))


def test_refused_batch_applies_nothing(s: Session) -> None:
    """A violation late in the batch undoes the updates applied before it."""
    s.refused("cannot be cancelled",
              U(Id="a", Type="STEP", Action="START", Name="a"),
              U(Id="b", Type="CALLBACK", Action="START", Name="b"),
              U(Id="w", Type="WAIT", Action="START", WaitOptions={"WaitSeconds": 60}),
              U(Id="nope", Type="WAIT", Action="CANCEL"))
    assert [op.Type for op in s.engine.service.all_operations(s.arn)] == ["EXECUTION"]


# ---------------------------------------------------------------------------- per update (§3.5 5-8)
def test_inconsistent_fields(s: Session) -> None:
    s.send(U(Id="ctx", Type="CONTEXT", Action="START", Name="ctx"),
           U(Id="ctx2", Type="CONTEXT", Action="START", Name="ctx2"),
           U(Id="a", Type="STEP", Action="START", Name="a", SubType="Step", ParentId="ctx"))
    s.refused("Inconsistent operation type", U(Id="a", Type="WAIT", Action="START",
                                               WaitOptions={"WaitSeconds": 1}))
    s.refused("Inconsistent operation name", U(Id="a", Type="STEP", Action="SUCCEED", Name="b"))
    s.refused("Inconsistent operation subtype", U(Id="a", Type="STEP", Action="SUCCEED", SubType="Other"))
    s.refused("Inconsistent operation parent operation id",
              U(Id="a", Type="STEP", Action="SUCCEED", ParentId="ctx2"))
    # fields left out are not compared
    s.send(U(Id="a", Type="STEP", Action="SUCCEED", Payload="1"))
    assert s.op("a").Status == "SUCCEEDED" and s.op("a").Name == "a"


@pytest.mark.parametrize(("op_type", "action"), [
    ("STEP", "CANCEL"), ("CONTEXT", "RETRY"), ("CONTEXT", "CANCEL"), ("WAIT", "SUCCEED"), ("WAIT", "RETRY"),
    ("CALLBACK", "SUCCEED"), ("CALLBACK", "CANCEL"), ("CHAINED_INVOKE", "SUCCEED"), ("EXECUTION", "START"),
    ("EXECUTION", "RETRY"),
])
def test_invalid_action_for_type(s: Session, op_type: str, action: str) -> None:
    s.refused("Invalid action for the given operation type", U(Id="x", Type=op_type, Action=action))


def test_unknown_operation_type(s: Session) -> None:
    update = OperationUpdate.model_construct(Id="x", Type="TIMER", Action="START", ParentId=None, Name=None,
                                             SubType=None, Payload=None, Error=None)
    s.refused("Unknown operation type", update)


def test_step_transitions(s: Session) -> None:
    s.send(U(Id="a", Type="STEP", Action="START", Name="a"))
    s.refused("cannot START", U(Id="a", Type="STEP", Action="START"))  # START needs READY
    s.refused("SUCCEED cannot carry an Error", U(Id="a", Type="STEP", Action="SUCCEED",
                                                 Error={"ErrorMessage": "x"}))
    s.refused("FAIL cannot carry a Payload", U(Id="a", Type="STEP", Action="FAIL", Payload="1"))
    s.refused("RETRY needs StepOptions", U(Id="a", Type="STEP", Action="RETRY", Error={"ErrorMessage": "x"}))
    s.refused("both Error and Payload", U(Id="a", Type="STEP", Action="RETRY", Payload="1",
                                          Error={"ErrorMessage": "x"},
                                          StepOptions={"NextAttemptDelaySeconds": 1}))
    s.send(U(Id="a", Type="STEP", Action="RETRY", Error={"ErrorMessage": "flaky", "ErrorType": "E"},
             StepOptions={"NextAttemptDelaySeconds": 30}))
    op = s.op("a")
    assert op.Status == "PENDING" and op.StepDetails.Attempt == 1
    assert op.StepDetails.NextAttemptTimestamp is not None
    s.refused("cannot START", U(Id="a", Type="STEP", Action="START"))  # PENDING, not READY
    s.refused("cannot SUCCEED", U(Id="a", Type="STEP", Action="SUCCEED", Payload="1"))
    s.engine.advance_time(31)
    assert s.engine.service.fire_due_timers() == 1
    assert s.op("a").Status == "READY"
    s.send(U(Id="a", Type="STEP", Action="START"))
    s.send(U(Id="a", Type="STEP", Action="SUCCEED", Payload="2"))
    op = s.op("a")
    assert op.Status == "SUCCEEDED" and op.StepDetails.Attempt == 2 and op.StepDetails.Result == "2"
    for action in ("START", "SUCCEED", "FAIL"):
        s.refused(f"cannot {action}", U(Id="a", Type="STEP", Action=action))
    s.refused("cannot RETRY", U(Id="a", Type="STEP", Action="RETRY", StepOptions={"NextAttemptDelaySeconds": 1}))


def test_step_finish_without_start_is_accepted(s: Session) -> None:
    s.send(U(Id="ok", Type="STEP", Action="SUCCEED", Name="ok", Payload="1"),
           U(Id="bad", Type="STEP", Action="FAIL", Name="bad", Error={"ErrorType": "KeyError"}),
           U(Id="again", Type="STEP", Action="RETRY", Name="again", StepOptions={"NextAttemptDelaySeconds": 5}))
    assert (s.op("ok").Status, s.op("bad").Status, s.op("again").Status) == ("SUCCEEDED", "FAILED", "PENDING")


def test_context_transitions(s: Session) -> None:
    s.send(U(Id="c", Type="CONTEXT", Action="START", Name="c"))
    s.refused("already exists", U(Id="c", Type="CONTEXT", Action="START"))
    s.refused("Payload", U(Id="c", Type="CONTEXT", Action="FAIL", Payload="1"))
    s.refused("Error", U(Id="c", Type="CONTEXT", Action="SUCCEED", Error={"ErrorMessage": "x"}))
    s.send(U(Id="c", Type="CONTEXT", Action="SUCCEED", Payload='"r"', ContextOptions={"ReplayChildren": True}))
    op = s.op("c")
    assert op.Status == "SUCCEEDED" and op.ContextDetails.Result == '"r"' and op.ContextDetails.ReplayChildren
    s.refused("cannot SUCCEED", U(Id="c", Type="CONTEXT", Action="SUCCEED"))
    s.refused("cannot FAIL", U(Id="c", Type="CONTEXT", Action="FAIL"))
    # SUCCEED/FAIL of a context never started is accepted
    s.send(U(Id="d", Type="CONTEXT", Action="FAIL", Error={"ErrorMessage": "x"}))
    assert s.op("d").Status == "FAILED"


def test_wait_transitions(s: Session) -> None:
    s.refused("WaitOptions", U(Id="w", Type="WAIT", Action="START"))
    s.refused("cannot be cancelled", U(Id="w", Type="WAIT", Action="CANCEL"))
    s.send(U(Id="w", Type="WAIT", Action="START", Name="w", WaitOptions={"WaitSeconds": 10}))
    assert s.op("w").WaitDetails.ScheduledEndTimestamp is not None
    s.refused("new id", U(Id="w", Type="WAIT", Action="START", WaitOptions={"WaitSeconds": 10}))
    s.send(U(Id="w", Type="WAIT", Action="CANCEL"))
    assert s.op("w").Status == "CANCELLED"
    s.refused("cannot be cancelled", U(Id="w", Type="WAIT", Action="CANCEL"))
    # the cancelled wait's timer is gone: it never succeeds
    s.engine.advance_time(20)
    s.engine.service.fire_due_timers()
    assert s.op("w").Status == "CANCELLED"


def test_callback_transitions(s: Session) -> None:
    ops = s.send(U(Id="cb", Type="CALLBACK", Action="START", Name="cb",
                   CallbackOptions={"TimeoutSeconds": 60}))
    assert ops[0].CallbackDetails.CallbackId  # the response carries the minted id
    s.refused("already exists", U(Id="cb", Type="CALLBACK", Action="START"))


def test_chained_invoke_transitions(s: Session) -> None:
    s.refused("ChainedInvokeOptions", U(Id="inv", Type="CHAINED_INVOKE", Action="START"))
    ops = s.send(U(Id="inv", Type="CHAINED_INVOKE", Action="START", Payload="1",
                   ChainedInvokeOptions={"FunctionName": "does-not-exist"}))
    assert ops[0].Status == "FAILED"  # unresolvable target: FAILED at once
    assert ops[0].ChainedInvokeDetails.Error.ErrorType == "ResourceNotFoundException"
    s.refused("new id", U(Id="inv", Type="CHAINED_INVOKE", Action="START",
                          ChainedInvokeOptions={"FunctionName": "does-not-exist"}))


def test_execution_update_rules(s: Session) -> None:
    s.refused("Error", U(Id="e", Type="EXECUTION", Action="SUCCEED", Payload="1", Error={"ErrorMessage": "x"}))
    s.refused("Payload", U(Id="e", Type="EXECUTION", Action="FAIL", Payload="1", Error={"ErrorMessage": "x"}))
    assert s.engine.get_execution(s.arn)["Status"] == "RUNNING"


# ---------------------------------------------------------------------------- execution completion
def test_execution_succeed_completes_the_execution(s: Session) -> None:
    response = s.engine.service.checkpoint(s.arn, s.token, [
        U(Id="a", Type="STEP", Action="SUCCEED", Payload="1"),
        U(Id="execution-result-1795389945623", Type="EXECUTION", Action="SUCCEED", Payload='{"big":true}'),
    ])
    assert response.CheckpointToken is None
    execution = s.engine.get_execution(s.arn)
    assert execution["Status"] == "SUCCEEDED"
    assert execution["Result"] == '{"big":true}'
    events = s.engine.get_history(s.arn)
    assert events[-1]["EventType"] == "ExecutionSucceeded"
    assert events[-1]["ExecutionSucceededDetails"]["Result"]["Payload"] == '{"big":true}'
    finished = s.engine.service.all_operations(s.arn)[0]
    assert finished.Status == "SUCCEEDED"
    assert finished.ExecutionDetails is not None  # the input kept, though a checkpoint does not read it
    assert finished.ExecutionDetails.InputPayload == execution["InputPayload"]
    with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
        s.engine.service.checkpoint(s.arn, s.token, [])
    # the invocation that wrote it ends without changing the outcome
    s.engine.service.complete_invocation(s.claim, InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result=""))
    assert s.engine.get_execution(s.arn)["Result"] == '{"big":true}'
    types = [e["EventType"] for e in s.engine.get_history(s.arn)]
    assert types.count("ExecutionSucceeded") == 1


def test_execution_fail_completes_the_execution(s: Session) -> None:
    s.send(U(Id=s.arn.rsplit("/", 1)[-1], Type="EXECUTION", Action="FAIL",
             Error={"ErrorType": "Big", "ErrorMessage": "too big to return"}))
    execution = s.engine.get_execution(s.arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"] == {"ErrorType": "Big", "ErrorMessage": "too big to return"}


# ---------------------------------------------------------------------------- payload size
def test_oversize_payload_is_refused(s: Session) -> None:
    s.send(U(Id="a", Type="STEP", Action="START", Name="a"))
    s.refused("over", U(Id="a", Type="STEP", Action="SUCCEED", Payload="x" * (MAX_OPERATION_PAYLOAD + 1)),
              error=RequestTooLargeException)
    # UTF-8 bytes count, not characters
    s.refused("over", U(Id="a", Type="STEP", Action="SUCCEED", Payload="é" * (MAX_OPERATION_PAYLOAD // 2 + 1)),
              error=RequestTooLargeException)
    s.refused("over", U(Id="c", Type="CONTEXT", Action="START"),
              U(Id="c", Type="CONTEXT", Action="SUCCEED", Payload=json.dumps("y" * MAX_OPERATION_PAYLOAD)),
              error=RequestTooLargeException)
    assert s.op("a").Status == "STARTED" and s.op("c") is None
    # exactly at the limit is fine
    s.send(U(Id="a", Type="STEP", Action="SUCCEED", Payload="x" * MAX_OPERATION_PAYLOAD))
    assert s.op("a").Status == "SUCCEEDED"


def test_oversize_execution_result_is_refused(s: Session) -> None:
    s.refused("over", U(Id="e", Type="EXECUTION", Action="SUCCEED", Payload="x" * (MAX_EXECUTION_RESULT + 1)),
              error=RequestTooLargeException)
    assert s.engine.get_execution(s.arn)["Status"] == "RUNNING"
    s.send(U(Id="e", Type="EXECUTION", Action="SUCCEED", Payload="x" * MAX_OPERATION_PAYLOAD * 2))
    assert s.engine.get_execution(s.arn)["Status"] == "SUCCEEDED"


def test_oversize_errors_are_stored_truncated(s: Session) -> None:
    """An error is not refused for its size (the failure must be recorded): its fields are cut."""
    huge = {"ErrorType": "Huge", "ErrorMessage": "m" * 3_000_000, "ErrorData": "d" * (MAX_ERROR_DATA + 10),
            "StackTrace": ["frame\n"] * 500}
    s.send(U(Id="a", Type="STEP", Action="START"), U(Id="b", Type="STEP", Action="START"),
           U(Id="c", Type="CONTEXT", Action="START"))
    s.send(U(Id="a", Type="STEP", Action="RETRY", Error=huge, StepOptions={"NextAttemptDelaySeconds": 1}),
           U(Id="b", Type="STEP", Action="FAIL", Error=huge), U(Id="c", Type="CONTEXT", Action="FAIL", Error=huge))
    s.send(U(Id=s.arn.rsplit("/", 1)[-1], Type="EXECUTION", Action="FAIL", Error=huge))
    bounded = ErrorObject.model_validate(huge).bounded()
    assert bounded.ErrorMessage is not None and bounded.ErrorMessage.endswith("… [truncated from 3,000,000 bytes]")
    assert [s.op(i).StepDetails.Error for i in "ab"] == [bounded] * 2 and s.op("c").ContextDetails.Error == bounded
    assert s.engine.get_execution(s.arn)["Error"] == bounded.to_wire()
    failures = [e for e in s.engine.get_history(s.arn) if e["EventType"].endswith("Failed")]
    assert [e["EventType"] for e in failures] == ["StepFailed", "StepFailed", "ContextFailed", "ExecutionFailed"]
    assert [e[f"{e['EventType']}Details"]["Error"]["Payload"] for e in failures] == [bounded.to_wire()] * 4


def test_expired_lease_is_taken_over_and_fenced(engine: Engine, db_path: Path) -> None:
    """Another engine takes over an invocation whose lease expired; the old token is fenced off."""
    first = Session(engine)
    held = engine.service.claim(arn=first.arn)
    assert held is None  # one invocation at a time
    other = Engine(db_path, synchronous="OFF", clock=SkippingClock())
    try:
        assert other.service.take_over_dead() == []  # same host, live process, lease not expired
        assert other.service.claim(arn=first.arn) is None
        other.advance_time(61)  # the default lease is 60 s
        assert len(other.service.take_over_dead()) == 1
        crashed = [e for e in engine.get_history(first.arn) if e["EventType"] == "InvocationCompleted"]
        assert len(crashed) == 1
        error = crashed[0]["InvocationCompletedDetails"]["Error"]["Payload"]
        assert error["ErrorType"] == "Runtime.ExitError" and "lease" in error["ErrorMessage"]
        with pytest.raises(InvalidParameterValueException, match="Invalid checkpoint token"):
            engine.service.checkpoint(first.arn, first.token, [U(Id="a", Type="STEP", Action="START")])
        again = other.service.claim(arn=first.arn)
        assert again is not None and again.token != first.token
        other.service.checkpoint(first.arn, again.token, [U(Id="a", Type="STEP", Action="START")])
        # the old invocation ending late changes nothing
        engine.service.complete_invocation(first.claim, InvocationOutput(Status=InvocationStatus.SUCCEEDED,
                                                                          Result="1"))
        assert engine.get_execution(first.arn)["Status"] == "RUNNING"
    finally:
        other.close()
        other.store.close()


def crash(engine: Engine, claim: Claim) -> None:
    engine.service.complete_invocation(claim, None, ErrorObject(ErrorType="Runtime.ExitError",
                                                                ErrorMessage="killed"), retry_delay_ms=0)


def test_crashes_that_made_progress_do_not_fail_the_execution(engine: Engine) -> None:
    """Only consecutive crashed invocations without any accepted update count towards giving up."""
    arn = engine.start_execution(idle, None)
    for i in range(8):
        claim = engine.service.claim(arn=arn)
        assert claim is not None, i
        engine.service.checkpoint(arn, claim.token, [U(Id=f"s{i}", Type="STEP", Action="SUCCEED", Payload="1")])
        crash(engine, claim)
    assert engine.get_execution(arn)["Status"] == "RUNNING"
    # the last crash above was the first without progress since; four more make five in a row
    for i in range(4):
        assert engine.get_execution(arn)["Status"] == "RUNNING"
        claim = engine.service.claim(arn=arn)
        assert claim is not None, i
        engine.service.checkpoint(arn, claim.token, [])  # an empty refresh is not progress
        crash(engine, claim)
    execution = engine.get_execution(arn)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "Runtime.ExitError"
