"""Deterministic operation ids, bit-exact with the AWS SDK.

The n-th operation of the root context gets ``blake2b(str(n))``; of a child context,
``blake2b(f"{parent_id}-{n}")`` (hex, first 64 characters). Map and parallel branches use the
item index instead of the counter, so their ids do not depend on scheduling order.
"""

from __future__ import annotations

import hashlib


def operation_id(prefix: str | None, counter: int) -> str:
    key = f"{prefix}-{counter}" if prefix else str(counter)
    return hashlib.blake2b(key.encode()).hexdigest()[:64]


def idempotency_key(execution_arn: str, op_id: str) -> str:
    """A key for one operation of one execution: the same on every attempt and every replay."""
    return hashlib.blake2b(f"{execution_arn}#{op_id}".encode(), digest_size=16).hexdigest()
