"""An attempt waiting in the broker (issue 15's loose ends): a real `cronplus run` with a Redis
broker (`redis_url`) and a shared PostgreSQL history (`pg_url`), and no worker of the job's
queue, so the triggered attempt stays there. `cronplus log` (table and --json), `cronplus jobs`,
the API's run JSON and the run and jobs pages (the supervisor's --http) say "queued on NAME
(no worker has taken it yet)" instead of a bare `running` with no host; once a worker takes
it, they say nothing of the kind. The fixtures are tests/test_celery_e2e.py's."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from tests import test_celery_e2e
from tests.test_celery_e2e import Cluster
from tests.test_faults_restart import ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
cluster, workers = test_celery_e2e.cluster, test_celery_e2e.workers  # its fixtures

NOTE = "queued on gpu (no worker has taken it yet)"


def cli(cluster: Cluster, *args: str) -> str:
    sup = cluster.sup
    assert sup is not None
    done = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(sup.crontab), "--state-dir",
                           str(sup.state), *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cluster.tmp), "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def get(address: str, path: str) -> str:
    with urllib.request.urlopen(f"{address}{path}", timeout=20) as answer:
        return str(answer.read().decode())


def test_an_attempt_no_worker_has_taken_shows_as_queued_on_its_queue_everywhere(cluster: Cluster) -> None:
    cluster.crontab("# cronplus: name=train queue=gpu\n0 0 1 1 * echo trained\n")
    sup = cluster.supervisor("--http", "127.0.0.1:0")
    run_id = cluster.trigger("train")
    record = cluster.store.get_run(run_id)
    assert record is not None and (record.status, record.queue, record.host) == ("running", "gpu", None)

    assert NOTE in cli(cluster, "log", "--no-pager", "--db", cluster.db)
    assert json.loads(cli(cluster, "log", "--json", "--db", cluster.db))["reason"] == NOTE
    assert f"queued on gpu (run {run_id}: no worker has taken it yet)" in cli(cluster, "jobs", "--db", cluster.db)
    address = wait_until(lambda: (sup.state / "http.address").exists()
                         and (sup.state / "http.address").read_text().strip(), 20, "the http address")
    assert json.loads(get(address, f"/api/v1/runs/{run_id}"))["reason"] == NOTE
    assert NOTE in get(address, f"/runs/{run_id}")
    assert NOTE in get(address, "/")

    cluster.worker("g1", "gpu")
    assert cluster.ended(run_id).host == "g1"
    assert "queued on" not in cli(cluster, "log", "--no-pager", "--db", cluster.db)
