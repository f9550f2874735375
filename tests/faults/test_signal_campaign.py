"""A seeded campaign of signals against live workers: pauses past the lease, graceful stops, restarts.

Whatever the order, every execution completes with the right result and a well-formed history:
each step succeeds once, after its start, and no handler ever sees a checkpoint failure as an
ordinary exception (``stubborn`` would return it in its result).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import pytest

from .conftest import Workers


def _campaign(workers: Workers, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    arns = {workers.start("many_steps", {"steps": 8, "size": 10}): str(8 * 10) for _ in range(3)}
    arns.update({workers.start("stubborn", {"pause": 0.3}): "[0,1,2]" for _ in range(3)})
    live: list[subprocess.Popen[bytes]] = [workers.spawn("--lease-seconds", "1") for _ in range(2)]
    for _ in range(rounds):
        victim = rng.choice(live)
        if rng.random() < 0.5:
            victim.send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(1.2, 2.0))  # past its lease: another worker takes over
            victim.send_signal(signal.SIGCONT)
        else:
            victim.send_signal(signal.SIGTERM)
            live.remove(victim)
            live.append(workers.spawn("--lease-seconds", "1"))
        time.sleep(rng.uniform(0.1, 0.5))
    for arn, result in arns.items():
        done = workers.wait_status(arn, timeout=60)
        assert done["Status"] == "SUCCEEDED", (seed, done)
        assert done["Result"] == result, (seed, done["Result"])
        _assert_steps_well_formed(workers.engine.get_history(arn))


def _assert_steps_well_formed(events: list[dict[str, Any]]) -> None:
    started: set[str] = set()
    succeeded: Counter[str] = Counter()
    for event in events:
        if event["EventType"] == "StepStarted":
            started.add(event["Id"])
        elif event["EventType"] == "StepSucceeded":
            assert event["Id"] in started, "StepSucceeded without StepStarted"
            succeeded[event["Id"]] += 1
    assert succeeded and set(succeeded.values()) == {1}, succeeded


def test_short_seeded_signal_campaign(workers: Workers) -> None:
    _campaign(workers, seed=14, rounds=3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_long_seeded_signal_campaign(workers: Workers, seed: int) -> None:
    _campaign(workers, seed=seed, rounds=20)
