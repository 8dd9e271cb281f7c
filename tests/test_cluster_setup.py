"""The set-up docs/cluster.md describes, done for real: the supervisor and the reading commands
reach PostgreSQL through a libpq service file and a password file (`--db
'postgresql:///?service=NAME'`, PGSERVICEFILE, PGPASSFILE), the location they print names the
service (never the password: the log cuts it to `postgresql:///…`, not `<redacted>`), and a job
sees none of the supervisor's database settings."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cronplus.service import control
from cronplus.store.open import shown
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent
SERVICE_URL = "postgresql:///?service=cronplus"


def test_a_url_naming_only_a_libpq_service_is_shown_by_its_service() -> None:
    assert shown(SERVICE_URL) == SERVICE_URL
    assert shown("postgresql:///cron?host=/run/postgresql") == "postgresql:///cron?host=/run/postgresql"


def test_a_host_less_url_is_shown_without_its_password_or_other_parameters() -> None:
    text = shown("postgresql://ops:s3cret-pw@/cron?host=/run/postgresql&password=an0ther&sslkey=/k")
    assert text == "postgresql://ops@/cron?host=/run/postgresql"


@pytest.fixture
def service_files(pg_server: PgServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A service file and a 0600 password file for a schema of this test's own: the environment
    the docs' systemd drop-in gives the supervisor."""
    schema = pg_server.new_schema()
    service = tmp_path / "pg_service.conf"
    service.write_text(f"[cronplus]\nhost=127.0.0.1\nport={pg_server.port}\ndbname=cronplus\nuser=cronplus\n"
                       f"options=-csearch_path={schema}\n")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:cronplus:cronplus:{pg_server.password}\n")
    pgpass.chmod(0o600)
    yield {"CRONPLUS_DB": SERVICE_URL, "PGSERVICEFILE": str(service), "PGPASSFILE": str(pgpass)}
    pg_server.drop_schema(schema)


def cronplus(tmp_path: Path, env: dict[str, str], *args: str) -> list[str]:
    return [sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"),
            "--state-dir", str(tmp_path / "state"), *args]


@pytest.mark.e2e
def test_the_documented_service_file_setup_runs_jobs_prints_the_service_and_keeps_it_from_jobs(
        pg_server: PgServer, service_files: dict[str, str], tmp_path: Path) -> None:
    env_dump = tmp_path / "job.env"
    (tmp_path / "crontab").write_text(f"# cronplus: name=envdump\n0 0 1 1 * env > {env_dump}\n")
    env = {**os.environ, **service_files, "CRONPLUS_HOST_ID": "app1"}
    err = tmp_path / "supervisor.err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(cronplus(tmp_path, env, "run"), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        def ready() -> bool:
            assert proc.poll() is None, err.read_text()
            with contextlib.suppress(control.NoSupervisor, StopIteration, OSError):
                next(control.request(tmp_path / "state" / "control.sock", {"cmd": "status"}))
                return True
            return False

        wait_until(ready, 60, "the supervisor to be ready")
        trigger = subprocess.run(cronplus(tmp_path, env, "trigger", "envdump", "--wait"), cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert trigger.returncode == 0, trigger.stderr
        log = subprocess.run(cronplus(tmp_path, env, "log", "--json"), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert log.returncode == 0, log.stderr
        assert '"host": "app1"' in log.stdout and '"status": "success"' in log.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)

    printed = err.read_text() + trigger.stdout + trigger.stderr + log.stderr
    # the log cuts every URL to scheme and host (systemd.py's formatter): a service URL has none
    assert "history postgresql:///…" in err.read_text()
    assert pg_server.password not in printed
    job_env = dict(line.split("=", 1) for line in env_dump.read_text().splitlines() if "=" in line)
    assert {"CRONPLUS_DB", "PGSERVICEFILE", "PGPASSFILE", "CRONPLUS_HOST_ID"}.isdisjoint(job_env)
    assert pg_server.password not in env_dump.read_text()
