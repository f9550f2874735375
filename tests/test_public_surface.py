"""The public surface: AWS SDK names importable from durably, and the package list complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

import durably
import durably.core
import pytest
from aws_durable_execution_sdk_python import lambda_service
from durably import DurableContext, durable_execution, durable_wait_for_callback
from durably.testing import DurableTestRunner

ROOT = Path(__file__).resolve().parent.parent

# The AWS durable execution SDK's public names (spec/PROTOCOL.md 5.0) that durably implements.
AWS_NAMES = """
durable_execution DurableContext StepContext durable_step durable_with_child_context
durable_parallel_branch durable_wait_for_callback BatchResult BatchItemStatus ParallelBranch
DurableExecutionsError DurableOperationError StepError InvokeError ChildContextError
WaitForConditionError CallbackError CallbackExternalError CallbackTimeoutError CallbackSubmitterError
BatchCompletionError SerDesError RetryableSerDesError ExecutionError InvocationError ValidationError
PluginLoadError Duration StepConfig StepSemantics ChildConfig CallbackConfig WaitForCallbackConfig
InvokeConfig MapConfig ParallelConfig CompletionConfig NestingType JitterStrategy RetryStrategyConfig
LinearRetryStrategyConfig RetryDecision RetryPresets create_retry_strategy create_linear_retry_strategy
WaitForConditionConfig WaitStrategyConfig WaitForConditionDecision create_wait_strategy SerDes
SerDesContext JsonSerDes ExtendedTypeSerDes with_retry WithRetryConfig OperationStatus OperationType
OperationSubType
""".split()

# Modules a port reaches by replacing ``aws_durable_execution_sdk_python`` with ``durably.core``.
AWS_MODULES = {
    "config": ["Duration", "StepConfig", "CallbackConfig", "MapConfig", "CompletionConfig", "JitterStrategy"],
    "retries": ["RetryStrategyConfig", "RetryPresets", "create_retry_strategy", "RetryDecision", "with_retry",
                "WithRetryConfig"],
    "waits": ["WaitForConditionConfig", "WaitStrategyConfig", "create_wait_strategy"],
    "serdes": ["SerDes", "SerDesContext", "JsonSerDes", "ExtendedTypeSerDes"],
    "execution": ["InvocationStatus", "durable_execution"],
    "filesystem_serdes": ["FileSystemSerDes", "FileSystemSerDesConfig", "FileSystemSerDesMode",
                          "FileSystemPathEncoding", "GeneratePreview"],
    "preview": ["PreviewConfig", "PreviewField", "PreviewMode", "FieldMatchMode", "build_preview"],
}

# ``aws_durable_execution_sdk_python_testing.runner`` names a port reaches in ``durably.testing``.
AWS_TESTING_NAMES = """
DurableFunctionTestRunner DurableChildContextTestRunner DurableFunctionTestResult Operation
ExecutionOperation ContextOperation StepOperation WaitOperation CallbackOperation InvokeOperation
""".split()


def test_aws_names_are_exported_at_the_top() -> None:
    missing = [name for name in AWS_NAMES if not hasattr(durably, name)]
    assert missing == []
    assert set(AWS_NAMES) <= set(durably.__all__)


@pytest.mark.parametrize("name", ["OperationStatus", "OperationType", "OperationSubType"])
def test_operation_enums_are_aws_enums_at_both_tops(name: str) -> None:
    theirs = {member.name: member.value for member in getattr(lambda_service, name)}
    for top in (durably, durably.core):
        enum = getattr(top, name)
        assert {member.name: member.value for member in enum} == theirs
        assert name in top.__all__
    recorded: str = "WaitForCallback"
    assert recorded == durably.OperationSubType.WAIT_FOR_CALLBACK  # a member equals the recorded str


def test_aws_modules_have_their_names_under_core() -> None:
    import importlib

    for module, names in AWS_MODULES.items():
        mod = importlib.import_module(f"durably.core.{module}")
        assert [n for n in names if not hasattr(mod, n)] == [], module


def test_aws_testing_names_are_in_durably_testing() -> None:
    import durably.testing

    assert [n for n in AWS_TESTING_NAMES if n not in durably.testing.__all__] == []
    assert "DurableFunctionsTestError" in durably.testing.__all__


def test_serdes_names_are_exported_at_the_top() -> None:
    for name in AWS_MODULES["filesystem_serdes"] + AWS_MODULES["preview"]:
        assert name in durably.__all__ and name in durably.core.__all__


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"durably"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and rel.parts[0] in {"tests", "bench", "examples", ".venv", "build"}:
            continue
        if rel.parts and rel.parts[0].startswith("."):
            continue
        if rel.parts:
            found.add("durably." + ".".join(rel.parts))
    assert found == listed


@durable_wait_for_callback
def ask(callback_id: str, _wctx: object, who: str) -> None:
    print(f"{who}: {callback_id}")


@durable_execution
def approval(event: str, context: DurableContext) -> str:
    return str(context.wait_for_callback(ask(event)))


def test_durable_wait_for_callback_binds_arguments_and_names_the_operation() -> None:
    with DurableTestRunner(approval) as runner:
        arn = runner.run_async("alice")
        assert runner.resume(arn).status == "RUNNING"
        runner.send_callback_success(runner.callback_id(arn, "ask"), "ok")
        result = runner.resume(arn)
    assert result.status == "SUCCEEDED" and result.value == "ok"
    assert result.get_context("ask").SubType == "WaitForCallback"
    assert result.get_step("ask submitter").Status == "SUCCEEDED"
