"""The saga: forward steps that record how to undo them, and the rollback that undoes them.

A saga is a child context (SubType ``Saga``) opened around a block of handler code. Each forward
step is a durable step; one with a compensation is remembered, in the order steps complete.
When the block raises before the pivot, the compensations run in reverse order (a parallel
group's together, as a durable ``parallel``), each a durable step with SubType ``Compensation``
named after the step it undoes. Replay: the block runs again, forward steps and compensations
return their recorded results without running, so the list of completed steps and the rollback
are rebuilt exactly; a crash mid-rollback resumes with the first compensation not yet recorded.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from durably.core import (
    AsyncDurableContext,
    BatchItemStatus,
    BatchResult,
    CallbackConfig,
    CallbackTimeoutError,
    ChildConfig,
    DurableContext,
    ErrorObject,
    ExecutionError,
    InvocationError,
    ParallelConfig,
    RetryDecision,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    error_type_name,
    idempotency_key,
)
from durably.sagas._config import Escalation, EscalationRequest, SagaConfig
from durably.sagas._outcomes import SagaCompensationFailed, SagaError, SagaForwardRecoveryFailed, SagaRolledBack

T = TypeVar("T")
SAGA_SUBTYPE = "Saga"
COMPENSATION_SUBTYPE = "Compensation"
DECISIONS = ("retry", "resolved", "abort")
ROLLBACK_SUBTYPE = "SagaRollback"
ROLLBACK: ChildConfig[dict[str, Any]] = ChildConfig(sub_type=ROLLBACK_SUBTYPE)


@dataclass(frozen=True)
class Undo:
    """What a compensation receives besides its step context: what the forward step did."""

    step: str
    """The forward step's name."""
    result: Any
    """The forward step's result (None when it failed and asked to be compensated anyway)."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    saga_input: Any
    error: ErrorObject | None = None
    """The forward step's error, when it failed (``compensate_on_failure``)."""


Compensation = Callable[[StepContext, Undo], Any]


@dataclass(frozen=True)
class SagaStep:
    """A forward step with its compensation, for :meth:`Saga.parallel` (or built by :func:`compensable`)."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    compensate: Compensation | None = None
    name: str | None = None
    config: StepConfig | None = None
    compensate_on_failure: bool = False

    @property
    def label(self) -> str:
        return self.name or str(getattr(self.func, "__name__", "step"))


@dataclass
class _Done:
    """A forward step to undo on rollback."""

    spec: SagaStep
    undo: Undo
    key: str
    """The compensation's idempotency key: the same on every attempt and every escalation round."""


