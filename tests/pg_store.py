"""Running the suites on PostgreSQL: ``DURABLY_TEST_STORE=postgres`` with ``DURABLY_TEST_POSTGRES``
set to a server URL (``.ci/run`` starts a server and sets both).

In that mode every SQLite file a test opens (``Engine(tmp_path / "x.db")``, ``--db x.db`` given to a
process started through :func:`database`) becomes a PostgreSQL database of its own, named after the
file's path, so two engines or processes on one file share one database, as they would share the
file. Databases are dropped when the test ends.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

POSTGRES = os.environ.get("DURABLY_TEST_STORE") == "postgres"
SERVER = os.environ.get("DURABLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return urlunsplit(urlsplit(SERVER)._replace(path=f"/{name}"))


def database_name(path: str | Path) -> str:
    return "t_" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:20]


def database(path: str | Path) -> str:
    """What a test passes as ``--db`` for the file ``path``: the path itself, or in PostgreSQL mode
    the URL of its database."""
    if not POSTGRES or str(path) == ":memory:" or str(path).startswith("postgresql://"):
        return str(path)
    return url_for(database_name(path))


def drop(names: set[str]) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def exists(path: str | Path) -> bool:
    """Whether the database of the file ``path`` was made (in PostgreSQL mode)."""
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database_name(path),)).fetchone()
        return found is not None
