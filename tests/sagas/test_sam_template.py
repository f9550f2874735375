"""The order saga's SAM deployment (``examples/sam/``): linted by cfn-lint, its key properties, its handler.

cfn-lint validates a SAM template against SAM's schemas, which type ``DurableConfig`` and ``Runtime`` but do
not bound them: the values are also checked here against what AWS::Lambda::Function accepts (cfn-lint's
schema) and the runtimes Lambda durable functions support. The handler is imported as Lambda imports it:
from the CodeUri folder, with none of durably's other extras.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint, lint_file
from cfnlint.decode import decode
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / "examples" / "sam"
TEMPLATE = SAM / "template.yaml"
FUNCTION = "OrderFulfilmentFunction"
ROLE = "OrderFulfilmentRole"
DURABLE_POLICY = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicDurableExecutionRolePolicy"
DURABLE_PYTHON_RUNTIMES = {"python3.13", "python3.14"}  # the managed Python runtimes durable functions run on
OTHER_EXTRAS = ("langchain_core", "opentelemetry", "starlette", "uvicorn",  # agents, otel, serve
                "aws_durable_execution_sdk_python")


def template() -> dict[str, Any]:
    """The template as CloudFormation reads it (``!Ref`` and friends as their ``Ref`` / ``Fn::`` forms)."""
    parsed, errors = decode(str(TEMPLATE))
    assert not errors, errors
    assert isinstance(parsed, dict)
    return parsed


def function() -> dict[str, Any]:
    resource = template()["Resources"][FUNCTION]
    assert resource["Type"] == "AWS::Serverless::Function"
    props: dict[str, Any] = resource["Properties"]
    return props


def code_uri() -> Path:
    return (SAM / str(function()["CodeUri"])).resolve()


# ---------------------------------------------------------------------------- cfn-lint
def test_cfn_lint_finds_nothing() -> None:
    """No error and no warning either (informational findings are not reported by default)."""
    assert lint_file(TEMPLATE) == []


def test_cfn_lint_reads_the_serverless_function() -> None:
    """The lint is not vacuous: a misspelt DurableConfig key in the same template is an error."""
    text = TEMPLATE.read_text().replace("RetentionPeriodInDays:", "RetentionPeriodInDay:")
    matches = lint(text)
    assert any(m.rule.id == "E3002" and "RetentionPeriodInDay" in m.message for m in matches), matches


# ---------------------------------------------------------------------------- key properties
def test_durable_config_values_are_within_what_lambda_accepts() -> None:
    config = function()["DurableConfig"]
    assert config == {"ExecutionTimeout": 604800, "RetentionPeriodInDays": 14}
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::Lambda::Function").schema
    bounds = schema["definitions"]["DurableConfig"]["properties"]
    for key, value in config.items():
        assert isinstance(value, int)
        assert bounds[key]["minimum"] <= value <= bounds[key]["maximum"], key


def test_runtime_is_a_python_that_runs_durable_functions() -> None:
    props = function()
    assert props["Runtime"] in DURABLE_PYTHON_RUNTIMES
    major, minor = (int(part) for part in props["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 11)  # durably's requires-python


def test_role_carries_the_managed_durable_execution_policy() -> None:
    resources = template()["Resources"]
    assert function()["Role"] == {"Fn::GetAtt": [ROLE, "Arn"]}
    role = resources[ROLE]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["ManagedPolicyArns"] == [{"Fn::Sub": DURABLE_POLICY}]
    statement = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}]


def test_a_version_is_published_behind_an_alias_and_both_arns_are_outputs() -> None:
    parsed = template()
    assert function()["AutoPublishAlias"] == {"Ref": "AliasName"}
    assert parsed["Parameters"]["AliasName"]["Default"] == "live"
    outputs = {name: output["Value"] for name, output in parsed["Outputs"].items()}
    assert outputs == {"FunctionArn": {"Fn::GetAtt": [FUNCTION, "Arn"]},
                       "AliasArn": {"Ref": f"{FUNCTION}.Alias"}}


def test_requirements_install_this_repository_with_the_aws_extra() -> None:
    """SAM's pip build reads requirements.txt in CodeUri; pip resolves the path against examples/sam."""
    lines = [line.strip() for line in (code_uri() / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert len(requirements) == 1
    match = re.fullmatch(r"(?P<path>[^\[]+)\[(?P<extras>[^\]]+)\]", requirements[0])
    assert match is not None, requirements
    assert "aws" in match["extras"].split(",")
    project = (SAM / match["path"]).resolve()
    assert project == ROOT
    assert re.search(r'(?m)^name = "durably"$', (project / "pyproject.toml").read_text())


# ---------------------------------------------------------------------------- the handler, as Lambda loads it
PROBE = """
import importlib, importlib.abc, importlib.metadata, json, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not in the Lambda package", name=name)
        return None

BLOCKED = set(sys.argv[3].split(","))
sys.meta_path.insert(0, Absent())
sys.path.insert(0, sys.argv[1])
module_name, _, function_name = sys.argv[2].rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)
from durably.core.execution import DurableFunction
from durably.core.errors import ExecutionError
try:
    handler({"order_id": "A-1", "amount": 42}, None)
    error = None
except ExecutionError as exc:
    error = str(exc)
backends = [e.value for e in importlib.metadata.entry_points(group="durably.lambda_backends")]
print(json.dumps({"durable": isinstance(handler, DurableFunction), "error": error, "backends": backends}))
"""


@pytest.fixture(scope="module")
def loaded_handler() -> dict[str, Any]:
    props = function()
    done = subprocess.run([sys.executable, "-I", "-B", "-c", PROBE, str(code_uri()), props["Handler"],
                           ",".join(OTHER_EXTRAS)],
                          cwd=code_uri(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_code_uri_is_the_folder_of_the_one_saga_source() -> None:
    assert code_uri() == ROOT / "examples"
    module = function()["Handler"].rpartition(".")[0]
    assert (code_uri() / f"{module}.py").is_file()


def test_handler_imports_from_code_uri_as_a_durable_function(loaded_handler: dict[str, Any]) -> None:
    """Imported with the agents, otel and serve extras absent, as in a package built from requirements.txt."""
    assert loaded_handler["durable"] is True
    assert "durably.integrations.aws:lambda_backend" in loaded_handler["backends"]


def test_a_non_durable_event_gets_the_clear_error(loaded_handler: dict[str, Any]) -> None:
    """What a plain ``aws lambda invoke`` or a console test event on a function without DurableConfig gets."""
    assert loaded_handler["error"] is not None
    assert "not a durable invocation" in loaded_handler["error"]
    assert "DurableConfig" in loaded_handler["error"]


# ---------------------------------------------------------------------------- the README's commands
CLI_OPTIONS = {"--cli-binary-format", "--query", "--output"}  # the AWS CLI's own, not the operation's


def test_readme_commands_are_lambda_operations_with_their_parameters() -> None:
    """Each ``aws lambda`` command of examples/sam/README.md names an operation of boto's Lambda model and
    only that operation's parameters (so a renamed or misspelt option fails here, not on a deploy)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("lambda")
    text = (SAM / "README.md").read_text().replace("\\\n", " ")
    commands = re.findall(r"aws lambda ([a-z-]+)([^\n)]*)", text)
    assert {name for name, _ in commands} >= {"invoke", "get-durable-execution", "get-durable-execution-history",
                                              "send-durable-execution-callback-success"}
    for name, rest in commands:
        operation = model.operation_model("".join(part.title() for part in name.split("-")))
        members = set(operation.input_shape.members)
        for option in set(re.findall(r"(?<!\S)--[a-z-]+", rest)) - CLI_OPTIONS:
            assert "".join(part.title() for part in option[2:].split("-")) in members, (name, option)
    assert function()["Handler"] in text and ":live" in text
