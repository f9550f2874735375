"""Size limits (decided in DESIGN.md, "Limits")."""

MAX_OPERATION_PAYLOAD = 1024 * 1024
"""Step results, callback results, invoke payloads and results (bytes of UTF-8)."""
MAX_EXECUTION_RESULT = 6 * 1024 * 1024
"""The execution's input and result."""
INLINE_EXECUTION_RESULT = MAX_EXECUTION_RESULT - 50
"""A longer result is checkpointed (``EXECUTION SUCCEED``) instead of returned in the invocation's
response, which must also fit Lambda's 6 MB response limit (AWS's SDK uses the same threshold)."""
REPLAY_CHILDREN_THRESHOLD = 256 * 1024
"""A child/map/parallel result above this is not stored; the children are replayed instead."""
MAX_WAIT_SECONDS = 31_622_400

# An ErrorObject is stored in its operation and again in each failure event, so its fields are
# bounded (``ErrorObject.bounded``): a longer text is cut and ends with a visible marker that
# names its full size. A callback failure whose ErrorData is over the limit is refused instead.
MAX_ERROR_MESSAGE = 64 * 1024
"""ErrorMessage (bytes of UTF-8)."""
MAX_ERROR_TYPE = 1024
"""ErrorType: a class name."""
MAX_ERROR_DATA = MAX_OPERATION_PAYLOAD
"""ErrorData, machine-readable like a result."""
MAX_STACK_TRACE_ENTRIES = 64
"""StackTrace entries (one per frame); the innermost are kept, after a marker entry."""
MAX_STACK_TRACE_ENTRY = 1024
"""Bytes of one StackTrace entry: a frame's location and its line of source."""


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def truncated(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` bytes of UTF-8, else its start and a marker, within ``limit``."""
    size = utf8_size(text)
    if size <= limit:
        return text
    marker = f"… [truncated from {size:,} bytes]"
    keep = limit - utf8_size(marker)
    head = text[:keep] if text.isascii() else text.encode("utf-8")[:keep].decode("utf-8", "ignore")
    return head + marker


def truncated_trace(entries: list[str]) -> list[str]:
    """The last entries of a stack trace within the limits, after a marker when some are left out."""
    if len(entries) > MAX_STACK_TRACE_ENTRIES:
        left_out = len(entries) - MAX_STACK_TRACE_ENTRIES + 1
        entries = [f"… [{left_out:,} outer entries left out]\n", *entries[-MAX_STACK_TRACE_ENTRIES + 1:]]
    return [truncated(entry, MAX_STACK_TRACE_ENTRY) for entry in entries]
