"""Fixtures for the CLI tests: a working directory with handler files and a database."""

from __future__ import annotations

import functools
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from durably.cli import cli
from pg_store import database

HANDLERS = '''
from durably import DurableContext, durable_execution


@durable_execution
def double(event, context: DurableContext):
    doubled = context.step(lambda _: event["n"] * 2, name="double")
    context.logger.info("doubled %s", doubled)
    return {"doubled": doubled}


@durable_execution
def approval(event, context: DurableContext):
    cb = context.create_callback(name="approve")
    context.logger.info("waiting for %s", cb.callback_id)
    return {"answer": cb.result()}


@durable_execution
def boom(event, context: DurableContext):
    context.step(lambda _: "fine", name="before")
    raise ValueError("no good")


@durable_execution
def chatty(event, context: DurableContext):
    print("the handler prints")
    return context.step(lambda _: print("so does the step") or "quiet stdout", name="talk")


def plain(event):
    return event
'''


class Cli:
    """Runs ``durably`` in-process against one database in ``tmp_path``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "state" / "durably.db"
        self.runner = CliRunner()
        self.cli_group = cli

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(cli, ["--db", str(self.db), *args], env=env, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self(*args, "--output", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def start(self, handler: str, *args: str) -> dict[str, Any]:
        """``run --no-wait`` as JSON: the GetDurableExecution object."""
        return self.json("run", handler, "--no-wait", *args)  # type: ignore[no-any-return]

    def events(self, arn: str) -> list[dict[str, Any]]:
        return self.json("history", arn)["Events"]  # type: ignore[no-any-return]

    def callback_id(self, arn: str) -> str:
        started = [e for e in self.events(arn) if e["EventType"] == "CallbackStarted"]
        return str(started[-1]["CallbackStartedDetails"]["CallbackId"])


@pytest.fixture
def durably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """``durably`` in a fresh working directory holding ``handlers.py``."""
    (tmp_path / "handlers.py").write_text(HANDLERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLY_DB", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield Cli(tmp_path)


def _one_line_error(result: Result, code: str, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {code}: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def one_line_error() -> Callable[..., str]:
    """``one_line_error(result, code, exit_code=1)``: assert a clean failure and answer the line.

    Clean: that exit code, one ``Error: <code>: <message>`` line on stderr, no traceback.
    """
    return _one_line_error


def databases(args: tuple[str, ...]) -> list[str]:
    """``args`` with each ``--db FILE`` naming the file's database (in PostgreSQL mode, ``pg_store``)."""
    return [database(arg) if i > 0 and args[i - 1] == "--db" else arg for i, arg in enumerate(args)]


class Process:
    """Runs ``python -m durably`` in ``cwd`` as a real process, without the caller's DURABLY_* variables."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
        self.env["PYTHONUNBUFFERED"] = "1"

    def __call__(self, *args: str, check: bool = True, **options: Any) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "durably", *databases(args)], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=60, **options)
        if check:
            assert done.returncode == 0, (done.stdout, done.stderr)
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "durably", *databases(args)], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def process(tmp_path: Path) -> Process:
    """``durably`` as real processes working in ``tmp_path``."""
    return Process(tmp_path)


def _on_terminal(process: Process, *args: str, columns: int = 100) -> list[str]:
    """The lines ``durably ARGS`` prints on a pseudo-terminal COLUMNS wide (colours and styles removed)."""
    main, child = pty.openpty()
    env = {**process.env, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "durably", *databases(args)], cwd=process.cwd, env=env, stdout=child,
                            stderr=subprocess.PIPE)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode()).splitlines()


@pytest.fixture
def terminal(process: Process) -> Callable[..., list[str]]:
    """``terminal(*args, columns=100)``: the lines ``durably ARGS`` prints on a pseudo-terminal that wide."""
    return functools.partial(_on_terminal, process)
