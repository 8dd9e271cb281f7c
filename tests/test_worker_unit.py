"""`cronplus install-service --worker` (issue 15's loose ends) and the worker's systemd unit:
run as a real command as tests/test_install_service.py does (CRONPLUS_UNIT_DIR and
CRONPLUS_WORKER_ENV redirect the files into tmp_path, CRONPLUS_SYSTEMCTL is a recording
script standing in for systemctl); `systemd-analyze verify` on the written unit; and a real
`cronplus worker` (Redis `redis_url`, an SQLite history) telling systemd READY=1 and
STOPPING=1 through $NOTIFY_SOCKET, its queue, broker and database from the environment as the
unit's environment file gives them."""

from __future__ import annotations

import shutil
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.service.workerunit import env_file_text, render_worker_unit, shipped_worker_unit
from tests.test_daemon_notify import read_until
from tests.test_faults_restart import ROOT
from tests.test_install_service import (
    VENV_CRONPLUS,
    calls,
    environment,
    fake_systemctl,
    install_service,
    needs_script,
)
from tests.test_units import settings

REPO = Path(__file__).resolve().parent.parent
BROKER = "redis://:s3cret-broker@broker.example:6379/0"
DB = "postgresql://cron:s3cret-db@db.example/cron"


def worker_env(tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, CRONPLUS_UNIT_DIR=str(tmp_path / "units"), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)),
                       CRONPLUS_WORKER_ENV=str(tmp_path / "default" / "cronplus-worker"))


def test_the_shipped_worker_unit_is_exactly_what_render_worker_unit_produces() -> None:
    assert (REPO / "systemd" / "cronplus-worker.service").read_text() == shipped_worker_unit()


def test_the_worker_unit_is_a_notify_service_restarted_on_failure_its_secrets_in_an_environment_file() -> None:
    unit = settings(render_worker_unit(user=False, exec_start=["/usr/bin/cronplus", "worker", "--system"],
                                       env_file="/etc/default/cronplus-worker"))
    service = unit["Service"]
    assert (service["Type"], service["NotifyAccess"], service["Restart"]) == (["notify"], ["main"], ["on-failure"])
    assert service["EnvironmentFile"] == ["/etc/default/cronplus-worker"]
    assert service["ExecStart"] == ["/usr/bin/cronplus worker --system"]  # no URL on the command line
    assert service["KillMode"] == ["control-group"] and service["StateDirectory"] == ["cronplus-worker"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    user = settings(render_worker_unit(user=True, exec_start=["/usr/bin/cronplus", "worker"], env_file="/h/.config/w.env"))
    assert "StateDirectory" not in user["Service"] and user["Install"]["WantedBy"] == ["default.target"]


def test_environment_file_values_are_quoted_for_systemd_and_a_newline_is_refused() -> None:
    assert env_file_text({"A": 'x"y\\z', "B": "p q"}) == 'A="x\\"y\\\\z"\nB="p q"\n'
    with pytest.raises(ValueError, match="control character"):
        env_file_text({"A": "x\ny"})


@needs_script
def test_a_dry_run_shows_the_environment_file_with_its_urls_cut_and_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    result = install_service(tmp_path, "--worker", "--queue", "gpu", "--broker", BROKER, "--db", DB,
                             "--concurrency", "1", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert f"# would write {tmp_path}/default/cronplus-worker (mode 0600" in result.stdout
    assert 'CRONPLUS_QUEUE="gpu"\n' in result.stdout and "broker.example" in result.stdout
    assert f"ExecStart={VENV_CRONPLUS} worker --system --concurrency 1\n" in result.stdout
    assert "# would run: systemctl enable --now cronplus-worker.service" in result.stdout
    assert not (tmp_path / "units").exists() and not (tmp_path / "default").exists() and calls(tmp_path) == []


@needs_script
def test_an_install_writes_a_root_only_environment_file_and_the_unit_then_enables_and_starts_it(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    result = install_service(tmp_path, "--worker", "--queue", "gpu", "--queue", "cpu", "--broker", BROKER, "--db", DB,
                             "--state-dir", "st", env=env)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    secrets, unit = tmp_path / "default" / "cronplus-worker", tmp_path / "units" / "cronplus-worker.service"
    assert secrets.read_text() == env_file_text({"CRONPLUS_QUEUE": "gpu,cpu", "CRONPLUS_BROKER": BROKER, "CRONPLUS_DB": DB})
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert unit.read_text() == render_worker_unit(
        user=False, exec_start=[str(VENV_CRONPLUS), "worker", "--system", "--state-dir", str(tmp_path / "st")],
        env_file=str(secrets))
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert calls(tmp_path) == ["daemon-reload", "enable --now cronplus-worker.service"]
    assert result.stdout.splitlines()[:2] == [f"wrote {secrets} (mode 0600: the broker and database URLs)", f"wrote {unit}"]
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["cronplus-worker.service"]  # no temporary file


@needs_script
@pytest.mark.parametrize(("args", "message"), [
    (["--worker", "--broker", BROKER, "--db", DB], "needs --queue NAME"),
    (["--worker", "--queue", "q", "--db", DB], "needs --broker redis://HOST:6379/0"),
    (["--worker", "--queue", "q", "--broker", "amqp://u:s3cret@h//", "--db", DB], "--broker amqp://h/…: use a Redis URL"),
    (["--worker", "--queue", "q", "--broker", BROKER], "needs --db postgresql://"),
    (["--queue", "q", "--broker", BROKER, "--db", DB], "are for --worker"),
    (["--worker", "--queue", "q", "--broker", BROKER, "--db", DB, "--http", "127.0.0.1:1"], "--http is the supervisor's"),
])
def test_a_worker_install_missing_what_it_needs_is_one_line_and_writes_nothing(
        tmp_path: Path, args: list[str], message: str) -> None:
    result = install_service(tmp_path, *args, env=worker_env(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
    assert not (tmp_path / "units").exists() and not (tmp_path / "default").exists()


@needs_script
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_installed_worker_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    assert install_service(tmp_path, "--worker", "--queue", "q", "--broker", BROKER, "--db", DB, env=env).returncode == 0
    probe = tmp_path / "probe" / "cronplus-worker.service"
    probe.parent.mkdir()
    probe.write_text("[Service]\nExecStart=/bin/sh -c true\n")

    def verify(unit: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["systemd-analyze", "verify", str(unit)], check=False, capture_output=True, text=True,
                              timeout=60)

    if (probe_result := verify(probe)).stderr or probe_result.returncode:
        pytest.skip(f"systemd-analyze verify does not work here: {probe_result.stderr.strip()}")
    result = verify(tmp_path / "units" / "cronplus-worker.service")
    assert (result.returncode, result.stderr) == (0, "")


def test_a_worker_tells_systemd_it_is_ready_and_stopping_its_settings_from_the_environment(
        tmp_path: Path, redis_url: str) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    env = environment(tmp_path, NOTIFY_SOCKET=str(tmp_path / "notify.sock"), CRONPLUS_QUEUE="gpu,cpu",
                      CRONPLUS_BROKER=redis_url, CRONPLUS_DB=str(tmp_path / "history.db"), CRONPLUS_HOST_ID="w1")
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--state-dir", str(tmp_path / "state"), "worker",
                             "--heartbeat", "0.5"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        read_until(notify, "READY=1", timeout=60)
        proc.send_signal(signal.SIGTERM)
        read_until(notify, "STOPPING=1", timeout=30)
        assert proc.wait(30) == 0
        assert proc.stderr is not None and "queue(s) gpu,cpu" in proc.stderr.read()
    finally:
        notify.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
