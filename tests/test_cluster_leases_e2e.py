"""Leases with real supervisors (issue 14 item 3): two or three `cronplus run` on one PostgreSQL
store (`pg_url`), each its --host-id, --lease 3s, on shifted clocks (tests/shifted_run.py, whose
offset is the clock's known shift, so they do not look skewed).

Host a reaches the tick of job `long` in a few seconds; host b's clock is 50 s behind a's, so b
would reach that tick only long after the test: whatever b runs of it, it runs because it took
the run over (this holds with or without claims). Attempt 1 sleeps; attempt 2 ends at once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cronplus.service import control
from tests.test_daemon_notify import read_until
from tests.test_faults_restart import Shifted, offset_to_next_minute
from tests.waiting import alive, wait_until

pytestmark = pytest.mark.e2e

LEASE = 3.0
BEHIND = 50.0  # host b's clock, behind a's: b reaches the tick only after the test


def crontab(tick: float, ran: Path) -> str:
    minute = time.localtime(tick).tm_min  # the crontab's minute field is local time
    return ("# cronplus: name=long retries=1 retry-delay=0s kill-grace=1s\n"
            f"{minute} * * * * echo $$ > {ran}/$CRONPLUS_RUN_ID.a$CRONPLUS_ATTEMPT;"
            " if [ $CRONPLUS_ATTEMPT = 1 ]; then exec sleep 120; fi\n")


def runs(url: str, job: str = "long") -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT run_id, attempt, status, trigger, host, reason, final, scheduled_at, owner"
                            " FROM runs WHERE job = %s ORDER BY run_id", (job,)).fetchall()


def host(tmp_path: Path, name: str, offset: float, url: str, text: str, *extra: str) -> Shifted:
    (tmp_path / name).mkdir()
    (tmp_path / name / "crontab").write_text(text)
    return Shifted(tmp_path / name, offset, "--db", url, "--host-id", name, "--lease", f"{LEASE:g}s", *extra)


def started(ran: Path, attempt: int) -> list[Path]:
    return sorted(ran.glob(f"*.a{attempt}"))


def answers(sup: Shifted) -> bool:
    with contextlib.suppress(control.NoSupervisor, StopIteration, OSError):
        return bool(next(control.request(sup.state / "control.sock", {"cmd": "status"})))
    return False


@pytest.fixture
def two_hosts(shifted: list[Any], tmp_path: Path, pg_url: str) -> tuple[Shifted, Shifted, Path, float]:
    ran = tmp_path / "ran"
    ran.mkdir()
    offset, tick = offset_to_next_minute(lead=12.0)  # both ready before it, even on a loaded machine
    text = crontab(tick, ran)
    a = host(tmp_path, "a", offset, pg_url, text)
    shifted.append(a)
    b = host(tmp_path, "b", offset - BEHIND, pg_url, text)
    shifted.append(b)
    a.wait_ready()
    b.wait_ready()
    return a, b, ran, tick


def test_a_host_killed_mid_run_has_its_run_interrupted_by_another_within_the_lease_and_retried_there_once(
        two_hosts: tuple[Shifted, Shifted, Path, float], pg_url: str) -> None:
    a, b, ran, tick = two_hosts
    first = wait_until(lambda: started(ran, 1), 40, "attempt 1 to start on host a")
    pid = int(first[0].read_text())
    try:
        wait_until(lambda: runs(pg_url) and runs(pg_url)[0]["owner"], 10, "its row")
        killed = time.monotonic()
        a.stop(signal.SIGKILL)
        wait_until(lambda: runs(pg_url)[0]["status"] == "interrupted", LEASE + 15, "host b to take the run over",
                   every=0.05)
        took = time.monotonic() - killed
        wait_until(lambda: len(runs(pg_url)) == 2 and runs(pg_url)[1]["status"] == "success", 20,
                   "the retry to run on host b")
        one, two = runs(pg_url)
        assert (one["attempt"], one["host"], one["final"], one["reason"]) == (1, "a", 0, "host a lost its lease")
        assert (two["attempt"], two["trigger"], two["host"], two["final"]) == (2, "retry", "b", 1)
        assert one["scheduled_at"] == two["scheduled_at"] == tick
        assert len(started(ran, 2)) == 1, "the retry runs once"
        assert took <= LEASE + 5, f"taken over {took:.1f}s after the kill (goal: lease + at most 5s)"
        assert "took over host a" in b.stderr_path.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a's job, left behind by its kill -9


def test_a_host_stopped_past_its_lease_is_fenced_when_it_continues_and_records_nothing_twice(
        two_hosts: tuple[Shifted, Shifted, Path, float], pg_url: str) -> None:
    a, _b, ran, _ = two_hosts
    first = wait_until(lambda: started(ran, 1), 40, "attempt 1 to start on host a")
    pid = int(first[0].read_text())
    try:
        wait_until(lambda: runs(pg_url) and runs(pg_url)[0]["owner"], 10, "its row")
        a.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: runs(pg_url)[0]["status"] == "interrupted", LEASE + 15, "host b to take the run over")
            wait_until(lambda: started(ran, 2), 20, "the retry to start on host b")
        finally:
            a.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: not alive(pid), 10, "host a to kill its job (fenced)")
        wait_until(lambda: "lost its lease" in a.stderr_path.read_text(), 10, "host a to say it lost its lease")
        wait_until(lambda: len(runs(pg_url)) == 2 and runs(pg_url)[1]["status"] == "success", 20, "the retry's end")
        time.sleep(LEASE)  # what host a might still write after its fence: nothing
        one, two = runs(pg_url)
        assert (one["attempt"], one["status"], one["host"], one["reason"]) == (1, "interrupted", "a",
                                                                              "host a lost its lease")
        assert (two["attempt"], two["host"]) == (2, "b")
        assert len(started(ran, 2)) == 1 and len(started(ran, 1)) == 1, "no double run"
        assert a.proc.poll() is None and answers(a), "the fenced host goes on scheduling"
        log = a.stderr_path.read_text()
        assert "registered again as a:" in log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_host_whose_clock_is_10s_off_the_databases_claims_no_tick_and_says_so(
        shifted: list[Any], tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    offset, tick = offset_to_next_minute(lead=8.0)
    text = f"# cronplus: name=every\n* * * * * echo $CRONPLUS_RUN_ID > {ran}/$CRONPLUS_RUN_ID\n"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    monkeypatch.setenv("CRONPLUS_TEST_SKEW", "10")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    skewed = host(tmp_path, "a", offset, pg_url, text, "--http", "127.0.0.1:0")
    shifted.append(skewed)
    monkeypatch.delenv("CRONPLUS_TEST_SKEW")
    monkeypatch.delenv("NOTIFY_SOCKET")
    try:
        status = read_until(notify, "clock skew +10.", timeout=30)
    finally:
        notify.close()
    assert "claiming no ticks until it is back under" in status[-1]
    fine = host(tmp_path, "b", offset, pg_url, text)
    shifted.append(fine)
    skewed.wait_ready()
    fine.wait_ready()
    address = wait_until(lambda: (skewed.state / "http.address").exists()
                         and (skewed.state / "http.address").read_text().strip(), 20, "the http address")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{address}/healthz", timeout=10)
    assert refused.value.code == 503
    assert "clock skew +10." in refused.value.read().decode()
    wait_until(lambda: runs(pg_url, "every"), 40, "host b to run the tick")
    time.sleep(2)  # host a had its tick too
    rows = runs(pg_url, "every")
    assert [(r["host"], r["scheduled_at"]) for r in rows] == [("b", tick)], "host a claimed no tick"
    log = skewed.stderr_path.read_text()
    assert log.count("clock skew: this host's clock is +10.") == 1, log
    assert "clock skew" not in fine.stderr_path.read_text()
