"""The ``durably`` verbs in-process (CliRunner): run, list, get, history, stop, callback."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from durably.core.engine.engine import Engine
from durably.core.engine.functions import FunctionSpec
from durably.core.engine.history import render_timestamps


def _iso_with_zone(value: str) -> bool:
    return dt.datetime.fromisoformat(value).tzinfo is not None


def test_run_prints_result_and_history_table(durably: Any) -> None:
    result = durably("run", "handlers.py:double", "--input", '{"n": 21}')
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Execution: 'arn:aws:lambda:us-east-1:000000000000:function:handlers-double:$LATEST/" in out
    for column in ("EventId", "EventType", "SubType", "Name", "Details"):
        assert column in out
    assert "StepSucceeded" in out and "Result: 42" in out
    assert 'Status: SUCCEEDED  Result: {"doubled":42}' in out


def test_run_json_is_get_durable_execution(durably: Any) -> None:
    result = durably("run", "handlers.py:double", "--input", '{"n": 2}', "--output", "json")
    assert result.exit_code == 0, result.stderr
    execution = json.loads(result.stdout)  # stdout holds nothing but the response
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"]) == {"doubled": 4}
    assert execution["InputPayload"] == '{"n": 2}'
    assert execution["DurableExecutionArn"].startswith("arn:aws:lambda:us-east-1:000000000000:function:")
    assert "Events" not in execution
    assert _iso_with_zone(execution["StartTimestamp"]) and _iso_with_zone(execution["EndTimestamp"])
    assert execution == durably.json("get", execution["DurableExecutionArn"])


def test_workflow_logs_are_json_lines_on_stderr(durably: Any) -> None:
    result = durably("run", "handlers.py:double", "--input", '{"n": 5}', "--output", "json", "--log-format", "json")
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert [r["message"] for r in records if r["logger"] == "durably.workflow"] == ["doubled 10"]
    record = next(r for r in records if r["logger"] == "durably.workflow")
    assert record["level"] == "INFO" and _iso_with_zone(record["timestamp"])
    assert record["executionArn"] == json.loads(result.stdout)["DurableExecutionArn"]
    warnings = durably("run", "handlers.py:double", "--input", '{"n": 6}', "--log-level", "warning")
    assert warnings.exit_code == 0 and "doubled" not in warnings.stderr
    quiet = durably("run", "handlers.py:double", "--input", '{"n": 7}', "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_prints_of_handler_code_go_to_stderr(durably: Any) -> None:
    result = durably("run", "handlers.py:chatty", "--output", "json")
    assert json.loads(result.stdout)["Result"] == '"quiet stdout"'
    assert "the handler prints" in result.stderr and "so does the step" in result.stderr


def test_failed_run_exits_1_with_the_error(durably: Any) -> None:
    result = durably("run", "handlers.py:boom")
    assert result.exit_code == 1
    assert "Status: FAILED" in result.stdout and "ValueError: no good" in result.stdout
    failed = durably("run", "handlers.py:boom", "--output", "json")
    assert failed.exit_code == 1
    execution = json.loads(failed.stdout)
    assert execution["Status"] == "FAILED"
    assert execution["Error"]["ErrorType"] == "ValueError"
    assert execution["Error"]["ErrorMessage"] == "no good"


def test_module_reference_from_the_working_directory(durably: Any) -> None:
    (durably.root / "cli_pkg_mod.py").write_text(
        "from durably import durable_execution\n\n"
        "@durable_execution\n"
        "def handler(event, context):\n"
        "    return context.step(lambda _: 'module ok', name='only')\n")
    execution = durably.json("run", "cli_pkg_mod:handler", "--function-name", "modfn", "--region", "eu-west-1")
    assert execution["Status"] == "SUCCEEDED" and execution["Result"] == '"module ok"'
    assert execution["FunctionArn"] == "arn:aws:lambda:eu-west-1:000000000000:function:modfn:$LATEST"


def test_no_wait_then_callback_then_run_again_by_name(durably: Any) -> None:
    started = durably.start("handlers.py:approval", "--name", "order-7", "--input", "{}")
    assert started["Status"] == "RUNNING"
    arn = started["DurableExecutionArn"]
    assert "/durable-execution/order-7/" in arn
    table = durably("run", "handlers.py:approval", "--name", "order-7", "--input", "{}", "--no-wait")
    assert table.exit_code == 0
    callback_id = durably.callback_id(arn)
    assert "\nStatus: RUNNING\n" in table.stdout
    assert f"durably --db {durably.db} callback success {callback_id} --payload TEXT" in table.stdout

    assert durably("callback", "heartbeat", callback_id).exit_code == 0
    sent = durably("callback", "success", callback_id, "--payload", "  raw text, not JSON ")
    assert sent.exit_code == 0 and callback_id in sent.stdout
    event = durably.events(arn)[-1]
    assert event["EventType"] == "CallbackSucceeded"
    assert event["CallbackSucceededDetails"]["Result"]["Payload"] == "  raw text, not JSON "

    # the same name and input is the same execution: ``run`` drives it to the end
    done = durably.json("run", "handlers.py:approval", "--name", "order-7", "--input", "{}")
    assert done["DurableExecutionArn"] == arn and done["Status"] == "SUCCEEDED"
    assert json.loads(done["Result"]) == {"answer": "  raw text, not JSON "}


def test_callback_failure_payload_is_the_error(durably: Any) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    callback_id = durably.callback_id(arn)
    payload = json.dumps({"ErrorType": "Rejected", "ErrorMessage": "not today", "ErrorData": {"by": "ann"}})
    sent = durably("callback", "failure", callback_id, "--payload", payload, "--output", "json")
    assert sent.exit_code == 0 and json.loads(sent.stdout) == {}
    event = durably.events(arn)[-1]
    assert event["EventType"] == "CallbackFailed"
    assert event["CallbackFailedDetails"]["Error"]["Payload"] == {
        "ErrorType": "Rejected", "ErrorMessage": "not today", "ErrorData": '{"by":"ann"}'}
    assert durably.json("run", "handlers.py:approval", "--no-wait", "--name", "x")["Status"] == "RUNNING"


def test_callback_payload_from_file(durably: Any) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    (durably.root / "answer.json").write_text('{"approved": true}')
    sent = durably("callback", "success", durably.callback_id(arn), "--payload", "file://answer.json")
    assert sent.exit_code == 0, sent.stderr
    assert durably.events(arn)[-1]["CallbackSucceededDetails"]["Result"]["Payload"] == '{"approved": true}'


def test_stop(durably: Any, one_line_error: Any) -> None:
    arn = durably.start("handlers.py:approval")["DurableExecutionArn"]
    stopped = durably.json("stop", arn, "--error-type", "Ops.Cancelled", "--error-message", "by ops")
    assert _iso_with_zone(stopped["StopTimestamp"])
    execution = durably.json("get", arn)
    assert execution["Status"] == "STOPPED"
    assert execution["Error"] == {"ErrorType": "Ops.Cancelled", "ErrorMessage": "by ops"}
    assert durably.events(arn)[-1]["EventType"] == "ExecutionStopped"
    line = one_line_error(durably("stop", arn), "InvalidParameterValueException")
    assert "already STOPPED" in line
    table = durably("get", arn)
    assert "STOPPED" in table.stdout and "Ops.Cancelled: by ops" in table.stdout


def test_run_of_a_stopped_execution_exits_1(durably: Any) -> None:
    arn = durably.start("handlers.py:approval", "--name", "halt")["DurableExecutionArn"]
    assert durably("stop", arn).exit_code == 0
    again = durably("run", "handlers.py:approval", "--name", "halt", "--output", "json")
    assert again.exit_code == 1 and json.loads(again.stdout)["Status"] == "STOPPED"


def test_list_filters_and_shapes(durably: Any) -> None:
    ok = durably.json("run", "handlers.py:double", "--input", '{"n": 1}', "--name", "first")
    durably("run", "handlers.py:boom", "--name", "second")
    waiting = durably.start("handlers.py:approval", "--name", "third")

    every = durably.json("list")["DurableExecutions"]
    assert [e["DurableExecutionName"] for e in every] == ["third", "second", "first"]
    assert set(every[0]) >= {"DurableExecutionArn", "DurableExecutionName", "FunctionArn", "Status",
                             "StartTimestamp"}
    assert all(_iso_with_zone(e["StartTimestamp"]) for e in every)
    assert [e["DurableExecutionArn"] for e in durably.json("list", "--status", "RUNNING")["DurableExecutions"]] \
        == [waiting["DurableExecutionArn"]]
    both = durably.json("list", "--status", "SUCCEEDED", "--status", "failed")["DurableExecutions"]
    assert {e["Status"] for e in both} == {"SUCCEEDED", "FAILED"}
    assert len(durably.json("list", "--status", "SUCCEEDED,FAILED")["DurableExecutions"]) == 2
    by_function = durably.json("list", "--function-name", "handlers-double")["DurableExecutions"]
    assert [e["DurableExecutionArn"] for e in by_function] == [ok["DurableExecutionArn"]]
    assert len(durably.json("list", "--name", "second")["DurableExecutions"]) == 1
    assert len(durably.json("list", "--max-items", "2")["DurableExecutions"]) == 2

    table = durably("list")
    assert table.exit_code == 0
    for execution in every:  # a row: its name and the start of its id; the full ARN is in get and JSON
        exec_id = execution["DurableExecutionArn"].rsplit("/", 1)[-1]
        row = next(line for line in table.stdout.splitlines() if f" {exec_id[:8]} " in line)
        assert execution["DurableExecutionName"] in row and exec_id not in row
    assert "handlers-boom" in table.stdout and "FAILED" in table.stdout


def test_list_without_the_default_database_is_empty_and_creates_nothing(durably: Any) -> None:
    """No --db, no DURABLY_DB, and nothing has run in this folder yet: an empty list."""
    as_json = durably.runner.invoke(durably.cli_group, ["list", "--output", "json"], catch_exceptions=False)
    assert json.loads(as_json.stdout) == {"DurableExecutions": []}
    assert "No durable executions" in durably.runner.invoke(durably.cli_group, ["list"]).stdout
    assert sorted(p.name for p in durably.root.iterdir()) == ["handlers.py"]


def test_list_of_a_named_database_that_is_missing(durably: Any, one_line_error: Any) -> None:
    """--db (or DURABLY_DB) names a file that is not there: a mistake to report, not an empty list."""
    line = one_line_error(durably("list"), "ResourceNotFoundException")
    assert f"no database at {durably.db}" in line
    env_line = one_line_error(durably.runner.invoke(durably.cli_group, ["list"], env={"DURABLY_DB": "nope/x.db"}),
                              "ResourceNotFoundException")
    assert "no database at nope/x.db" in env_line
    assert sorted(p.name for p in durably.root.iterdir()) == ["handlers.py"]


def test_history_json_reads_back_unchanged(durably: Any) -> None:
    arn = durably.json("run", "handlers.py:double", "--input", '{"n": 3, "text": "\\u00e9t\\u00e9 \\ud83c\\udf1e"}'
                       )["DurableExecutionArn"]
    result = durably("history", arn, "--output", "json")
    assert result.exit_code == 0
    exported = json.loads(result.stdout)
    assert json.dumps(exported, indent=2, ensure_ascii=False) == result.stdout.rstrip("\n")
    engine = Engine(durably.db)
    try:
        assert exported == {"Events": render_timestamps(engine.get_history(arn), "iso")}
    finally:
        engine.close()
        engine.store.close()
    types = [e["EventType"] for e in exported["Events"]]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert all(_iso_with_zone(e["EventTimestamp"]) for e in exported["Events"])
    table = durably("history", arn)
    assert table.exit_code == 0 and "ExecutionSucceeded" in table.stdout and "InvocationCompleted" in table.stdout


FAILING_STEP = """\
from durably import DurableContext, RetryPresets, StepConfig, durable_execution


