"""``bench/run.py --quick`` runs to the end and reports every workload (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"
HAS_LANGCHAIN = importlib.util.find_spec("langchain_core") is not None


@pytest.mark.timeout(300)
@pytest.mark.skipif(not RUN.exists(), reason="bench/ is not part of this checkout")
def test_quick_bench_runs_and_reports_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for workload in ("W1 ", "W2 ", "W3 ", "W4 ", "S1 saga step vs plain step", "S2 rollback of ", "A1 agent turn "):
        assert workload in proc.stdout, proc.stdout
    assert out.exists()
    rows = {row["workload"]: row for row in json.loads(out.read_text())["rows"]}
    saga_step, rollback = rows["S1"], rows["S2"]  # measured, not judged: no timing assertion here
    assert "µs/saga step" in saga_step["durably"] and "µs/plain step" in saga_step["floor"]
    assert saga_step["target"] == "<= 1.2x plain step" and saga_step["ratio_value"] > 0
    assert "µs/compensation" in rollback["durably"] and rollback["target"] == "no target"
    assert rollback["met"] is None and rollback["ratio_value"] > 0
    agent_turn = rows["A1"]
    if HAS_LANGCHAIN:
        assert "µs/turn" in agent_turn["durably"] and "µs/plain turn" in agent_turn["floor"], agent_turn
        assert agent_turn["target"] == "no target" and agent_turn["met"] is None and agent_turn["ratio_value"] > 0
        assert agent_turn["n"] == 100 and "overhead_us_per_turn" in agent_turn and "vs_sqlite_floor" in agent_turn
    else:
        assert agent_turn["durably"].startswith("skipped: langchain-core is not installed"), agent_turn


@pytest.mark.timeout(60)
@pytest.mark.skipif(not RUN.exists(), reason="bench/ is not part of this checkout")
def test_without_langchain_core_the_agent_row_is_skipped_with_a_note(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # run.py puts bench/ on it
    spec = importlib.util.spec_from_file_location("bench_run_under_test", RUN)
    assert spec is not None and spec.loader is not None
    run: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    monkeypatch.setattr(run, "A1_NEEDS", "durably_bench_no_such_module")  # as if langchain-core were missing
    assert run.main(["--quick", "--only", "A1", "--inprocess", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "A1 agent turn" in out and "skipped: langchain-core is not installed" in out, out


@pytest.mark.timeout(300)
@pytest.mark.skipif(not RUN.exists(), reason="bench/ is not part of this checkout")
@pytest.mark.skipif(not os.environ.get("DURABLY_TEST_POSTGRES"), reason="needs DURABLY_TEST_POSTGRES (a server URL)")
def test_with_a_postgres_server_the_w_rows_run_on_both_stores(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--runs", "1", "--only", "W1,W4", "--json", str(out),
                           "--postgres", os.environ["DURABLY_TEST_POSTGRES"]],
                          capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "W1 PostgreSQL: 200 sequential steps" in proc.stdout and "PostgreSQL 1" in proc.stdout, proc.stdout
    rows = json.loads(out.read_text())["rows"]
    stores = {(row["workload"], row["store"]) for row in rows}
    assert stores == {("W1", "sqlite"), ("W4", "sqlite"), ("W1", "postgres"), ("W4", "postgres")}
    pg_w1 = next(row for row in rows if row["store"] == "postgres" and row["workload"] == "W1")
    assert "µs/step" in pg_w1["durably"] and "µs/row" in pg_w1["floor"] and pg_w1["ratio_value"] > 0
    assert any(row["label"].startswith("W4 PostgreSQL: linearity") for row in rows)
