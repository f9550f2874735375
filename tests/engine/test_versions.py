"""Published versions: snapshots of a function's code, aliases, and each version's code run apart."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from durably.core.engine.engine import Engine
from durably.core.engine.errors import (
    HandlerImportError,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from durably.core.engine.stores.sql_tx import SQLTx
from durably.core.engine.stores.sqlite import SCHEMA_VERSION
from durably.core.engine.stores.sqlite import SQLiteStore as Store

APP = '''
import pricing
from durably import DurableContext, durable_execution


@durable_execution
def quote(event, context: DurableContext):
    answer = context.create_callback(name="approve").result()
    return {"price": pricing.price(event["n"]), "pricing": pricing.VERSION, "answer": answer}
'''


def pricing(version: int) -> str:
    return f"VERSION = {version}\n\ndef price(n):\n    return n * {version * 10}\n"


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A handler folder: app.py imports its sibling pricing.py (version 1 of it)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "pricing.py").write_text(pricing(1))
    return folder


@pytest.fixture
def versions_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = Engine(tmp_path / "state" / "durably.db", synchronous="OFF")
    yield engine
    engine.close()
    engine.store.close()


def code_folder(engine: Engine) -> Path:
    assert engine.store.code_folder is not None
    return engine.store.code_folder


def callback_id(engine: Engine, arn: str) -> str:
    started = [e for e in engine.get_history(arn) if e["EventType"] == "CallbackStarted"]
    return str(started[-1]["CallbackStartedDetails"]["CallbackId"])


def started_blocked(engine: Engine, handler: str, n: int) -> str:
    arn = engine.start_execution(handler, {"n": n})
    assert engine.run_until_complete(arn, stop_when_blocked=True, timeout=30)["Status"] == "RUNNING"
    return arn


def answered(engine: Engine, arn: str, answer: str) -> dict[str, Any]:
    engine.send_callback_success(callback_id(engine, arn), answer)
    return engine.run_until_complete(arn, timeout=30)


@pytest.mark.sqlite_only
def test_publish_snapshots_the_folder_without_caches_hidden_entries_or_the_database(
        tmp_path: Path, code: Path) -> None:
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"stale")
    (code / ".env").write_text("SECRET=1")
    (code / "data").mkdir()
    (code / "data" / "rates.json").write_text("{}")
    with Engine(code / "state" / "durably.db", synchronous="OFF") as engine:  # the database inside the code
        published = engine.service.publish_version("app", f"{code}/app.py:quote", description="first")
        snapshot = code / "state" / "versions" / "app" / "1"
        assert published["Version"] == "1" and published["Description"] == "first"
        assert published["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:app:1"
        assert sorted(p.name for p in snapshot.iterdir()) == ["app.py", "data", "pricing.py"]
        (listed,) = engine.service.list_versions("app")["Versions"]
        assert listed["Ref"] == f"{snapshot}/app.py:quote" and listed["CodeSha256"] == published["CodeSha256"]
        assert engine.service.publish_version("app", f"{code}/app.py:quote")["Version"] == "2"
        engine.store.close()


def test_an_execution_keeps_its_version_after_the_alias_moves(versions_engine: Engine, code: Path) -> None:
    service = versions_engine.service
    service.publish_version("app", f"{code}/app.py:quote")
    service.update_alias("app", "live", 1)
    first = started_blocked(versions_engine, "app:live", 3)
    assert ":function:app:1/durable-execution/" in first
    (code / "pricing.py").write_text(pricing(2))
    service.publish_version("app", f"{code}/app.py:quote")
    assert service.update_alias("app", "live", "2")["FunctionVersion"] == "2"
    second = started_blocked(versions_engine, "app:live", 3)
    assert ":function:app:2/durable-execution/" in second
    # both are answered in this engine: each version's code runs in a process of its own
    assert answered(versions_engine, first, "yes")["Result"] == '{"price":30,"pricing":1,"answer":"yes"}'
    assert answered(versions_engine, second, "ok")["Result"] == '{"price":60,"pricing":2,"answer":"ok"}'
    assert [versions_engine.get_execution(a)["Version"] for a in (first, second)] == ["1", "2"]
    assert versions_engine.get_execution(first)["FunctionArn"].endswith(":function:app:1")
    listed = service.list_versions("app")
    assert [v["Version"] for v in listed["Versions"]] == ["1", "2"]
    assert listed["Aliases"] == [{"Name": "live", "FunctionVersion": "2",
                                  "AliasArn": "arn:aws:lambda:us-east-1:000000000000:function:app:live"}]


def test_a_version_number_and_latest_start_too(versions_engine: Engine, code: Path) -> None:
    versions_engine.service.publish_version("app", f"{code}/app.py:quote")
    (code / "pricing.py").write_text(pricing(5))
    on_one = started_blocked(versions_engine, "app:1", 1)
    latest = started_blocked(versions_engine, "app", 1)  # publishing recorded the function: $LATEST is the source
    assert ":function:app:$LATEST/" in latest and versions_engine.get_execution(latest)["Version"] == "$LATEST"
    spelled = started_blocked(versions_engine, "app:$LATEST", 1)  # the qualifier spelled out is the same
    assert versions_engine.get_execution(spelled)["Version"] == "$LATEST"
    assert versions_engine.get_execution(on_one)["Version"] == "1"
    assert answered(versions_engine, on_one, "a")["Result"] == '{"price":10,"pricing":1,"answer":"a"}'
    assert answered(versions_engine, latest, "b")["Result"] == '{"price":50,"pricing":5,"answer":"b"}'


def test_a_module_reference_snapshots_its_top_level_package(
        tmp_path: Path, versions_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "rates.py").write_text("RATE = 7\n")
    (tmp_path / "shop" / "orders.py").write_text(
        "from durably import durable_execution\nfrom shop import rates\n\n"
        "@durable_execution\ndef total(event, context):\n    return event['n'] * rates.RATE\n")
    versions_engine.service.publish_version("orders", "shop.orders:total")
    assert (code_folder(versions_engine) / "versions" / "orders" / "1" / "shop" / "rates.py").is_file()
    (tmp_path / "shop" / "rates.py").write_text("RATE = 100\n")
    arn = versions_engine.start_execution("orders:1", {"n": 2})
    assert versions_engine.run_until_complete(arn, timeout=30)["Result"] == "14"


def test_a_worker_process_that_exits_is_recorded_as_crashed(versions_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "crashy"
    folder.mkdir()
    (folder / "crashy.py").write_text(
        "import os, pathlib\nfrom durably import durable_execution\n\n@durable_execution\n"
        "def once(event, context):\n    marker = pathlib.Path(event['marker'])\n"
        "    if not marker.exists():\n        marker.write_text('x')\n        os._exit(3)\n    return 'again'\n")
    versions_engine.service.publish_version("crashy", f"{folder}/crashy.py:once")
    arn = versions_engine.start_execution("crashy:1", {"marker": str(tmp_path / "marker")})
    assert versions_engine.run_until_complete(arn, timeout=30)["Result"] == '"again"'
    errors = [e["InvocationCompletedDetails"].get("Error") for e in versions_engine.get_history(arn)
              if e["EventType"] == "InvocationCompleted"]
    assert errors[0]["Payload"]["ErrorType"] == "Runtime.ExitError" and "exit code 3" in str(errors[0])


def test_bad_versions_and_aliases_are_refused_clearly(versions_engine: Engine, code: Path) -> None:
    service = versions_engine.service
    with pytest.raises(ResourceNotFoundException, match="no function 'app'"):
        service.list_versions("app")
    with pytest.raises(ResourceNotFoundException, match="no function 'app' with published versions"):
        versions_engine.start_execution("app:1")
    service.publish_version("app", f"{code}/app.py:quote")
    with pytest.raises(ResourceNotFoundException, match="'app' has no published version 9"):
        versions_engine.start_execution("app:9")
    with pytest.raises(ResourceNotFoundException, match="'app' has no alias 'live'"):
        versions_engine.start_execution("app:live")
    with pytest.raises(ResourceNotFoundException, match="'app' has no published version 4"):
        service.update_alias("app", "live", 4)
    with pytest.raises(InvalidParameterValueException, match="not only digits"):
        service.update_alias("app", "7", 1)
    with pytest.raises(InvalidParameterValueException, match="not a published version number"):
        service.update_alias("app", "live", "one")
    with pytest.raises(InvalidParameterValueException, match="runs under that name only"):
        versions_engine.start_execution("app:1", function_name="other")
    with pytest.raises(InvalidParameterValueException, match="not a valid Lambda function name"):
        service.publish_version("bad name", f"{code}/app.py:quote")


@pytest.mark.parametrize(("source", "message"), [
    ("broken.py:handler", "SyntaxError"),
    ("app.py:missing", "has no attribute 'missing'"),
    ("plain.py:handler", "is not decorated with @durable_execution"),
    ("nowhere.py:handler", "no file"),
    ("no_such_module:handler", "no module named 'no_such_module'"),
])
def test_publishing_code_that_cannot_be_imported_keeps_nothing(
        versions_engine: Engine, code: Path, source: str, message: str) -> None:
    (code / "broken.py").write_text("def handler(:\n")
    (code / "plain.py").write_text("def handler(event, context):\n    return 1\n")
    ref = f"{code}/{source}" if ".py:" in source else source
    with pytest.raises(HandlerImportError, match=message):
        versions_engine.service.publish_version("app", ref)
    assert not (code_folder(versions_engine) / "versions" / "app" / "1").exists()
    with pytest.raises(ResourceNotFoundException):
        versions_engine.service.list_versions("app")


def test_code_changed_says_whether_a_latest_executions_file_changed(versions_engine: Engine, code: Path) -> None:
    arn = started_blocked(versions_engine, f"{code}/app.py:quote", 1)
    assert versions_engine.service.code_changed(arn) is False
    (code / "app.py").write_text(APP + "\n# edited\n")
    assert versions_engine.service.code_changed(arn) is True
    versions_engine.service.publish_version("app", f"{code}/app.py:quote")
    assert versions_engine.service.code_changed(started_blocked(versions_engine, "app:1", 1)) is None


@pytest.mark.sqlite_only
def test_a_schema_4_database_is_migrated(tmp_path: Path, code: Path, as_schema_4: Callable[[Path], None]) -> None:
    db = tmp_path / "old.db"
    Store(db).close()
    as_schema_4(db)
    with Engine(db) as engine:
        assert engine.service.publish_version("app", f"{code}/app.py:quote")["Version"] == "1"
        engine.store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_a_chained_invoke_of_an_alias_runs_that_version(versions_engine: Engine, tmp_path: Path) -> None:
    from durably import DurableContext, durable_execution

    folder = tmp_path / "rate"
    folder.mkdir()
    (folder / "rate.py").write_text("from durably import durable_execution\nimport table\n\n"
                                    "@durable_execution\ndef rate(event, context):\n    return table.RATE\n")
    (folder / "table.py").write_text("RATE = 1\n")
    versions_engine.service.publish_version("rate", f"{folder}/rate.py:rate")
    versions_engine.service.update_alias("rate", "live", 1)
    (folder / "table.py").write_text("RATE = 2\n")

    @durable_execution
    def caller(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("rate:live", {}, name="call")

    arn = versions_engine.start_execution(caller, {})
    assert versions_engine.run_until_complete(arn, timeout=30)["Result"] == "1"
    (started,) = [e for e in versions_engine.get_history(arn) if e["EventType"] == "ChainedInvokeStarted"]
    details = started["ChainedInvokeStartedDetails"]
    assert details["ExecutedVersion"] == "1" and ":function:rate:1/" in details["DurableExecutionArn"]


def test_a_version_whose_snapshot_is_gone_is_unpacked_from_the_database(versions_engine: Engine, code: Path) -> None:
    """As on a machine that did not publish it: the code kept in the database is unpacked and run."""
    versions_engine.service.publish_version("app", f"{code}/app.py:quote")
    snapshot = code_folder(versions_engine) / "versions" / "app" / "1"
    shutil.rmtree(snapshot)
    (code / "pricing.py").write_text(pricing(2))  # the working copy moved on: version 1 is still version 1
    arn = started_blocked(versions_engine, "app:1", 3)
    assert answered(versions_engine, arn, "ok")["Result"] == '{"price":30,"pricing":1,"answer":"ok"}'
    assert sorted(p.name for p in snapshot.iterdir() if p.suffix == ".py") == ["app.py", "pricing.py"]
    assert [p.name for p in snapshot.parent.iterdir()] == ["1"]  # no unpacking leftovers beside it


def test_a_version_whose_kept_code_does_not_match_its_sha256_is_not_run(
        versions_engine: Engine, code: Path) -> None:
    versions_engine.service.publish_version("app", f"{code}/app.py:quote")
    shutil.rmtree(code_folder(versions_engine) / "versions" / "app" / "1")
    versions_engine.store.transact(lambda tx: cast(SQLTx, tx).sql("UPDATE versions SET code_sha256 = ?", ("0" * 64,)))
    arn = versions_engine.start_execution("app:1", {"n": 1})
    assert versions_engine.run_until_complete(arn, timeout=2)["Status"] == "RUNNING"
    problem = versions_engine.service.last_invocation_error(arn)
    assert problem is not None and "does not match its SHA-256" in problem["Error"]["ErrorMessage"], problem
    assert not (code_folder(versions_engine) / "versions" / "app" / "1").exists()


def test_code_too_big_to_keep_is_refused_and_nothing_is_published(versions_engine: Engine, code: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("durably.core.engine.code_versions.MAX_ARCHIVE_BYTES", 100)
    with pytest.raises(InvalidParameterValueException, match="MiB packed; at most 0 MiB can be published"):
        versions_engine.service.publish_version("app", f"{code}/app.py:quote")
    with pytest.raises(ResourceNotFoundException):
        versions_engine.service.list_versions("app")  # nothing of the function was kept
    assert versions_engine.store.read(lambda tx: tx.last_version("app")) == 0
    assert not (code_folder(versions_engine) / "versions" / "app" / "1").exists()


def test_a_version_whose_snapshot_is_gone_is_given_back_with_a_backoff(
        versions_engine: Engine, code: Path, caplog: pytest.LogCaptureFixture) -> None:
    versions_engine.service.publish_version("app", f"{code}/app.py:quote")
    shutil.rmtree(code_folder(versions_engine) / "versions" / "app" / "1")
    versions_engine.store.transact(lambda tx: cast(SQLTx, tx).sql("DELETE FROM code_archives"))  # nor in the database
    arn = versions_engine.start_execution("app:1", {"n": 1})
    with caplog.at_level(logging.INFO, logger="durably.engine"):
        assert versions_engine.run_until_complete(arn, timeout=2)["Status"] == "RUNNING"
    gave_back = [r for r in caplog.records if "ended without running" in r.getMessage()]
    assert 1 <= len(gave_back) <= 2  # not a busy loop: the first pause is 1 s, the next 2 s
    problem = versions_engine.service.last_invocation_error(arn)
    assert problem is not None and "cannot import" in problem["Error"]["ErrorMessage"]
