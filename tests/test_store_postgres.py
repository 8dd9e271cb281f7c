"""What the PostgreSQL store does beyond the shared contract (tests/store_contract.py): its schema
and migrations, readers, run_ids given by the caller, a lost connection, and where credentials
come from (URL, PGPASSFILE, a libpq service) without ever being printed. On the session's
throw-away server (tests/pgserver.py), each test in a schema of its own."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import psycopg
import pytest

from cronplus.errors import CronplusError
from cronplus.status import RunStatus, Trigger
from cronplus.store import schema
from cronplus.store.api import RunStart
from cronplus.store.faults import storage_problem
from cronplus.store.postgres import DatabaseUnavailable, open_postgres, open_postgres_outbox
from cronplus.store.postgres_history import PostgresHistory
from cronplus.store.readhistory import NoHistoryError
from cronplus.store.storeguard import Store, StoreAway
from tests.pgserver import ROLE, PgServer

T0 = 1_750_000_000.0


def start(store: PostgresHistory, job: str = "backup", *, run_id: int | None = None) -> int:
    return store.start_runs([RunStart(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                      started_at=T0, log_path=None, owner="sup-1", run_id=run_id)])[0]


def kill_connection(server: PgServer, store: PostgresHistory) -> None:
    """The server ends the store's session, as a restart or a network cut would."""
    pid = store.db.conn().info.backend_pid
    assert server.admin_sql(f"SELECT pg_terminate_backend({pid})") == [(True,)]


