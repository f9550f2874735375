"""Handler references: importing a handler file from several threads at once."""

from __future__ import annotations

import threading
from pathlib import Path

from durably.core.engine.functions import load_reference
from durably.core.execution import DurableFunction


def test_concurrent_loads_of_a_file_never_see_it_half_run(tmp_path: Path) -> None:
    handler_file = tmp_path / "slow_flow.py"
    handler_file.write_text(
        "import time\n"
        "from durably import durable_execution\n"
        "time.sleep(0.3)  # module code still running while another thread asks for it\n"
        "@durable_execution\n"
        "def handler(event, ctx):\n"
        "    return 1\n"
    )
    ref = f"{handler_file}:handler"
    found: list[object] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            found.append(load_reference(ref))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(found) == 4 and all(isinstance(obj, DurableFunction) for obj in found)
    assert len({id(obj) for obj in found}) == 1  # the file ran once
