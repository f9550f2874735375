"""``durably.testing``: run durable handlers in tests, with time skipping.

:class:`DurableTestRunner` is durably's own runner; :class:`DurableFunctionTestRunner` and the
names beside it are AWS's test-runner API (``aws_durable_execution_sdk_python_testing.runner``).
"""

from durably.core.function_test_runner import (
    DurableChildContextTestRunner,
    DurableFunctionTestResult,
    DurableFunctionTestRunner,
)
from durably.core.testing import DurableTestRunner, TestResult
from durably.core.testing_operations import (
    CallbackOperation,
    ContextOperation,
    DurableFunctionsTestError,
    ExecutionOperation,
    InvokeOperation,
    Operation,
    StepOperation,
    WaitOperation,
)

__all__ = [
    "CallbackOperation",
    "ContextOperation",
    "DurableChildContextTestRunner",
    "DurableFunctionTestResult",
    "DurableFunctionTestRunner",
    "DurableFunctionsTestError",
    "DurableTestRunner",
    "ExecutionOperation",
    "InvokeOperation",
    "Operation",
    "StepOperation",
    "TestResult",
    "WaitOperation",
]
