"""``durably run --no-wait`` returns at the execution's first suspension, whoever runs the invocation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from durably import DurableContext, durable_execution
from durably.cli.execute import _until_suspended
from durably.core.engine.engine import Engine


@durable_execution
def slow_approval(event: Any, context: DurableContext) -> Any:
    context.step(lambda _: time.sleep(0.6), name="prepare")
    return context.create_callback(name="approve").result()


def test_no_wait_waits_for_the_invocation_another_worker_claimed_first(tmp_path: Path) -> None:
    """A ``durably worker`` on the same database can claim the execution before ``run`` does: ``run
    --no-wait`` then waits for that invocation, so it can tell the person which callback to answer."""
    worker = Engine(tmp_path / "durably.db", workers=1).start()
    cli = Engine(tmp_path / "durably.db")
    try:
        arn = cli.start_execution(slow_approval, {})
        deadline = time.monotonic() + 10
        while cli.service.invocation_state(arn)["Invocation"] is None:
            assert time.monotonic() < deadline, "the worker did not claim the execution"
            time.sleep(0.005)
        execution = _until_suspended(cli, arn)
        assert execution["Status"] == "RUNNING"
        ops = {op.Name: op for op in cli.service.all_operations(arn)}
        assert ops["prepare"].Status == "SUCCEEDED"
        assert ops["approve"].Type == "CALLBACK" and ops["approve"].Status == "STARTED"
        assert cli.service.invocation_state(arn)["Invocation"] is None
    finally:
        worker.close()
        cli.close()
        for engine in (worker, cli):
            engine.store.close()
