"""``bench/run.py --quick`` runs to the end and reports every workload (no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.mark.timeout(300)
@pytest.mark.skipif(not RUN.exists(), reason="bench/ is not part of this checkout")
def test_quick_bench_runs_and_reports_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for workload in ("W1 ", "W2 ", "W3 ", "W4 "):
        assert workload in proc.stdout, proc.stdout
    assert out.exists()
