"""Worker processes for published versions: each version's code runs in processes of its own.

Two versions of a function import modules of the same names (their ``pricing.py``, say); in one
process ``sys.modules`` would mix them. So the engine runs an invocation of a published version
in a child process of that (function, version): the parent claims the execution and holds its
lease as for any invocation (renewing it while the child runs), hands the claim to an idle child
of the version (starting one if none is idle, up to one per running invocation), and the child
runs it with the parent's lease owner and records its end, fenced by the claim's token as in
the parent. A child that exits during an invocation has it recorded as crashed at once; a child
whose parent dies exits when it next reads (its stdin closes), and whatever it was running is
taken over like any dead worker's invocation. ``$LATEST`` runs in the parent, as before.

A child runs :func:`main` with ``serve DB FOLDER OWNER LEASE_MS`` (one claim per line on stdin, one
answer per line on stdout) or ``check FOLDER REF`` (import a snapshot, at publishing).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from durably.core.engine import code_versions, functions, lambda_contract
from durably.core.engine.errors import HandlerImportError
from durably.core.engine.service import Claim
from durably.core.engine.stores.base import Store
from durably.core.execution import DurableFunction


class WorkerExited(Exception):
    """A version's worker process exited during an invocation."""


class _Child:
    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, claim: Claim) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(dataclasses.asdict(claim)) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it exited: the read below says so
        answer = self.proc.stdout.readline()
        if not answer:
            raise WorkerExited(f"the worker process {self.proc.pid} of version {code_versions.qualifier_of(claim.arn)}"
                               f" of {claim.function_name} exited during the invocation (exit code {self.proc.wait()})")
        return str(json.loads(answer)["ended"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class VersionWorkers:
    """The parent's side: idle child processes per (function, version), started on demand."""

    def __init__(self, store: Store, owner: str, lease_ms: int) -> None:
        self.store, self.owner, self.lease_ms = store, owner, lease_ms
        self._idle: dict[tuple[str, str], list[_Child]] = {}
        self._lock = threading.Lock()

    def invoke(self, claim: Claim) -> str:
        """Run ``claim`` in a process of its version; answer how it ended. WorkerExited if the process died."""
        key = (claim.function_name, code_versions.qualifier_of(claim.arn))
        with self._lock:
            idle = self._idle.setdefault(key, [])
            child = idle.pop() if idle else None
        if child is None:
            folder = code_versions.version_folder(self.store.code_folder, key[0], int(key[1]))
            if not folder.is_dir():  # published on another machine: its code is in the database
                kept = self.store.read(lambda tx: tx.code_archive(key[0], int(key[1])))
                if kept is not None:
                    code_versions.materialise(folder, *kept)
            child = _Child([*code_versions.WORKER_COMMAND, "serve", self.store.url, str(folder), self.owner,
                            str(self.lease_ms)])
        try:
            ended = child.run(claim)
        except BaseException:
            child.proc.kill()
            child.proc.wait()
            raise
        with self._lock:
            self._idle.setdefault(key, []).append(child)
        return ended

    def close(self) -> None:
        with self._lock:
            children = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for child in children:
            child.close()


def _serve(db: str, folder: str, owner: str, lease_ms: int) -> None:
    from durably.core.engine.engine import Engine

    engine = Engine(db, lease_seconds=max(1, lease_ms // 1000), workers=1)
    engine.isolate_versions = False
    engine.service.owner = owner  # the parent's lease: renewals and takeovers treat the invocation as its own
    try:
        for line in sys.stdin:
            claim = Claim(**json.loads(line))
            if claim.ref is not None:
                claim = dataclasses.replace(claim, ref=code_versions.local_ref(claim.ref, Path(folder)))
            ended = engine._invoke(claim)
            try:
                sys.stdout.write(json.dumps({"ended": ended}) + "\n")
                sys.stdout.flush()
            except BrokenPipeError:  # the parent died meanwhile: nobody to answer
                return
    finally:
        engine.close()
        engine.store.close()


def _check(ref: str) -> None:
    try:
        obj = functions.load_reference(ref)
    except HandlerImportError as exc:
        sys.exit(str(exc))
    if not (isinstance(obj, DurableFunction) or lambda_contract.is_aws_sdk_handler(obj)):
        sys.exit(f"{ref!r} is not decorated with @durable_execution")


def main(argv: list[str]) -> None:
    # The parent ends this process (by closing its stdin) once its invocations have: a Ctrl-C or SIGTERM sent
    # to the whole process group must not cut them short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command, folder = argv[0], argv[2] if argv[0] == "serve" else argv[1]
    sys.path[:0] = [folder, os.getcwd()]  # the snapshot before the working directory load_reference adds
    if command == "check":
        _check(argv[2])
    else:
        _serve(argv[1], folder, argv[3], int(argv[4]))

