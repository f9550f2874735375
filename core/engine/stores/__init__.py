"""The databases the engine can keep its executions in (the protocol is in ``stores.base``)."""

from __future__ import annotations

from pathlib import Path

from durably.core.engine.stores.base import Store

URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(db: str | Path) -> bool:
    """Whether ``db`` names a database server (PostgreSQL) rather than an SQLite file."""
    return str(db).startswith(URL_SCHEMES)


def open_store(db: str | Path, synchronous: str = "FULL", readonly: bool = False) -> Store:
    """The store for ``db``: an SQLite file path (created if missing, unless ``readonly``)."""
    if is_url(db):
        raise NotImplementedError("PostgreSQL storage is not built yet (issue 21): use an SQLite file")
    from durably.core.engine.stores.sqlite import SQLiteStore

    return SQLiteStore(db, synchronous, readonly)
