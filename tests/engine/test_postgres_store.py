"""The PostgreSQL store's own behaviour: opening (a missing database, a foreign or newer schema, an
unreachable server), read-only use, row locks between workers, and names taken by two workers at
once. Needs a server: ``DURABLY_TEST_POSTGRES`` (``.ci/run`` starts one)."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg_store
import pytest
from durably import DurableContext, durable_execution
from durably.core.engine import code_versions
from durably.core.engine import engine as engine_module
from durably.core.engine.engine import Engine
from durably.core.engine.errors import DatabaseUnavailable, NotADurablyDatabase
from durably.core.engine.stores import open_store, postgres_tx

pytestmark = pytest.mark.skipif("DURABLY_TEST_POSTGRES" not in os.environ,
                                reason="needs a PostgreSQL server (DURABLY_TEST_POSTGRES)")


@pytest.fixture
def db_url() -> Iterator[str]:
    name = f"t_{secrets.token_hex(8)}"
    yield pg_store.url_for(name)
    pg_store.drop({name})


def _server() -> Any:
    import psycopg

    return psycopg.connect(pg_store.SERVER, autocommit=True)


@durable_execution
def two_steps(event: Any, ctx: DurableContext) -> int:
    one = ctx.step(lambda _: 1, name="one")
    two = ctx.step(lambda _: event["n"], name="two")
    return int(one + two)


def test_a_missing_database_is_created_with_the_schema(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert store.read(lambda tx: tx.function_names()) == []
    finally:
        store.close()
    with _server() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_url.rsplit("/", 1)[1],)).fetchone()


def test_an_execution_runs_and_a_second_engine_reads_it(db_url: str) -> None:
    with Engine(db_url) as engine:
        engine.register_durable_function("two", two_steps)
        arn = engine.start_execution("two", {"n": 41})
        assert engine.run_until_complete(arn, timeout=30)["Result"] == "42"
    engine.store.close()
    other = Engine(db_url)
    try:
        assert other.get_execution(arn)["Status"] == "SUCCEEDED"
        names = [e.get("Name") for e in other.get_history(arn) if e["EventType"] == "StepSucceeded"]
        assert names == ["one", "two"]
    finally:
        other.close()
        other.store.close()


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"cannot connect to postgresql://u:\*\*\*@127\.0\.0\.1:1/x"):
        open_store("postgresql://u:secret@127.0.0.1:1/x")


def test_a_read_only_open_of_a_missing_database_creates_nothing() -> None:
    name = f"t_{secrets.token_hex(8)}"
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        open_store(pg_store.url_for(name), readonly=True)
    with _server() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_a_foreign_durably_schema_is_refused_and_untouched(db_url: str) -> None:
    open_store(db_url).close()
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA durably CASCADE")
        conn.execute("CREATE SCHEMA durably")
        conn.execute("CREATE TABLE durably.customers(id int)")
    with pytest.raises(NotADurablyDatabase, match=r"did not create \(tables: customers"):
        open_store(db_url)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM durably.customers").fetchone() == (0,)


def test_a_newer_schema_is_refused(db_url: str) -> None:
    open_store(db_url).close()
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE durably.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(NotADurablyDatabase, match="schema 99, newer than this durably"):
        open_store(db_url)


def test_a_schema_1_database_is_migrated_when_opened_for_writing(db_url: str) -> None:
    """Schema 1 had no code archives: a read-only open says to migrate it, a writable one does."""
    open_store(db_url).close()
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE durably.code_archives")
        conn.execute("UPDATE durably.meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(NotADurablyDatabase, match="schema 1, older than this durably"):
        open_store(db_url, readonly=True)
    store = open_store(db_url)
    try:
        store.transact(lambda tx: tx.save_code_archive("f", 1, b"packed"))
    finally:
        store.close()
    with psycopg.connect(db_url) as conn:
        version = conn.execute("SELECT value FROM durably.meta WHERE key = 'schema_version'").fetchone()
        assert version is not None and version[0] == str(postgres_tx.SCHEMA_VERSION) == "2"


def test_a_read_only_store_reads_and_refuses_writes(db_url: str) -> None:
    open_store(db_url).close()
    store = open_store(db_url, readonly=True)
    try:
        assert store.read(lambda tx: tx.function_names()) == []
        with pytest.raises(PermissionError, match="opened read-only"):
            store.transact(lambda tx: tx.delete_timers(1))
    finally:
        store.close()


def test_a_locked_execution_is_skipped_by_claims(db_url: str) -> None:
    with Engine(db_url) as engine:
        engine.register_durable_function("two", two_steps)
        arn = engine.start_execution("two", {"n": 1})
        held, release = threading.Event(), threading.Event()

        def hold(tx: Any) -> None:
            assert tx.execution(arn, lock=True) is not None
            held.set()
            release.wait(10)

        holder = threading.Thread(target=engine.store.transact, args=(hold,))
        holder.start()
        try:
            assert held.wait(10)
            assert engine.store.transact(lambda tx: tx.execution(arn, lock="skip")) is None
            assert engine.service.claim() is None
        finally:
            release.set()
            holder.join()
        assert engine.service.claim() is not None
    engine.store.close()


def test_one_name_started_by_two_workers_at_once_is_one_execution(db_url: str) -> None:
    open_store(db_url).close()
    engines = [Engine(db_url) for _ in range(4)]
    try:
        for engine in engines:
            engine.register_durable_function("two", two_steps)
        barrier = threading.Barrier(len(engines))
        arns: list[str] = []

        def start(engine: Engine) -> None:
            barrier.wait()
            arns.append(engine.start_execution("two", {"n": 1}, name="only-once"))

        threads = [threading.Thread(target=start, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(arns)) == 1 and len(arns) == 4
        assert len(engines[0].list_executions()["DurableExecutions"]) == 1
    finally:
        for engine in engines:
            engine.close()
            engine.store.close()


def test_the_password_is_not_shown(db_url: str) -> None:
    from durably.core.engine.stores.postgres import redacted

    assert redacted("postgresql://me:hunter2@db.example:5432/app") == "postgresql://me:***@db.example:5432/app"
    assert redacted(db_url) == db_url


@durable_execution
def logs_a_nul(event: Any, ctx: DurableContext) -> str:
    ctx.logger.info("before\x00after")
    return "done"


def test_a_log_message_with_a_nul_is_kept_with_the_nul_shown(db_url: str) -> None:
    """PostgreSQL's text cannot hold NUL; the record is kept, the NUL stored as the symbol for null."""
    engine = Engine(db_url)
    try:
        arn = engine.start_execution(logs_a_nul, None)
        assert engine.run_until_complete(arn, timeout=30)["Status"] == "SUCCEEDED"
        assert [r["Message"] for r in engine.service.get_logs(arn)] == ["before\u2400after"]
    finally:
        engine.close()
        engine.store.close()


