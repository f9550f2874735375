"""How the CLI reports failures: one line ``Error: <code>: <message>`` on stderr, no traceback."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
from durably.core.engine.errors import ServiceError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class BadInput(click.UsageError):
    """A value the user passed is unusable (exit code 2), with the AWS error code it maps to."""

    def __init__(self, message: str, code: str = "InvalidParameterValueException") -> None:
        super().__init__(message)
        self.code = code


def fail(code: str, message: str, exit_code: int = EXIT_FAILED) -> NoReturn:
    """Print ``Error: code: message`` (one line) on stderr and exit."""
    one_line = " ".join(str(message).split())
    click.echo(f"Error: {code}: {one_line}", err=True)
    sys.exit(exit_code)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the exit-time flush does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def guarded(run: Callable[[], Any]) -> Any:
    """Call ``run`` (a click ``main`` in non-standalone mode) and turn every failure into one line.

    Set ``DURABLY_DEBUG=1`` to see the traceback of an unexpected error.
    """
    try:
        return run()
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except BadInput as exc:
        fail(exc.code, exc.format_message(), EXIT_USAGE)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        fail("UsageError", exc.format_message() + hint, EXIT_USAGE)
    except click.ClickException as exc:
        fail(type(exc).__name__, exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("\nAborted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader went away (``durably list | head``): stop quietly
        _drop_stdout()
        sys.exit(EXIT_FAILED)
    except ServiceError as exc:
        fail(exc.code, str(exc))
    except sqlite3.DatabaseError as exc:
        fail("DatabaseError", str(exc))
    except OSError as exc:
        fail(type(exc).__name__, str(exc))
    except Exception as exc:
        if _is_postgres_error(exc):
            fail("DatabaseError", str(exc))
        if os.environ.get("DURABLY_DEBUG"):
            raise
        fail(type(exc).__name__, f"{exc} (set DURABLY_DEBUG=1 for the traceback)")


def _is_postgres_error(exc: Exception) -> bool:
    """Whether ``exc`` is psycopg's (only ever true once a PostgreSQL store has imported psycopg)."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)
