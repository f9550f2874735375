"""The embedded engine: executions, operations and history in SQLite (WAL), a scheduler for
timers and callbacks, and workers that invoke handlers."""
