"""SQLite WAL frames (pages written) per unit of work: what a commit costs the disk, repeatably.

    python bench/wal_frames.py [step] [map] [floor]     (default: all three)

Each measure runs its workload twice in a child process, at two sizes, on a fresh database
whose connections never checkpoint the WAL (``wal_autocheckpoint = 0``, set on every connection
sqlite3 opens in that process), so the -wal file holds every frame written. The difference in
frames divided by the difference in size is the cost of one unit: ``step`` one sequential step
end to end (W1), ``map`` one map item (W3), ``floor`` one row inserted and committed alone (the
W1 floor). Each frame is one page written; a commit writes every page it changed.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SIZES = {"step": (50, 550), "map": (50, 550), "floor": (50, 550)}
WAL_HEADER = 32
FRAME_HEADER = 24


def _never_checkpoint() -> None:
    connect = sqlite3.connect

    def connect_without_checkpoints(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    sqlite3.connect = connect_without_checkpoints  # type: ignore[assignment]


DATABASES = {"step": "w1.db", "map": "w3-map.db", "floor": "floor.db"}


def run_workload(what: str, n: int, workdir: Path) -> int:
    """The workload itself (in the child process); the frames it wrote. A connection of its own
    stays open meanwhile, as the last one to close would checkpoint the WAL and delete it."""
    import floor
    import workloads

    db = workdir / DATABASES[what]
    keeper = sqlite3.connect(db)
    keeper.execute("PRAGMA journal_mode = WAL").fetchone()
    keeper.execute("SELECT count(*) FROM sqlite_master").fetchone()
    _never_checkpoint()
    if what == "step":
        workloads.w1(db, "OFF", n)
    elif what == "map":
        workloads.w3(db, "OFF", "map", n)
    else:
        floor.commit_per_row(db, "OFF", n)
    count = frames(db)
    keeper.close()
    return count


def frames(db: Path) -> int:
    """Frames in ``db``'s write-ahead log."""
    wal = Path(f"{db}-wal")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return (wal.stat().st_size - WAL_HEADER) // (page_size + FRAME_HEADER) if wal.exists() else 0


def measure(what: str) -> float:
    """WAL frames per unit of ``what``."""
    counts = []
    for n in SIZES[what]:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, __file__, "--child", what, str(n), tmp],
                                 capture_output=True, text=True, check=True)
            counts.append(int(out.stdout.split()[-1]))
    small, large = SIZES[what]
    return (counts[1] - counts[0]) / (large - small)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        what, n, tmp = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
        print(run_workload(what, n, tmp))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help=f"any of {', '.join(SIZES)} (default: all)")
    chosen = parser.parse_args().what or list(SIZES)
    unknown = set(chosen) - set(SIZES)
    if unknown:
        parser.error(f"unknown measure {', '.join(sorted(unknown))}: choose from {', '.join(SIZES)}")
    for what in chosen:
        print(f"{what}: {measure(what):.2f} WAL frames per unit")


if __name__ == "__main__":
    main()
