"""The Commands facade behind the control socket: its dispatch table answers every command it
lists, an unknown one gets today's error reply, and `status` over the socket of a real
supervisor is a SupervisorSnapshot's to_json, in the shape clients have always read."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from cronplus.service import control
from cronplus.service.commands import (
    TABLE,
    JobState,
    ReloadResult,
    RunState,
    SupervisorSnapshot,
    TriggerRefusal,
)
from tests.test_daemon import JOBS, start

# One request per command of the table: what `cronplus status/reload/trigger` send.
REQUESTS = {
    "status": {"cmd": "status"},
    "reload": {"cmd": "reload"},
    "trigger": {"cmd": "trigger", "job": "hello", "wait": True, "force": False},
    "pause": {"cmd": "pause", "jobs": ["hello"], "by": "tester"},
    "resume": {"cmd": "resume", "jobs": ["hello"]},
    "backfill": {"cmd": "backfill", "job": "hello", "from": 1766620800, "to": 1767744000},  # its Jan 1 tick
}


def ask(sock: Path, message: dict) -> list[dict]:
    return list(control.request(sock, message, timeout=20))


def test_every_command_of_the_dispatch_table_answers_and_an_unknown_one_gets_the_error_reply(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path)
    sock = sup.state / "control.sock"
    assert set(TABLE) == set(REQUESTS)  # a new command needs its line here (and in control.py's docstring)
    for name, message in REQUESTS.items():
        replies = ask(sock, message)
        assert replies and replies[0]["ok"] is True, (name, replies)
    trigger = ask(sock, REQUESTS["trigger"])
    assert trigger[-1]["done"] is True and trigger[-1]["status"] == "success"
    assert ask(sock, {"cmd": "frobnicate"}) == [{"ok": False, "error": "unknown command 'frobnicate'"}]
    assert ask(sock, {"job": "hello"}) == [{"ok": False, "error": "unknown command None"}]
    assert ask(sock, {"cmd": ["status"]}) == [{"ok": False, "error": "unknown command ['status']"}]
    assert sup.stop() == 0


def test_status_over_the_socket_is_the_snapshot_to_json_in_the_shape_clients_read(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, JOBS, "--shutdown-grace", "0.3")
    sock = sup.state / "control.sock"
    started = ask(sock, {"cmd": "trigger", "job": "nap"})  # sleep 30: in flight while we look
    assert started[0]["ok"] is True
    deadline = time.monotonic() + 10
    while True:  # its process is spawned by the scheduler's loop, just after the reply
        reply = ask(sock, {"cmd": "status"})
        assert len(reply) == 1
        got = reply[0]
        if [r["state"] for r in got["runs"]] == ["active"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # The keys clients have read since the socket exists, in the order they were sent.
    assert list(got) == ["ok", "pid", "crontab", "jobs", "runs"]
    assert got["pid"] == sup.proc.pid and got["crontab"] == str(sup.crontab.absolute())
    assert [list(j) for j in got["jobs"]] == [["name", "schedule", "next"]] * 2
    assert [list(r) for r in got["runs"]] == [["job", "run_id", "attempt", "state", "trigger", "scheduled_at"]]
    run = got["runs"][0]
    assert (run["job"], run["run_id"], run["attempt"], run["state"], run["trigger"]) == ("nap", started[0]["run_id"], 1, "active", "manual")
    snapshot = SupervisorSnapshot(
        pid=got["pid"], crontab=got["crontab"], crontab_missing=False, warnings=(),
        jobs=tuple(JobState(name=j["name"], schedule="0 0 1 1 *", tz=None, next_run=datetime.fromisoformat(j["next"]))
                   for j in got["jobs"]),
        runs=(RunState(job="nap", run_id=run["run_id"], attempt=1, state="active", trigger="manual",
                       scheduled_at=datetime.fromisoformat(run["scheduled_at"]), started_at=None, running=True),),
    )
    assert snapshot.to_json() == got
    assert [j["name"] for j in got["jobs"]] == ["hello", "nap"]
    assert snapshot.running == 1
    assert sup.stop() == 0


def test_reload_and_refusal_replies_keep_the_shapes_of_the_protocol() -> None:
    assert ReloadResult(error=None, jobs=3).to_json() == {"ok": True, "jobs": 3}
    assert ReloadResult(error="crontab:2:1: bad", jobs=3).to_json() == {"ok": False, "error": "crontab:2:1: bad", "jobs": 3}
    assert TriggerRefusal(error="no job named 'helo'", suggestion="hello").to_json() == {
        "ok": False, "error": "no job named 'helo'", "suggestion": "hello"}
    assert TriggerRefusal(error="after= not met", refused=True).to_json() == {
        "ok": False, "error": "after= not met", "refused": True}
