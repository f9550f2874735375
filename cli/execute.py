"""``durably run`` and ``durably worker``: the verbs that run handler code."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from types import FrameType
from typing import Any

import click
from durably.cli import render
from durably.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED
from durably.cli.inputs import json_text, lambda_name
from durably.cli.lambda_endpoint import served_if_needed
from durably.cli.logs import CLI_LOGGER, engine_logs_at_least, log_options, stderr_logs
from durably.cli.progress import reporting
from durably.cli.resolve import quoted
from durably.cli.settings import command_options, command_prefix, open_engine, settings
from durably.cli.tracing import traced_from_env
from durably.cli.waiting import Waiting, waiting_on
from durably.core.engine.engine import Engine

NO_WAIT_POLL_SECONDS = 0.05
"""How often ``run --no-wait`` looks whether another worker's invocation of the execution ended."""


def cwd_on_path() -> None:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@click.command("run", short_help="Start an execution and drive it in this process.")
@click.argument("handler", metavar="MODULE:FUNCTION")
@click.option("--input", "input_", metavar="JSON", help="The execution's input (JSON text, or file://PATH).")
@click.option("--name", metavar="NAME", help="Execution name (idempotent: same name and input, same execution).")
@click.option("--function-name", metavar="NAME", help="Function name (default: <module>-<function>).")
@click.option("--no-wait", is_flag=True, help="Return at the first suspension (still RUNNING).")
@click.option("--traceparent", metavar="TRACEPARENT", envvar="TRACEPARENT",
              help="The caller's W3C trace context (default: $TRACEPARENT); with tracing on, the execution's "
                   "trace is a child of it.")
@log_options
@command_options
def run(handler: str, input_: str | None, name: str | None, function_name: str | None, no_wait: bool,
        traceparent: str | None, log_level: str, log_format: str, quiet: bool) -> None:
    """Start an execution of MODULE:FUNCTION (or path/file.py:FUNCTION) and drive it in this process.

    A published version runs as FUNCTION:VERSION or FUNCTION:ALIAS (see `durably publish-version`).

    Waits really wait; other executions in the database that fall due meanwhile run too, as in
    a worker. Progress (steps, retries, waits, callbacks to answer) goes to stderr, the outcome
    to stdout. Exit code 0 when it SUCCEEDED (or is RUNNING with --no-wait), 1 when it FAILED,
    TIMED_OUT or was STOPPED.
    """
    text = json_text(input_, "--input") if input_ is not None else None
    lambda_name(name, "--name")
    lambda_name(function_name, "--function-name")
    with running_here(log_level, log_format, quiet) as engine:
        arn = engine.start_execution(handler, text, name=name, function_name=function_name,
                                     input_is_json=text is not None, trace_context=traceparent or None)
        outcome = drive(engine, arn, handler, no_wait, quiet)
    print_outcome(*outcome)


@contextmanager
def running_here(log_level: str, log_format: str, quiet: bool, create: bool = True) -> Iterator[Engine]:
    """The engine of a command that runs handler code in this process: logs on stderr, and so is
    what the handler code prints (stdout is the command's output)."""
    cwd_on_path()
    with (stderr_logs(log_level, log_format, quiet), engine_logs_at_least(log_level), traced_from_env(),
          open_engine(create) as engine, redirect_stdout(sys.stderr)):
        yield engine


Shown = tuple[list[dict[str, Any]], list[Waiting]]


def drive(engine: Engine, arn: str, handler: Any, no_wait: bool, quiet: bool) -> tuple[dict[str, Any], Shown | None]:
    """Drive ``arn`` in this process until it ends (or, ``no_wait``, suspends), its progress on
    stderr unless ``quiet``: its state, and its events and what it waits on for the table output."""
    published = isinstance(handler, str) and engine.published_spec(handler) is not None
    with served_if_needed(engine, None if published else handler), \
            nullcontext() if quiet else reporting(engine.service, arn, f"{command_prefix()} callback"):
        execution = _drive(engine, arn, no_wait)
    if settings().json:
        return execution, None
    return execution, (engine.get_history(arn), waiting_on(engine.service.all_operations(arn)))


