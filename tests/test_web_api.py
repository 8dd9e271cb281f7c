"""The HTTP API of a real `cronplus run --http 127.0.0.1:0` (SPEC §7), from a plain HTTP client:
jobs and runs in the shapes of `cronplus jobs --json` / `log --json`, filters and the cursor,
errors as JSON, a running run's output followed live, trigger with and without the token."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.test_daemon import cli
from tests.waiting import wait_until
from tests.web_supervisor import start_web

pytestmark = pytest.mark.e2e

JOBS = """\
# cronplus: name=hello
0 0 1 1 * echo hello from $CRONPLUS_JOB
# cronplus: name=broken retries=1 retry-delay=0s alert=https://hooks.example.com/T0KEN-SECRET-123
0 0 1 1 * echo no; exit 3
# cronplus: name=talk
0 0 1 1 * echo one; sleep 2; echo two
# cronplus: name=downstream after=hello
0 0 1 1 * true
# cronplus: name=big
0 0 1 1 * seq 1 40000
"""


def log_json(sup, *args: str) -> list[dict]:
    out = cli(sup.state, sup.crontab, "log", "--json", *args)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_a_triggered_run_reads_back_exactly_as_log_json_and_jobs_as_jobs_json(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    reply = sup.trigger("hello")
    assert reply.status == 202, reply.body
    run_id = reply.json()["run_id"]
    assert reply.headers["location"] == f"/api/v1/runs/{run_id}"
    run = sup.wait_final(run_id)
    logged = next(r for r in log_json(sup) if r["run_id"] == run_id)
    assert run == logged and list(run) == list(logged)  # the same object, key for key and in order

    jobs = sup.get("/api/v1/jobs").json()["jobs"]
    out = cli(sup.state, sup.crontab, "jobs", "--json")
    assert out.returncode == 0, out.stderr
    cli_jobs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [j["name"] for j in jobs] == ["hello", "broken", "talk", "downstream", "big"]
    for api_job, cli_job in zip(jobs, cli_jobs, strict=True):
        assert {k: v for k, v in api_job.items() if k not in ("name", "last_run")} == cli_job
    assert jobs[0]["last_run"] == run and jobs[0]["last_run_id"] == run_id

    one = sup.get("/api/v1/jobs/downstream").json()
    assert one["after"] == ["hello"] and one["options"]["after"] == ["hello"]
    assert sup.stop() == 0


def test_no_reply_names_a_secret_and_the_job_page_says_only_that_an_alert_is_set(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    broken = sup.get("/api/v1/jobs/broken")
    assert broken.json()["options"]["alert"] is True and broken.json()["options"]["retries"] == 1
    replies = [broken, sup.get("/api/v1/jobs"), sup.get("/metrics"), sup.get("/api/v1/openapi.json")]
    for reply in replies:
        assert b"T0KEN-SECRET" not in reply.body and b"hooks.example.com" not in reply.body
        assert sup.token.encode() not in reply.body
    assert sup.token not in sup.stderr


def test_runs_filter_by_job_and_status_newest_first_and_page_with_the_cursor(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    ids = []
    for _ in range(3):
        ids.append(sup.trigger("hello").json()["run_id"])
        sup.wait_final(ids[-1])
    failed = sup.trigger("broken").json()["run_id"]
    wait_until(lambda: [r for r in sup.get("/api/v1/runs?job=broken").json()["runs"] if r["status"] != "running"
                        and r["attempt"] == 2], what="the retry of broken to end")

    runs = sup.get("/api/v1/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == sorted((r["run_id"] for r in runs), reverse=True)
    assert [r["run_id"] for r in runs] == [r["run_id"] for r in reversed(log_json(sup))]

    hello = sup.get("/api/v1/runs?job=hello&status=success").json()
    assert [r["run_id"] for r in hello["runs"]] == ids[::-1] and hello["next"] is None
    broken = sup.get("/api/v1/runs?job=bro*&status=failed").json()["runs"]
    assert [(r["job"], r["attempt"]) for r in broken] == [("broken", 2), ("broken", 1)] and broken[-1]["run_id"] == failed
    both = sup.get("/api/v1/runs?status=failed&status=success&job=hello&job=broken").json()["runs"]
    assert len(both) == 5

    page = sup.get("/api/v1/runs?job=hello&limit=2").json()
    assert [r["run_id"] for r in page["runs"]] == [ids[2], ids[1]]
    assert page["next"] == f"/api/v1/runs?job=hello&limit=2&before={ids[1]}"
    rest = sup.get(page["next"]).json()
    assert [r["run_id"] for r in rest["runs"]] == [ids[0]] and rest["next"] is None

    assert sup.get("/api/v1/runs?since=-1h&until=now").json()["runs"] == runs
    relative = sup.get("/api/v1/runs?since=-1h&limit=1").json()["next"]
    assert "since=%40" in relative and "-1h" not in relative  # the next page has this page's instant
    assert sup.get("/api/v1/runs?until=@1000").json()["runs"] == []
    assert sup.stop() == 0


def test_errors_are_json_with_their_status_code(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    cases = {
        "/api/v1/runs/999": 404, "/api/v1/runs/abc": 400, "/api/v1/runs?limit=0": 400,
        "/api/v1/runs?limit=x": 400, "/api/v1/runs?status=exploded": 400, "/api/v1/runs?since=soonish": 400,
        "/api/v1/jobs/helo": 404, "/api/v1/nothing": 404, "/api/v1/runs/999/output": 404,
    }
    for path, status in cases.items():
        reply = sup.get(path)
        assert reply.status == status, (path, reply.body)
        assert reply.json()["status"] == status and reply.json()["error"], path
    assert sup.get("/api/v1/jobs/helo").json()["suggestion"] == "hello"
    assert "since" in sup.get("/api/v1/runs?since=soonish").json()["error"]
    wrong = sup.request("DELETE", "/api/v1/jobs")
    assert wrong.status == 405 and wrong.headers["allow"] == "GET" and wrong.json()["status"] == 405
    unknown = sup.trigger("nosuchjob")
    assert unknown.status == 404 and unknown.json()["ok"] is False
    refused = sup.trigger("downstream")  # after=hello, which has not run: `--force` would start it
    assert refused.status == 409 and refused.json()["refused"] is True
    forced = sup.trigger("downstream", query="?force=1")
    assert forced.status == 202, forced.body
    assert sup.stop() == 0


def test_an_error_page_escapes_what_the_url_said(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    reply = sup.get("/nothing/%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E")
    assert reply.status == 404 and reply.headers["content-type"].startswith("text/html")
    assert b"<script>" not in reply.body and b"&lt;script&gt;alert(&quot;x&quot;)" in reply.body
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert "'unsafe-inline'" not in reply.headers["content-security-policy"]


def test_a_running_runs_output_is_followed_line_by_line_until_it_ends(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    run_id = sup.trigger("talk").json()["run_id"]
    parts = urlsplit(sup.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.request("GET", f"/api/v1/runs/{run_id}/output?follow=1")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type").startswith("text/plain")
        assert response.getheader("Transfer-Encoding") == "chunked"
        first = response.readline()
        assert first == b"one\n"
        # The first line came while the run still runs (it sleeps 2 s before its second line).
        assert sup.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
        assert response.read() == b"two\n"  # the response ends when the run does
    finally:
        conn.close()
    assert sup.get(f"/api/v1/runs/{run_id}").json()["status"] == "success"
    whole = sup.get(f"/api/v1/runs/{run_id}/output")
    assert whole.body == b"one\ntwo\n" and whole.headers["x-run-status"] == "success"
    assert sup.get(f"/api/v1/runs/{run_id}/output?offset=4").body == b"two\n"
    assert sup.get(f"/api/v1/runs/{run_id}/output?follow=1").body == b"one\ntwo\n"  # over: no waiting
    assert sup.stop() == 0


def test_a_run_that_never_started_has_no_output_and_a_deleted_log_is_gone(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    run_id = sup.trigger("hello").json()["run_id"]
    run = sup.wait_final(run_id)
    Path(run["log_path"]).unlink()
    gone = sup.get(f"/api/v1/runs/{run_id}/output")
    assert gone.status == 410 and "no longer available" in gone.json()["error"]


def test_cronplus_http_in_the_environment_serves_too_and_the_port_is_in_the_log(supervisors, tmp_path: Path) -> None:
    from tests.web_supervisor import WebSupervisor

    sup = WebSupervisor(tmp_path, JOBS, http=None, env={"CRONPLUS_HTTP": "127.0.0.1:0"})
    supervisors.append(sup)
    sup.wait_http()
    assert f"http: serving on {sup.url}" in sup.stderr
    assert sup.get("/healthz").text == "ok\n"
    assert sup.stop() == 0
    assert not (sup.state / "http.address").exists()


def test_an_address_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        crontab = tmp_path / "crontab"
        crontab.write_text(JOBS)
        started = time.monotonic()
        out = cli(tmp_path / "state", crontab, "run", "--http", f"127.0.0.1:{port}", timeout=30)
    finally:
        taken.close()
    assert out.returncode == 1, out.stderr
    assert f"--http 127.0.0.1:{port}: cannot listen there" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:http", ":8080", "127.0.0.1:70000"])
def test_a_malformed_address_is_a_usage_error(tmp_path: Path, address: str) -> None:
    out = subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(tmp_path / "s"), "run",
                          "--http", address], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--http" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_output_larger_than_a_chunk_comes_whole_and_from_an_offset(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    run = sup.wait_final(sup.trigger("big").json()["run_id"])
    written = Path(run["log_path"]).read_bytes()
    assert len(written) > 200_000
    whole = sup.get(f"/api/v1/runs/{run['run_id']}/output")
    assert whole.body == written and whole.headers["transfer-encoding"] == "chunked"
    assert sup.get(f"/api/v1/runs/{run['run_id']}/output?offset=100000&follow=1").body == written[100_000:]


def test_a_url_of_undecodable_bytes_is_a_404_not_a_server_error(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    page = sup.get("/jobs-%FF%FE/x")
    assert page.status == 404 and b"\\xff\\xfe" in page.body
    api = sup.get("/api/v1/jobs/%FF%FE")
    assert api.status == 404 and api.json()["status"] == 404
    assert "Traceback" not in sup.stderr and "failed" not in sup.stderr
