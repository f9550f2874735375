"""Size limits (decided in DESIGN.md, "Limits")."""

MAX_OPERATION_PAYLOAD = 1024 * 1024
"""Step results, callback results, invoke payloads and results (bytes of UTF-8)."""
MAX_EXECUTION_RESULT = 6 * 1024 * 1024
"""The execution's input and result."""
REPLAY_CHILDREN_THRESHOLD = 256 * 1024
"""A child/map/parallel result above this is not stored; the children are replayed instead."""
MAX_WAIT_SECONDS = 31_622_400


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))