class _SagaState:
    """What a saga remembers, and its rollback: shared by the sync and async front-ends."""

    def __init__(self, name: str, saga_input: Any, config: SagaConfig, arn: str, context_id: str | None) -> None:
        self.name = name
        self._where = (arn, context_id or "")
        """The execution and the saga's context: what its compensations' idempotency keys derive from."""
        self.input = saga_input
        self.config = config
        self.pivoted = False
        """True once the pivot step succeeded: from then on failures are recovered forward."""
        self._done: list[list[_Done]] = []
        """Completed steps to undo, in the order they completed; a parallel group is one entry."""

    def _retrying(self, spec: SagaStep) -> SagaStep:
        """``spec`` with ``config.retry_forward`` errors retried under ``config.forward_retry``."""
        forward_types = self.config.retry_forward
        if not forward_types:
            return spec
        step_config = spec.config or StepConfig()
        own = step_config.retry_strategy or RetryPresets.default()
        forward = self.config.forward_retry

        def strategy(error: BaseException, attempt: int) -> RetryDecision:
            return forward(error, attempt) if _matches(error, forward_types) else own(error, attempt)

        return dataclasses.replace(spec, config=dataclasses.replace(step_config, retry_strategy=strategy))

    def _done_entry(self, spec: SagaStep, result: Any, error: ErrorObject | None = None, position: int = 0) -> _Done:
        undo = Undo(spec.label, result, spec.args, spec.kwargs, self.input, error)
        arn, context_id = self._where
        return _Done(spec, undo, idempotency_key(arn, f"{context_id}/undo/{len(self._done)}.{position}"))

    def remember(self, name: str, compensate: Compensation, result: Any = None, *args: Any, **kwargs: Any) -> None:
        """Count work done outside :meth:`step` (by durable operations of the caller's own) as a
        completed step: on rollback, ``compensate`` undoes it with ``result`` and ``args`` in its
        :class:`Undo`. Call it at the same point on every replay (right after the work), as steps are."""
        self._completed(SagaStep(_nothing, args, kwargs, compensate, name), result)

    def _completed(self, spec: SagaStep, result: Any) -> None:
        if spec.compensate is not None and not self.pivoted:
            self._done.append([self._done_entry(spec, result)])

    def _failed(self, spec: SagaStep, exc: StepError) -> None:
        if spec.compensate is not None and spec.compensate_on_failure and not self.pivoted:
            self._done.append([self._done_entry(spec, None, _original(exc))])

    def _group(self, specs: list[SagaStep], batch: BatchResult[Any]) -> list[Any]:
        group: list[_Done] = []
        for item, spec in zip(sorted(batch.all, key=lambda i: i.index), specs, strict=True):
            if spec.compensate is None or self.pivoted:
                continue
            if item.status is BatchItemStatus.SUCCEEDED:
                group.append(self._done_entry(spec, item.result, position=item.index))
            elif item.status is BatchItemStatus.FAILED and spec.compensate_on_failure:
                group.append(self._done_entry(spec, None, item.error, position=item.index))
        if group:
            self._done.append(group)
        batch.throw_if_error()
        return batch.get_results()

    # ------------------------------------------------------------------ failure
    def _must_roll_back(self, exc: Exception) -> ErrorObject:
        """The original error of an exception that left the saga block, if it calls for a rollback;
        else raise what the saga raises instead (the exception itself, or forward recovery failed)."""
        if _matches(exc, self.config.propagate):
            raise exc
        original = _original(exc)
        if self.pivoted:
            raise SagaForwardRecoveryFailed.build(
                self.name, f"failed after its pivot: {original.ErrorType}: {original.ErrorMessage}", original) from exc
        return original

    def _rolled_back(self, exc: Exception, original: ErrorObject, outcome: dict[str, Any]) -> SagaError:
        """The error a saga raises once its rollback (``outcome`` of :meth:`_rollback`) is over."""
        failed = outcome.get("failed")
        if failed is not None:
            error = SagaCompensationFailed.build(
                self.name, f"could not undo {failed['step']!r} after {original.ErrorType}: {original.ErrorMessage}",
                original, compensated=outcome["compensated"], failed=failed["step"],
                compensation_error=failed["failed"], escalation=failed.get("escalation"),
                not_compensated=outcome["not_compensated"])
        else:
            error = SagaRolledBack.build(self.name, f"rolled back after {original.ErrorType}: {original.ErrorMessage}",
                                         original, compensated=outcome["compensated"])
        error.__cause__ = exc
        return error

    def _rollback(self, context: DurableContext) -> dict[str, Any]:
        """Undo the completed steps, latest first, in the rollback's own child context.

        It runs with a plain context in both flavours (an async saga runs it in a worker thread).
        """
        compensated: list[dict[str, Any]] = []
        for index in range(len(self._done) - 1, -1, -1):
            outcomes = self._compensate_group(context, self._done[index])
            failed = next((o for o in outcomes if "failed" in o), None)
            compensated.extend(o for o in outcomes if "failed" not in o)
            if failed is not None:
                later = [d.spec.label for g in self._done[:index] for d in g]
                return {"compensated": compensated, "failed": failed, "not_compensated": later}
        return {"compensated": compensated}

    def _compensate_group(self, context: DurableContext, group: list[_Done]) -> list[dict[str, Any]]:
        if len(group) == 1:
            return [self._compensate(context, group[0])]
        batch = context.parallel([_compensating(self, done) for done in group],
                                 name=f"undo {', '.join(d.spec.label for d in group)}")
        return [item.result or {} for item in sorted(batch.all, key=lambda i: i.index)]

    def _compensate(self, context: DurableContext, done: _Done) -> dict[str, Any]:
        """Run one compensation to its end: done, resolved by a person, or failed (with its error)."""
        config = StepConfig(retry_strategy=self.config.compensation_retry, sub_type=COMPENSATION_SUBTYPE)
        rounds = 0
        while True:
            try:
                attempts = context.step(_compensation(done), name=done.spec.label, config=config)
                return {"step": done.spec.label, "attempts": attempts, "resolution": "compensated"}
            except StepError as failure:
                error = _original(failure).to_wire()
                escalation = self.config.escalation
                if escalation is None:
                    return {"step": done.spec.label, "failed": error}
                rounds += 1
                decision = self._escalate(context, escalation, done, error, rounds)
                if decision["decision"] == "retry":
                    continue
                if decision["decision"] == "resolved":
                    return {"step": done.spec.label, "attempts": 0, "resolution": "resolved",
                            "note": decision.get("note")}
                return {"step": done.spec.label, "failed": error, "escalation": decision}

    def _escalate(self, context: DurableContext, escalation: Escalation, done: _Done, error: dict[str, Any],
                  rounds: int) -> dict[str, Any]:
        """Ask a person what to do with a compensation that keeps failing; re-ask on an answer not understood."""
        note = None
        while True:
            request = EscalationRequest(self.name, done.spec.label, error, rounds, note)

            def submit(callback_id: str, _: Any, request: EscalationRequest = request) -> None:
                (escalation.notify or _log_escalation(context))(callback_id, request)

            try:
                answer = context.wait_for_callback(submit, name=f"escalate {done.spec.label}",
                                                   config=CallbackConfig(timeout=escalation.timeout))
            except CallbackTimeoutError as exc:
                return {"decision": "abort", "reason": f"no answer within {escalation.timeout.seconds} s: {exc}"}
            decision, note = _read_answer(answer)
            if decision is not None:
                return decision