def test_a_writer_creates_the_schema_of_the_description_and_a_reader_needs_it(pg_server: PgServer,
                                                                              pg_url: str) -> None:
    with pytest.raises(NoHistoryError, match="no history yet"):
        open_postgres(pg_url, readonly=True)
    with open_postgres(pg_url, host="box-a") as writer:
        run_id = start(writer)
    schema_name = pg_url.rpartition("%3D")[2]
    tables = {row[0] for row in pg_server.admin_sql(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema_name}'", "cronplus")}
    assert tables == {"runs", "run_stats", "kv", "outbox", "hosts", "cronplus_schema"}
    assert pg_server.admin_sql(f"SELECT version FROM {schema_name}.cronplus_schema", "cronplus") == [
        (schema.SCHEMA_VERSION,)]
    with open_postgres(pg_url, readonly=True) as reader:
        assert [r.run_id for r in reader.running()] == [run_id]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.kv_set("k", "v")


def test_a_newer_schema_is_refused_with_one_line(pg_server: PgServer, pg_url: str) -> None:
    open_postgres(pg_url).close()
    schema_name = pg_url.rpartition("%3D")[2]
    pg_server.admin_sql(f"UPDATE {schema_name}.cronplus_schema SET version = 99", "cronplus")
    with pytest.raises(CronplusError, match=f"schema 99 is newer than this cronplus \\({schema.SCHEMA_VERSION}\\)"):
        open_postgres(pg_url)


def test_writers_starting_together_migrate_once(pg_server: PgServer, pg_url: str) -> None:
    errors: list[Exception] = []

    def open_one() -> None:
        try:
            open_postgres(pg_url).close()
        except (CronplusError, psycopg.Error) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    schema_name = pg_url.rpartition("%3D")[2]
    assert pg_server.admin_sql(f"SELECT version FROM {schema_name}.cronplus_schema", "cronplus") == [
        (schema.SCHEMA_VERSION,)]


def test_run_stats_are_kept_by_the_triggers(pg_url: str) -> None:
    with open_postgres(pg_url) as store:
        a, _ = start(store, "a"), start(store, "b")
        store.finish_run(a, status=RunStatus.SUCCESS, ended_at=T0 + 1, exit_code=0, reason=None, final=True)
        conn = store.db.conn()
        stats = {r["job"]: (r["runs"], r["log_bytes"]) for r in conn.execute("SELECT job, runs, log_bytes FROM run_stats")}
        conn.execute("DELETE FROM runs WHERE job = 'b'")
        after = [r["job"] for r in conn.execute("SELECT job FROM run_stats")]
    assert stats == {"a": (1, 0), "b": (1, 0)} and after == ["a"]


def test_a_run_id_given_by_the_caller_is_never_handed_out_again(pg_url: str) -> None:
    with open_postgres(pg_url) as store:
        first = start(store)
        held = store.next_run_id() + 4  # what storeguard gives a held row
        assert start(store, run_id=held) == held
        later = start(store)
        assert later > held and store.next_run_id() > later
        missed = store.record_not_run(job="x", status=RunStatus.MISSED, trigger=Trigger.SCHEDULE, scheduled_at=T0,
                                      tz=None, at=T0, reason="down", run_id=later + 10)
        assert missed.run_id == later + 10 and start(store) > missed.run_id
        assert first < held


def test_query_pages_through_more_rows_than_one_fetch(pg_url: str) -> None:
    with open_postgres(pg_url) as store:
        ids = store.start_runs([RunStart(job=f"j{i % 3}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0 + i,
                                         tz=None, started_at=T0 + i, log_path=None, owner="o") for i in range(2500)])
        assert [r.run_id for r in store.iter_query()] == ids
        assert [r.run_id for r in store.iter_query(newest_first=True, limit=2100)] == ids[::-1][:2100]
        assert [r.run_id for r in store.query(jobs=["j1"], after_run_id=ids[1000])] == [
            i for n, i in enumerate(ids) if n % 3 == 1 and i > ids[1000]]
        assert [r.run_id for r in store.query(limit=1500)] == ids[-1500:]


def test_a_lost_connection_is_one_clear_error_and_the_next_call_reconnects(pg_server: PgServer,
                                                                          pg_url: str) -> None:
    with open_postgres(pg_url) as store:
        run_id = start(store)
        kill_connection(pg_server, store)
        with pytest.raises(DatabaseUnavailable) as lost:
            store.kv_set("k", "v")
        text = str(lost.value)
        assert "connection lost" in text and f"127.0.0.1:{pg_server.port}/cronplus" in text
        assert pg_server.password not in text
        store.kv_set("k", "v")  # reconnected
        assert store.kv_get("k") == "v" and store.get_run(run_id) is not None

        calls: list[str] = []
        with pytest.raises(DatabaseUnavailable), store.transaction():  # lost half-way: none of it
            store.kv_set("k", "w")
            store.after_commit(lambda: calls.append("committed"))
            kill_connection(pg_server, store)
            store.finish_run(run_id, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason="exit 1", final=True)
        assert calls == [] and store.get_run(run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]
        assert store.kv_get("k") == "v"

        with pytest.raises(DatabaseUnavailable), store.transaction():  # a caller that swallows the loss
            store.kv_set("k", "x")
            kill_connection(pg_server, store)
            with contextlib.suppress(DatabaseUnavailable):
                store.kv_set("k", "y")
            store.kv_set("k", "z")  # not on a new connection of its own: the transaction is gone
        assert store.kv_get("k") == "v"


def test_a_write_on_a_lost_connection_is_tried_again_at_once_on_a_new_one(pg_server: PgServer, pg_url: str) -> None:
    with open_postgres(pg_url) as history:
        run_id = start(history)
        store = Store(history)
        kill_connection(pg_server, history)  # the server is up again at once (a restart that is over)
        ended = store.write(lambda _: history.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 1,
                                                         exit_code=0, reason=None, final=True),
                            lambda _: None, what="end of backup")
        assert ended is not None and ended.status is RunStatus.SUCCESS and store.problem is None
        assert history.get_run(run_id).status is RunStatus.SUCCESS  # type: ignore[union-attr]
        store.close()


