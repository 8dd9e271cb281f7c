"""`/metrics` and `/healthz` of a real supervisor: Prometheus' text format checked by `promtool
check metrics` (Debian's prometheus package) and parsed here, the counters following real runs
(a retried run counted once), and a real Prometheus server scraping it."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from tests.waiting import wait_until
from tests.web_supervisor import start_web

JOBS = """\
# cronplus: name=hello
0 0 1 1 * echo hello
# cronplus: name=broken retries=1 retry-delay=0s
0 0 1 1 * exit 3
# cronplus: name=nap
0 0 1 1 * sleep 30
"""
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition: (name, labels) -> value."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (out.stdout, out.stderr)


@pytest.mark.e2e
def test_metrics_pass_promtool_and_follow_the_runs(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS, "--shutdown-grace", "0.3")
    first = sup.get("/metrics")
    assert first.status == 200 and first.headers["content-type"].startswith("text/plain; version=0.0.4")
    promtool_check(first.text)

    hello = sup.trigger("hello").json()["run_id"]
    sup.wait_final(hello)
    sup.trigger("broken")
    wait_until(lambda: any(r["attempt"] == 2 and r["status"] == "failed"
                           for r in sup.get("/api/v1/runs?job=broken").json()["runs"]), what="broken's retry")
    nap = sup.trigger("nap").json()["run_id"]
    wait_until(lambda: sup.get("/api/v1/jobs/nap").json()["running"] == [nap], what="nap to run")

    def running_nap() -> dict | None:
        got = parse(sup.get("/metrics").text)
        return got if sample(got, "cronplus_job_running", job="nap") == 1 else None

    samples = wait_until(running_nap, what="nap counted as running")
    text = sup.get("/metrics").text
    promtool_check(text)
    assert sample(samples, "cronplus_job_runs_total", job="hello", status="success") == 1
    assert sample(samples, "cronplus_job_runs_total", job="broken", status="failed") == 1  # one run, two attempts
    assert sample(samples, "cronplus_job_running", job="hello") == 0
    run = sup.get(f"/api/v1/runs/{hello}").json()
    ended = datetime.fromisoformat(run["ended_at"]).timestamp()
    assert sample(samples, "cronplus_job_last_success_timestamp_seconds", job="hello") == pytest.approx(ended, abs=1e-3)
    assert sample(samples, "cronplus_job_last_duration_seconds", job="hello") == pytest.approx(run["duration_s"], abs=2e-3)
    for job in sup.get("/api/v1/jobs").json()["jobs"]:
        due = datetime.fromisoformat(job["next_run"]).timestamp()
        assert sample(samples, "cronplus_job_next_run_timestamp_seconds", job=job["name"]) == pytest.approx(due)
    assert sample(samples, "cronplus_reload_success") == 1
    assert sample(samples, "cronplus_alerts_pending") == 0
    assert sample(samples, "cronplus_start_delay_seconds_count") == 0  # manual runs have no tick
    assert sample(samples, "cronplus_build_info", version=__import__("cronplus").__version__) == 1
    for name in ("cronplus_job_runs_total", "cronplus_alert_deliveries_total"):
        assert f"# TYPE {name} counter" in text
    assert "# TYPE cronplus_start_delay_seconds histogram" in text

    sup.crontab.write_text(JOBS + "# cronplus: bogus=1\n0 0 1 1 * true\n")
    wait_until(lambda: sample(parse(sup.get("/metrics").text), "cronplus_reload_success") == 0,
               what="a refused reload to show")
    sup.crontab.write_text(JOBS)
    wait_until(lambda: sample(parse(sup.get("/metrics").text), "cronplus_reload_success") == 1,
               what="a good reload to show")
    assert sup.stop() == 0


@pytest.mark.e2e
def test_healthz_is_ok_while_the_loop_lives(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    reply = sup.get("/healthz")
    assert (reply.status, reply.text) == (200, "ok\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_supervisor(supervisors, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")
    sup = start_web(supervisors, tmp_path, JOBS)
    sup.wait_final(sup.trigger("hello").json()["run_id"])
    target = sup.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cronplus\n"
                      f"    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n")
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        def scraped() -> dict | None:
            url = f"http://127.0.0.1:{port}/api/v1/query?query=cronplus_job_runs_total"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    got = json.load(response)
            except OSError:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                return None
            return got if got["data"]["result"] else None

        got = wait_until(scraped, timeout=60, what="prometheus to scrape the supervisor", every=0.5)
        [series] = got["data"]["result"]
        assert series["metric"]["job"] == "hello" and series["metric"]["status"] == "success"
        assert series["value"][1] == "1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"] and not targets[0]["lastError"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
