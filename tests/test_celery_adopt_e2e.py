"""queue= runs adopted by another supervisor (issue 15's loose ends), end to end: real `cronplus
run` supervisors (tests.shifted_run, clocks not shifted), a real `cronplus worker`, a shared
PostgreSQL history (`pg_url`) and a Redis broker (`redis_url`). The fixtures are
tests/test_celery_e2e.py's.

- a supervisor restarted while its attempt runs on a worker awaits it, and a failed adopted
  attempt follows the job's retries (it used to end final);
- a supervisor past its lease has its queue= run taken over: the taker awaits it on its worker
  (it used to record it `interrupted` while the worker still ran it), records its end and runs
  its retry; the stopped supervisor, continued, is fenced without cancelling the worker's job."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from cronplus.service import control
from tests import test_celery_e2e
from tests.test_celery_e2e import Cluster
from tests.test_faults_restart import Shifted
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
cluster, workers = test_celery_e2e.cluster, test_celery_e2e.workers  # its fixtures

LEASE = "3s"


def flaky(gate: Path, ran: Path) -> str:
    """Attempt 1 waits for the gate and fails; attempt 2 succeeds at once."""
    return (f"# cronplus: name=flaky queue=q retries=1 retry-delay=0s\n"
            f"0 0 1 1 * echo $CRONPLUS_ATTEMPT >> {ran}; if [ $CRONPLUS_ATTEMPT = 1 ]; then"
            f" while [ ! -e {gate} ]; do sleep 0.1; done; exit 3; fi\n")


def trigger(sup: Shifted, job: str) -> int:
    answer = next(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": job}))
    assert answer.get("ok", True), answer
    return int(answer["run_id"])


def both_attempts(cluster: Cluster) -> list[tuple[int, str, str | None, str]]:
    wait_until(lambda: any(r.attempt == 2 and r.status != "running" for r in cluster.runs("flaky")), 40,
               "the retry to end")
    return [(r.attempt, str(r.status), r.host, str(r.trigger)) for r in cluster.runs("flaky")]


def test_a_failed_attempt_adopted_at_a_supervisor_restart_gets_its_retry(cluster: Cluster, tmp_path: Path) -> None:
    gate, ran = tmp_path / "gate", tmp_path / "ran"
    cluster.crontab(flaky(gate, ran))
    first = cluster.supervisor()
    cluster.worker("w1")
    run_id = cluster.running_on(cluster.trigger("flaky")).run_id
    first.stop(signal.SIGKILL)
    cluster.supervisor()
    gate.touch()
    assert both_attempts(cluster) == [(1, "failed", "w1", "manual"), (2, "success", "w1", "retry")]
    assert cluster.runs("flaky")[0].run_id == run_id
    assert ran.read_text().split() == ["1", "2"]


def test_a_queue_run_of_a_host_past_its_lease_is_awaited_by_the_taker_and_its_retry_runs_there(
        cluster: Cluster, tmp_path: Path, shifted: list[Shifted]) -> None:
    gate, ran = tmp_path / "gate", tmp_path / "ran"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "crontab").write_text(flaky(gate, ran))
    a, b = (Shifted(tmp_path / name, 0.0, "--db", cluster.db, "--broker", cluster.broker, "--host-id", name,
                    "--lease", LEASE) for name in ("a", "b"))
    shifted.extend([a, b])
    a.wait_ready()
    b.wait_ready()
    cluster.worker("w1")
    run_id = cluster.running_on(trigger(a, "flaky")).run_id
    a.proc.send_signal(signal.SIGSTOP)  # a stopped host: its lease runs out, b takes its runs over
    try:
        wait_until(lambda: "took over host a" in b.stderr_path.read_text(), 30, "host b to take host a over")
        assert cluster.store.get_run(run_id).status == "running", "awaited, not interrupted"  # type: ignore[union-attr]
    finally:
        a.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: "lost its lease" in a.stderr_path.read_text(), 30, "host a to fence itself")
    gate.touch()  # the worker's job was not cancelled by a's fence: it ends by itself now
    assert both_attempts(cluster) == [(1, "failed", "w1", "manual"), (2, "success", "w1", "retry")]
    assert ran.read_text().split() == ["1", "2"]
    record = cluster.store.get_run(run_id)
    assert record is not None and record.exit_code == 3
