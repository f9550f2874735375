"""``durably callback success|failure|heartbeat CALLBACK_ID``: answer a waiting callback."""

from __future__ import annotations

import click
from durably.cli import render
from durably.cli.inputs import error_object, read_text
from durably.cli.settings import database_options, open_engine


@click.group("callback", short_help="Answer a callback: success, failure, heartbeat.")
def callback() -> None:
    """Answer a callback that an execution waits on (SendDurableExecutionCallback*)."""


def _done(callback_id: str, what: str) -> None:
    render.print_answer({}, f"Callback {callback_id}: {what}")


@callback.command("success")
@click.argument("callback_id")
@click.option("--payload", metavar="TEXT",
              help="Optional: the result, sent as-is (text, or file://PATH). Without it (or with an empty one) "
                   "the result is empty: the callback's result() and wait_for_callback return None.")
@database_options
def success(callback_id: str, payload: str | None) -> None:
    """Complete the callback, with the text of --payload as its result (none without it).

    \b
    durably callback success CALLBACK_ID --payload approved
    durably callback success CALLBACK_ID --payload '{"approved": true}'
    durably callback success CALLBACK_ID --payload file://answer.json
    """
    text = read_text(payload, "--payload") if payload is not None else None
    with open_engine(create=False) as engine:
        engine.send_callback_success(callback_id, text)
    _done(callback_id, "success sent")


@callback.command("failure")
@click.argument("callback_id")
@click.option("--payload", metavar="JSON",
              help='Optional: the error, {"ErrorType": ..., "ErrorMessage": ..., "ErrorData": ...} (or file://PATH). '
                   "Without it the callback fails with an error that has no type or message.")
@database_options
def failure(callback_id: str, payload: str | None) -> None:
    """Fail the callback with the error in --payload (the handler's wait raises CallbackExternalError)."""
    error = error_object(payload) if payload is not None else None
    with open_engine(create=False) as engine:
        engine.send_callback_failure(callback_id, error)
    _done(callback_id, "failure sent")


@callback.command("heartbeat")
@click.argument("callback_id")
@database_options
def heartbeat(callback_id: str) -> None:
    """Tell the callback its submitter is still alive (resets its heartbeat timeout)."""
    with open_engine(create=False) as engine:
        engine.send_callback_heartbeat(callback_id)
    _done(callback_id, "heartbeat sent")
