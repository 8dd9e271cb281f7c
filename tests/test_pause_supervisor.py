"""Pause and resume with the real `cronplus run` (SPEC §8): `cronplus pause/resume` through the
control socket and straight into the store, surviving a reload and a restart, no row while
paused, catch-up=last on resume, `--all` letting a running run finish, `trigger` running a
paused job, the API's pause/resume with and without the token, did-you-mean.

Ticks are reached at once by a clock shifted so the next minute is seconds away
(tests/shifted_run.py, as test_faults_restart.py does)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from cronplus.cli.pause import user
from tests.test_daemon import JOBS, cli, start
from tests.test_faults_restart import Shifted, offset_to_next_minute
from tests.waiting import wait_until
from tests.web_supervisor import start_web

PAUSED_TICKS = """\
# cronplus: name=tick catch-up=last
* * * * * true
# cronplus: name=other
* * * * * true
"""


def rows(state: Path) -> list[tuple]:
    try:
        conn = sqlite3.connect(f"file:{state / 'history.db'}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return []
    try:
        return [tuple(r) for r in conn.execute("SELECT job, status, trigger, scheduled_at FROM runs ORDER BY run_id")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def jobs_json(state: Path, crontab: Path) -> dict[str, dict]:
    out = cli(state, crontab, "jobs", "--json")
    assert out.returncode == 0, out.stderr
    return {o["job"]: o for o in map(json.loads, out.stdout.splitlines())}


def test_a_pause_survives_reload_and_restart_writes_no_row_and_resume_catches_up_once(shifted, tmp_path: Path) -> None:
    crontab, state = tmp_path / "crontab", tmp_path / "state"
    crontab.write_text(PAUSED_TICKS)
    paused = cli(state, crontab, "pause", "tick")  # no supervisor yet: straight into the store
    assert paused.returncode == 0 and "no supervisor running" in paused.stdout, paused.stderr
    offset, tick = offset_to_next_minute(lead=4.0)
    first = Shifted(tmp_path, offset).wait_ready()
    shifted.append(first)
    assert cli(state, crontab, "reload").returncode == 0
    wait_until(lambda: ("other", "success", "schedule", tick) in rows(state), what="other's tick")
    assert [r for r in rows(state) if r[0] == "tick"] == []
    assert first.stop() == 0
    second = Shifted(tmp_path, (tick + 60) - 4.0 - time.time()).wait_ready()  # the next minute, 4 s away
    shifted.append(second)
    wait_until(lambda: ("other", "success", "schedule", tick + 60) in rows(state), what="other's next tick")
    assert [r for r in rows(state) if r[0] == "tick"] == []  # two ticks, a reload and a restart: no row
    shown = jobs_json(state, crontab)
    assert (shown["tick"]["paused"], shown["tick"]["paused_by"], shown["other"]["paused"]) == (True, user(), False)
    table = cli(state, crontab, "jobs", "--wide")
    assert "paused since " in table.stdout and f"(by {user()})" in table.stdout
    resumed = cli(state, crontab, "resume", "tick")
    assert resumed.returncode == 0 and "by the supervisor" in resumed.stdout, resumed.stderr
    wait_until(lambda: [r for r in rows(state) if r[0] == "tick"], what="the catch-up run")
    time.sleep(0.5)
    assert [r for r in rows(state) if r[0] == "tick"] == [("tick", "success", "catch-up", tick + 60)]
    assert jobs_json(state, crontab)["tick"]["paused"] is False
    assert second.stop() == 0


def test_pause_all_lets_a_running_run_finish_and_trigger_still_runs_a_paused_job(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, JOBS.replace("sleep 30", "sleep 1.5"))
    assert cli(sup.state, sup.crontab, "trigger", "nap").returncode == 0
    wait_until(lambda: ("nap", "running", "manual", None) in [(*r[:3], None) for r in rows(sup.state)], what="nap to run")
    out = cli(sup.state, sup.crontab, "pause", "--all")
    assert out.returncode == 0 and "all jobs paused by the supervisor" in out.stdout, out.stderr
    wait_until(lambda: [r for r in rows(sup.state) if r[0] == "nap" and r[1] != "running"], what="nap to end")
    assert [r[1] for r in rows(sup.state) if r[0] == "nap"] == ["success"]
    shown = jobs_json(sup.state, sup.crontab)
    assert shown["hello"]["paused"] is True and shown["hello"]["paused_all"] is True
    triggered = cli(sup.state, sup.crontab, "trigger", "hello", "--wait")
    assert triggered.returncode == 0, triggered.stderr
    assert [r[1:3] for r in rows(sup.state) if r[0] == "hello"] == [("success", "manual")]
    assert cli(sup.state, sup.crontab, "resume", "--all").returncode == 0
    assert jobs_json(sup.state, sup.crontab)["hello"]["paused"] is False


def test_an_unknown_job_is_one_line_with_did_you_mean_with_and_without_a_supervisor(supervisors, tmp_path: Path) -> None:
    crontab, state = tmp_path / "crontab", tmp_path / "state"
    crontab.write_text(JOBS)
    for attempt in ("without", "with"):
        if attempt == "with":
            start(supervisors, tmp_path)
        out = cli(state, crontab, "pause", "helo", "nap")
        assert out.returncode == 1, (attempt, out)
        assert out.stderr == "cronplus pause: no job named 'helo' (did you mean 'hello'?)\n", attempt
        assert jobs_json(state, crontab)["nap"]["paused"] is False  # nothing changed
    usage = cli(state, crontab, "resume")
    assert usage.returncode == 2 and "or --all" in usage.stderr


def test_the_api_pauses_and_resumes_with_the_token_only(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    no_token = sup.request("POST", "/api/v1/jobs/hello/pause", headers={"Origin": sup.origin})
    assert no_token.status == 401
    assert sup.request("POST", "/api/v1/jobs/hello/pause").status == 403  # no token, no origin: refused too
    assert sup.get("/api/v1/jobs/hello").json()["paused"] is False
    auth = {"Authorization": f"Bearer {sup.token}"}
    done = sup.request("POST", "/api/v1/jobs/hello/pause", headers=auth)
    assert (done.status, done.json()) == (200, {"ok": True, "jobs": ["hello"], "all": False, "resumed": False})
    job = sup.get("/api/v1/jobs/hello").json()
    assert (job["paused"], job["paused_by"]) == (True, "api") and job["paused_since"]
    assert 'cronplus_job_paused{job="hello"} 1' in sup.get("/metrics").text
    assert 'cronplus_job_paused{job="nap"} 0' in sup.get("/metrics").text
    missing = sup.request("POST", "/api/v1/jobs/helo/resume", headers=auth)
    assert missing.status == 404 and missing.json()["suggestion"] == "hello"
    assert sup.request("POST", "/api/v1/jobs/hello/resume", headers=auth).status == 200
    assert 'cronplus_job_paused{job="hello"} 0' in sup.get("/metrics").text


def test_the_pages_show_the_pause_and_the_job_page_pauses_and_resumes(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    auth = {"Authorization": f"Bearer {sup.token}", "Origin": sup.origin}
    assert sup.request("POST", "/jobs/hello/pause", headers={"Origin": sup.origin}).status == 401
    assert "paused since" not in sup.get("/").text
    done = sup.request("POST", "/jobs/hello/pause", headers=auth)
    assert (done.status, done.headers["location"]) == (303, "/jobs/hello")
    assert "paused since " in sup.get("/").text and "(by api)" in sup.get("/").text
    page = sup.get("/jobs/hello", headers=auth).text
    assert "(by api)" in page and 'action="/jobs/hello/resume"' in page
    assert sup.request("POST", "/jobs/hello/resume", headers=auth).status == 303
    page = sup.get("/jobs/hello", headers=auth).text
    assert "paused since" not in page and 'action="/jobs/hello/pause"' in page
    assert sup.request("POST", "/jobs/helo/pause", headers=auth).status == 404


def test_metrics_do_not_count_a_run_waiting_for_its_retry_as_running(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, "# cronplus: name=flaky retries=1 retry-delay=1h\n0 0 1 1 * false\n")
    assert sup.trigger("flaky").status == 202
    wait_until(lambda: [r for r in rows(sup.state) if r[1] == "failed"], what="the first attempt to fail")
    assert [r["state"] for r in sup.status()["runs"]] == ["active"]  # the socket's word for a retry's wait
    assert 'cronplus_job_running{job="flaky"} 0' in sup.get("/metrics").text
