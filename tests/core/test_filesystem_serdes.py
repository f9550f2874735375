"""FileSystemSerDes: large step results offloaded to files, the reference checkpointed, read back on replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_durable_execution_sdk_python import filesystem_serdes as aws_fs
from aws_durable_execution_sdk_python import preview as aws_preview
from aws_durable_execution_sdk_python.serdes import SerDesContext as AwsSerDesContext
from durably import (
    DurableContext,
    Duration,
    ExtendedTypeSerDes,
    FieldMatchMode,
    FileSystemPathEncoding,
    FileSystemSerDes,
    FileSystemSerDesConfig,
    FileSystemSerDesMode,
    PreviewConfig,
    PreviewField,
    PreviewMode,
    SerDesContext,
    SerDesError,
    StepConfig,
    build_preview,
    durable_execution,
)
from durably.core.filesystem_serdes import OVERFLOW_THRESHOLD_BYTES
from durably.testing import DurableTestRunner, TestResult

ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders:$LATEST/durable-execution/run-1/0f3a"
CTX = SerDesContext(operation_id="op/1", durable_execution_arn=ARN)
BIG = {"id": "report-7", "owner": "ann", "rows": ["x" * 1000] * 300}  # ~300 KB, over the threshold
PREVIEW = PreviewConfig(PreviewMode.EXCLUDE_ALL, include=[PreviewField("id"), PreviewField("owner")],
                        mask=[PreviewField("owner")])


def offloading(base: Path, runs: list[str], mode: FileSystemSerDesMode = FileSystemSerDesMode.OVERFLOW) -> Any:
    """A handler whose step 'report' returns BIG through a FileSystemSerDes, then waits, then returns a digest."""
    serdes = FileSystemSerDes(base, FileSystemSerDesConfig(
        storage_mode=mode, generate_preview=lambda value: build_preview(value, PREVIEW)))

    @durable_execution
    def handler(event: Any, context: DurableContext) -> dict[str, Any]:
        def report(_: object) -> dict[str, Any]:
            runs.append("report")
            return BIG

        value = context.step(report, name="report", config=StepConfig(serdes=serdes))
        small = context.step(lambda _: {"n": 1}, name="small", config=StepConfig(serdes=serdes))
        context.wait(Duration.from_seconds(60), name="later")
        return {"id": value["id"], "rows": len(value["rows"]), "small": small}

    return handler


def stored(result: TestResult, name: str) -> dict[str, Any]:
    payload = result.get_step(name).StepDetails
    assert payload is not None and payload.Result is not None
    return dict(json.loads(payload.Result))


def test_defaults_and_names_follow_aws() -> None:
    config = FileSystemSerDesConfig()
    assert config.storage_mode is FileSystemSerDesMode.ALWAYS
    assert config.path_encoding is FileSystemPathEncoding.URI
    assert config.generate_preview is None and isinstance(config.serdes, ExtendedTypeSerDes)
    assert OVERFLOW_THRESHOLD_BYTES == aws_fs._OVERFLOW_THRESHOLD_BYTES
    assert [m.value for m in FileSystemSerDesMode] == [m.value for m in aws_fs.FileSystemSerDesMode]
    assert [m.value for m in FileSystemPathEncoding] == [m.value for m in aws_fs.FileSystemPathEncoding]
    assert PreviewConfig(PreviewMode.INCLUDE_ALL).max_preview_bytes == 4096


def test_a_large_step_result_goes_to_a_file_and_replays_from_it(tmp_path: Path) -> None:
    runs: list[str] = []
    with DurableTestRunner(offloading(tmp_path / "files", runs)) as runner:
        arn = runner.run_async({})
        first = runner.resume(arn)  # the wait is skipped: two invocations, the second a replay
    assert first.status == "SUCCEEDED" and first.value == {"id": "report-7", "rows": 300, "small": {"n": 1}}
    assert runs == ["report"]  # the replay read the file, it did not run the step again
    reference = stored(first, "report")
    assert set(reference) == {"file", "preview"} and reference["preview"] == {"id": "report-7", "owner": "***"}
    path = Path(reference["file"])
    step_id = first.get_step("report").Id
    function, name, exec_id = arn.split(":function:")[1].split(":")[0], *arn.split("/")[-2:]
    assert path == tmp_path / "files" / function / name / exec_id / f"{step_id}.json"
    assert ExtendedTypeSerDes().deserialize(path.read_text(), CTX) == BIG
    assert stored(first, "small") == {"data": '{"t":"m","v":{"n":{"t":"i","v":1}}}'}  # under the threshold: inline


def test_always_mode_writes_even_a_small_value(tmp_path: Path) -> None:
    with DurableTestRunner(offloading(tmp_path, [], FileSystemSerDesMode.ALWAYS)) as runner:
        result = runner.run({})
    assert result.status == "SUCCEEDED"
    small = stored(result, "small")
    assert set(small) == {"file"}  # the preview of {"n": 1} shows nothing: no "preview" key
    assert json.loads(Path(small["file"]).read_text()) == {"t": "m", "v": {"n": {"t": "i", "v": 1}}}


@pytest.mark.parametrize("damage", ["missing", "not UTF-8"])
def test_a_lost_file_fails_the_replay_naming_the_step_and_the_path(tmp_path: Path, damage: str) -> None:
    runs: list[str] = []
    with DurableTestRunner(offloading(tmp_path, runs)) as runner:
        arn = runner.run_async({})
        runner.engine.run_until_suspended(arn)  # first invocation: the file is written, then the wait
        path = Path(json.loads(runner.result(arn).get_step("report").StepDetails.Result)["file"])  # type: ignore[union-attr,arg-type]
        if damage == "missing":
            path.unlink()
        else:
            path.write_bytes(b"\xff\xfe not text")
        result = runner.resume(arn)
    assert result.status == "FAILED" and runs == ["report"]
    assert result.error is not None and result.error.ErrorMessage is not None
    assert "step 'report'" in result.error.ErrorMessage and str(path) in result.error.ErrorMessage
    assert result.error.ErrorType is not None and "SerDesError" in result.error.ErrorType


def test_hash_encoding_and_unusual_arns(tmp_path: Path) -> None:
    hashed = FileSystemSerDes(tmp_path, FileSystemSerDesConfig(path_encoding=FileSystemPathEncoding.HASH))
    path = Path(hashed.path_for(CTX))
    assert len(path.parent.name) == 64 and len(path.stem) == 64 and path.parent.parent == tmp_path
    odd = FileSystemSerDes(tmp_path).path_for(SerDesContext("op/1", "not an arn"))
    assert odd == str(tmp_path / "not%20an%20arn" / "op%2F1.json")


def test_references_are_byte_compatible_with_aws(tmp_path: Path) -> None:
    aws_ctx = AwsSerDesContext(operation_id=CTX.operation_id, durable_execution_arn=ARN)
    for mode, encoding in [("ALWAYS", "URI"), ("OVERFLOW", "HASH")]:
        ours = FileSystemSerDes(tmp_path / "ours", FileSystemSerDesConfig(
            FileSystemSerDesMode(mode), FileSystemPathEncoding(encoding),
            generate_preview=lambda v: build_preview(v, PREVIEW)))
        theirs = aws_fs.FileSystemSerDes(str(tmp_path / "theirs"), aws_fs.FileSystemSerDesConfig(
            aws_fs.FileSystemSerDesMode(mode), aws_fs.FileSystemPathEncoding(encoding),
            generate_preview=lambda v: aws_preview.build_preview(v, aws_preview.PreviewConfig(
                aws_preview.PreviewMode.EXCLUDE_ALL, include=[aws_preview.PreviewField("id"),
                aws_preview.PreviewField("owner")], mask=[aws_preview.PreviewField("owner")]))))
        for value in (BIG, {"n": 1}):
            mine, aws = ours.serialize(value, CTX), theirs.serialize(value, aws_ctx)
            assert mine.replace(str(tmp_path / "ours"), "BASE") == aws.replace(str(tmp_path / "theirs"), "BASE")
            assert ours.deserialize(aws, CTX) == value and theirs.deserialize(mine, aws_ctx) == value


def test_bad_envelopes_are_clear_errors(tmp_path: Path) -> None:
    serdes = FileSystemSerDes(tmp_path)
    with pytest.raises(SerDesError, match=r"op/1.*not a file-system serdes envelope"):
        serdes.deserialize("not json", CTX)
    with pytest.raises(SerDesError, match=r'op/1.*neither "file" nor "data"'):
        serdes.deserialize('{"other": 1}', CTX)
    (tmp_path / "blocked").write_text("a file where a folder must go")
    with pytest.raises(SerDesError, match=r"op/1: cannot write its value to .*blocked"):
        FileSystemSerDes(tmp_path / "blocked").serialize({"n": 1}, CTX)


ORDER = {"id": 7, "customer": {"email": "a@b.c", "name": "Ann", "card.number": "4111"},
         "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "price": 3}], "note": None}


@pytest.mark.parametrize("mode, include, exclude, mask, max_bytes", [
    ("INCLUDE_ALL", [], [], [], 4096),
    ("INCLUDE_ALL", [], [("email", "ANYWHERE")], [("name", "ANYWHERE")], 4096),
    ("INCLUDE_ALL", [], [("customer", "PATH")], [("customer", "PATH")], 4096),
    ("EXCLUDE_ALL", [("customer", "ANYWHERE"), ("sku", "ANYWHERE")], [], [], 4096),
    ("EXCLUDE_ALL", [("customer.email", "PATH")], [], [("qty", "ANYWHERE")], 4096),
    ("EXCLUDE_ALL", [("email", "PATH")], [], [], 4096),
    ("INCLUDE_ALL", [], [], [], 30),
    ("INCLUDE_ALL", [], [], [], 2),
])
def test_build_preview_matches_aws(mode: str, include: list[tuple[str, str]], exclude: list[tuple[str, str]],
                                   mask: list[tuple[str, str]], max_bytes: int) -> None:
    def ours(fields: list[tuple[str, str]]) -> list[PreviewField]:
        return [PreviewField(n, FieldMatchMode(m)) for n, m in fields]

    def theirs(fields: list[tuple[str, str]]) -> list[aws_preview.PreviewField]:
        return [aws_preview.PreviewField(n, aws_preview.FieldMatchMode(m)) for n, m in fields]

    mine = build_preview(ORDER, PreviewConfig(PreviewMode(mode), ours(include), ours(exclude), ours(mask),
                                              max_preview_bytes=max_bytes))
    aws = aws_preview.build_preview(ORDER, aws_preview.PreviewConfig(
        aws_preview.PreviewMode(mode), theirs(include), theirs(exclude), theirs(mask), max_preview_bytes=max_bytes))
    assert mine == aws


def test_build_preview_of_a_non_dict_is_none() -> None:
    assert build_preview([1, 2], PreviewConfig(PreviewMode.INCLUDE_ALL)) is None