class Saga(_SagaState):
    """A saga open on a durable context of a ``def`` handler: see :func:`saga`."""

    def __init__(self, context: DurableContext, name: str, saga_input: Any, config: SagaConfig) -> None:
        super().__init__(name, saga_input, config, context.execution_context.durable_execution_arn,
                         context.context_id)
        self.context = context
        """The saga's child context: operations made on it belong to the saga."""

    def step(self, func: Callable[..., T], *args: Any, compensate: Compensation | None = None,
             name: str | None = None, config: StepConfig | None = None, compensate_on_failure: bool = False,
             **kwargs: Any) -> T:
        """Run ``func(step_context, *args, **kwargs)`` as a durable step and remember ``compensate``.

        ``func`` may carry its compensation from :func:`compensable`. With ``compensate_on_failure``
        a failure of the step itself (after its retries) is compensated too: for a call that may
        have taken effect although it failed (a payment that timed out). Replay returns the recorded
        result without running ``func``.
        """
        spec = self._retrying(_spec(func, args, kwargs, compensate, name, config, compensate_on_failure))
        try:
            result = self.context.step(_forward(spec), name=spec.label, config=spec.config)
        except StepError as exc:
            self._failed(spec, exc)
            raise
        self._completed(spec, result)
        return result  # type: ignore[no-any-return]

    def pivot(self, func: Callable[..., T], *args: Any, name: str | None = None, config: StepConfig | None = None,
              **kwargs: Any) -> T:
        """The point of no return: once this step succeeded the saga never rolls back.

        A later failure is recovered forward (each step retries under its own strategy); if it
        still fails, the saga ends with :class:`SagaForwardRecoveryFailed`. A failure of the pivot
        itself rolls back the steps before it.
        """
        result = self.step(func, *args, name=name, config=config, **kwargs)
        self.pivoted = True
        return result

    def parallel(self, *steps: SagaStep, name: str | None = None, config: ParallelConfig | None = None) -> list[Any]:
        """Run ``steps`` concurrently (a durable ``parallel``); their results, in order.

        If any fails, the group raises after all have ended, and on rollback the compensations of
        those that completed run in parallel too.
        """
        specs = [self._retrying(_spec(s.func, s.args, s.kwargs, s.compensate, s.name, s.config,
                                      s.compensate_on_failure)) for s in steps]
        return self._group(specs, self.context.parallel([_branch(spec) for spec in specs], name=name, config=config))

    @contextmanager
    def saga(self, name: str, *, input: Any = None, config: SagaConfig | None = None) -> Iterator[Saga]:
        """A saga nested in this one (its own child context). If it fails it rolls itself back and
        this saga then rolls back too; once it completed, a rollback of this saga undoes its steps
        (in reverse) along with this saga's own."""
        with _open(self.context, name, self.input if input is None else input, config or self.config) as inner:
            yield inner
        if not self.pivoted:
            self._done.extend(inner._done)

    def _fail(self, exc: Exception) -> None:
        original = self._must_roll_back(exc)
        outcome = self.context.run_in_child_context(self._rollback, name="rollback", config=ROLLBACK)
        raise self._rolled_back(exc, original, outcome)


