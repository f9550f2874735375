"""The conformance matcher on handmade cases (README §4 of the suite)."""

from __future__ import annotations

from typing import Any

from .matcher import LogRecord, Matcher, check, substitute


def ev(event_id: int, event_type: str, **fields: Any) -> dict[str, Any]:
    return {"EventType": event_type, "EventId": event_id, "EventTimestamp": 1000 + event_id, **fields}


ACTUAL = [
    ev(1, "ExecutionStarted", ExecutionStartedDetails={"Input": {"Payload": "null"}}),
    ev(2, "StepStarted", Id="abc", SubType="Step", Name="s", StepStartedDetails={}),
    ev(3, "StepSucceeded", Id="abc", SubType="Step", Name="s",
       StepSucceededDetails={"Result": {"Payload": '"hi"', "Truncated": False},
                             "RetryDetails": {"CurrentAttempt": 1}}),
    ev(4, "InvocationCompleted", InvocationCompletedDetails={"RequestId": "r"}),
    ev(5, "ExecutionSucceeded", ExecutionSucceededDetails={"Result": {"Payload": '"hi"'}}),
]


def history_errors(expected: list[dict[str, Any]], actual: list[dict[str, Any]] = ACTUAL,
                   bindings: dict[str, Any] | None = None) -> list[str]:
    m = Matcher(bindings=dict(bindings or {}))
    m.match_history(expected, actual)
    return m.errors


def test_events_are_matched_by_event_id_ignoring_holes_and_the_tail() -> None:
    expected = [
        {"EventType": "StepStarted", "EventId": 2, "Id": "${ID1}", "EventTimestamp": "*", "StepStartedDetails": {}},
        {"EventType": "InvocationCompleted", "EventId": 4, "EventTimestamp": "*", "InvocationCompletedDetails": {}},
    ]
    assert history_errors(expected) == []


def test_an_extra_event_in_the_middle_shifts_the_ids_and_fails() -> None:
    actual = [*ACTUAL[:2], ev(3, "StepStarted", Id="zzz", StepStartedDetails={}),
              *({**e, "EventId": e["EventId"] + 1} for e in ACTUAL[2:])]
    expected = [{"EventType": "StepSucceeded", "EventId": 3, "Id": "${ID1}", "StepSucceededDetails": {}}]
    errors = history_errors(expected, actual)
    assert any("EventType" in e for e in errors)


def test_a_missing_event_id_fails() -> None:
    assert history_errors([{"EventType": "WaitStarted", "EventId": 9}])


def test_the_later_of_two_events_with_one_id_wins() -> None:
    actual = [ev(2, "StepStarted", StepStartedDetails={}), ev(2, "WaitStarted", WaitStartedDetails={})]
    assert history_errors([{"EventType": "WaitStarted", "EventId": 2}], actual) == []
    assert history_errors([{"EventType": "StepStarted", "EventId": 2}], actual)


def test_wildcards_need_the_key_but_match_any_value() -> None:
    actual = [ev(2, "X", Details=None, Other=5)]
    assert history_errors([{"EventId": 2, "Details": "*", "Other": {}}], actual) == []
    assert history_errors([{"EventId": 2, "Missing": "*"}], actual)
    assert history_errors([{"EventId": 2, "Missing": {}}], actual)


def test_extra_actual_keys_are_fine_and_absence_cannot_be_asserted() -> None:
    expected = [{"EventId": 3, "StepSucceededDetails": {"RetryDetails": {"CurrentAttempt": 1}}}]
    assert history_errors(expected) == []


def test_placeholders_bind_once_and_must_agree_afterwards() -> None:
    expected = [{"EventId": 2, "Id": "${ID1}"}, {"EventId": 3, "Id": "${ID1}"}, {"EventId": 4, "EventType": "${T}"}]
    m = Matcher()
    assert m.match_history(expected, ACTUAL)
    assert m.bindings == {"ID1": "abc", "T": "InvocationCompleted"}
    assert history_errors([{"EventId": 2, "Id": "${ID1}"}, {"EventId": 4, "EventType": "${ID1}"}])


def test_variables_are_bound_before_the_history() -> None:
    assert history_errors([{"EventId": 2, "Name": "${NAME}"}], bindings={"NAME": "s"}) == []
    assert history_errors([{"EventId": 2, "Name": "${NAME}"}], bindings={"NAME": "other"})


def test_a_placeholder_may_bind_null() -> None:
    actual = [ev(2, "X", ParentId=None), ev(3, "X", ParentId=None)]
    assert history_errors([{"EventId": 2, "ParentId": "${P}"}, {"EventId": 3, "ParentId": "${P}"}], actual) == []


def test_regexes_search_the_text_of_the_value() -> None:
    actual = [ev(2, "StepFailed", D={"NextAttemptDelaySeconds": 4, "ErrorType": "x.y.TransientError"})]
    assert history_errors([{"EventId": 2, "D": {"NextAttemptDelaySeconds": "${/^[0-5]$/}",
                                                "ErrorType": "${/.*TransientError$/}"}}], actual) == []
    assert history_errors([{"EventId": 2, "D": {"NextAttemptDelaySeconds": "${/^[5-9]$/}"}}], actual)


