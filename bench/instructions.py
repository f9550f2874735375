"""CPU instructions per unit of work, counted by valgrind's callgrind: repeatable where wall time is not.

    python bench/instructions.py [step] [checkpoint] [map] [load]     (default: all four)

Each measure runs its workload in a child process under callgrind at two sizes; the difference
in instructions divided by the difference in size is the cost of one unit, without the process's
start-up: ``step`` one sequential step end to end (W1), ``checkpoint`` one START+SUCCEED
checkpoint of a new step in the service alone, ``map`` one map item with one step (W3), ``load``
one stored operation read back by an invocation (W4's load). SQLite runs at synchronous=OFF, so
fsync (which costs wall time, not instructions) is left out. Needs valgrind on PATH; each
measure takes about a minute. Use it to compare two versions of the code on a noisy machine.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SIZES = {"step": (10, 510), "checkpoint": (10, 510), "map": (10, 210), "load": (500, 2500)}


def run_workload(what: str, n: int, workdir: Path) -> None:
    """The workload itself (in the child process)."""
    import workloads

    if what == "step":
        workloads.w1(workdir / "w1.db", "OFF", n)
    elif what == "map":
        workloads.w3(workdir / "w3-map.db", "OFF", "map", n)
    elif what == "checkpoint":
        _checkpoints(workdir, n)
    else:
        _load(workdir, n)


def _checkpoints(workdir: Path, n: int) -> None:
    from durably.core.engine.functions import FunctionSpec
    from durably.core.engine.service import Service
    from durably.core.engine.stores.sqlite import SQLiteStore
    from durably.core.identity import operation_id
    from durably.core.model import OperationUpdate

    service = Service(SQLiteStore(workdir / "checkpoint.db", "OFF"))
    spec = FunctionSpec("bench-checkpoint", True, None)
    service.save_function(spec)
    arn, _ = service.start_execution(spec, "{}")
    claim = service.claim(arn=arn)
    assert claim is not None
    token: str | None = claim.token
    batches = [[OperationUpdate(Id=operation_id(None, i), Type="STEP", SubType="Step", Name="trivial", Action=action,
                                Payload="1" if action == "SUCCEED" else None) for action in ("START", "SUCCEED")]
               for i in range(1, n + 1)]
    for batch in batches:
        assert token is not None
        token = service.checkpoint(arn, token, batch).CheckpointToken


def _load(workdir: Path, n: int) -> None:
    from durably.core import Engine

    engine = Engine(workdir / f"load-{n}.db", synchronous="OFF")
    operations = engine.service.all_operations((workdir / f"load-{n}.arn").read_text())
    assert len(operations) == n + 2  # the steps, the execution and the open callback


def instructions(what: str, n: int, workdir: Path) -> int:
    out = workdir / f"callgrind-{what}-{n}.out"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(Path(__file__).resolve()),
         "--child", what, str(n), str(workdir)], capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"{what} at {n} failed under callgrind:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("measures", nargs="*", help=f"what to count: {', '.join(SIZES)} (default: all)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        what, n, workdir = args.child
        run_workload(what, int(n), Path(workdir))
        return 0
    unknown = set(args.measures) - set(SIZES)
    if unknown:
        parser.error(f"unknown measure {', '.join(sorted(unknown))}; choose from {', '.join(SIZES)}")
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    for what in args.measures or list(SIZES):
        small, big = SIZES[what]
        with tempfile.TemporaryDirectory(prefix="durably-instructions-") as scratch:
            workdir = Path(scratch)
            if what == "load":  # the histories are built outside callgrind
                import workloads

                for n in (small, big):
                    (workdir / f"load-{n}.arn").write_text(workloads.w4_build_elsewhere(workdir / f"load-{n}.db", n))
            per_unit = (instructions(what, big, workdir) - instructions(what, small, workdir)) / (big - small)
        print(f"{what:<11} {per_unit:>12,.0f} instructions per unit", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
