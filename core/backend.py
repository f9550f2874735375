"""The seam between the runtime and an engine.

The embedded SQLite engine implements :class:`Backend` in-process; the AWS integration
implements it over boto3's ``lambda`` client. Tokens are single-use: every accepted checkpoint
returns the token for the next one.
"""

from __future__ import annotations

from typing import Protocol

from durably.core.model import CheckpointResponse, ExecutionState, OperationUpdate


class Backend(Protocol):
    def checkpoint(self, arn: str, token: str, updates: list[OperationUpdate]) -> CheckpointResponse:
        """Apply ``updates`` in order, atomically; answer with the new token and changed operations."""
        ...

    def get_state(self, arn: str, token: str, marker: str | None) -> ExecutionState:
        """One page of the operation log, starting at ``marker``."""
        ...