HANDLER = '''
import rates
from durably import DurableContext, durable_execution

@durable_execution
def quote(event, context: DurableContext):
    return context.step(lambda _: event["n"] * rates.RATE, name="price")
'''


def test_a_version_published_on_one_machine_runs_on_another(db_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each machine keeps published code in a folder of its own; the other machine's worker unpacks
    the version's code from the database and runs it, its file reference moved to its own folder."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    (code / "rates.py").write_text("RATE = 3\n")
    monkeypatch.setenv("DURABLY_CODE_DIR", str(tmp_path / "machine-a"))
    publisher = Engine(db_url)
    try:
        published = publisher.service.publish_version("quote", f"{code}/app.py:quote")
    finally:
        publisher.close()
        publisher.store.close()
    shutil.rmtree(code)  # nothing of the working copy is left to import
    monkeypatch.setenv("DURABLY_CODE_DIR", str(tmp_path / "machine-b"))
    runner = Engine(db_url)
    try:
        arn = runner.start_execution("quote:1", {"n": 7})
        assert runner.run_until_complete(arn, timeout=30)["Result"] == "21"
    finally:
        runner.close()
        runner.store.close()
    unpacked = tmp_path / "machine-b" / "versions" / "quote" / "1"
    assert sorted(p.name for p in unpacked.glob("*.py")) == ["app.py", "rates.py"]
    assert published["CodeSha256"] == code_versions.tree_sha256(unpacked)


@durable_execution
def at_once(event: Any, ctx: DurableContext) -> int:
    return int(event)


def test_a_worker_on_another_machine_is_told_of_new_work_at_once(db_url: str) -> None:
    """NOTIFY on commit wakes the other machine's idle scheduler, whose poll is then only a safety net
    (every LISTENING_POLL_SECONDS): each execution ends well within one poll period."""
    starter = Engine(db_url)
    worker = Engine(db_url, workers=1)
    try:
        starter.register_durable_function("at-once", at_once)
        worker.register_durable_function("at-once", at_once)
        worker.start()
        assert worker._poll_seconds == engine_module.LISTENING_POLL_SECONDS
        time.sleep(0.5)  # the worker's scheduler is asleep
        waits = []
        for n in range(5):
            started = time.monotonic()
            arn = starter.start_execution("at-once", n)
            while starter.get_execution(arn)["Status"] == "RUNNING":
                assert time.monotonic() - started < 10
                time.sleep(0.005)
            waits.append(time.monotonic() - started)
            time.sleep(0.3)  # asleep again
        assert max(waits) < 0.4 * engine_module.LISTENING_POLL_SECONDS, waits
    finally:
        for engine in (worker, starter):
            engine.close()
            engine.store.close()