def test_with_the_database_away_no_run_starts_and_held_rows_keep_their_own_ids(pg_server: PgServer) -> None:
    role, password = pg_server.new_role()  # locked out below: reconnecting fails as with a server down
    schema_name = pg_server.new_schema(owner=role)
    try:
        with open_postgres(pg_server.url(schema=schema_name, user=role, password=password)) as history:
            first = start(history)
            store = Store(history)
            pg_server.admin_sql(f"ALTER ROLE {role} NOLOGIN")
            kill_connection(pg_server, history)
            with pytest.raises(StoreAway, match=r"database unavailable: .*cannot connect"):
                store.start_runs([RunStart(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0 + 60,
                                           tz=None, started_at=T0 + 60, log_path=None, owner="sup-1")
                                  for job in ("a", "b")])
            assert store.away and not store.held  # a start is never held: its row is its claim
            store.write(lambda _: history.finish_run(first, status=RunStatus.SUCCESS, ended_at=T0 + 1, exit_code=0,
                                                     reason=None, final=True), lambda _: None, what="end of backup")
            skipped = store.write(lambda ids: history.record_not_run(
                job="c", status=RunStatus.SKIPPED, trigger=Trigger.SCHEDULE, scheduled_at=T0 + 60, tz=None,
                at=T0 + 60, reason="supervisor shutdown", run_id=ids[0]), lambda ids: ids[0], ids=1, what="c")
            assert skipped == 0, "no run_id is made up while away: the database hands it out when written"
            assert store.flush() is False and len(store.held) == 2
            pg_server.admin_sql(f"ALTER ROLE {role} LOGIN")
            assert store.flush() is True and not store.away
            rows = [(r.run_id, r.job, r.status) for r in history.query()]
            assert rows == [(first, "backup", RunStatus.SUCCESS), (first + 1, "c", RunStatus.SKIPPED)]
            store.close()
    finally:
        pg_server.drop_schema(schema_name)
        pg_server.drop_role(role)


def test_an_unreachable_server_is_one_line_without_the_password(pg_server: PgServer, pg_url: str) -> None:
    wrong = pg_server.url(password="not-the-password-x1")
    with pytest.raises(DatabaseUnavailable) as refused:
        open_postgres(wrong)
    text = str(refused.value)
    assert "cannot connect" in text and "password authentication failed" in text
    assert "not-the-password-x1" not in text and pg_server.password not in text
    assert storage_problem(refused.value, "") == text  # the scheduler's Store holds writes on it
    closed = pg_url.replace(f":{pg_server.port}/", ":1/")
    with pytest.raises(DatabaseUnavailable, match=r"postgresql://cronplus@127\.0\.0\.1:1/cronplus: cannot connect"):
        open_postgres_outbox(closed)


def test_credentials_from_pgpassfile_and_a_libpq_service(pg_server: PgServer, pg_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    options = pg_url.partition("?")[2]
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{pg_server.port}:cronplus:{ROLE}:{pg_server.password}\n")
    passfile.chmod(0o600)  # libpq ignores a password file others can read
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with open_postgres(f"postgresql://{ROLE}@127.0.0.1:{pg_server.port}/cronplus?{options}", host="h") as store:
        assert start(store) > 0
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[cronplus-test]\nhost=127.0.0.1\nport={pg_server.port}\ndbname=cronplus\nuser={ROLE}\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    with open_postgres(f"postgresql://?service=cronplus-test&{options}", host="h") as store:
        assert [r.job for r in store.running()] == ["backup"]
        assert pg_server.password not in repr(store)


@pytest.mark.parametrize("url", [
    "postgresql://ops:p%zzWhisper42@127.0.0.1:1/cron",  # libpq quotes the bad token: the password
    "postgresql://ops:Whisper 42@127.0.0.1:1/cron",
    "postgresql://ops@127.0.0.1:1/cron?password=Whisper%2042&sslmode=nonsense",
    "postgresql://ops:Whisper42@127.0.0.1:notaport/cron",
])
def test_a_malformed_or_refused_url_is_one_line_without_its_password(url: str) -> None:
    with pytest.raises(DatabaseUnavailable) as refused:
        open_postgres(url)
    text = str(refused.value)
    assert text.startswith("history database postgresql://ops@127.0.0.1:") and "cannot connect" in text
    assert "Whisper" not in text and "\n" not in text
