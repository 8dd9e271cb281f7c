"""overlap=replace on a queue= job (issue 15's loose ends), end to end: a real `cronplus run`, a
real `cronplus worker`, PostgreSQL (`pg_url`) and Redis (`redis_url`); the fixtures are
tests/test_celery_e2e.py's. A second trigger replaces the run in progress on the worker: the
worker kills that run's whole process group (its shell and the background child it left) and
reports it (recorded `failed`, "replaced by run N", as a replaced local run is), and the new run
runs there."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests import test_celery_e2e
from tests.test_celery_e2e import Cluster
from tests.waiting import alive, wait_until

pytestmark = pytest.mark.e2e
cluster, workers = test_celery_e2e.cluster, test_celery_e2e.workers  # its fixtures


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_replaced_queue_run_has_its_group_killed_on_the_worker_and_the_new_run_runs(
        cluster: Cluster, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    cluster.crontab("# cronplus: name=rep queue=q overlap=replace kill-grace=1s\n"
                    f"0 0 1 1 * echo $$ > {ran}/$CRONPLUS_RUN_ID.pid; if [ $CRONPLUS_RUN_ID = 1 ]; then"
                    f" sleep 300 & echo $! > {ran}/child; wait; fi; echo ran $CRONPLUS_RUN_ID\n")
    cluster.supervisor()
    cluster.worker("w1")
    first = cluster.trigger("rep")
    cluster.running_on(first)
    pid_file, child_file = ran / f"{first}.pid", ran / "child"
    wait_until(lambda: child_file.exists() and child_file.read_text().strip(), 30, "the first run's child")
    pgid, child = int(pid_file.read_text()), int(child_file.read_text())
    try:
        assert os.getpgid(child) == pgid, "the child is in the job's group"
        second = cluster.trigger("rep")
        replaced = cluster.ended(first)
        assert (replaced.status, replaced.reason, replaced.host) == ("failed", f"replaced by run {second}", "w1")
        wait_until(lambda: not group_alive(pgid) and not alive(child), 15, "the first run's group to be killed")
        new = cluster.ended(second)
        assert (new.status, new.host, new.exit_code) == ("success", "w1", 0)
        assert (ran / f"{second}.pid").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
