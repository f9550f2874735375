"""Published versions of a function's code: snapshots kept under the database's folder.

``publish-version`` copies the code a handler reference imports (for ``path/file.py:attr`` the
file's whole folder, for ``package.module:attr`` its top-level package or single module file)
into ``<code folder>/versions/<function>/<N>/`` (the store's ``code_folder``: an SQLite file's
folder; for PostgreSQL a folder of this machine's); executions started on that version import the
snapshot, in a worker process of the version's own (see :mod:`durably.core.engine.version_worker`).

The snapshot is also kept in the database, packed (:func:`pack`), so a worker on another machine
that has no copy yet unpacks it into its own code folder before it runs the version
(:func:`materialise`), checked against the version's code SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from durably.core.engine.errors import HandlerImportError, InvalidParameterValueException

LATEST = "$LATEST"
ALIAS_NAME = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]{1,128}$")
"""Lambda's alias names: letters, digits, - and _, not all digits (that would read as a version)."""
WORKER_COMMAND = (sys.executable, "-c", "import sys; from durably.core.engine.version_worker import main; "
                  "main(sys.argv[1:])")
"""How a version's worker process is started (``version_worker.main``), its arguments to follow."""
MAX_ARCHIVE_BYTES = 50 * 2**20
"""The most a version's packed code may weigh (as Lambda's zipped deployment packages)."""
SKIPPED = frozenset({"__pycache__", "node_modules"})
"""Never copied, with hidden entries (``.venv``, ``.durably``, ``.git``, ...) and the database's own folder."""


def qualifier_of(arn: str) -> str:
    """The version an execution runs (``$LATEST`` or a number), from its ARN ``...:function:NAME:QUALIFIER/...``."""
    return arn.split("/", 1)[0].rsplit(":", 1)[-1]


def is_file_reference(module_part: str) -> bool:
    return module_part.endswith(".py") or os.sep in module_part


def version_folder(code_folder: Path | None, function_name: str, version: int) -> Path:
    """Where version ``version`` of ``function_name`` is kept, under a store's ``code_folder``."""
    if code_folder is None:
        raise InvalidParameterValueException("an in-memory database has no folder to keep published versions in")
    return code_folder / "versions" / function_name / str(version)


def _code_root(ref: str) -> Path:
    """What a snapshot of ``ref`` copies: a file reference's folder, a module's top-level package or file."""
    module_part, sep, attr = ref.rpartition(":")
    if not sep or not module_part or not attr:
        raise HandlerImportError(f"{ref!r} is not a handler reference (MODULE:FUNCTION or path/file.py:FUNCTION)")
    if is_file_reference(module_part):
        path = Path(module_part).resolve()
        if not path.is_file():
            raise HandlerImportError(f"cannot import {ref!r}: no file {path}")
        return path.parent
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    top = module_part.split(".")[0]
    try:  # found on the path as a new import would find it, not from a module of that name already loaded
        spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    except (ImportError, ValueError) as exc:
        raise HandlerImportError(f"cannot import {ref!r}: {exc}") from exc
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise HandlerImportError(f"cannot import {ref!r}: no module named {top!r}")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    assert spec.origin is not None
    return Path(spec.origin)


def snapshot(ref: str, dest: Path, code_folder: Path) -> str:
    """Copy the code of ``ref`` into ``dest`` (made anew), leaving out ``code_folder`` (the store's, which
    holds the snapshots); answer the reference that imports the copy."""
    root = _code_root(ref)
    db_folder = code_folder.resolve()

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.startswith(".") or n in SKIPPED or Path(folder, n).resolve() == db_folder]

    if dest.exists():
        shutil.rmtree(dest)
    module_part, _, attr = ref.rpartition(":")
    if is_file_reference(module_part):
        shutil.copytree(root, dest, ignore=ignore)
        return f"{dest / Path(module_part).name}:{attr}"
    if root.is_dir():
        shutil.copytree(root, dest / root.name, ignore=ignore)
    else:
        dest.mkdir(parents=True)
        shutil.copy2(root, dest / root.name)
    return ref


def tree_sha256(path: Path) -> str:
    """The SHA-256 of a file, or of a folder's files (their relative paths and contents)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def pack(folder: Path) -> bytes:
    """The files of a snapshot folder as a gzipped tar, its members relative to the folder; at most
    :data:`MAX_ARCHIVE_BYTES` (InvalidParameterValueException)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    data = buffer.getvalue()
    if len(data) > MAX_ARCHIVE_BYTES:
        raise InvalidParameterValueException(
            f"the code under {folder} is {len(data) / 2**20:.1f} MiB packed; at most {MAX_ARCHIVE_BYTES // 2**20} MiB"
            " can be published (leave data files out of the handler's folder)")
    return data


def materialise(folder: Path, archive: bytes, code_sha256: str) -> None:
    """Unpack a version's ``archive`` into ``folder`` (which must not exist yet), checked against the
    version's ``code_sha256``; a worker that unpacks the same version at the same time is harmless."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        if tree_sha256(staging) != code_sha256:
            raise HandlerImportError(f"the code kept in the database for {folder} does not match its SHA-256"
                                     f" {code_sha256}; publish the version again")
        try:
            staging.rename(folder)
        except OSError:
            if not folder.is_dir():  # not another worker's unpacking, done first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def local_ref(ref: str, folder: Path) -> str:
    """A version's reference, for its snapshot at ``folder`` on this machine: a file reference names the
    snapshot of the machine that published it, whose file is at the top of the snapshot here too."""
    module_part, _, attr = ref.rpartition(":")
    if not is_file_reference(module_part):
        return ref
    return f"{folder / Path(module_part).name}:{attr}"


def handler_file(ref: str) -> Path | None:
    """The file a handler reference imports (its module's file); None when it has none."""
    module_part, sep, _ = ref.rpartition(":")
    if not sep:
        return None
    if is_file_reference(module_part):
        path = Path(module_part)
        return path if path.is_file() else None
    module = sys.modules.get(module_part)
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(module_part)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    return Path(origin) if origin and os.path.isfile(origin) else None


_hashes: dict[tuple[str, int, int], str] = {}
"""Handler files already hashed, by (path, mtime, size): a start of $LATEST costs a stat."""


def code_sha256(ref: str | None) -> str | None:
    """The SHA-256 of the file ``ref`` imports now (for ``$LATEST`` executions); None when unknown."""
    path = handler_file(ref) if ref else None
    if path is None:
        return None
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in _hashes:
            _hashes[key] = tree_sha256(path)
    except OSError:
        return None
    return _hashes[key]


def check_importable(ref: str, folder: Path) -> None:
    """Import the snapshot ``ref`` in a fresh process with ``folder`` first on its path; HandlerImportError if it
    cannot be, or is not a durable handler."""
    done = subprocess.run([*WORKER_COMMAND, "check", str(folder), ref],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise HandlerImportError((done.stderr.strip().splitlines() or [f"cannot import {ref!r}"])[-1])
