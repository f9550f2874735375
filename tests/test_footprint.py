"""What the base install costs a process that runs plain (``def``) handlers."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_plain_handlers_do_not_import_asyncio() -> None:
    """asyncio (and the ssl it brings, several MiB) is imported only for ``async def`` code."""
    code = textwrap.dedent("""
        import sys, tempfile
        from pathlib import Path
        from durably import DurableContext, Engine, durable_execution

        @durable_execution
        def handler(event, ctx: DurableContext):
            return ctx.map([1, 2], lambda c, item, i, items: c.step(lambda s: item * 2)).get_results()

        engine = Engine(Path(tempfile.mkdtemp()) / "d.db")
        arn = engine.start_execution(handler, {})
        assert engine.run_until_complete(arn, timeout=60)["Result"] == "[2,4]"
        print(sorted(m for m in ("asyncio", "ssl") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"
