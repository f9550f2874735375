"""The raw PostgreSQL floor: what the workloads cost with nothing but psycopg (no durably import).

The same rows as the SQLite floor (``floor.ROW_DOC``), in a table keyed like durably's journal.
One row inserted and committed per step over one connection is the least a checkpoint can cost
(W1, W2): an autocommit ``INSERT``, one round trip and one WAL flush. Each workload gets a fresh
database of the server, dropped afterwards (:func:`fresh_database`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from floor import ROW_DOC, W3_FLOOR_BATCH

TABLE = "CREATE TABLE rows(arn TEXT NOT NULL, seq BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(arn, seq))"
INSERT = "INSERT INTO rows VALUES (%s, %s, %s)"


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """The URL of a new, empty database on ``server`` (whose user may create databases)."""
    name = f"durably_bench_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(server: str) -> str:
    with psycopg.connect(server) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(TABLE)
    return conn


def commit_per_row(url: str, n: int) -> float:
    """Seconds to insert ``n`` rows, each committed on its own (the W1/W2 floor)."""
    with _connect(url) as conn:
        start = time.perf_counter()
        for i in range(n):
            conn.execute(INSERT, ("floor", i, ROW_DOC))
        return time.perf_counter() - start


def batched(url: str, n: int, batch: int = W3_FLOOR_BATCH) -> float:
    """Seconds to insert ``n`` rows committed ``batch`` at a time, one round trip per batch (W3)."""
    with _connect(url) as conn:
        start = time.perf_counter()
        for first in range(0, n, batch):
            with conn.pipeline(), conn.transaction():
                conn.cursor().executemany(INSERT, [("floor", i, ROW_DOC) for i in range(first, min(first + batch, n))])
        return time.perf_counter() - start


def read_all(url: str, n: int) -> float:
    """Seconds to read back all ``n`` rows of a history (the W4 floor), on a fresh connection."""
    with _connect(url) as conn:
        conn.cursor().executemany(INSERT, [("floor", i, ROW_DOC) for i in range(n)])
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        rows = conn.execute("SELECT seq, doc FROM rows WHERE arn = %s ORDER BY seq", ("floor",)).fetchall()
        elapsed = time.perf_counter() - start
    assert len(rows) == n
    return elapsed
