"""``durably redrive``: a failed execution taken up again once the fault is fixed, and its errors.

The handler's last step fails until a file ``fixed`` exists in the working directory (the fix);
every step body appends its name to ``runs.txt``, so the tests see which bodies ran again.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from durably.cli.resolve import quoted

SHIPPING = '''
from pathlib import Path

from durably import DurableContext, RetryPresets, StepConfig, durable_execution


def counted(name):
    with open("runs.txt", "a") as runs:
        runs.write(name + "\\n")
    return name


def ship(_):
    counted("ship")
    if not Path("fixed").exists():
        raise RuntimeError("carrier down")
    return "shipped"


@durable_execution
def order(event, context: DurableContext):
    reserved = context.step(lambda _: counted("reserve"), name="reserve")
    charged = context.step(lambda _: counted("charge"), name="charge")
    return [reserved, charged, context.step(ship, name="ship", config=StepConfig(retry_strategy=RetryPresets.none()))]
'''


def arn_of(cli: Any, name: str) -> str:
    return str(cli.json("list", "--name", name)["DurableExecutions"][0]["DurableExecutionArn"])


def runs(root: Path) -> list[str]:
    return (root / "runs.txt").read_text().split()


@pytest.fixture
def shipping(durably: Any) -> Any:
    """``durably`` with ``shipping.py`` and one failed execution of it named ``o-1``."""
    (durably.root / "shipping.py").write_text(SHIPPING)
    assert durably("run", "shipping.py:order", "--name", "o-1", "--quiet").exit_code == 1
    assert runs(durably.root) == ["reserve", "charge", "ship"]
    return durably


def test_redrive_wait_replays_what_completed_and_runs_the_fixed_step(shipping: Any) -> None:
    (shipping.root / "fixed").touch()
    result = shipping("redrive", "o-1", "--wait")
    assert result.exit_code == 0, result.stderr
    assert runs(shipping.root) == ["reserve", "charge", "ship", "ship"]  # reserve and charge replayed
    assert "Status: SUCCEEDED" in result.stdout and "o-1-redrive-1" in result.stdout
    assert "redriving '" in result.stderr  # the original and the new ARN, quoted
    execution = shipping.json("get", shlex.split(result.stdout.split("Execution: ")[1])[0])
    assert execution["RedriveOf"] == arn_of(shipping, "o-1")
    assert execution["Result"] == '["reserve","charge","shipped"]'
    shown = shipping("get", "o-1-redrive-1").stdout
    assert any(line.split() == ["Redrive", "of", f"'{arn_of(shipping, 'o-1')}'"] for line in shown.splitlines())


def test_redrive_prints_the_new_arn_quoted_for_a_worker_to_run(shipping: Any,
                                                                one_line_error: Callable[..., str]) -> None:
    result = shipping("redrive", "o-1")
    assert result.exit_code == 0, result.stderr
    intro, arn_line = result.stdout.strip().splitlines()
    assert intro == "Redrive of o-1, keeping 2 operation(s); `durably worker` runs it:"
    arn = shlex.split(arn_line)[0]
    assert arn_line == quoted(arn) and "/durable-execution/o-1-redrive-1/" in arn
    assert shipping.json("get", arn)["Status"] == "RUNNING"
    assert "still RUNNING" in one_line_error(shipping("redrive", "o-1-redrive-1"), "InvalidParameterValueException")
    as_json = shipping.json("redrive", "o-1", "--name", "second-try")
    assert as_json["DurableExecutionName"] == "second-try" and as_json["RedriveOf"] == arn_of(shipping, "o-1")
    assert [e["EventType"] for e in shipping.events(arn)] == [
        "ExecutionStarted", "StepStarted", "StepSucceeded", "StepStarted", "StepSucceeded"]


def test_redrive_from_an_operation_runs_it_again(shipping: Any) -> None:
    (shipping.root / "fixed").touch()
    result = shipping("redrive", "o-1", "--from", "charge", "--wait", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert runs(shipping.root) == ["reserve", "charge", "ship", "charge", "ship"]


def test_redrive_that_fails_again_exits_1(shipping: Any) -> None:
    result = shipping("redrive", "o-1", "--wait", "--quiet")
    assert result.exit_code == 1 and "Status: FAILED" in result.stdout
    assert runs(shipping.root) == ["reserve", "charge", "ship", "ship"]


def test_redrive_errors_are_one_line(shipping: Any, one_line_error: Callable[..., str]) -> None:
    assert "no execution is named 'nope'" in one_line_error(shipping("redrive", "nope"), "ResourceNotFoundException")
    line = one_line_error(shipping("redrive", "o-1", "--from", "refund"), "InvalidParameterValueException")
    assert "no operation is named 'refund'; the execution's operations are named 'reserve', 'charge', 'ship'" in line
    one_line_error(shipping("redrive", "o-1", "--from", " "), "InvalidParameterValueException", exit_code=2)
    one_line_error(shipping("redrive", "o-1", "--name", "not valid"), "InvalidParameterValueException", exit_code=2)
    assert shipping("redrive", "o-1", "--name", "taken").exit_code == 0
    assert "already exists" in one_line_error(shipping("redrive", "o-1", "--name", "taken"),
                                              "DurableExecutionAlreadyStartedException")
    (shipping.root / "fixed").touch()
    assert shipping("run", "shipping.py:order", "--name", "fine", "--quiet").exit_code == 0
    assert "SUCCEEDED: there is nothing to recover" in one_line_error(shipping("redrive", "fine"),
                                                                      "InvalidParameterValueException")
    missing = shipping("redrive", "o-1", "--db", str(shipping.root / "none.db"))
    assert "no database at" in one_line_error(missing, "ResourceNotFoundException")
    assert not (shipping.root / "none.db").exists()


def test_the_quoted_arn_pasted_into_a_shell_redrives(tmp_path: Path, process: Any) -> None:
    (tmp_path / "shipping.py").write_text(SHIPPING)
    failed = process("run", "shipping.py:order", "--quiet", "--output", "json", check=False)
    assert failed.returncode == 1, failed.stderr
    arn = failed.stdout.split('"DurableExecutionArn": "')[1].split('"')[0]
    (tmp_path / "fixed").touch()
    command = f"{shlex.quote(sys.executable)} -m durably redrive {quoted(arn)} --wait --quiet"
    done = subprocess.run(["sh", "-c", command], cwd=tmp_path, env=process.env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert runs(tmp_path) == ["reserve", "charge", "ship", "ship"]
