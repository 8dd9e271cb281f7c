"""`queue=NAME` end to end (issue 15): a real `cronplus run` (tests.shifted_run, clock not
shifted) and real `cronplus worker` processes, sharing a PostgreSQL history (`pg_url`) and a
Redis broker (`redis_url`, tests/redisserver.py). Runs are started by `trigger` through the
supervisor's control socket and read back through the store's public functions."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.model import RunRecord
from cronplus.service import control
from cronplus.store.open import open_writer
from tests.test_faults_restart import ROOT, Shifted
from tests.waiting import alive, wait_until

pytestmark = pytest.mark.e2e


class Worker:
    """A `cronplus worker` process (its own state dir, host id `name`)."""

    def __init__(self, tmp_path: Path, name: str, queue: str, broker: str, db: str, *extra: str) -> None:
        self.name = name
        self.state = tmp_path / f"worker-{name}"
        self.stderr_path = tmp_path / f"worker-{name}-{time.monotonic_ns()}.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cronplus", "--state-dir", str(self.state), "worker", "--queue", queue,
             "--broker", broker, "--db", db, "--host-id", name, "--heartbeat", "0.5", "--concurrency", "2", *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"))  # noqa: SIM115 - the child owns it

    def wait_ready(self) -> Worker:
        wait_until(lambda: self.proc.poll() is not None or b"ready" in self.stderr_path.read_bytes()
                   or b"cronplus worker" in self.stderr_path.read_bytes(), 30, f"worker {self.name} to start")
        assert self.proc.poll() is None, self.stderr_path.read_text()
        time.sleep(0.5)  # its consumer is set up right after the start line
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


class Cluster:
    def __init__(self, tmp_path: Path, pg_url: str, redis_url: str, shifted: list[Shifted],
                 workers: list[Worker]) -> None:
        self.tmp = tmp_path
        self.db = pg_url
        self.broker = redis_url
        self._shifted = shifted
        self._workers = workers
        self.store = open_writer(pg_url, host="test")
        self.sup: Shifted | None = None

    def crontab(self, text: str) -> None:
        (self.tmp / "sup").mkdir(exist_ok=True)
        (self.tmp / "sup" / "crontab").write_text(text)

    def supervisor(self, *extra: str) -> Shifted:
        self.sup = Shifted(self.tmp / "sup", 0.0, "--db", self.db, "--broker", self.broker, "--host-id", "sup", *extra)
        self._shifted.append(self.sup)
        return self.sup.wait_ready()

    def worker(self, name: str, queue: str = "q", *extra: str, ready: bool = True) -> Worker:
        worker = Worker(self.tmp, name, queue, self.broker, self.db, *extra)
        self._workers.append(worker)
        return worker.wait_ready() if ready else worker

    def trigger(self, job: str) -> int:
        assert self.sup is not None
        answer = next(control.request(self.sup.state / "control.sock", {"cmd": "trigger", "job": job}))
        assert answer.get("ok", True), answer
        return int(answer["run_id"])

    def runs(self, job: str) -> list[RunRecord]:
        return sorted(self.store.latest_runs(job, 20), key=lambda r: r.run_id)

    def final(self, job: str, timeout: float = 30) -> list[RunRecord]:
        wait_until(lambda: self.store.last_final_run(job) is not None, timeout, f"a final run of {job}")
        return self.runs(job)

    def ended(self, run_id: int, timeout: float = 30) -> RunRecord:
        def done() -> RunRecord | None:
            rec = self.store.get_run(run_id)
            return rec if rec is not None and rec.status != "running" else None

        return wait_until(done, timeout, f"run {run_id} to end")

    def running_on(self, run_id: int, timeout: float = 30) -> RunRecord:
        def claimed() -> RunRecord | None:
            rec = self.store.get_run(run_id)
            return rec if rec is not None and rec.host not in (None, "sup") and rec.pid else None

        return wait_until(claimed, timeout, f"run {run_id} to start on a worker")


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, redis_url: str, shifted: list[Shifted],
            workers: list[Worker]) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url, redis_url, shifted, workers)
    yield c
    for sup in shifted:  # before the store goes: a supervisor still writing
        sup.stop()
    c.store.close()


def pids_alive(directory: Path) -> list[int]:
    return [int(p) for f in directory.glob("pid*") for p in f.read_text().split() if alive(int(p))]


def test_a_queued_job_runs_on_the_worker_with_crons_environment_and_its_output_is_in_the_row(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.crontab("MY_VAR=from-crontab\n# cronplus: name=hello queue=q\n"
                    "0 0 1 1 * echo hello $MY_VAR run=$CRONPLUS_RUN_ID job=$CRONPLUS_JOB; echo oops >&2; exit 3\n")
    cluster.supervisor()
    cluster.worker("w1")
    run_id = cluster.trigger("hello")
    (run,) = cluster.final("hello")
    assert (run.run_id, run.status, run.exit_code, run.host, run.queue) == (run_id, "failed", 3, "w1", "q")
    assert run.pid is not None and run.reason == "exit 3"
    head, tail = cluster.store.remote_output(run_id)
    assert head == f"hello from-crontab run={run_id} job=hello\noops\n" and tail is None
    shown = subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(tmp_path / "sup" / "state"),
                            "output", str(run_id), "--db", cluster.db], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and "hello from-crontab" in shown.stdout, shown


def test_a_timeout_on_the_worker_kills_the_whole_group_and_the_retry_follows(cluster: Cluster, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    cluster.crontab(f"# cronplus: name=slow queue=q timeout=1 kill-grace=1 retries=1 retry-delay=0\n"
                    f"0 0 1 1 * sleep 300 & echo $! > {pids}/pid$CRONPLUS_ATTEMPT; trap '' TERM; sleep 300\n")
    cluster.supervisor()
    cluster.worker("w1")
    cluster.trigger("slow")
    runs = cluster.final("slow", timeout=40)
    assert [(r.attempt, r.status, r.host) for r in runs] == [(1, "timeout", "w1"), (2, "timeout", "w1")]
    assert "SIGKILL after 1s grace" in (runs[1].reason or "")
    assert len(list(pids.glob("pid*"))) == 2 and pids_alive(pids) == []


def test_a_worker_killed_mid_run_makes_the_attempt_interrupted_and_its_restart_runs_the_retry_once(
        cluster: Cluster, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster.crontab(f"# cronplus: name=long queue=q retries=1 retry-delay=0 kill-grace=1\n"
                    f"0 0 1 1 * echo $$ > {marks}/pid$CRONPLUS_ATTEMPT; echo x >> {marks}/ran$CRONPLUS_ATTEMPT;"
                    f" [ $CRONPLUS_ATTEMPT = 1 ] && sleep 300; echo done\n")
    cluster.supervisor()
    first = cluster.worker("w1")
    run_id = cluster.trigger("long")
    cluster.running_on(run_id)
    wait_until(lambda: (marks / "pid1").exists(), 20, "the first attempt to run")
    first.stop(signal.SIGKILL)
    cluster.worker("w1")  # the same host id again: it settles what the killed process left
    runs = cluster.final("long", timeout=40)
    assert [(r.attempt, r.status, r.host) for r in runs] == [(1, "interrupted", "w1"), (2, "success", "w1")]
    # Whichever notices first ends it: the restarted worker, or (on a loaded machine) the
    # supervisor seeing the killed one's heartbeat stop; the restarted worker stops the job either way.
    assert any(why in (runs[0].reason or "") for why in ("restarted during the attempt", "stopped heart-beating"))
    wait_until(lambda: pids_alive(marks) == [], 20, "the killed worker's job to be stopped")
    assert (marks / "ran1").read_text() == "x\n" and (marks / "ran2").read_text() == "x\n"  # each attempt once


def test_a_worker_that_stops_heart_beating_loses_its_attempt_to_the_retry_on_another(
        cluster: Cluster, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster.crontab(f"# cronplus: name=long queue=q retries=1 retry-delay=0\n"
                    f"0 0 1 1 * echo $$ > {marks}/pid$CRONPLUS_ATTEMPT; [ $CRONPLUS_ATTEMPT = 1 ] && sleep 300; echo ok\n")
    cluster.supervisor()
    first = cluster.worker("w1")
    run_id = cluster.trigger("long")
    cluster.running_on(run_id)
    first.stop(signal.SIGKILL)
    cluster.worker("w2")
    try:
        runs = cluster.final("long", timeout=40)
        assert [(r.attempt, r.status, r.host) for r in runs] == [(1, "interrupted", "w1"), (2, "success", "w2")]
        assert "worker w1 stopped heart-beating" in (runs[0].reason or "")
    finally:  # w1's job: its host (systemd's unit, a container) would have ended it with the worker
        for pid in pids_alive(marks):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_a_worker_down_at_tick_time_runs_the_attempt_when_it_comes_up(cluster: Cluster) -> None:
    cluster.crontab("# cronplus: name=later queue=q\n0 0 1 1 * echo ran\n")
    cluster.supervisor()
    run_id = cluster.trigger("later")
    time.sleep(1.5)
    rec = cluster.store.get_run(run_id)
    assert rec is not None and (rec.status, rec.host) == ("running", None)  # in the broker
    cluster.worker("w1")
    (run,) = cluster.final("later")
    assert (run.status, run.host) == ("success", "w1")


def test_queue_timeout_fails_an_attempt_no_worker_took_and_a_late_worker_does_not_run_it(
        cluster: Cluster, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    cluster.crontab(f"# cronplus: name=impatient queue=q queue-timeout=1\n0 0 1 1 * touch {ran}\n")
    cluster.supervisor()
    run_id = cluster.trigger("impatient")
    (run,) = cluster.final("impatient")
    assert (run.run_id, run.status, run.host) == (run_id, "failed", "sup")
    assert run.reason == "no worker of queue q took it within 1s (queue-timeout)"
    late = cluster.worker("w1")
    wait_until(lambda: b"message dropped" in late.stderr_path.read_bytes(), 30, "the late message to be dropped")
    assert not ran.exists()
    assert [r.status for r in cluster.runs("impatient")] == ["failed"]


def test_a_supervisor_killed_while_attempts_are_queued_and_running_awaits_them_after_its_restart(
        cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    cluster.crontab(f"# cronplus: name=busy queue=q\n0 0 1 1 * while [ ! -e {gate} ]; do sleep 0.1; done; echo busy\n"
                    "# cronplus: name=waiting queue=other\n0 0 1 1 * echo waited\n")
    first = cluster.supervisor()
    cluster.worker("w1")
    busy = cluster.trigger("busy")
    waiting = cluster.trigger("waiting")
    cluster.running_on(busy)
    first.stop(signal.SIGKILL)
    cluster.supervisor()
    gate.touch()
    cluster.worker("w2", "other")
    assert (cluster.ended(busy).status, cluster.ended(busy).host) == ("success", "w1")
    assert (cluster.ended(waiting).status, cluster.ended(waiting).host) == ("success", "w2")
    assert [r.run_id for r in cluster.runs("busy") if r.status != "missed"] == [busy]  # run once, by its worker


def test_a_supervisor_shutdown_reaches_the_worker_and_kills_the_group_there(cluster: Cluster, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    cluster.crontab(f"# cronplus: name=forever queue=q kill-grace=1\n0 0 1 1 * sleep 300 & echo $! > {pids}/pid; wait\n")
    sup = cluster.supervisor("--shutdown-grace", "0.5")
    cluster.worker("w1")
    run_id = cluster.trigger("forever")
    cluster.running_on(run_id)
    wait_until(lambda: (pids / "pid").exists(), 20, "the job to start")
    assert sup.stop() == 0
    rec = cluster.store.get_run(run_id)
    assert rec is not None and (rec.status, rec.host) == ("interrupted", "w1"), rec
    wait_until(lambda: pids_alive(pids) == [], 10, "the job's group to be gone")


def test_a_broker_restart_loses_no_queued_attempt(tmp_path: Path, pg_url: str, shifted: list[Shifted],
                                                  workers: list[Worker]) -> None:
    from tests.redisserver import start_server

    broker = start_server(tmp_path / "redis")
    try:
        c = Cluster(tmp_path, pg_url, broker.url(0), shifted, workers)
        c.crontab("# cronplus: name=kept queue=q\n0 0 1 1 * echo kept\n")
        c.supervisor()
        run_id = c.trigger("kept")
        wait_until(lambda: broker.queue_length(0, "q") == 1, 10, "the message in the broker")
        broker.restart()
        c.worker("w1")
        (run,) = c.final("kept")
        assert (run.run_id, run.status, run.host) == (run_id, "success", "w1")
        c.store.close()
    finally:
        for sup in shifted:
            sup.stop()
        broker.stop()


def test_a_shutdown_while_the_attempt_waits_in_the_broker_ends_it_and_no_worker_runs_it_later(
        cluster: Cluster, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    cluster.crontab(f"# cronplus: name=queued queue=q\n0 0 1 1 * touch {ran}\n")
    sup = cluster.supervisor("--shutdown-grace", "0.2")
    run_id = cluster.trigger("queued")
    time.sleep(0.5)
    assert sup.stop() == 0
    rec = cluster.store.get_run(run_id)
    assert rec is not None and (rec.status, rec.host) == ("interrupted", "sup"), rec
    late = cluster.worker("w1")
    wait_until(lambda: b"message dropped" in late.stderr_path.read_bytes(), 30, "the late message to be dropped")
    assert not ran.exists()


def test_a_second_worker_with_the_same_host_id_refuses_to_start_in_one_line(cluster: Cluster) -> None:
    cluster.worker("w1")
    twin = cluster.worker("w1", ready=False)
    assert twin.proc.wait(30) == 1
    err = twin.stderr_path.read_text()
    assert "another cronplus worker (pid" in err and "runs as host id w1: give this one its own --host-id" in err
    assert "Traceback" not in err
