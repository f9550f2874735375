"""Global options (``--db``, ``--output``, ``--region``), accepted on the group and on each command
(``--region`` only on the commands that start executions)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from durably.core.engine.engine import Engine, default_db_path
from durably.core.engine.errors import ResourceNotFoundException
from durably.core.engine.service import Service
from durably.core.engine.stores import is_url, open_store

F = TypeVar("F", bound=Callable[..., Any])
OUTPUTS = ("table", "json")


@dataclass
class Settings:
    db: str | None = None
    output: str = "table"
    region: str = "us-east-1"

    @property
    def db_path(self) -> str:
        return self.db or default_db_path()

    @property
    def json(self) -> bool:
        return self.output == "json"


def _override(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(Settings), field, value)
    return callback


def group_options(f: F) -> F:
    """The global options on the ``durably`` group (with their environment variables)."""
    f = click.option("--region", envvar="DURABLY_REGION", default="us-east-1", show_default=True,
                     help="Region in the ARNs of new executions.")(f)
    f = click.option("--output", type=click.Choice(OUTPUTS), default="table", show_default=True,
                     help="table (readable) or json (AWS response shapes).")(f)
    f = click.option("--db", envvar="DURABLY_DB", type=click.Path(dir_okay=False),
                     help="An SQLite file or a postgresql:// URL [env DURABLY_DB; default .durably/durably.db].")(f)
    return f


def command_options(f: F) -> F:
    """The same options on a command that starts executions (``durably run ... --region eu-west-1``);
    they override the group's."""
    f = click.option("--region", expose_value=False, callback=_override("region"), help="As on the group.")(f)
    return database_options(f)


def database_options(f: F) -> F:
    """``--db`` and ``--output`` on a command that starts no execution (``durably get ARN --output json``)."""
    f = click.option("--output", type=click.Choice(OUTPUTS), expose_value=False, callback=_override("output"),
                     help="As on the group.")(f)
    f = click.option("--db", type=click.Path(dir_okay=False), expose_value=False, callback=_override("db"),
                     help="As on the group.")(f)
    return f


def settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


def command_prefix() -> str:
    """``durably``, with the ``--db`` this command was given: how the commands it suggests start."""
    db = settings().db
    return f"durably --db {shlex.quote(db)}" if db else "durably"


def database_exists() -> bool:
    path = settings().db_path
    return path == ":memory:" or is_url(path) or Path(path).is_file()


def _existing_database() -> str:
    """The selected database's path; ResourceNotFoundException when there is none."""
    s = settings()
    if not database_exists():
        hint = "check --db / DURABLY_DB" if s.db else "nothing has run here (pass --db or set DURABLY_DB)"
        raise ResourceNotFoundException(f"no database at {s.db_path}: {hint}")
    return s.db_path


@contextmanager
def open_engine(create: bool = True, workers: int = 4, lease_seconds: int = 60) -> Iterator[Engine]:
    """The engine on the selected database; with ``create=False`` a missing database is an error."""
    s = settings()
    path = s.db_path if create else _existing_database()
    engine = Engine(path, region=s.region, workers=workers, lease_seconds=lease_seconds)
    try:
        yield engine
    finally:
        engine.close()
        engine.store.close()


@contextmanager
def open_reader() -> Iterator[Service]:
    """The service API over the selected database, opened read-only (it need not be writable)."""
    s = settings()
    path = _existing_database()
    store = open_store(path, readonly=path != ":memory:")
    try:
        yield Service(store, region=s.region)
    finally:
        store.close()
