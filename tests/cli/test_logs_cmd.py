"""``durably logs``: the records of ``context.logger`` and step loggers kept with an execution, and ``--follow``."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
from typing import Any

import pytest

TALKATIVE = '''
from durably import DurableContext, durable_execution


@durable_execution
def talkative(event, context: DurableContext):
    context.logger.info("starting %s", event["order"])

    def charge(step):
        step.logger.warning("charging %s", event["order"])
        return 1

    context.step(charge, name="charge")
    try:
        raise ValueError("card declined")
    except ValueError:
        context.logger.exception("after the charge")
    answer = context.create_callback(name="approve").result()
    context.logger.info("approved: %s", answer)
    return answer
'''
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


@pytest.fixture
def talkative(durably: Any) -> Any:
    (durably.root / "talk.py").write_text(TALKATIVE)
    return durably


def test_the_records_of_the_handler_and_of_its_steps(talkative: Any) -> None:
    talkative.start("talk.py:talkative", "--name", "o-1", "--input", '{"order": "A-1"}')
    shown = talkative("logs", "o-1")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert re.fullmatch(STAMP + r" INFO  starting A-1", lines[0]), lines[0]
    assert re.fullmatch(STAMP + r" WARNING \[charge#1\] charging A-1", lines[1]), lines[1]
    assert re.fullmatch(STAMP + r" ERROR after the charge", lines[2]), lines[2]
    assert lines[3] == "    Traceback (most recent call last):" and lines[-1] == "    ValueError: card declined"
    assert all(line.startswith("    ") for line in lines[3:])

    records = [json.loads(line) for line in talkative("logs", "o-1", "--output", "json").stdout.splitlines()]
    assert [(r["Level"], r["Message"].splitlines()[0]) for r in records] == [
        ("INFO", "starting A-1"), ("WARNING", "charging A-1"), ("ERROR", "after the charge")]
    assert records[1]["operationName"] == "charge" and records[1]["attempt"] == 1
    assert all(dt.datetime.fromisoformat(r["Timestamp"]).tzinfo is not None for r in records)
    later = talkative("logs", "o-1", "--since-id", str(records[0]["Id"]), "--output", "json").stdout
    assert [json.loads(line) for line in later.splitlines()] == records[1:]


def test_an_execution_that_is_not_there_or_a_bad_since_id(talkative: Any, one_line_error: Any) -> None:
    talkative.start("talk.py:talkative", "--name", "o-2", "--input", '{"order": "A-2"}')
    assert "o-2" in one_line_error(talkative("logs", "o-22"), "ResourceNotFoundException")
    one_line_error(talkative("logs", "o-2", "--since-id", "-1"), "UsageError", 2)


def test_follow_prints_what_is_logged_later_and_exits_when_the_execution_ends(talkative: Any, process: Any) -> None:
    started = talkative.start("talk.py:talkative", "--name", "o-3", "--input", '{"order": "A-3"}')
    follower = process.popen("--db", str(talkative.db), "logs", "o-3", "--follow")
    try:
        assert follower.stdout is not None
        assert "starting A-3" in follower.stdout.readline()
        callback_id = talkative.callback_id(started["DurableExecutionArn"])
        assert talkative("callback", "success", callback_id, "--payload", "yes").exit_code == 0
        done = talkative.json("run", "talk.py:talkative", "--name", "o-3", "--input", '{"order": "A-3"}')
        assert done["Status"] == "SUCCEEDED"
        rest, errors = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, errors
    assert re.search(STAMP + r" INFO  approved: yes$", rest.rstrip("\n")), rest
    assert rest.count("approved: yes") == 1


def test_ctrl_c_stops_following_quietly(talkative: Any, process: Any) -> None:
    talkative.start("talk.py:talkative", "--name", "o-4", "--input", '{"order": "A-4"}')
    follower = process.popen("--db", str(talkative.db), "logs", "o-4", "-f")
    try:
        assert follower.stdout is not None
        assert "starting A-4" in follower.stdout.readline()
        follower.send_signal(signal.SIGINT)
        _, errors = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 130 and errors == ""
