"""Three real supervisors (`cronplus run --db postgresql://... --host-id a|b|c`, on a shifted
clock: tests/shifted_run.py) on one crontab, over several ticks: every (job, tick, attempt) runs
exactly once in the cluster (engine/claims.py), retries included; after= chains are released
across hosts; run-on=all runs on each host, run-on=HOST only there; @reboot once per host.

Each round starts the three with a clock whose next minute is a few seconds away, waits for
the tick's runs to end and stops them (SIGTERM): a restart between ticks, which also shows that
a supervisor's start-up sweep leaves the other hosts' rows alone."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.test_faults_restart import Shifted
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

HOSTS = ("a", "b", "c")
MANY = 20
CRONTAB = "".join([
    "# cronplus: name=every\n* * * * * true\n",
    "# cronplus: name=flaky retries=2 retry-delay=1s\n* * * * * exit 3\n",
    "# cronplus: name=up run-on=a\n* * * * * sleep 1\n",
    "# cronplus: name=down after=up run-on=b\n* * * * * true\n",
    "# cronplus: name=last after=down\n* * * * * true\n",
    "# cronplus: name=each run-on=all\n* * * * * true\n",
    "# cronplus: name=onlyc run-on=c\n* * * * * true\n",
    "# cronplus: name=boot\n@reboot true\n",
    *(f"# cronplus: name=many{i:02d}\n* * * * * true\n" for i in range(MANY)),
])
# rows of one tick once it is done: every, flaky x3 attempts, up, down, last, each x3, onlyc, many
ROWS_PER_TICK = 1 + 3 + 1 + 1 + 1 + 3 + 1 + MANY
ROUNDS = 3
LEAD_S = 8.0  # three supervisors start in it (a loaded machine: a few seconds each)


def query(pg_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def test_three_supervisors_run_every_tick_once_across_the_cluster(shifted: list[Shifted], tmp_path: Path,
                                                                 pg_url: str) -> None:
    for host in HOSTS:
        (tmp_path / host).mkdir()
        (tmp_path / host / "crontab").write_text(CRONTAB)
    first = (time.time() // 60 + 2) * 60
    ticks = [first + 60 * i for i in range(ROUNDS)]
    for tick in ticks:
        offset = tick - LEAD_S - time.time()
        sups = [Shifted(tmp_path / host, offset, "--db", pg_url, "--host-id", host) for host in HOSTS]
        shifted.extend(sups)
        for sup in sups:
            sup.wait_ready()

        def done(tick: float = tick) -> bool:
            rows = query(pg_url, "SELECT count(*) AS n FROM runs WHERE scheduled_at = %s AND status != 'running'"
                                 " AND (final = 1 OR attempt < 3)", (tick,))
            return rows[0]["n"] >= ROWS_PER_TICK

        wait_until(done, 60, f"the runs of tick {tick}")
        for sup in sups:
            assert sup.stop() == 0, sup.stderr_path.read_text()
            assert "Traceback" not in sup.stderr_path.read_text()

    rows = query(pg_url, "SELECT job, scheduled_at, attempt, claim, host, status, trigger, reason FROM runs ORDER BY run_id")
    claimed = Counter((r["job"], r["scheduled_at"], r["attempt"], r["claim"]) for r in rows)
    assert max(claimed.values()) == 1, [k for k, n in claimed.items() if n > 1]
    assert all(r["claim"] is not None for r in rows)  # no manual run here: every row claims its tick
    of = {job: [r for r in rows if r["job"] == job] for job in {r["job"] for r in rows}}
    for job in ("every", "up", "down", "last", "onlyc", *(f"many{i:02d}" for i in range(MANY))):
        assert sorted(r["scheduled_at"] for r in of[job]) == ticks, job  # each tick once, none missed
    assert Counter(r["status"] for r in rows if r["job"] != "flaky") == {"success": len(rows) - 3 * ROUNDS}
    assert sorted((r["scheduled_at"], r["attempt"], r["status"]) for r in of["flaky"]) == \
        [(tick, attempt, "failed") for tick in ticks for attempt in (1, 2, 3)]
    assert {r["host"] for r in of["up"]} == {"a"} and {r["host"] for r in of["down"]} == {"b"}  # released across hosts
    assert {r["host"] for r in of["onlyc"]} == {"c"}
    assert Counter((r["scheduled_at"], r["host"]) for r in of["each"]) == {(t, h): 1 for t in ticks for h in HOSTS}
    assert sorted(r["host"] for r in of["boot"]) == list(HOSTS)  # @reboot: once per host (this boot)
