"""The help: its examples work, the exit codes it documents are the ones used, no flag that does nothing."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from durably.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

NO_REGION = ("list", "get", "history", "logs", "stop", "callback success", "callback failure", "callback heartbeat")


def _examples(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("durably ")]


def test_the_examples_of_durably_help_are_accepted(durably: Any) -> None:
    examples = _examples(durably("--help").stdout)
    assert len(examples) >= 5
    assert "durably callback success CALLBACK_ID --payload approved" in examples  # raw text, not JSON-quoted
    for example in examples:
        checked = durably(*shlex.split(example)[1:], "--help")  # options and arguments parse
        assert checked.exit_code == 0, (example, checked.stderr)


def test_the_documented_exit_codes_are_the_ones_used(durably: Any, one_line_error: Any) -> None:
    text = durably("--help").stdout
    block = text.split("Exit codes:\n", 1)[1].split("\n\n", 1)[0]
    documented = {int(code): what for code, what in re.findall(r"^\s+(\d+)\s+(.+)$", block, re.MULTILINE)}
    assert set(documented) == {0, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED}
    assert "SUCCEEDED" in documented[0]
    assert "service" in documented[EXIT_FAILED] and "FAILED" in documented[EXIT_FAILED]
    assert "usage" in documented[EXIT_USAGE] and "interrupted" in documented[EXIT_INTERRUPTED]
    assert durably("run", "handlers.py:double", "--input", '{"n": 1}').exit_code == 0
    assert durably("run", "handlers.py:boom").exit_code == EXIT_FAILED
    one_line_error(durably("get", "no-such-execution"), "ResourceNotFoundException", EXIT_FAILED)
    one_line_error(durably("list", "--status", "DONE"), "InvalidParameterValueException", EXIT_USAGE)
    one_line_error(durably("get"), "UsageError", EXIT_USAGE)
    # EXIT_INTERRUPTED: test_cli.test_run_interrupted, test_logs_cmd.test_ctrl_c_stops_following_quietly


def test_commands_that_start_no_execution_take_no_region(durably: Any, one_line_error: Any) -> None:
    for command in NO_REGION:
        assert "--region" not in durably(*command.split(), "--help").stdout, command
    for command in ("run", "worker", "serve"):
        assert "--region" in durably(command, "--help").stdout
    assert durably("run", "handlers.py:double", "--input", '{"n": 1}', "--region", "eu-west-1").exit_code == 0
    one_line_error(durably("list", "--region", "eu-west-1"), "UsageError", EXIT_USAGE)
    assert durably("--region", "eu-west-1", "list").exit_code == 0  # the group's option stays, for all


def test_callback_success_without_a_payload_answers_none(durably: Any) -> None:
    shown = " ".join(durably("callback", "success", "--help").stdout.split())
    assert "--payload TEXT Optional" in shown and "wait_for_callback return None" in shown
    arn = durably.start("handlers.py:approval", "--name", "empty")["DurableExecutionArn"]
    assert durably("callback", "success", durably.callback_id(arn)).exit_code == 0
    done = durably.json("run", "handlers.py:approval", "--name", "empty")
    assert json.loads(done["Result"]) == {"answer": None}
