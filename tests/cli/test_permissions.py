"""A database the user may read but not write: writes say so, reads work (real processes).

As root, write permissions bind only a process without CAP_DAC_OVERRIDE, so the commands run
with that capability dropped (CAP_DAC_READ_SEARCH stays: the interpreter may live under a
``/root`` that the user ``nobody`` could not even enter). Other users need nothing special.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from durably.core.engine.engine import Engine

pytestmark = pytest.mark.sqlite_only  # file and folder permissions of SQLite databases

FLOW = '''
from durably import durable_execution


@durable_execution
def hello(event, context):
    return context.step(lambda _: "hello", name="greet")
'''
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1

Reader = Callable[..., subprocess.CompletedProcess[str]]


def _without_write_override() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE from the bounding set, so exec leaves it off."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE) failed")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """``read_only(path)`` takes the write bits off a file or folder; they come back after the test."""
    changed: list[tuple[Path, int]] = []

    def take(path: Path) -> None:
        mode = stat.S_IMODE(path.stat().st_mode)
        changed.append((path, mode))
        path.chmod(mode & ~0o222)
    yield take
    for path, mode in reversed(changed):
        if path.exists():  # a -wal or -shm file is gone once its last connection closes
            path.chmod(mode)


@pytest.fixture
def as_user(tmp_path: Path, process: Any, read_only: Callable[[Path], None]) -> Reader:
    """``as_user(*args)``: ``durably ARGS`` as a user bound by file permissions (skips if that cannot be)."""
    preexec = _without_write_override if os.geteuid() == 0 else None
    probe = tmp_path / "probe"
    probe.mkdir()
    read_only(probe)
    try:
        tried = subprocess.run([sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"], capture_output=True,
                               text=True, timeout=30, preexec_fn=preexec)
    except OSError as exc:
        pytest.skip(f"cannot run a process that file permissions bind: {exc}")
    if "PermissionError" not in tried.stderr:
        pytest.skip("this user writes into read-only folders (root whose CAP_DAC_OVERRIDE cannot be dropped)")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return process(*args, check=False, preexec_fn=preexec)  # type: ignore[no-any-return]
    return run


def _one_line(done: subprocess.CompletedProcess[str], start: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(start), done.stderr


def _database(tmp_path: Path, process: Any, where: str) -> tuple[Path, str]:
    """A database at ``where`` (under tmp_path) with one finished execution, and its ARN."""
    (tmp_path / "flow.py").write_text(FLOW)
    db = tmp_path / where
    arn = json.loads(process("--db", str(db), "run", "flow.py:hello", "--output", "json").stdout)[
        "DurableExecutionArn"]
    return db, str(arn)


@pytest.mark.parametrize("case", ["folder", "file", "folder-of-a-database", "parent-folder"])
@pytest.mark.parametrize("verb", [["run", "flow.py:hello"], ["worker"]])
def test_writing_without_permission_says_so(tmp_path: Path, process: Any, as_user: Reader,
                                            read_only: Callable[[Path], None], case: str, verb: list[str]) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "durably.db"
    if case in ("file", "folder-of-a-database"):
        db, _ = _database(tmp_path, process, "data/durably.db")
    if case == "parent-folder":
        db = folder / "sub" / "durably.db"
    read_only(db if case == "file" else folder)
    before = sorted(p.name for p in folder.iterdir())
    digest = _digest(db) if db.exists() else None
    done = as_user("--db", str(db), *verb)
    _one_line(done, f"Error: PermissionError: cannot write {db}: permission denied")
    assert sorted(p.name for p in folder.iterdir()) == before
    assert (_digest(db) if db.exists() else None) == digest


def test_reading_a_database_that_cannot_be_written(tmp_path: Path, process: Any, as_user: Reader,
                                                   read_only: Callable[[Path], None]) -> None:
    """File and folder read-only, no -shm file: read as ``immutable`` (nothing can be writing)."""
    db, arn = _database(tmp_path, process, "data/durably.db")
    assert sorted(p.name for p in db.parent.iterdir()) == ["durably.db"]
    read_only(db)
    read_only(db.parent)
    listed = as_user("--db", str(db), "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [e["DurableExecutionArn"] for e in json.loads(listed.stdout)["DurableExecutions"]] == [arn]
    got = as_user("--db", str(db), "get", arn, "--output", "json")
    assert got.returncode == 0 and json.loads(got.stdout)["Result"] == '"hello"', got.stderr
    history = as_user("--db", str(db), "history", arn)
    assert history.returncode == 0 and "StepSucceeded" in history.stdout, history.stderr
    assert sorted(p.name for p in db.parent.iterdir()) == ["durably.db"]


def test_reading_while_a_writer_has_it_open(tmp_path: Path, process: Any, as_user: Reader,
                                            read_only: Callable[[Path], None]) -> None:
    """The writer's -wal and -shm are there (read-only to this user): the reader sees the latest commits."""
    db, arn = _database(tmp_path, process, "data/durably.db")
    writer = Engine(db)
    try:
        latest = writer.start_execution(f"{tmp_path / 'flow.py'}:hello", None, name="latest")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), db.parent):
            read_only(path)
        listed = as_user("--db", str(db), "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        assert [e["DurableExecutionArn"] for e in json.loads(listed.stdout)["DurableExecutions"]] == [latest, arn]
    finally:
        writer.close()
        writer.store.close()


def test_a_missing_folder_is_no_database(tmp_path: Path, as_user: Reader) -> None:
    for verb in (["list"], ["get", "arn:x"], ["history", "arn:x"]):
        done = as_user("--db", str(tmp_path / "nowhere" / "durably.db"), *verb)
        _one_line(done, f"Error: ResourceNotFoundException: no database at {tmp_path / 'nowhere' / 'durably.db'}")
    assert not (tmp_path / "nowhere").exists()
