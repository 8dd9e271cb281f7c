"""End to end: the real `cronplus run` as a subprocess, driven through `cronplus trigger`, the
control socket, signals and crontab edits."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cronplus.service import control


def cli(state: Path, crontab: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=timeout)


class Supervisor:
    def __init__(self, tmp_path: Path, text: str, *extra: str, env: dict[str, str] | None = None) -> None:
        self.state = tmp_path / "state"
        self.crontab = tmp_path / "crontab"
        if not self.crontab.exists():
            self.crontab.write_text(text)
        self.stderr_path = tmp_path / f"supervisor-{time.monotonic_ns()}.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cronplus", "--crontab", str(self.crontab), "--state-dir", str(self.state),
             "run", *extra], stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, "w"),  # noqa: SIM115 - the child owns it
            env={**os.environ, **(env or {})})

    def wait_ready(self) -> Supervisor:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"supervisor exited {self.proc.returncode}: {self.stderr}")
            try:
                next(control.request(self.state / "control.sock", {"cmd": "status"}))
                return self
            except (control.NoSupervisor, StopIteration, OSError):
                time.sleep(0.05)
        raise AssertionError("supervisor did not come up")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def status(self) -> dict:
        return next(control.request(self.state / "control.sock", {"cmd": "status"}))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def rows(self) -> list[tuple]:
        conn = sqlite3.connect(self.state / "history.db")
        try:
            return [tuple(r) for r in conn.execute("SELECT run_id, job, status, trigger, reason, log_path FROM runs ORDER BY run_id")]
        finally:
            conn.close()


JOBS = """\
# cronplus: name=hello
0 0 1 1 * echo hello from $CRONPLUS_JOB
# cronplus: name=nap
0 0 1 1 * sleep 30
"""


def start(supervisors: list, tmp_path: Path, text: str = JOBS, *extra: str) -> Supervisor:
    sup = Supervisor(tmp_path, text, *extra)
    supervisors.append(sup)
    return sup.wait_ready()


def test_trigger_wait_runs_the_job_through_the_supervisor_and_exits_with_its_outcome(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path)
    out = cli(sup.state, sup.crontab, "trigger", "hello", "--wait")
    assert out.returncode == 0, out.stderr
    assert "started by the supervisor" in out.stdout and "success" in out.stdout
    _, job, status, trigger, _, log_path = sup.rows()[-1]
    assert (job, status, trigger) == ("hello", "success", "manual")
    assert Path(log_path).read_text() == "hello from hello\n"
    assert "job hello: run 1 success" in sup.stderr
    assert sup.stop() == 0


def test_the_control_socket_is_owner_only_and_a_second_supervisor_is_refused(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path)
    assert stat.S_IMODE(os.stat(sup.state / "control.sock").st_mode) == 0o600
    second = cli(sup.state, sup.crontab, "run", timeout=10)
    assert second.returncode == 1
    assert "another cronplus supervisor is running" in second.stderr
    assert sup.status()["ok"] and sup.proc.poll() is None


def test_an_unknown_job_gets_a_did_you_mean_and_exit_1(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path)
    out = cli(sup.state, sup.crontab, "trigger", "helo")
    assert out.returncode == 1 and "did you mean 'hello'" in out.stderr


def test_an_invalid_crontab_at_start_exits_1_naming_line_and_column(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=a\n61 * * * * true\n")
    out = cli(tmp_path / "state", crontab, "run", timeout=10)
    assert out.returncode == 1
    assert f"{crontab}:2:1" in out.stderr


def test_sigterm_interrupts_a_running_job_after_the_grace_and_exits_0(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, JOBS, "--shutdown-grace", "0.3")
    assert cli(sup.state, sup.crontab, "trigger", "nap").returncode == 0
    time.sleep(0.2)
    began = time.monotonic()
    assert sup.stop() == 0
    assert time.monotonic() - began < 20  # not the default 30 s grace, nor the job's 30 s
    assert sup.rows()[-1][1:5] == ("nap", "interrupted", "manual", "supervisor shutdown")
    assert not (sup.state / "control.sock").exists()


def test_after_kill_9_a_restart_marks_the_run_interrupted_and_keeps_its_output(supervisors, tmp_path: Path) -> None:
    text = "# cronplus: name=talk\n0 0 1 1 * echo partial output; sleep 30\n"
    sup = start(supervisors, tmp_path, text)
    assert cli(sup.state, sup.crontab, "trigger", "talk").returncode == 0
    deadline = time.monotonic() + 30  # the job has written its output (a loaded machine may take a while)
    while not (sup.rows() and sup.rows()[-1][5] and Path(sup.rows()[-1][5]).read_text()):
        assert time.monotonic() < deadline, sup.stderr
        time.sleep(0.05)
    sup.stop(signal.SIGKILL)
    again = start(supervisors, tmp_path, text)
    _, job, status, _, reason, log_path = again.rows()[-1]
    assert (job, status) == ("talk", "interrupted") and "stopped while it ran" in reason
    assert Path(log_path).read_text() == "partial output\n"
    assert again.stop() == 0


def test_an_edited_crontab_is_reloaded_within_a_second_and_an_invalid_one_is_refused(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path)
    tmp = tmp_path / "crontab.new"
    tmp.write_text(JOBS + "# cronplus: name=fresh\n0 0 1 1 * echo fresh\n")
    os.rename(tmp, sup.crontab)  # how editors and `cronplus install` replace it
    deadline = time.monotonic() + 10  # within a second when idle; generous for a loaded machine
    while "fresh" not in [j["name"] for j in sup.status()["jobs"]]:
        assert time.monotonic() < deadline, sup.stderr
        time.sleep(0.05)
    assert cli(sup.state, sup.crontab, "trigger", "fresh", "--wait").returncode == 0

    sup.crontab.write_text("# cronplus: name=broken\n0 0 1 1 * echo x\n# cronplus: bogus=1\n")
    deadline = time.monotonic() + 10
    while "reload refused" not in sup.stderr:
        assert time.monotonic() < deadline, sup.stderr
        time.sleep(0.05)
    assert f"{sup.crontab}:3:" in sup.stderr
    assert [j["name"] for j in sup.status()["jobs"]] == ["hello", "nap", "fresh"]


def test_sighup_reloads(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path)
    sup.crontab.write_text("# cronplus: name=other\n0 0 1 1 * true\n")
    sup.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while [j["name"] for j in sup.status()["jobs"]] != ["other"]:
        assert time.monotonic() < deadline, sup.stderr
        time.sleep(0.05)
    assert "reload ok" in sup.stderr


def test_a_removed_job_finishes_its_current_run(supervisors, tmp_path: Path) -> None:
    text = "# cronplus: name=slow\n0 0 1 1 * sleep 0.8; echo done\n"
    sup = start(supervisors, tmp_path, text)
    assert cli(sup.state, sup.crontab, "trigger", "slow").returncode == 0
    sup.crontab.write_text("# cronplus: name=other\n0 0 1 1 * true\n")
    sup.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while sup.rows()[-1][2] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sup.rows()[-1][1:3] == ("slow", "success")
    assert Path(sup.rows()[-1][5]).read_text() == "done\n"


def test_a_failed_run_sends_its_alert_through_the_delivery_worker(supervisors, tmp_path: Path) -> None:
    import http.server
    import json
    import threading

    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sup = start(supervisors, tmp_path, f"# cronplus: name=bad alert={url}\n0 0 1 1 * echo oops; exit 3\n")
        out = cli(sup.state, sup.crontab, "trigger", "bad", "--wait")
        assert out.returncode == 1 and "failed, exit 3" in out.stdout
        deadline = time.monotonic() + 10
        while not received:
            assert time.monotonic() < deadline, sup.stderr
            time.sleep(0.05)
        assert "bad" in json.dumps(received[0]) and "failure" in json.dumps(received[0])
    finally:
        server.shutdown()


def test_retention_flags_prune_history_at_start(supervisors, tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(JOBS)
    for _ in range(3):
        assert cli(tmp_path / "state", crontab, "trigger", "hello").returncode == 0
    sup = start(supervisors, tmp_path, JOBS, "--max-runs-per-job", "1")
    assert [r[1] for r in sup.rows()] == ["hello"]
    assert sup.stop() == 0


RETRYING = "# cronplus: name=flaky retries=2 retry-delay=60\n0 0 1 1 * exit 5\n"


def wait_for_rows(sup: Supervisor, predicate: object, timeout: float = 5) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = sup.rows() if (sup.state / "history.db").exists() else []
        if predicate(rows):  # type: ignore[operator]
            return rows
        time.sleep(0.05)
    raise AssertionError(f"rows never matched: {sup.rows()}")


def finals(sup: Supervisor) -> list[tuple]:
    conn = sqlite3.connect(sup.state / "history.db")
    try:
        return [tuple(r) for r in conn.execute("SELECT job, status, final, reason FROM runs ORDER BY run_id")]
    finally:
        conn.close()


def test_sigterm_while_a_retry_is_pending_leaves_the_failed_attempt_final(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, RETRYING)
    assert cli(sup.state, sup.crontab, "trigger", "flaky").returncode == 0
    wait_for_rows(sup, lambda rows: rows and rows[-1][2] == "failed")
    assert sup.stop() == 0
    assert finals(sup) == [("flaky", "failed", 1, "exit 5; retry abandoned: supervisor shutdown")]


def test_after_kill_9_during_a_retry_wait_a_restart_makes_the_failed_attempt_final(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, RETRYING)
    assert cli(sup.state, sup.crontab, "trigger", "flaky").returncode == 0
    wait_for_rows(sup, lambda rows: rows and rows[-1][2] == "failed")
    sup.stop(signal.SIGKILL)
    assert finals(sup)[0][2] == 0  # the dead supervisor meant to retry
    again = start(supervisors, tmp_path, RETRYING)
    assert finals(again) == [("flaky", "failed", 1,
                              "exit 5; retry abandoned: supervisor stopped while the retry was pending")]
    assert again.stop() == 0


def test_stopping_the_crontab_watcher_leaves_no_watchdog_error_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression (CI): watchdog's emitter thread, racing its own stop, logged "queue_events()
    called when the thread is inactive" into the supervisor's log. The race is replayed
    deterministically by calling the emitter after the stop, as its thread does."""
    import logging

    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    from cronplus.service.crontabwatch import stop_watching

    watchdog_logger = logging.getLogger("watchdog")
    saved_level = watchdog_logger.level
    observer = Observer()
    observer.schedule(FileSystemEventHandler(), str(tmp_path), recursive=False)
    observer.start()
    emitters = list(observer.emitters)
    try:
        with caplog.at_level(logging.DEBUG):
            stop_watching(observer)
            for emitter in emitters:
                emitter.queue_events(0)
    finally:
        watchdog_logger.setLevel(saved_level)
    assert emitters and not observer.is_alive()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("watchdog")] == []
