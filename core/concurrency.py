"""Running the branches of a map or parallel concurrently.

Branches start in index order, at most ``max_concurrency`` in flight: threads for sync code,
tasks for async code. A branch that suspends (a wait, a retry, a callback) keeps its slot but
does not block the others; when nothing can make progress, the batch returns and the operation
suspends the invocation. The ``complete`` policy is asked after every branch outcome; once it
says so, the outcomes are final (a branch started but not finished by then is STARTED) and
branches still running are orphaned: their next checkpoint raises ``OrphanedChildException``
instead of writing. Which branches start depends only on the outcomes, never on thread timing:
every branch the limit admits is started at once.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from durably.core.errors import ExecutionError, InvocationError, OrphanedChildException, SuspendExecution

MAX_THREADS = 64
IDLE_SECONDS = 10.0
"""How long an idle branch thread waits for another branch before it ends."""


@dataclass
class Outcome:
    status: str
    """SUCCEEDED, FAILED, SUSPENDED, ABORTED (an error that ends the whole operation) or STARTED
    (started, not finished when the batch completed)."""
    value: Any = None
    error: BaseException | None = None

    @property
    def terminal(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED")


@dataclass
class Concurrently:
    """A request from an operation to its driver: run ``branches`` (generator factories)."""

    branches: Sequence[Callable[[], Any]]
    max_concurrency: int | None
    complete: Callable[[int, int], bool]
    """Whether the batch is complete, given its counts of succeeded and failed branches."""
    orphaned: threading.Event = field(default_factory=threading.Event)

    @property
    def limit(self) -> int:
        return self.max_concurrency or max(len(self.branches), 1)


def _failure(exc: BaseException) -> Outcome:
    """How a branch that raised ``exc`` ended."""
    if isinstance(exc, SuspendExecution | OrphanedChildException):
        return Outcome("SUSPENDED", error=exc)
    if isinstance(exc, ExecutionError | InvocationError) or not isinstance(exc, Exception):
        return Outcome("ABORTED", error=exc)
    return Outcome("FAILED", error=exc)


class _Progress:
    """Scheduling state shared by the sync and async runners (counts kept as outcomes arrive)."""

    def __init__(self, req: Concurrently) -> None:
        self.req = req
        self.outcomes: list[Outcome | None] = [None] * len(req.branches)
        self.started = 0
        self.finished = 0
        self.succeeded = 0
        self.failed = 0
        self.aborted: BaseException | None = None
        self.final: list[Outcome | None] | None = None
        """The outcomes as they were when the batch completed; later outcomes change nothing."""

    def record(self, index: int, outcome: Outcome) -> None:
        if self.final is not None:
            return
        self.outcomes[index] = outcome
        self.finished += 1
        if outcome.status == "SUCCEEDED":
            self.succeeded += 1
        elif outcome.status == "FAILED":
            self.failed += 1
        elif outcome.status == "ABORTED" and self.aborted is None:
            self.aborted = outcome.error
        if self.aborted is None:
            if not self.req.complete(self.succeeded, self.failed):
                return
            self.final = [o if o is not None or i >= self.started else Outcome("STARTED")
                          for i, o in enumerate(self.outcomes)]
        if self.running():
            self.req.orphaned.set()

    def done(self) -> bool:
        return self.aborted is not None or self.final is not None or self.req.complete(self.succeeded, self.failed)

    def can_start(self) -> bool:
        held = self.started - self.succeeded - self.failed
        return self.started < len(self.req.branches) and held < self.req.limit

    def running(self) -> int:
        return self.started - self.finished

    def result(self) -> list[Outcome | None]:
        if self.aborted is not None:
            raise self.aborted
        return list(self.final if self.final is not None else self.outcomes)


class _Threads:
    """Idle branch threads, kept for the next batch: starting a thread costs more than a branch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the idle threads (a forked child does not have its parent's threads)."""
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in an idle thread, or in a new one."""
        with self._lock:
            jobs = self._idle.pop() if self._idle else None
        if jobs is None:
            jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(jobs,), name="durably-branch", daemon=True).start()
        jobs.put(job)

    def _serve(self, jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        job: Callable[[], None] | None = jobs.get()
        while job is not None:
            job()
            job = self._next(jobs)

    def _next(self, jobs: queue.SimpleQueue[Callable[[], None]]) -> Callable[[], None] | None:
        """Wait idle for the next job; None once ``IDLE_SECONDS`` passed without one."""
        with self._lock:
            self._idle.append(jobs)
        try:
            return jobs.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with self._lock:
                if jobs in self._idle:
                    self._idle.remove(jobs)
                    return None
            return jobs.get()  # taken from the idle list just as the wait ended: a job is on its way


_threads = _Threads()
os.register_at_fork(after_in_child=_threads.reset)


def run_sync(req: Concurrently, drive: Callable[[Any], Any]) -> list[Outcome | None]:
    """Run the branches in threads; ``drive`` runs one branch generator to its end.

    Branches are started (admitted) as soon as the limit allows, all at once; at most
    ``MAX_THREADS`` threads run them, each taking the next admitted branch when its own ends.
    The calling thread only waits for the batch to be complete or to have nothing left that can
    make progress.
    """
    progress = _Progress(req)
    cond = threading.Condition(threading.Lock())
    admitted: deque[int] = deque()  # started branches that no thread has taken yet

    def take() -> int | None:
        """The index of the next started branch to run, if any; called with ``cond`` held."""
        while not progress.done() and progress.can_start():
            admitted.append(progress.started)
            progress.started += 1
        return admitted.popleft() if admitted and not progress.done() else None

    def work(index: int | None) -> None:
        while index is not None:
            try:
                outcome = Outcome("SUCCEEDED", drive(req.branches[index]()))
            except BaseException as exc:  # every ending is reported to the coordinator
                outcome = _failure(exc)
            with cond:
                progress.record(index, outcome)
                index = take()
                if index is None:
                    cond.notify()

    with cond:
        threads = 0
        while threads < MAX_THREADS and (index := take()) is not None:
            _threads.run(functools.partial(work, index))
            threads += 1
        while progress.running() and not progress.done():
            cond.wait()
        return progress.result()


async def run_async(req: Concurrently, drive: Callable[[Any], Any]) -> list[Outcome | None]:
    """Run the branches as tasks; ``drive`` is a coroutine function running one branch generator."""
    import asyncio  # already loaded by the running event loop; plain handlers never import it

    progress = _Progress(req)
    changed = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def work(index: int) -> None:
        try:
            outcome = Outcome("SUCCEEDED", await drive(req.branches[index]()))
        except BaseException as exc:  # every ending is reported to the coordinator
            outcome = _failure(exc)
        progress.record(index, outcome)
        changed.set()

    while not progress.done():
        while progress.can_start():
            tasks.append(asyncio.create_task(work(progress.started)))
            progress.started += 1
        if progress.running() == 0:
            break
        changed.clear()
        await changed.wait()
    return progress.result()
