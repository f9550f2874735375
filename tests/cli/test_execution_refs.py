"""Every command that takes an execution takes its ARN, its name or the start of its id; human output
quotes ARNs for copy-paste, JSON keeps them as AWS prints them."""

from __future__ import annotations

import shlex
from typing import Any


def test_get_history_logs_and_stop_by_name_or_id_prefix(durably: Any) -> None:
    arn = durably.start("handlers.py:approval", "--name", "order-9")["DurableExecutionArn"]
    prefix = arn.rsplit("/", 1)[-1][:8]
    assert durably.json("get", "order-9") == durably.json("get", prefix) == durably.json("get", arn)
    assert durably.json("history", prefix) == durably.json("history", arn)
    logged = durably("logs", "order-9")
    assert logged.exit_code == 0 and "waiting for " in logged.stdout
    stopped = durably("stop", prefix)
    assert stopped.exit_code == 0, stopped.stderr
    assert stopped.stdout.startswith(f"Stopped {shlex.quote(arn)} at ")
    assert shlex.split(stopped.stdout)[1] == arn  # pasted into a shell, the quoted ARN is the ARN
    assert durably.json("get", "order-9")["Status"] == "STOPPED"


def test_a_name_that_several_executions_have_is_refused_with_their_arns(durably: Any, one_line_error: Any) -> None:
    first = durably.start("handlers.py:approval", "--name", "twice")["DurableExecutionArn"]
    second = durably.start("handlers.py:approval", "--name", "twice", "--function-name", "other")
    for command in ("get", "history", "logs", "stop"):
        line = one_line_error(durably(command, "twice"), "InvalidParameterValueException")
        assert f"'{first}'" in line and f"'{second['DurableExecutionArn']}'" in line


def test_human_output_quotes_arns_and_json_does_not(durably: Any) -> None:
    run = durably("run", "handlers.py:approval", "--name", "q", "--no-wait")
    arn = durably.json("get", "q")["DurableExecutionArn"]
    assert run.stdout.splitlines()[0] == f"Execution: {shlex.quote(arn)}"
    assert durably("get", "q").stdout.splitlines()[0] == f"Execution: {shlex.quote(arn)}"
    assert durably("list").stdout.splitlines()[-1].startswith(f"More on one: durably --db {durably.db} get "
                                                              f"{shlex.quote(arn)} ")
    assert [e["DurableExecutionArn"] for e in durably.json("list")["DurableExecutions"]] == [arn]
    assert durably.json("run", "handlers.py:approval", "--name", "q", "--no-wait")["DurableExecutionArn"] == arn
