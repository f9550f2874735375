"""Tables fit a 100-column terminal without cells wrapped into pieces; piped output is never cut or wrapped."""

from __future__ import annotations

import re
from typing import Any

from durably.cli.render import fitted_widths

FUNCTION = "orders-fulfilment-pipeline-for-the-european-warehouses"
NAME = "order-2026-12-02-customer-4711-priority-shipment"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED")


def _start_long_ones(durably: Any) -> tuple[str, str]:
    waiting = durably.start("handlers.py:approval", "--function-name", FUNCTION, "--name", NAME)
    done = durably.json("run", "handlers.py:double", "--input", '{"n": 1}', "--function-name", FUNCTION)
    return waiting["DurableExecutionArn"], done["DurableExecutionArn"]


def test_list_rows_take_one_line_of_a_100_column_terminal(durably: Any, terminal: Any) -> None:
    waiting, done = _start_long_ones(durably)
    lines = terminal("--db", str(durably.db), "list")
    table = lines[:lines.index("")]
    assert table[0].startswith("Status") and set(table[1]) == {"─"}
    assert all(len(line) <= 100 for line in table), table
    rows = table[2:]
    assert len(rows) == 2 and all(row.startswith(STATUSES) for row in rows), rows
    for row, arn in zip(rows, (done, waiting), strict=True):  # newest first
        assert f" {arn.rsplit('/', 1)[-1][:8]} " in row  # the start of its id, whole
        assert "…" in row and FUNCTION not in row  # the long function name is cut, not wrapped
    assert rows[1].rstrip().endswith("…")  # the callback's label too; its command is below the table
    assert any(line.startswith(f"  {NAME} ") and "callback success" in line for line in lines)
    hint = next(line for line in lines if line.startswith("More on one: "))
    assert f"'{done}'" in hint or f"'{waiting}'" in hint  # whole and quoted, for copy-paste


def test_history_rows_take_one_line_and_their_details_the_next(durably: Any, terminal: Any) -> None:
    waiting, _ = _start_long_ones(durably)
    events = durably.events(waiting)
    lines = terminal("--db", str(durably.db), "history", NAME)
    assert all(len(line) <= 100 for line in lines[:2])
    rows = [line for line in lines[2:] if re.match(r"\s*\d+   " + STAMP, line)]
    assert [int(row.split()[0]) for row in rows] == [e["EventId"] for e in events]
    assert all(len(row) <= 100 for row in rows), rows
    callback_id = durably.callback_id(waiting)
    at = next(i for i, line in enumerate(lines) if "CallbackStarted" in line)
    assert lines[at + 1].strip() == f"CallbackId={callback_id}"  # whole, on the line under its row


def test_get_prints_the_whole_arn_quoted_on_one_line(durably: Any, terminal: Any) -> None:
    waiting, _ = _start_long_ones(durably)
    lines = terminal("--db", str(durably.db), "get", waiting.rsplit("/", 1)[-1][:10])
    assert lines[0] == f"Execution: '{waiting}'"
    assert any(line.split() == ["Function", FUNCTION] for line in lines)


def test_piped_output_is_neither_cut_nor_wrapped_whatever_columns_says(durably: Any) -> None:
    waiting, _ = _start_long_ones(durably)
    listed = durably("list", env={"COLUMNS": "40"}).stdout.splitlines()
    row = next(line for line in listed if line.startswith("RUNNING"))
    assert NAME in row and FUNCTION in row and "callback 'approve'" in row
    history = durably("history", waiting, env={"COLUMNS": "40"}).stdout.splitlines()
    started = next(line for line in history if "CallbackStarted" in line)
    assert re.search(STAMP, started) and f"CallbackId={durably.callback_id(waiting)}" in started
    assert len(history) == len(durably.events(waiting)) + 2  # a header, a rule, a line an event


def test_flexible_columns_share_what_is_left() -> None:
    assert fitted_widths([5, 40, 30], 60) == [5, 27, 27]
    assert fitted_widths([5, 10], 60) == [5, 10]
    assert fitted_widths([50, 50], 4) == [6, 6]  # never narrower than a few characters