def lookup(_):
    return {}["sku-1"]


@durable_execution
def order(event, context: DurableContext):
    return context.step(lookup, name="lookup", config=StepConfig(retry_strategy=RetryPresets.none()))
"""


def test_history_and_get_show_the_stack_trace_of_a_failure(durably: Any) -> None:
    (durably.root / "failing.py").write_text(FAILING_STEP)
    run = durably("run", "failing.py:order", "--output", "json")
    assert run.exit_code == 1
    arn = json.loads(run.stdout)["DurableExecutionArn"]
    failed = [str(e["EventId"]) for e in durably.events(arn) if e["EventType"] in ("StepFailed", "ExecutionFailed")]
    frame = [f'  File "{durably.root / "failing.py"}", line 5, in lookup', '    return {}["sku-1"]']
    history = durably("history", arn).stdout.splitlines()
    at = history.index(f"Stack trace of EventId {', '.join(failed)}:")
    assert history[at + 1:at + 3] == frame
    shown = durably("get", arn).stdout.splitlines()
    at = next(i for i, line in enumerate(shown) if line.startswith("Stack trace "))
    assert [shown[at].removeprefix("Stack trace").strip(), shown[at + 1].strip()] == [line.strip() for line in frame]
    assert "\n".join(frame) in durably("run", "failing.py:order").stdout


def test_history_has_every_page(durably: Any) -> None:
    (durably.root / "many.py").write_text(
        "from durably import durable_execution\n\n"
        "@durable_execution\n"
        "def handler(event, context):\n"
        "    for i in range(520):\n"
        "        context.step(lambda _: i, name=f's{i}')\n"
        "    return 'done'\n")
    arn = durably.json("run", "many.py:handler", "--log-level", "ERROR")["DurableExecutionArn"]
    events = durably.events(arn)
    assert len(events) > 1000
    assert [e["EventId"] for e in events] == list(range(1, len(events) + 1))


def test_global_options_on_the_group_on_the_command_and_from_the_environment(durably: Any) -> None:
    arn = durably.json("run", "handlers.py:double", "--input", '{"n": 1}')["DurableExecutionArn"]
    by_group = durably.runner.invoke(durably.cli_group, ["--db", str(durably.db), "--output", "json", "get", arn])
    by_command = durably.runner.invoke(durably.cli_group, ["get", arn, "--db", str(durably.db), "--output", "json"])
    by_env = durably.runner.invoke(durably.cli_group, ["--output", "json", "get", arn],
                                   env={"DURABLY_DB": str(durably.db)})
    assert by_group.exit_code == by_command.exit_code == by_env.exit_code == 0
    assert json.loads(by_group.stdout) == json.loads(by_command.stdout) == json.loads(by_env.stdout)


@pytest.mark.sqlite_only
def test_default_database_is_in_the_working_directory(durably: Any) -> None:
    result = durably.runner.invoke(durably.cli_group, ["run", "handlers.py:double", "--input", '{"n": 1}'])
    assert result.exit_code == 0, result.stderr
    assert (durably.root / ".durably" / "durably.db").is_file()


def test_run_interrupted(durably: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Engine, arn: str, **kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt
    monkeypatch.setattr(Engine, "run_until_complete", interrupted)
    result = durably("run", "handlers.py:double", "--input", '{"n": 1}')
    assert result.exit_code == 130
    assert "is still RUNNING" in result.stderr and "durably worker" in result.stderr
    assert durably.json("list", "--status", "RUNNING")["DurableExecutions"]


def test_help_and_version(durably: Any) -> None:
    assert durably("--help").exit_code == 0
    for verb in ("run", "worker", "list", "get", "history", "stop", "callback"):
        assert verb in durably("--help").stdout
    assert durably("callback", "--help").exit_code == 0
    assert "0.1.0" in durably("--version").stdout


def test_get_shows_the_last_invocation_error_of_a_running_execution(durably: Any) -> None:
    """A worker that cannot import the handler leaves the execution RUNNING; `get` says why it is not moving."""
    engine = Engine(durably.db)
    try:
        arn, _ = engine.service.start_execution(FunctionSpec("gone", True, "nowhere_module_for_tests:handler"), "{}")
        assert engine.run_until_suspended(arn)["Status"] == "RUNNING"
    finally:
        engine.close()
        engine.store.close()
    shown = durably("get", arn)
    assert shown.exit_code == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if line.startswith("Last invocation error"))
    assert "HandlerImportError" in line and "nowhere_module_for_tests" in line
    assert "LastInvocationError" not in durably("get", arn, "--output", "json").stdout  # the AWS shape stays pure
