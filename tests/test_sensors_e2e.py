"""A sensor in the real `cronplus run` (on a clock shifted so the next minute is seconds away,
tests/shifted_run.py): the control socket shows the run `sensing`, `cronplus jobs` says "waiting
on its sensor", and a restart in the middle of the wait resumes it with the same deadline."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from cronplus.service import control
from tests.test_daemon import cli
from tests.test_faults_restart import Shifted, offset_to_next_minute, rows
from tests.waiting import wait_until


def sensing(sup: Shifted) -> list[dict[str, object]]:
    reply = next(control.request(sup.state / "control.sock", {"cmd": "status"}))
    return [r for r in reply.get("runs", []) if r.get("state") == "sensing"]


def test_a_restart_during_a_wait_resumes_it_and_the_job_runs_when_its_input_arrives(
        shifted: list[Shifted], tmp_path: Path) -> None:
    marker, out = tmp_path / "in.csv", tmp_path / "out"
    (tmp_path / "crontab").write_text(
        f'# cronplus: name=load wait-for="test -e {marker}" wait-every=1s wait-timeout=1h\n'
        f"* * * * * echo ran >> {out}\n")
    offset, tick = offset_to_next_minute(lead=3.0)
    first = Shifted(tmp_path, offset)
    shifted.append(first)
    first.wait_ready()
    waiting = wait_until(lambda: sensing(first), 30, "the run to wait on its sensor")
    assert waiting[0]["job"] == "load" and waiting[0]["run_id"] is None
    jobs = cli(first.state, first.crontab, "jobs")
    assert "waiting on its sensor" in jobs.stdout, jobs.stdout + jobs.stderr
    assert first.stop(signal.SIGTERM) == 0
    assert rows(first.state, "SELECT status FROM runs WHERE scheduled_at = ?", tick) == []
    stored = json.loads(rows(first.state, "SELECT value FROM kv WHERE key = 'sensor.load'")[0][0])
    assert list(stored) == [repr(tick)] and stored[repr(tick)][1] - stored[repr(tick)][0] == 3600

    again = Shifted(tmp_path, offset)
    shifted.append(again)
    again.wait_ready()
    wait_until(lambda: sensing(again), 30, "the resumed wait")
    assert not out.exists()
    marker.touch()
    done = wait_until(lambda: rows(again.state, "SELECT status, sensor_s FROM runs WHERE scheduled_at = ?", tick),
                      30, "the run of the tick")
    assert done[0][0] in ("running", "success")
    wait_until(lambda: out.exists(), 30, "the job's command")
    final = wait_until(lambda: rows(again.state, "SELECT status, sensor_s FROM runs WHERE scheduled_at = ?"
                                    " AND status = 'success'", tick), 30, "the run to end")
    assert final[0][1] > 0  # counted from the first supervisor's start of the wait
    assert again.stop(signal.SIGTERM) == 0
