"""One JSON shape for a run (history.run_json) wherever a script reads one: `log --json`,
`trigger --json` (supervisor and in-process), the control socket's done message and
`alerts --json`; with `host`, `signal` and `reason`. Real supervisors and CLI subprocesses."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

from cronplus.service import control
from cronplus.store.history import RUN_JSON_KEYS, History
from cronplus.store.schema import MIGRATIONS
from tests.test_daemon import cli, start

KEYS = ["run_id", "job", "attempt", "status", "exit_code", "signal", "reason", "trigger", "host",
        "scheduled_at", "started_at", "ended_at", "duration_s", "log_path",
        "params", "outputs", "queued_s", "sensor_s", "peak_memory_bytes", "cpu_s", "slow_at", "queue"]


def test_the_run_json_keys_are_spec_s_plus_signal_reason_and_host() -> None:
    assert list(RUN_JSON_KEYS) == KEYS


def one_json(out: str) -> dict:
    lines = out.splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_trigger_log_alerts_and_the_control_socket_show_a_run_the_same_way(supervisors, tmp_path: Path) -> None:
    # port 1 refuses: the alert stays in the outbox with its run_id, which is all this test needs
    sup = start(supervisors, tmp_path, "# cronplus: name=bad alert=http://127.0.0.1:1/hook\n"
                                       "0 0 1 1 * no-such-command-cronplus-test\n")
    out = cli(sup.state, sup.crontab, "trigger", "bad", "--json")
    assert out.returncode == 1, out.stderr
    assert "started by the supervisor" in out.stderr  # stdout holds the JSON object only
    triggered = one_json(out.stdout)
    assert list(triggered) == KEYS
    assert triggered["status"] == "failed" and triggered["exit_code"] == 127 and triggered["signal"] is None
    assert triggered["reason"] == "exit 127 (command not found)"
    assert triggered["host"] == socket.gethostname()

    logged = one_json(cli(sup.state, sup.crontab, "log", "--json").stdout)
    assert logged == triggered

    alerts = [json.loads(line) for line in cli(sup.state, sup.crontab, "alerts", "--json").stdout.splitlines()]
    assert alerts and all(a["run"] == triggered for a in alerts if a["run_id"] == triggered["run_id"])

    answers = list(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": "bad", "wait": True}, timeout=20))
    done = answers[-1]
    assert done.pop("done") is True and list(done) == KEYS and done["run_id"] == triggered["run_id"] + 1
    assert sup.stop() == 0


def test_an_in_process_trigger_json_carries_the_signal_that_killed_the_shell(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=die\n0 3 * * 0 kill -9 $$\n")
    out = cli(tmp_path / "state", crontab, "trigger", "die", "--json")
    assert out.returncode == 1 and "no supervisor running" in out.stderr
    run = one_json(out.stdout)
    assert list(run) == KEYS
    assert (run["status"], run["exit_code"], run["signal"]) == ("failed", 137, 9)
    assert run["reason"] == "killed by signal 9 (SIGKILL)"
    assert one_json(cli(tmp_path / "state", crontab, "log", "--json").stdout) == run


def test_a_timeout_reason_says_whether_sigkill_was_needed(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=polite timeout=0.3 kill-grace=2\n0 3 * * 0 sleep 30\n"
                       "# cronplus: name=stubborn timeout=0.3 kill-grace=0.3\n0 3 * * 0 trap '' TERM; sleep 30\n")
    polite = one_json(cli(tmp_path / "state", crontab, "trigger", "polite", "--json").stdout)
    stubborn = one_json(cli(tmp_path / "state", crontab, "trigger", "stubborn", "--json").stdout)
    assert (polite["status"], polite["reason"]) == ("timeout", "timeout after 0.3s: ended on SIGTERM")
    assert (stubborn["status"], stubborn["reason"]) == ("timeout", "timeout after 0.3s: SIGKILL after 0.3s grace")
    assert stubborn["signal"] == 9


def test_a_command_found_but_not_executable_says_so(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    crontab = tmp_path / "crontab"
    crontab.write_text(f"# cronplus: name=noexec\n0 3 * * 0 {script}\n")
    run = one_json(cli(tmp_path / "state", crontab, "trigger", "noexec", "--json").stdout)
    assert (run["exit_code"], run["reason"]) == (126, "exit 126 (not executable)")


def test_rows_from_before_the_host_column_read_host_null_and_new_rows_carry_it(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO runs (job, status, trigger, started_at, ended_at, exit_code, final)"
                 " VALUES ('old', 'success', 'schedule', 1.0, 2.0, 0, 1)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with History(db, host="box-a") as h:
        assert h.get_run(1) is not None and h.get_run(1).host is None  # type: ignore[union-attr]
        new = h.record_not_run(job="new", status="missed", trigger="schedule", scheduled_at=3.0,  # type: ignore[arg-type]
                               tz=None, at=3.0, reason="supervisor not running")
        assert new.host == "box-a"
