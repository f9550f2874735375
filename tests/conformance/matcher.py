"""Match an execution's outcome against a conformance requirement (README §4 of the suite).

Three phases, in order; the first phase that reports errors ends the check:

1. **History**: each expected event is looked up by ``EventId`` among the actual events (the
   later of two events with one id wins) and must match there. Unlisted actual events are
   ignored. Dicts match when every expected key is present and matches (extra keys are fine);
   ``'*'`` matches anything, ``{}`` matches anything (even a non-dict) but the key must exist;
   a whole-string ``${NAME}`` binds on first use and must be equal afterwards; a whole-string
   ``${/re/}`` is ``re.search`` over ``str(actual)``; otherwise bound ``${NAME}`` references are
   substituted inline and the values compared with ``==``; lists need equal lengths.
2. **Result**: the status first (a mismatch is the only error reported), then for SUCCEEDED one
   ``json.loads`` of the result compared with ``==`` to the expected value with bound names
   substituted. No wildcards.
3. **Logs**: records matched field by field (strings stripped and compared exactly, ``/re/``
   as a regex, booleans by identity), counted over the whole stream, and ordered against
   ``after`` / ``before`` anchors by their ordering key.

One binding store is shared by the three phases: the requirement's variables first, then what
the history binds, then the result and the logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WHOLE_PLACEHOLDER = re.compile(r"^\$\{(.+)\}$")
INLINE_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _regex_of(expected: str) -> str | None:
    """The pattern of a whole-string ``${/re/}``, or None."""
    if len(expected) >= 5 and expected.startswith("${/") and expected.endswith("/}"):
        return expected[3:-2]
    return None


def substitute(value: Any, bindings: Mapping[str, Any]) -> Any:
    """Replace bound ``${NAME}`` references inside strings (recursively); unbound ones stay."""
    if isinstance(value, str):
        return INLINE_PLACEHOLDER.sub(
            lambda m: str(bindings[m.group(1)]) if m.group(1) in bindings else m.group(0), value)
    if isinstance(value, list):
        return [substitute(v, bindings) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, bindings) for k, v in value.items()}
    return value


@dataclass
class Matcher:
    """Holds the shared bindings and the errors found so far."""

    bindings: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ values
    def match_value(self, expected: Any, actual: Any, path: str) -> bool:
        if isinstance(expected, str):
            return self._match_string(expected, actual, path)
        if isinstance(expected, dict):
            if not expected:
                return True
            if not isinstance(actual, dict):
                return self._fail(path, f"expected an object, got {actual!r}")
            ok = True
            for key, sub in expected.items():
                if key not in actual:
                    ok = self._fail(f"{path}.{key}", "missing key") and ok
                    continue
                ok = self.match_value(sub, actual[key], f"{path}.{key}") and ok
            return ok
        if isinstance(expected, list):
            if not isinstance(actual, list) or len(actual) != len(expected):
                return self._fail(path, f"expected a list of {len(expected)}, got {actual!r}")
            ok = True
            for i, (sub, act) in enumerate(zip(expected, actual, strict=True)):
                ok = self.match_value(sub, act, f"{path}[{i}]") and ok
            return ok
        if expected != actual:
            return self._fail(path, f"expected {expected!r}, got {actual!r}")
        return True

    def _match_string(self, expected: str, actual: Any, path: str) -> bool:
        if expected == "*":
            return True
        pattern = _regex_of(expected)
        if pattern is not None:
            if re.search(pattern, str(actual)) is None:
                return self._fail(path, f"{actual!r} does not match /{pattern}/")
            return True
        whole = WHOLE_PLACEHOLDER.match(expected)
        if whole is not None:
            name = whole.group(1)
            if name not in self.bindings:
                self.bindings[name] = actual
                return True
            if self.bindings[name] != actual:
                return self._fail(path, f"${{{name}}} is bound to {self.bindings[name]!r}, got {actual!r}")
            return True
        want = substitute(expected, self.bindings)
        if want != actual:
            return self._fail(path, f"expected {want!r}, got {actual!r}")
        return True

    def _fail(self, path: str, message: str) -> bool:
        self.errors.append(f"{path}: {message}")
        return False

    # ------------------------------------------------------------------ phases
    def match_history(self, expected: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]]) -> bool:
        """Every expected event must match the actual event with its EventId. All are checked."""
        by_id: dict[Any, Mapping[str, Any]] = {}
        for event in actual:
            by_id[event.get("EventId")] = event
        before = len(self.errors)
        for event in expected:
            event_id = event.get("EventId")
            label = f"history[EventId={event_id} {event.get('EventType')}]"
            found = by_id.get(event_id)
            if found is None:
                self._fail(label, "no actual event with this EventId")
                continue
            self.match_value(dict(event), dict(found), label)
        return len(self.errors) == before

    def match_result(self, expected: Mapping[str, Any], status: str, result: str | None) -> bool:
        want_status = expected.get("ExecutionStatus")
        if want_status is not None and want_status != status:
            return self._fail("result.ExecutionStatus", f"expected {want_status!r}, got {status!r}")
        if status != "SUCCEEDED" or "Result" not in expected:
            return True
        want = substitute(expected["Result"], self.bindings)
        try:
            got = json.loads(result) if result is not None else None
        except (TypeError, ValueError) as exc:
            return self._fail("result.Result", f"the result is not JSON ({exc}): {result!r}")
        if result is None or got != want:
            return self._fail("result.Result", f"expected {want!r}, got {result!r}")
        return True

    def match_logs(self, specs: Sequence[Mapping[str, Any]], records: Sequence[LogRecord]) -> bool:
        before = len(self.errors)
        for i, spec in enumerate(specs):
            label = f"logs[{i}]"
            match = substitute(spec.get("match") or {}, self.bindings)
            hits = [r for r in records if self._log_matches(match, r.fields)]
            count, low, high = spec.get("count"), spec.get("min_count"), spec.get("max_count")
            if count is not None:
                if len(hits) != count:
                    self._fail(label, f"{match} matched {len(hits)} records, expected exactly {count}")
            elif low is None and high is None and not hits:
                self._fail(label, f"{match} matched no record")
            if low is not None and len(hits) < low:
                self._fail(label, f"{match} matched {len(hits)} records, expected at least {low}")
            if high is not None and len(hits) > high:
                self._fail(label, f"{match} matched {len(hits)} records, expected at most {high}")
            for relation in ("after", "before"):
                for anchor_spec in spec.get(relation) or ():
                    anchor = substitute(anchor_spec, self.bindings)
                    anchors = [r for r in records if self._log_matches(anchor, r.fields)]
                    if not anchors:
                        self._fail(label, f"{relation} anchor {anchor} matched no record")
                        continue
                    for hit in hits:
                        for a in anchors:
                            wrong = hit.key < a.key if relation == "after" else hit.key > a.key
                            if wrong:
                                self._fail(label, f"{hit.fields} is not {relation} {a.fields}")
        return len(self.errors) == before

    @staticmethod
    def _log_matches(match: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
        for key, want in match.items():
            if key not in fields:
                return False
            got = fields[key]
            if isinstance(want, bool):
                if got is not want:
                    return False
            elif isinstance(want, str):
                if len(want) >= 2 and want.startswith("/") and want.endswith("/"):
                    if re.search(want[1:-1], str(got)) is None:
                        return False
                elif WHOLE_PLACEHOLDER.match(want) and not _regex_of(want):
                    continue  # an unbound placeholder: any value
                elif not isinstance(got, str) or got.strip() != want.strip():
                    return False
            elif got != want:
                return False
        return True


@dataclass(frozen=True)
class LogRecord:
    """One captured JSON log record and its ordering key ``(timestamp, ingestion order)``."""

    fields: Mapping[str, Any]
    key: tuple[float, int]


def check(requirement: Mapping[str, Any], variables: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
          status: str, result: str | None, logs: Sequence[LogRecord]) -> list[str]:
    """All three phases; the first failing phase ends the check. Returns the errors (empty = pass)."""
    m = Matcher(bindings=dict(variables))
    if not m.match_history(requirement.get("ExpectedExecutionHistory") or [], history):
        return ["history: " + e for e in m.errors]
    expected_result = requirement.get("ExpectedResult")
    if expected_result is not None and not m.match_result(expected_result, status, result):
        return ["result: " + e for e in m.errors]
    specs = requirement.get("ExpectedLogs")
    if specs and not m.match_logs(specs, logs):
        return ["logs: " + e for e in m.errors]
    return []


__all__ = ["LogRecord", "Matcher", "check", "substitute"]
