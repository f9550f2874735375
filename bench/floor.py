"""The raw SQLite floor: what the workloads cost with nothing but sqlite3 (no durably import).

Same journal settings as durably's store: WAL, and the ``synchronous`` level under test. Rows are
small (one short JSON document, the size of a stored step), in a table keyed like durably's.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

ROW_DOC = json.dumps({
    "Id": "c4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b", "Type": "STEP",
    "SubType": "Step", "Name": "trivial", "Status": "SUCCEEDED", "StartTimestamp": 1764000000000,
    "EndTimestamp": 1764000000000, "StepDetails": {"Attempt": 1, "Result": "1"},
}, separators=(",", ":"))
"""One small row: a completed step as durably stores it (about 220 bytes)."""

W3_FLOOR_BATCH = 20
"""Rows per commit in the batched-commit floor (W3)."""


def connect(path: str | Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute("CREATE TABLE IF NOT EXISTS rows(arn TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,"
                 " PRIMARY KEY(arn, seq)) WITHOUT ROWID")
    return conn


def commit_per_row(path: str | Path, sync: str, n: int) -> float:
    """Seconds to insert ``n`` rows, one committed transaction each (the W1/W2 floor)."""
    conn = connect(path, sync)
    try:
        start = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO rows VALUES (?, ?, ?)", ("floor", i, ROW_DOC))
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def batched(path: str | Path, sync: str, n: int, batch: int = W3_FLOOR_BATCH) -> float:
    """Seconds to insert ``n`` rows committed ``batch`` at a time (the W3 floor)."""
    conn = connect(path, sync)
    try:
        start = time.perf_counter()
        for first in range(0, n, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO rows VALUES (?, ?, ?)",
                             [("floor", i, ROW_DOC) for i in range(first, min(first + batch, n))])
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def read_all(path: str | Path, sync: str, n: int) -> float:
    """Seconds to read back all ``n`` rows of a history (the W4 floor), on a fresh connection."""
    conn = connect(path, sync)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO rows VALUES (?, ?, ?)", [("floor", i, ROW_DOC) for i in range(n)])
    conn.execute("COMMIT")
    conn.close()
    conn = connect(path, sync)
    try:
        start = time.perf_counter()
        rows = conn.execute("SELECT seq, doc FROM rows WHERE arn = ? ORDER BY seq", ("floor",)).fetchall()
        elapsed = time.perf_counter() - start
        assert len(rows) == n
        return elapsed
    finally:
        conn.close()
