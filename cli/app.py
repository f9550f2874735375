"""The ``durably`` command group and its entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from durably.cli.callback import callback
from durably.cli.diagnose import diagnose_cmd
from durably.cli.errors import guarded
from durably.cli.execute import run, worker
from durably.cli.inspect_cmds import get, history, list_, stop
from durably.cli.logs_cmd import logs
from durably.cli.redrive import redrive
from durably.cli.replay import replay
from durably.cli.serve import serve
from durably.cli.settings import Settings, group_options
from durably.cli.versions import delete_function, list_versions, publish_version, update_alias


class DurablyGroup(click.Group):
    """A group whose errors are one line on stderr (``Error: <code>: <message>``), never a traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        code = guarded(lambda: super(DurablyGroup, self).main(args, prog_name, complete_var, False, **extra))
        raise SystemExit(code if isinstance(code, int) else 0)


@click.group(cls=DurablyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@group_options
@click.version_option(package_name="durably", prog_name="durably")
@click.pass_context
def cli(ctx: click.Context, db: str | None, output: str, region: str) -> None:
    """durably: durable execution on an embedded SQLite engine, with the AWS durable functions API.

    \b
    durably run app.py:handler --name order-1 --input '{"order": 1}'
    durably list --status RUNNING
    durably get order-1
    durably logs order-1 --follow
    durably callback success CALLBACK_ID --payload approved

    An execution is named by its ARN (in single quotes: it holds $LATEST), its name, or the start
    of its id (6 characters or more). A callback's --payload is sent as-is, as text: the handler's
    callback result above is the string approved (no JSON quotes needed).

    \b
    Exit codes:
      0    done; `run`: the execution SUCCEEDED (or is RUNNING, with --no-wait)
      1    a service or database error; `run`: the execution FAILED, TIMED_OUT or STOPPED
      2    a usage error or bad input
      130  interrupted (Ctrl-C; for `durably worker`, a second Ctrl-C or SIGTERM)
    """
    ctx.obj = Settings(db=db, output=output, region=region)


for command in (run, worker, serve, list_, get, history, logs, stop, callback, diagnose_cmd, replay, redrive,
                publish_version, update_alias, list_versions, delete_function):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script ``durably`` (and ``python -m durably``)."""
    cli.main(args=argv, prog_name="durably")