class AsyncSaga(_SagaState):
    """A saga open on the context of an ``async def`` handler: the methods of :class:`Saga`, awaited."""

    def __init__(self, context: AsyncDurableContext, name: str, saga_input: Any, config: SagaConfig) -> None:
        super().__init__(name, saga_input, config, context.execution_context.durable_execution_arn,
                         context.context_id)
        self.context = context

    async def step(self, func: Callable[..., Any], *args: Any, compensate: Compensation | None = None,
                   name: str | None = None, config: StepConfig | None = None, compensate_on_failure: bool = False,
                   **kwargs: Any) -> Any:
        """As :meth:`Saga.step`; ``func`` may be ``async def``."""
        spec = self._retrying(_spec(func, args, kwargs, compensate, name, config, compensate_on_failure))
        try:
            result = await self.context.step(_forward(spec), name=spec.label, config=spec.config)
        except StepError as exc:
            self._failed(spec, exc)
            raise
        self._completed(spec, result)
        return result

    async def pivot(self, func: Callable[..., Any], *args: Any, name: str | None = None,
                    config: StepConfig | None = None, **kwargs: Any) -> Any:
        """As :meth:`Saga.pivot`."""
        result = await self.step(func, *args, name=name, config=config, **kwargs)
        self.pivoted = True
        return result

    async def parallel(self, *steps: SagaStep, name: str | None = None,
                       config: ParallelConfig | None = None) -> list[Any]:
        """As :meth:`Saga.parallel`."""
        specs = [self._retrying(_spec(s.func, s.args, s.kwargs, s.compensate, s.name, s.config,
                                      s.compensate_on_failure)) for s in steps]
        batch = await self.context.parallel([_branch(spec) for spec in specs], name=name, config=config)
        return self._group(specs, batch)

    @asynccontextmanager
    async def saga(self, name: str, *, input: Any = None, config: SagaConfig | None = None) -> AsyncIterator[AsyncSaga]:
        """As :meth:`Saga.saga`, with ``async with``."""
        async with _open_async(self.context, name, self.input if input is None else input,
                               config or self.config) as inner:
            yield inner
        if not self.pivoted:
            self._done.extend(inner._done)

    async def _fail(self, exc: Exception) -> None:
        original = self._must_roll_back(exc)
        outcome = await self.context.run_in_child_context(self._rollback, name="rollback", config=ROLLBACK)
        raise self._rolled_back(exc, original, outcome)


@overload
def saga(context: DurableContext, name: str = "saga", *, input: Any = None,
         config: SagaConfig | None = None) -> AbstractContextManager[Saga]: ...
@overload
def saga(context: AsyncDurableContext, name: str = "saga", *, input: Any = None,
         config: SagaConfig | None = None) -> AbstractAsyncContextManager[AsyncSaga]: ...


def saga(context: DurableContext | AsyncDurableContext, name: str = "saga", *, input: Any = None,
         config: SagaConfig | None = None) -> AbstractContextManager[Saga] | AbstractAsyncContextManager[AsyncSaga]:
    """``with saga(context, "order") as s:`` opens a saga; an exception leaving the block rolls it back.

    In an ``async def`` handler: ``async with saga(context, "order") as s:`` and ``await s.step(...)``.
    Inside the block, ``s.step(func, *args, compensate=undo)`` runs forward steps, ``s.parallel``
    a group of them, ``s.pivot`` the point of no return. The block's own code runs again on every
    replay (keep it deterministic); its steps and compensations do not. Leaving the block with an
    exception raises, in its place: the exception itself if it is one of ``config.propagate``;
    :class:`SagaForwardRecoveryFailed` after the pivot; :class:`SagaRolledBack` once every
    completed step was compensated; :class:`SagaCompensationFailed` if a compensation could not be
    done. The original exception is their ``__cause__`` and ``original``. The rollback is a child
    context (SubType ``SagaRollback``) of the saga.
    """
    if isinstance(context, AsyncDurableContext):
        return _open_async(context, name, input, config or SagaConfig())
    return _open(context, name, input, config or SagaConfig())


@contextmanager
def _open(context: DurableContext, name: str, saga_input: Any, config: SagaConfig) -> Iterator[Saga]:
    with context.in_child_context(name, sub_type=SAGA_SUBTYPE) as child:
        opened = Saga(child, name, saga_input, config)
        try:
            yield opened
        except Exception as exc:
            if isinstance(exc, ExecutionError | InvocationError):
                raise
            opened._fail(exc)


@asynccontextmanager
async def _open_async(context: AsyncDurableContext, name: str, saga_input: Any,
                      config: SagaConfig) -> AsyncIterator[AsyncSaga]:
    async with context.in_child_context(name, sub_type=SAGA_SUBTYPE) as child:
        opened = AsyncSaga(child, name, saga_input, config)
        try:
            yield opened
        except Exception as exc:
            if isinstance(exc, ExecutionError | InvocationError):
                raise
            await opened._fail(exc)


