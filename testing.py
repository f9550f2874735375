"""``durably.testing``: run durable handlers in tests, with time skipping."""

from durably.core.testing import DurableTestRunner, TestResult

__all__ = ["DurableTestRunner", "TestResult"]
