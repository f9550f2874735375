"""The ``durably`` command: run handlers on the embedded engine and inspect what they did.

The verbs follow the AWS CLI's durable execution commands (``run`` starts an execution and
drives it in-process, ``worker`` serves the database, ``list``/``get``/``history``/``stop`` and
``callback success|failure|heartbeat`` call the engine's service API, ``logs`` prints the records
the handlers logged). ``--output json`` prints the AWS response shapes with ISO 8601 timestamps.
"""

from durably.cli.app import cli, main

__all__ = ["cli", "main"]
