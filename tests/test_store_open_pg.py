"""`--db postgresql://...` end to end (store/open.py dispatching to cronplus.store.postgres): the
commands that read history, and an in-process trigger that writes it, on a real PostgreSQL
server (tests/pgserver.py: the pg_url fixture; skipped where there is none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cronplus.status import RunStatus, Trigger
from cronplus.store.open import open_reader, open_writer
from tests import incli
from tests.test_daemon import cli

T0 = 1_750_000_000.0


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    try:
        return str(request.getfixturevalue("pg_url"))
    except pytest.FixtureLookupError:
        pytest.skip("no PostgreSQL backend in this tree")


def test_log_output_jobs_and_alerts_read_a_postgresql_history(tmp_path: Path, url: str) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=job\n0 3 * * * true\n")
    log = tmp_path / "logs" / "1.log"
    log.parent.mkdir()
    log.write_bytes(b"from postgres\n")
    writer = open_writer(url, host="node-1")
    try:
        run_id = writer.start_run(job="job", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                  started_at=T0, log_path=str(log), owner="sup")
        writer.finish_run(run_id, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=3, reason="exit 3", final=True)
        writer.enqueue_outbox(kind="alert", event="failure", job="job", run_id=run_id, target="http://x/",
                              format="json", secret_ref=None, payload={}, now=T0)
    finally:
        writer.close()
    env = incli.base_env(HOME=str(tmp_path), CRONPLUS_STATE_DIR=str(tmp_path / "state"),
                         CRONPLUS_CRONTAB=str(tmp_path / "crontab"), CRONPLUS_DB=url)
    logged = incli.run(["log", "--json"], env=env)
    assert logged.returncode == 0, logged.stderr
    assert [(r["run_id"], r["status"], r["host"]) for r in map(json.loads, logged.stdout.splitlines())] == [
        (run_id, "failed", "node-1")]
    assert incli.run_bytes(["output", str(run_id)], env=env).stdout == b"from postgres\n"
    assert json.loads(incli.run(["jobs", "--json"], env=env).stdout)["last_status"] == "failed"
    alerts = incli.run(["alerts", "--json"], env=env)
    assert alerts.returncode == 0, alerts.stderr
    assert [json.loads(line)["run"]["run_id"] for line in alerts.stdout.splitlines()] == [run_id]
    assert not (tmp_path / "state" / "history.db").exists()


def test_trigger_without_a_supervisor_records_its_run_in_postgresql(tmp_path: Path, url: str) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=hello\n0 3 * * * echo hi\n")
    done = cli(tmp_path / "state", tmp_path / "crontab", "trigger", "hello", "--wait", "--db", url, timeout=60)
    assert done.returncode == 0, done.stderr
    reader = open_reader(url)
    try:
        assert [(r.job, r.status) for r in reader.query()] == [("hello", RunStatus.SUCCESS)]
    finally:
        reader.close()
    password = url.split(":")[2].split("@")[0]
    assert password not in done.stdout + done.stderr