def print_outcome(execution: dict[str, Any], shown: Shown | None) -> None:
    """Print how a driven execution ended (as ``durably run`` does); exit 1 unless it SUCCEEDED or is RUNNING."""
    if shown is None:
        render.print_json(execution)
    else:
        render.print_run(execution, *shown, command_prefix())
    if execution["Status"] not in ("SUCCEEDED", "RUNNING"):
        sys.exit(EXIT_FAILED)


def _drive(engine: Engine, arn: str, no_wait: bool) -> dict[str, Any]:
    try:
        if no_wait:
            return _until_suspended(engine, arn)
        return engine.run_until_complete(arn)
    except KeyboardInterrupt:
        CLI_LOGGER.warning("interrupted: %s is still RUNNING; `durably worker` drives it on", quoted(arn),
                           extra={"executionArn": arn})
        sys.exit(EXIT_INTERRUPTED)


def _until_suspended(engine: Engine, arn: str) -> dict[str, Any]:
    """``run --no-wait``: the execution's state at its first suspension, whoever runs the invocation
    (a ``durably worker`` on the same database may claim it first: then its invocation is waited for)."""
    execution = engine.run_until_suspended(arn)
    while execution["Status"] == "RUNNING" and engine.service.invocation_state(arn)["Invocation"] is not None:
        time.sleep(NO_WAIT_POLL_SECONDS)
        execution = engine.run_until_suspended(arn)
    return execution


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the worker like Ctrl-C: the first gracefully, a second at once."""
    raise KeyboardInterrupt


@click.command("worker", short_help="Run due executions until Ctrl-C or SIGTERM.")
@click.option("--workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Invocations run at the same time.")
@click.option("--lease-seconds", type=click.IntRange(min=1), default=60, show_default=True,
              help="How long a claim on an execution lasts unless renewed (renewed every third of it "
                   "while the invocation runs); another host takes over a silent worker after it.")
@log_options
@command_options
def worker(workers: int, lease_seconds: int, log_level: str, log_format: str, quiet: bool) -> None:
    """Run every execution in the database that has work to do, until Ctrl-C or SIGTERM.

    The first Ctrl-C or SIGTERM stops claiming work and waits for the running invocations to
    end, renewing their leases so no other worker takes them over meanwhile. A second one exits
    at once: the invocations it abandons are taken over by another worker (at once on this
    host, once their lease expires on another). A worker killed outright is taken over the same way.
    """
    cwd_on_path()
    with stderr_logs(log_level, log_format, quiet), traced_from_env():
        with open_engine(workers=workers, lease_seconds=lease_seconds) as engine, redirect_stdout(sys.stderr):
            in_main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
            CLI_LOGGER.info("durably worker: %d worker(s) on %s; Ctrl-C to stop", workers, engine.store.shown)
            try:
                _serve_until_interrupted(engine, lease_seconds)
            finally:
                if in_main:
                    signal.signal(signal.SIGTERM, previous)
        CLI_LOGGER.info("durably worker: stopped")


def _serve_until_interrupted(engine: Engine, lease_seconds: int) -> None:
    """Run the engine until an interrupt, then shut down gracefully; a second interrupt exits now."""
    engine.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    running = engine.running()
    if running:
        CLI_LOGGER.info("durably worker: stopping; waiting for %d running invocation(s) to end, their leases "
                        "kept. Ctrl-C or SIGTERM again to exit without waiting.", len(running))
    try:
        engine.close()
    except KeyboardInterrupt:
        left = engine.running()
        CLI_LOGGER.warning("durably worker: exiting without waiting for %d invocation(s) (%s); another worker "
                           "takes them over, at once on this host or within %d s elsewhere.",
                           len(left), ", ".join(left), lease_seconds)
        for handler in logging.getLogger("durably").handlers:
            handler.flush()
        os._exit(EXIT_INTERRUPTED)  # the abandoned invocations' threads must not hold the process up
