"""The AWS durable execution conformance suite, run on durably's embedded engine."""
