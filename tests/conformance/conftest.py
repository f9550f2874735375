"""Conformance suite hooks: a per-suite pass table at the end of the run."""

from __future__ import annotations

from collections import defaultdict

import pytest

from .harness import load_requirements

_SUITE_OF = {req.req_id: req.suite for req in load_requirements()}
_ORDER = {req.suite: req.sort_key[0] for req in load_requirements()}
_results: dict[str, dict[str, str]] = defaultdict(dict)


def _req_id(report: pytest.TestReport) -> str | None:
    if "test_requirement[" not in report.nodeid:
        return None
    return report.nodeid.rsplit("[", 1)[1].rstrip("]")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    req_id = _req_id(report)
    if req_id is None or req_id not in _SUITE_OF:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.outcome == "skipped" else "xpassed"
        else:
            outcome = report.outcome
        _results[_SUITE_OF[req_id]][req_id] = outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _results:
        return
    write = terminalreporter.write_line
    write("")
    write("conformance: requirements passed per suite")
    write(f"  {'suite':<20} {'passed':>6} {'total':>6}  {'xfail':>5} {'skipped':>7} {'failed':>6}")
    totals = [0, 0, 0, 0, 0]
    for suite in sorted(_results, key=lambda s: _ORDER.get(s, 99)):
        outcomes = list(_results[suite].values())
        row = [outcomes.count("passed"), sum(1 for s in _SUITE_OF.values() if s == suite),
               outcomes.count("xfailed"), outcomes.count("skipped"),
               outcomes.count("failed") + outcomes.count("xpassed")]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        write(f"  {suite:<20} {row[0]:>6} {row[1]:>6}  {row[2]:>5} {row[3]:>7} {row[4]:>6}")
    write(f"  {'all':<20} {totals[0]:>6} {totals[1]:>6}  {totals[2]:>5} {totals[3]:>7} {totals[4]:>6}")