def compensable(compensate: Compensation, *, compensate_on_failure: bool = False,
                config: StepConfig | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Declare a reusable saga step with its compensation next to it.

    ``@compensable(release_stock) def reserve(step, order): ...``; then ``s.step(reserve, order)``
    compensates with ``release_stock``, and ``SagaStep(reserve, (order,))`` does in a group. The
    function itself is unchanged (call it directly in a unit test).
    """
    def declare(func: Callable[..., T]) -> Callable[..., T]:
        func.__durably_compensation__ = (compensate, compensate_on_failure, config)  # type: ignore[attr-defined]
        return func
    return declare


def _spec(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], compensate: Compensation | None,
          name: str | None, config: StepConfig | None, compensate_on_failure: bool) -> SagaStep:
    declared = getattr(func, "__durably_compensation__", None)
    if declared is not None:
        compensate = compensate or declared[0]
        compensate_on_failure = compensate_on_failure or declared[1]
        config = config or declared[2]
    return SagaStep(func, args, kwargs, compensate, name, config, compensate_on_failure)


def _nothing(step: StepContext, *args: Any, **kwargs: Any) -> None:
    """The forward function of work a saga only remembers (see :meth:`_SagaState.remember`)."""


def _forward(spec: SagaStep) -> Callable[[StepContext], Any]:
    """The forward step's body; it names ``spec.func`` as the function it wraps, so its result is read
    back with the same type (a ``date``, a model) on replay as on the first run."""
    def forward(step: StepContext) -> Any:
        return spec.func(step, *spec.args, **spec.kwargs)
    forward.__wrapped__ = spec.func  # type: ignore[attr-defined]
    return forward


def _branch(spec: SagaStep) -> Callable[[DurableContext], Any]:
    def branch(ctx: DurableContext) -> Any:
        return ctx.step(_forward(spec), name=spec.label, config=spec.config)
    return branch


def _compensation(done: _Done) -> Callable[[StepContext], Any]:
    """The compensation as a step body; its result is the attempt that succeeded (kept in history)."""
    compensate = done.spec.compensate
    assert compensate is not None

    def undo(step: StepContext) -> Any:
        outcome = compensate(step.with_idempotency_key(done.key), done.undo)
        if inspect.isawaitable(outcome):  # an async compensation: the runtime awaits what this returns
            return _then(outcome, step.attempt)
        return step.attempt
    return undo


async def _then(awaitable: Awaitable[Any], value: int) -> int:
    await awaitable
    return value


def _compensating(saga: _SagaState, done: _Done) -> Callable[[DurableContext], dict[str, Any]]:
    def branch(ctx: DurableContext) -> dict[str, Any]:
        return saga._compensate(ctx, done)
    return branch


def _original(exc: Exception) -> ErrorObject:
    """The error as it happened: for a durable operation's error, the failure it wraps."""
    return ErrorObject.from_exception(exc) if isinstance(exc, SagaError) else ErrorObject.from_failure(exc)


def _matches(exc: BaseException, types: Sequence[type[BaseException]]) -> bool:
    """Whether ``exc`` is one of ``types``, or a step error that recorded one of them."""
    if not types:
        return False
    if isinstance(exc, tuple(types)):
        return True
    recorded = getattr(exc, "error_type", None)
    return recorded is not None and recorded in {error_type_name(t) for t in types}


def _read_answer(answer: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A person's answer as a decision, or None and why it could not be understood."""
    try:
        parsed = json.loads(answer) if isinstance(answer, str) else answer
    except ValueError:
        return None, f"the answer {str(answer)[:200]!r} is not JSON; send {{\"decision\": \"retry\"}} or similar"
    decision = parsed.get("decision") if isinstance(parsed, dict) else None
    if decision not in DECISIONS:
        return None, (f"the answer {json.dumps(parsed)[:200]} has no decision among {', '.join(DECISIONS)}")
    return parsed, None


def _log_escalation(context: DurableContext) -> Callable[[str, EscalationRequest], None]:
    def log(callback_id: str, request: EscalationRequest) -> None:
        again = f" ({request.note})" if request.note else ""
        context.logger.warning(
            "saga %r: compensation %r failed (%s: %s)%s; a person must decide: durably callback success %s "
            "--payload '{\"decision\": \"retry\"}' (or \"resolved\" with a \"note\", or \"abort\")",
            request.saga, request.step, request.error.get("ErrorType"), request.error.get("ErrorMessage"), again,
            callback_id, extra={"callbackId": callback_id})
    return log
