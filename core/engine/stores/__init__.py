"""The databases the engine can keep its executions in (the protocol is in ``stores.base``)."""

from __future__ import annotations

from pathlib import Path

from durably.core.engine.stores.base import Store

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(db: str | Path) -> bool:
    """Whether ``db`` names a database server (PostgreSQL) rather than an SQLite file."""
    return str(db).startswith(URL_SCHEMES)


def open_store(db: str | Path, synchronous: str = "FULL", readonly: bool = False) -> Store:
    """The store for ``db``: a PostgreSQL URL (``postgresql://...``, needs the ``postgres`` extra) or an
    SQLite file path, created if missing unless ``readonly``. ``synchronous`` is SQLite's."""
    if is_url(db):
        try:
            from durably.core.engine.stores.postgres import PostgresStore
        except ImportError as exc:
            raise ImportError("a postgresql:// database needs psycopg: pip install 'durably[postgres]'") from exc
        return PostgresStore(str(db), readonly)
    from durably.core.engine.stores.sqlite import SQLiteStore

    return SQLiteStore(db, synchronous, readonly)
