"""Pauses across a cluster (docs/cluster.md): every supervisor on one PostgreSQL store obeys the
pauses as the store has them before it decides a tick (engine/ticking.py re-reads them when a
tick is due), whoever wrote them: another supervisor (its control socket, the web), or
`cronplus pause --db URL` with no supervisor of its own.

The first tests step two Schedulers (hosts a and b) on FakeClocks through the same minutes; the
e2e ones run two real supervisors on shifted clocks (tests/shifted_run.py) and the real CLI."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.runstate import RunState
from cronplus.engine.scheduler import Scheduler
from cronplus.model import RunRecord
from cronplus.service import control
from cronplus.status import RunStatus
from cronplus.store.api import HistoryStore
from cronplus.store.postgres import open_postgres
from tests import incli
from tests.conftest import Lines
from tests.pgserver import PgServer, start_server
from tests.test_cluster_claims_scheduler import step_all
from tests.test_faults_restart import Shifted, offset_to_next_minute
from tests.waiting import wait_until

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z, a minute boundary
MINUTE = 60.0
CRONTAB = """\
# cronplus: name=every
* * * * * true
# cronplus: name=onlya run-on=a
* * * * * true
# cronplus: name=each run-on=all
* * * * * true
"""


class Host:
    def __init__(self, tmp_path: Path, url: str, name: str, text: str = CRONTAB) -> None:
        self.store: HistoryStore = open_postgres(url, host=name)
        self.clock = FakeClock(T0 - 30)
        crontab = parse_crontab(text, path=str(tmp_path / "crontab"), system=False)
        self.sched = Scheduler(crontab, history=self.store, alerting=None, log_dir=tmp_path / name / "logs",
                               owner=f"{name}:1:0", clock=self.clock)

    def busy(self) -> bool:
        return any(r.state is not RunState.FINAL for r in self.sched.runs)


def at(store: HistoryStore, when: float) -> list[tuple[str, str | None, RunStatus]]:
    """(job, host, status) of the rows of the tick at `when`, sorted."""
    records: list[RunRecord] = store.query()
    return sorted((r.job, r.host, r.status) for r in records if r.scheduled_at and r.scheduled_at.timestamp() == when)


OK = RunStatus.SUCCESS


def test_a_job_paused_on_one_host_runs_on_none_and_once_resumed_on_the_other_runs_its_next_tick_once(
        tmp_path: Path, pg_url: str, lines: Lines) -> None:
    async def main() -> None:
        a, b = Host(tmp_path, pg_url, "a"), Host(tmp_path, pg_url, "b")
        try:
            await step_all([a, b], T0)
            assert at(a.store, T0) == [("each", "a", OK), ("each", "b", OK), ("every", "a", OK), ("onlya", "a", OK)]
            a.sched.pause(["every", "onlya"], by="alice")  # as a's control socket does (Commands.pause)
            for first in ([b, a], [a, b]):  # whichever steps first
                tick = T0 + MINUTE * (1 + (first[0] is a))
                await step_all(first, tick)
                assert at(a.store, tick) == [("each", "a", OK), ("each", "b", OK)], "no host runs a paused job"
            assert lines.count("paused on another host or by a command: every, onlya") == 1, "b said so, once"
            b.sched.ticker.resume(["every", "onlya"])  # as b's control socket does (Commands.resume)
            tick = T0 + 3 * MINUTE
            await step_all([b, a], tick)
            assert at(a.store, tick) == [("each", "a", OK), ("each", "b", OK), ("every", "b", OK), ("onlya", "a", OK)]
            assert lines.count("resumed on another host or by a command: every, onlya") == 1, "a said so, once"
        finally:
            a.store.close()
            b.store.close()

    asyncio.run(main())


def test_a_downstream_waiting_on_one_host_ends_skipped_when_another_host_pauses_it(tmp_path: Path, pg_url: str) -> None:
    go = tmp_path / "go"
    text = (f"# cronplus: name=up run-on=a\n0 12 * * * until [ -e {go} ]; do sleep 0.05; done\n"
            "# cronplus: name=down after=up run-on=b\n0 12 * * * true\n"
            "# cronplus: name=each run-on=all\n* * * * * true\n")

    async def main() -> None:
        a, b = Host(tmp_path, pg_url, "a", text), Host(tmp_path, pg_url, "b", text)
        try:
            for host in (a, b):
                host.clock.jump(30)
                host.sched.step(T0)
            assert [(r.job.name, r.state) for r in b.sched.runs if r.job.name == "down"] == [("down", RunState.WAITING)]
            a.sched.pause(["down"], by="alice")
            go.touch()  # up ends; down, paused meanwhile, must not run
            await step_all([a, b], T0 + MINUTE)  # b's next tick: the pause is read, its waiting run ends
            rows = [(r.job, r.status, r.reason) for r in a.store.query() if r.job == "down"]
            assert rows == [("down", RunStatus.SKIPPED, "job paused before it could start")], "as a pause on b itself ends it"
        finally:
            go.touch()
            a.store.close()
            b.store.close()

    asyncio.run(main())


def pause_cli(tmp_path: Path, url: str, *args: str) -> incli.Completed[str]:
    """`cronplus pause|resume ... --db URL` from a state dir of its own: no supervisor there."""
    (tmp_path / "cli").mkdir(exist_ok=True)
    (tmp_path / "cli" / "crontab").write_text(CRONTAB)
    return incli.run(["--crontab", str(tmp_path / "cli" / "crontab"), "--state-dir", str(tmp_path / "cli" / "state"),
                      *args, "--db", url], env=incli.base_env(HOME=str(tmp_path)))


def test_a_pause_written_by_a_command_with_no_supervisor_is_obeyed_by_every_host_from_its_next_tick(
        tmp_path: Path, pg_url: str) -> None:
    async def main() -> None:
        a, b = Host(tmp_path, pg_url, "a"), Host(tmp_path, pg_url, "b")
        try:
            await step_all([a, b], T0)
            done = pause_cli(tmp_path, pg_url, "pause", "every")
            assert done.returncode == 0, done.stderr
            assert pause_cli(tmp_path, pg_url, "pause", "--all").returncode == 0
            await step_all([a, b], T0 + MINUTE)
            assert at(a.store, T0 + MINUTE) == [], "--all: no job runs on any host"
            assert done.stdout == "every paused in the database (the supervisors on it obey it from their next tick)\n"
            assert pause_cli(tmp_path, pg_url, "resume", "--all").returncode == 0
            await step_all([b, a], T0 + 2 * MINUTE)
            assert at(a.store, T0 + 2 * MINUTE) == [("each", "a", OK), ("each", "b", OK), ("onlya", "a", OK)], \
                "the global pause lifted, every's own stays"
            assert pause_cli(tmp_path, pg_url, "resume", "every").returncode == 0
            await step_all([a, b], T0 + 3 * MINUTE)
            assert [job for job, _, _ in at(a.store, T0 + 3 * MINUTE)] == ["each", "each", "every", "onlya"]
        finally:
            a.store.close()
            b.store.close()

    asyncio.run(main())


@pytest.fixture
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own, free to be stopped (tests/test_cluster_dbaway.py)."""
    server = start_server(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


def test_an_idle_step_reads_no_pause_and_a_failed_read_keeps_the_pauses_last_known(
        tmp_path: Path, private_pg: PgServer) -> None:
    url = private_pg.url(schema=private_pg.new_schema())

    async def main() -> None:
        a, b = Host(tmp_path, url, "a"), Host(tmp_path, url, "b")
        try:
            await step_all([a, b], T0)
            b.sched.pause(["every"], by="alice")
            await step_all([a], T0 + MINUTE)
            assert a.sched.ticker.pauses.of("every") is not None
            private_pg.stop()
            a.clock.jump(30)
            a.sched.step(a.clock.time())  # no tick due: nothing is read, so the outage is not even seen
            assert not a.sched.store.away
            a.clock.jump(30)
            a.sched.step(a.clock.time())  # 12:02, due: the read fails, no run starts, nothing raised
            assert a.sched.store.away and not a.sched.runs
            pause = a.sched.ticker.pauses.of("every")
            assert pause is not None and pause.by == "alice", "the pauses last known stand"
            private_pg.start_again()
            assert a.sched.store.flush() and not a.sched.store.away
            await step_all([a], T0 + 2 * MINUTE + 1)  # back: 12:02 missed, but for the paused job
            assert [(job, status) for job, _, status in at(a.store, T0 + 2 * MINUTE)] == \
                [("each", RunStatus.MISSED), ("onlya", RunStatus.MISSED)]
        finally:
            a.store.close()
            b.store.close()

    asyncio.run(main())


# ---- two real supervisors on shifted clocks -------------------------------------------------

E2E = """\
# cronplus: name=every
* * * * * true
# cronplus: name=onlya run-on=a
* * * * * true
# cronplus: name=each run-on=all
* * * * * true
"""
LEAD_S = 14.0  # two supervisors start and the pause is made in it (a loaded machine: seconds each)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def cli(tmp_path: Path, host: str, *args: str) -> incli.Completed[str]:
    """`cronplus ARGS` with host `host`'s state dir (its control socket when it runs)."""
    done = incli.run(["--crontab", str(tmp_path / host / "crontab"), "--state-dir", str(tmp_path / host / "state"),
                      *args], env=incli.base_env(HOME=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    return done


def two_hosts(tmp_path: Path, url: str, shifted: list[Shifted], *b_extra: str) -> tuple[Shifted, Shifted, float, float]:
    """Supervisors a and b on `url`, ready, their clocks LEAD_S before the next minute -> (a, b,
    tick, offset): their clocks reach `tick` at real time tick - offset."""
    offset, tick = offset_to_next_minute(lead=LEAD_S)
    sups = []
    for name, extra in (("a", ()), ("b", b_extra)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "crontab").write_text(E2E)
        sups.append(Shifted(tmp_path / name, offset, "--db", url, "--host-id", name, *extra))
    shifted.extend(sups)
    for sup in sups:
        sup.wait_ready()
    return sups[0], sups[1], tick, offset


def tick_done(url: str, tick: float, sups: tuple[Shifted, ...]) -> list[dict[str, Any]]:
    """The tick's rows once both hosts ran their `each` (so both decided the tick) and run nothing."""
    def done() -> bool:
        each = query(url, "SELECT host FROM runs WHERE job = 'each' AND scheduled_at = %s AND status = 'success'", (tick,))
        return sorted(r["host"] for r in each) == ["a", "b"]

    wait_until(done, 40, f"both hosts' runs of tick {tick}")
    for sup in sups:
        wait_until(lambda sup=sup: not next(control.request(sup.state / "control.sock", {"cmd": "status"}))["runs"],
                   20, "the runs to end")
    return query(url, "SELECT job, host, status FROM runs WHERE scheduled_at = %s ORDER BY job, host", (tick,))


@pytest.mark.e2e
def test_a_pause_through_one_supervisor_is_obeyed_and_shown_by_the_other_and_a_resume_through_it_too(
        tmp_path: Path, pg_url: str, shifted: list[Shifted]) -> None:
    a, b, tick, offset = two_hosts(tmp_path, pg_url, shifted, "--http", "127.0.0.1:0")
    assert cli(tmp_path, "a", "pause", "every", "onlya").stdout == "every, onlya paused by the supervisor\n"
    shown = {o["job"]: o for o in map(json.loads, cli(tmp_path, "b", "jobs", "--json", "--db", pg_url).stdout.splitlines())}
    assert (shown["every"]["paused"], shown["onlya"]["paused"], shown["each"]["paused"]) == (True, True, False)
    address = wait_until(lambda: (b.state / "http.address").exists() and (b.state / "http.address").read_text().strip(),
                         20, "b's http address")
    token = (b.state / "http.token").read_text().strip()

    def get(path: str) -> str:
        request = urllib.request.Request(f"{address}{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())

    api = {job["job"]: job for job in json.loads(get("/api/v1/jobs"))["jobs"]}
    assert (api["every"]["paused"], api["each"]["paused"]) == (True, False)
    assert "paused since" in get("/jobs/every") and "paused since" not in get("/jobs/each")
    assert cli(tmp_path, "b", "resume", "onlya").stdout == "onlya resumed by the supervisor\n"  # a paused it
    assert time.time() + offset < tick - 1, "too slow a start: the pause must come before the tick"
    rows = tick_done(pg_url, tick, (a, b))
    assert [(r["job"], r["host"], r["status"]) for r in rows] == \
        [("each", "a", "success"), ("each", "b", "success"), ("onlya", "a", "success")], \
        "paused through a: no host runs every; resumed through b: a runs onlya"
    for sup in (a, b):
        assert sup.stop() == 0
        assert "Traceback" not in sup.stderr_path.read_text()


@pytest.mark.e2e
def test_a_pause_written_by_the_cli_with_no_supervisor_of_its_own_is_obeyed_by_both(
        tmp_path: Path, pg_url: str, shifted: list[Shifted]) -> None:
    a, b, tick, offset = two_hosts(tmp_path, pg_url, shifted)
    done = pause_cli(tmp_path, pg_url, "pause", "every")
    assert done.returncode == 0, done.stderr
    assert time.time() + offset < tick - 1, "too slow a start: the pause must come before the tick"
    rows = tick_done(pg_url, tick, (a, b))
    assert [(r["job"], r["host"]) for r in rows] == [("each", "a"), ("each", "b"), ("onlya", "a")]
    for sup in (a, b):
        assert sup.stop() == 0
        assert "Traceback" not in sup.stderr_path.read_text()


def test_pausing_a_job_another_host_paused_keeps_the_first_pause(tmp_path: Path, pg_url: str) -> None:
    from cronplus.engine.pausing import Pauses

    async def main() -> None:
        a, b = Host(tmp_path, pg_url, "a"), Host(tmp_path, pg_url, "b")
        try:
            a.sched.pause(["every"], by="alice")
            b.clock.jump(5)
            b.sched.pause(["every"], by="bob")  # b has had no tick since: it learns of alice's pause now
            pause = Pauses.read(b.store).of("every")
            assert pause is not None and (pause.by, pause.since) == ("alice", T0 - 30)
        finally:
            a.store.close()
            b.store.close()

    asyncio.run(main())