def test_inline_references_use_bound_names_and_leave_unbound_ones_literal() -> None:
    expected = [{"EventId": 3, "StepSucceededDetails": {"Result": {"Payload": '"${V}"'}}}]
    assert history_errors(expected, bindings={"V": "hi"}) == []
    assert history_errors(expected)  # unbound: compared literally with '"${V}"'
    actual = [ev(2, "X", P='"${V}"')]
    assert history_errors([{"EventId": 2, "P": '"${V}"'}], actual) == []


def test_lists_need_equal_length_and_scalars_use_python_equality() -> None:
    actual = [ev(2, "X", L=[1, 2], N=1)]
    assert history_errors([{"EventId": 2, "L": [1, 2.0], "N": True}], actual) == []
    assert history_errors([{"EventId": 2, "L": [1]}], actual)
    assert history_errors([{"EventId": 2, "N": 2}], actual)


def test_all_expected_events_are_checked() -> None:
    errors = history_errors([{"EventId": 2, "EventType": "Nope"}, {"EventId": 3, "EventType": "Nope"}])
    assert len(errors) == 2


def test_result_status_then_json_value_with_placeholders() -> None:
    m = Matcher(bindings={"IN": "abc"})
    assert m.match_result({"ExecutionStatus": "SUCCEEDED", "Result": "Hello, ${IN}!"}, "SUCCEEDED", '"Hello, abc!"')
    assert m.match_result({"ExecutionStatus": "SUCCEEDED", "Result": {"a": [1, None]}}, "SUCCEEDED", '{"a":[1,null]}')
    assert m.match_result({"ExecutionStatus": "FAILED"}, "FAILED", None)
    assert not m.match_result({"ExecutionStatus": "SUCCEEDED", "Result": "*"}, "SUCCEEDED", '"x"')
    m2 = Matcher()
    assert not m2.match_result({"ExecutionStatus": "SUCCEEDED", "Result": 1}, "FAILED", None)
    assert len(m2.errors) == 1 and "ExecutionStatus" in m2.errors[0]


def records(*fields: dict[str, Any]) -> list[LogRecord]:
    return [LogRecord(f, (float(i), i)) for i, f in enumerate(fields)]


def test_logs_count_regex_booleans_and_order() -> None:
    logs = records(
        {"plugin": "P", "hook": "start", "first": True},
        {"message": "  Greeting for abc  "},
        {"plugin": "P", "hook": "end", "status": "SUCCEEDED", "n": 1},
        {"plugin": "P", "hook": "start", "first": 1},
    )
    m = Matcher(bindings={"IN": "abc"})
    specs: list[dict[str, Any]] = [
        {"match": {"plugin": "P", "hook": "start", "first": True}, "count": 1},
        {"match": {"message": "/Greeting for ${IN}/"}, "after": [{"hook": "start", "first": True}]},
        {"match": {"message": "Greeting for abc"}, "count": 1},
        {"match": {"hook": "end", "n": 1}, "min_count": 1, "max_count": 1},
        {"match": {"message": "/ERROR/"}, "count": 0},
    ]
    assert m.match_logs(specs, logs), m.errors
    assert not Matcher().match_logs([{"match": {"hook": "start"}, "before": [{"message": "/Greeting/"}]}], logs)
    assert not Matcher().match_logs([{"match": {"hook": "missing"}}], logs)
    assert not Matcher().match_logs([{"match": {"hook": "end"}, "after": [{"hook": "missing"}]}], logs)


def test_check_stops_at_the_first_failing_phase() -> None:
    req = {
        "ExpectedExecutionHistory": [{"EventId": 2, "EventType": "WaitStarted"}],
        "ExpectedResult": {"ExecutionStatus": "FAILED"},
    }
    errors = check(req, {}, ACTUAL, "SUCCEEDED", '"hi"', [])
    assert errors and all(e.startswith("history:") for e in errors)
    req["ExpectedExecutionHistory"] = [{"EventId": 2, "EventType": "StepStarted"}]
    assert check(req, {}, ACTUAL, "SUCCEEDED", '"hi"', []) == [
        "result: result.ExecutionStatus: expected 'FAILED', got 'SUCCEEDED'"]
    req["ExpectedResult"] = {"ExecutionStatus": "SUCCEEDED", "Result": "hi"}
    req["ExpectedLogs"] = [{"match": {"op": "${ID}"}, "count": 1}]
    req["ExpectedExecutionHistory"] = [{"EventId": 2, "Id": "${ID}"}]
    assert check(req, {}, ACTUAL, "SUCCEEDED", '"hi"', records({"op": "abc"})) == []
    assert check(req, {}, ACTUAL, "SUCCEEDED", '"hi"', records({"op": "zzz"}))


def test_substitute_recurses_and_keeps_unbound_names() -> None:
    assert substitute({"a": ["${X}-${Y}"], "b": 1}, {"X": "x"}) == {"a": ["x-${Y}"], "b": 1}
