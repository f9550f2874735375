"""The seam between the runtime and an engine.

The embedded SQLite engine implements :class:`Backend` in-process; the AWS integration
implements it over boto3's ``lambda`` client. Tokens are single-use: every accepted checkpoint
returns the token for the next one. A replay check (:mod:`durably.core.replay_check`) hooks in
through :class:`ReplayCheck` instead: it writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn, Protocol

from durably.core.model import CheckpointResponse, ExecutionState, Operation, OperationUpdate


class Backend(Protocol):
    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        """Apply ``updates`` in order, atomically; answer with the new token and changed operations."""
        ...

    def get_state(self, arn: str, token: str, marker: str | None) -> ExecutionState:
        """One page of the operation log, starting at ``marker``."""
        ...


class ReplayCheck(Protocol):
    """An invocation that only replays its history: told of every recorded operation the code replays
    and of a divergence; it refuses (by raising a suspension) whatever would write or run a body."""

    def replayed(self, op: Operation) -> None:
        """The code met ``op`` and asked for the same operation."""
        ...

    def diverged(self, op: Operation, code: OperationUpdate, message: str) -> None:
        """The code asked for ``code`` (its type, subtype, name, parent) where the history has ``op``."""
        ...

    def refuse(self, updates: Sequence[OperationUpdate]) -> NoReturn:
        """The code would write ``updates`` (or, for a START of a STARTED operation, run its body again)."""
        ...
