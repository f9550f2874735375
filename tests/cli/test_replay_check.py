"""``durably replay --check``: histories recorded by a v1 of a handler file, checked against v2 files."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from durably.core.engine.clock import SkippingClock
from durably.core.engine.engine import Engine
from durably.core.engine.functions import load_reference

Cli = Any
"""The ``durably`` fixture (tests/cli/conftest.py)."""

ROOT = Path(__file__).resolve().parents[2]

V1 = '''
from pathlib import Path

from durably import DurableContext, Duration, RetryDecision, StepConfig, durable_execution


def effect(label):
    """A step body: it leaves a line in effects.log each time it runs."""
    def run(step):
        with open(Path("effects.log"), "a") as log:
            log.write(f"{label}\\n")
        return label
    return run


@durable_execution
def order(event, context: DurableContext):
    reservation = context.step(effect("reserve"), name="reserve")
    charge = context.step(effect("charge"), name="charge")
    return {"reservation": reservation, "charge": charge}


@durable_execution
def cooling(event, context: DurableContext):
    context.step(effect("reserve"), name="reserve")
    context.wait(Duration(3600), name="cool-down")
    return context.step(effect("charge"), name="charge")


def pack(context: DurableContext, item, index, items):
    context.step(effect(f"pack-{item}"), name="pack")
    context.wait(Duration(3600), name="cool")
    return item


@durable_execution
def fan_out(event, context: DurableContext):
    return context.map(["a", "b", "c"], pack, name="packing").get_results()


def flaky_body(step):
    effect(f"flaky-{step.attempt}")(step)
    if step.attempt == 1:
        raise TimeoutError("the gateway timed out")
    return "done"


@durable_execution
def flaky(event, context: DurableContext):
    return context.step(flaky_body, name="flaky", config=StepConfig(
        retry_strategy=lambda error, attempt: RetryDecision.retry(Duration(3600))))


def plain(event):
    return event
'''

CHANGES = {
    "v2_added.py": ('    return {"reservation": reservation, "charge": charge}',
                    '    context.step(effect("notify"), name="notify")\n'
                    '    return {"reservation": reservation, "charge": charge}'),
    "v2_renamed.py": ('reservation = context.step(effect("reserve"), name="reserve")',
                      'reservation = context.step(effect("reserve"), name="reserve-stock")'),
    "v2_swapped.py": ('context.wait(Duration(3600), name="cool-down")',
                      'context.step(effect("cool-down"), name="cool-down")'),
    "v2_map.py": ('context.step(effect(f"pack-{item}"), name="pack")',
                  'context.step(effect(f"wrap-{item}"), name="wrap")'),
}


@pytest.fixture
def versions(durably: Cli) -> Cli:
    """v1.py and its v2 files in the working directory."""
    (durably.root / "v1.py").write_text(V1)
    for name, (old, new) in CHANGES.items():
        assert old in V1
        (durably.root / name).write_text(V1.replace(old, new))
    return durably


def effects(cli: Cli) -> list[str]:
    log = cli.root / "effects.log"
    return log.read_text().split() if log.exists() else []


def record(cli: Cli, handler: str, name: str, *, wait: bool = False) -> str:
    """Run ``handler`` as ``name`` (to its end, or to its first suspension) and answer the ARN."""
    args = ("run", handler, "--name", name, "--output", "json", *(() if wait else ("--no-wait",)))
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["DurableExecutionArn"])


def checked(cli: Cli, *args: str) -> Any:
    """``replay --check ARGS`` with JSON output; no step body ran."""
    before = effects(cli)
    result = cli("replay", "--check", *args, "--output", "json")
    assert effects(cli) == before
    return result


def test_a_step_added_at_the_end_replays(versions: Cli) -> None:
    arn = record(versions, "v1.py:order", "o-1", wait=True)
    result = versions("replay", "--check", "v2_added.py:order", "o-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "✓ o-1 (SUCCEEDED): 2 operations replayed, then stops before STEP 'notify' (new)",
        "1 checked: 1 replay, 0 do not"]
    assert effects(versions) == ["reserve", "charge"]
    report = json.loads(checked(versions, "v2_added.py:order", arn).stdout)
    assert report["AllReplay"] is True
    [execution] = report["Executions"]
    assert {k: execution[k] for k in ("arn", "name", "ok", "outcome", "operations_replayed", "divergence")} == {
        "arn": arn, "name": "o-1", "ok": True, "outcome": "frontier", "operations_replayed": 2, "divergence": None}
    assert {k: execution["frontier"][k] for k in ("type", "name", "subtype", "status")} == {
        "type": "STEP", "name": "notify", "subtype": "Step", "status": None}


def test_a_renamed_step_diverges_naming_both_names(versions: Cli) -> None:
    arn = record(versions, "v1.py:order", "o-1", wait=True)
    result = versions("replay", "--check", "v2_renamed.py:order", "o-1")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("✗ o-1 (SUCCEEDED): diverges at 1: the history has STEP 'reserve', "
                        "the code asks for STEP 'reserve-stock'")
    assert lines[1].startswith("    history: STEP 'reserve', SUCCEEDED (id ")
    assert lines[2].startswith("    code:    STEP 'reserve-stock' (id ")
    assert lines[3] == f"    '{arn}'"
    assert lines[-1] == "1 checked: 0 replay, 1 do not"

    result = checked(versions, "v2_renamed.py:order", "o-1")
    assert result.exit_code == 1
    divergence = json.loads(result.stdout)["Executions"][0]["divergence"]
    assert divergence["position"] == "1"
    assert {k: divergence["recorded"][k] for k in ("type", "name", "subtype")} == {
        "type": "STEP", "name": "reserve", "subtype": "Step"}
    assert {k: divergence["code"][k] for k in ("type", "name", "subtype")} == {
        "type": "STEP", "name": "reserve-stock", "subtype": "Step"}
    assert divergence["recorded"]["id"] == divergence["code"]["id"]
    assert "reserve-stock" in divergence["message"]


def test_a_wait_swapped_for_a_step_diverges_naming_both_types(versions: Cli) -> None:
    record(versions, "v1.py:cooling", "c-1")
    assert versions("replay", "--check", "v1.py:cooling", "c-1").exit_code == 0
    result = versions("replay", "--check", "v2_swapped.py:cooling", "c-1")
    assert result.exit_code == 1
    assert "diverges at 2: the history has WAIT 'cool-down', the code asks for STEP 'cool-down'" in result.stdout
    assert "    history: WAIT 'cool-down', STARTED (id " in result.stdout


def test_a_changed_map_item_function_is_checked_inside_the_branches(versions: Cli) -> None:
    record(versions, "v1.py:fan_out", "f-1")
    same = versions("replay", "--check", "v1.py:fan_out", "f-1")
    assert same.exit_code == 0, same.output
    assert "10 operations replayed, up to WAIT 'cool' (STARTED)" in same.stdout  # the map, 3 items, steps, waits

    result = checked(versions, "v2_map.py:fan_out", "f-1")
    assert result.exit_code == 1
    divergence = json.loads(result.stdout)["Executions"][0]["divergence"]
    assert divergence["within"][0] == "packing" and divergence["within"][1].startswith("map-item-")
    assert (divergence["recorded"]["name"], divergence["code"]["name"]) == ("pack", "wrap")
    human = versions("replay", "--check", "v2_map.py:fan_out", "f-1").stdout
    assert "(in 'packing' > 'map-item-" in human


def test_an_execution_between_retries_replays_without_running_its_step(versions: Cli) -> None:
    record(versions, "v1.py:flaky", "r-1")
    assert effects(versions) == ["flaky-1"]
    result = versions("replay", "--check", "v1.py:flaky", "r-1")
    assert result.exit_code == 0, result.output
    assert "1 operation replayed, up to STEP 'flaky' (PENDING)" in result.stdout
    assert effects(versions) == ["flaky-1"]


def test_function_and_all_select_the_histories(versions: Cli) -> None:
    first = record(versions, "v1.py:order", "o-1", wait=True)
    second = record(versions, "v1.py:order", "o-2", wait=True)
    record(versions, "v1.py:cooling", "c-1")

    result = checked(versions, "v2_renamed.py:order", "--function", "v1-order")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [e["arn"] for e in report["Executions"]] == [first, second]
    assert report["AllReplay"] is False

    result = checked(versions, "v1.py:order", "--all")
    assert result.exit_code == 1  # c-1 is not an order: its second operation is a wait
    report = json.loads(result.stdout)
    assert {e["name"]: e["ok"] for e in report["Executions"]} == {"o-1": True, "o-2": True, "c-1": False}

    assert versions("replay", "--check", "v1.py:order", "--function", "v1-cooling").exit_code == 1
    assert versions("replay", "--check", "v1.py:cooling", "--function", "v1-cooling").exit_code == 0


@pytest.mark.sqlite_only
def test_nothing_is_written_and_a_read_only_database_will_do(versions: Cli) -> None:
    record(versions, "v1.py:order", "o-1", wait=True)
    record(versions, "v1.py:cooling", "c-1")
    folder = versions.db.parent
    files = sorted(p for p in folder.iterdir())
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    for path in files:
        path.chmod(stat.S_IRUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = versions("replay", "--check", "v2_added.py:order", "--all")
    finally:
        folder.chmod(stat.S_IRWXU)
        for path in files:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert result.exit_code == 1, result.output  # c-1 diverges from the order handler
    assert "✓ o-1" in result.stdout and "✗ c-1" in result.stdout
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())} == digests


def test_no_histories_to_check(versions: Cli) -> None:
    record(versions, "v1.py:order", "o-1", wait=True)
    result = versions("replay", "--check", "v1.py:order", "--function", "nobody")
    assert result.exit_code == 0
    assert result.stdout.strip() == "No executions to check."


@pytest.mark.parametrize(("args", "code", "exit_code", "says"), [
    (("v1.py:order", "o-1"), "InvalidParameterValueException", 2, "add --check"),
    (("--check", "v1.py:order"), "InvalidParameterValueException", 2, "say which histories"),
    (("--check", "v1.py:order", "o-1", "--all"), "InvalidParameterValueException", 2, "one of them"),
    (("--check", "v1.py:order", "--all", "--function", "v1-order"), "InvalidParameterValueException", 2,
     "one of them"),
    (("--check", "missing.py:order", "--all"), "HandlerImportError", 1, "no file"),
    (("--check", "v1.py:nothing", "--all"), "HandlerImportError", 1, "no attribute 'nothing'"),
    (("--check", "v1.py:plain", "--all"), "HandlerImportError", 1, "not a @durable_execution handler"),
    (("--check", "sdk_app.py:handler", "--all"), "HandlerImportError", 1, "is an AWS SDK handler"),
    (("--check", "v1.py:order", "nobody-by-that-name"), "ResourceNotFoundException", 1, "no execution is named"),
])
def test_bad_input_is_one_line(versions: Cli, one_line_error: Callable[..., str], args: tuple[str, ...], code: str,
                               exit_code: int, says: str) -> None:
    (versions.root / "sdk_app.py").write_text(
        "from aws_durable_execution_sdk_python import durable_execution\n\n\n"
        "@durable_execution\ndef handler(event, context):\n    return event\n")
    record(versions, "v1.py:order", "o-1", wait=True)
    assert says in one_line_error(versions("replay", *args), code, exit_code)


# ---------------------------------------------------------------------------- the order fulfilment example
@pytest.fixture
def example_histories(durably: Cli) -> Iterator[list[str]]:
    """Orders through ``examples/order_fulfilment.py``: shipped, rolled back, and waiting on a person."""
    handler = load_reference(f"{ROOT / 'examples' / 'order_fulfilment.py'}:handler")
    durably.db.parent.mkdir(parents=True)
    engine = Engine(durably.db, clock=SkippingClock())
    ledger = str(durably.root / "shop.db")
    arns = []
    for order_id, fail in (("A-1", None), ("A-2", "payment"), ("A-3", "shipment"), ("A-4", "refund-always")):
        event = {"order_id": order_id, "amount": 42, "ledger": ledger, **({"fail": fail} if fail else {})}
        arn = engine.start_execution(handler, event, name=order_id)
        engine.run_until_complete(arn, skip_time=True, stop_when_blocked=True)
        arns.append(arn)
    statuses = [engine.get_execution(arn)["Status"] for arn in arns]
    assert statuses == ["SUCCEEDED", "FAILED", "FAILED", "RUNNING"]  # A-4 asks a person about its refund
    engine.close()
    engine.store.close()
    yield arns


def test_the_order_example_replays_its_own_histories(durably: Cli, example_histories: list[str]) -> None:
    shop = durably.root / "shop.db"
    before = hashlib.sha256(shop.read_bytes()).hexdigest()
    result = durably("replay", "--check", f"{ROOT / 'examples' / 'order_fulfilment.py'}:handler", "--all")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines[:-1]] == ["✓ A-1", "✓ A-2", "✓ A-3", "✓ A-4"]
    assert "the handler returns" in lines[0]
    assert "the handler raises, as the execution failed" in lines[1]
    assert "up to CALLBACK" in lines[3]
    assert lines[-1] == "4 checked: 4 replay, 0 do not"
    assert hashlib.sha256(shop.read_bytes()).hexdigest() == before  # no service was called
