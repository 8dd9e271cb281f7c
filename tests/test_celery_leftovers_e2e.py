"""A worker killed mid-run whose attempt the supervisor already ended (its heartbeat stopped)
leaves the job's processes behind; the same host id's next worker process stops them at start,
though the row is no longer `running`."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.test_celery_e2e import Cluster, cluster, pids_alive, workers  # noqa: F401 - the fixtures
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_a_restarted_worker_stops_what_is_left_of_an_attempt_the_supervisor_already_ended(
        cluster: Cluster, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster.crontab(f"# cronplus: name=long queue=q retries=0\n"
                    f"0 0 1 1 * echo $$ > {marks}/pid$CRONPLUS_ATTEMPT; sleep 300\n")
    cluster.supervisor()
    first = cluster.worker("w1")
    run_id = cluster.trigger("long")
    cluster.running_on(run_id)
    wait_until(lambda: (marks / "pid1").exists(), 20, "the attempt to run")
    first.stop(signal.SIGKILL)
    runs = cluster.final("long", timeout=40)  # ended by the supervisor: w1 stopped heart-beating
    assert [(r.status, r.host) for r in runs] == [("interrupted", "w1")]
    assert pids_alive(marks) != []  # the killed worker's job outlived it
    cluster.worker("w1")
    wait_until(lambda: pids_alive(marks) == [], 30, "the restarted worker to stop the leftover")
