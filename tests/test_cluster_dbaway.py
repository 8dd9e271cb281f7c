"""The shared store's database going away (issue 14 item 3): a PostgreSQL server of the test's
own (tests/pgserver.py `start_server` into a directory of its own: the session's server is
shared, so only a private one may be stopped) is stopped and started again under a Scheduler
on a FakeClock. Runs already started go on and their ends (with their alert decisions) are held
by their own row ids and written once it is back; no tick starts meanwhile (a run's row is its
claim: another host may run that tick); the ticks that fell in the outage are recorded `missed`
once when it is back, catch-up=last running the newest; the reconnect is retried with backoff
and said once when it goes and once when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.alerts.alerting import Alerting
from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.chain import TriggerRefused
from cronplus.engine.scheduler import Scheduler
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import RunStart
from cronplus.store.postgres import open_postgres, open_postgres_outbox
from tests.conftest import Lines
from tests.pgserver import PgServer, start_server

T0 = 1_767_268_830.0  # 2026-01-01T12:00:30Z
MINUTE = 60.0


@pytest.fixture
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own, free to be stopped (a short path: its unix socket)."""
    server = start_server(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


async def until(check: object, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_a_database_restart_holds_started_runs_ends_starts_no_tick_and_records_the_missed_ones_once(
        tmp_path: Path, private_pg: PgServer, lines: Lines) -> None:
    go = tmp_path / "go"
    text = (f"# cronplus: name=slow alert=http://127.0.0.1:9/hook\n1 12 * * * until [ -e {go} ]; do sleep 0.05; done; exit 3\n"
            "# cronplus: name=every catch-up=last\n* * * * * true\n"
            "# cronplus: name=plain\n* * * * * true\n")
    url = private_pg.url(schema=private_pg.new_schema())

    async def main() -> None:
        history = open_postgres(url, host="host-a")
        clock = FakeClock(T0)
        sched = Scheduler(parse_crontab(text, path=str(tmp_path / "crontab"), system=False), history=history,
                          alerting=Alerting(history, clock=clock), log_dir=tmp_path / "logs", owner="test", clock=clock)
        clock.jump(30)  # 12:01:00: all three start
        sched.step(clock.time())
        await until(lambda: {r.job.name for r in sched.runs} == {"slow"}, "every and plain to end")

        private_pg.stop()  # slow still runs
        clock.jump(MINUTE)  # 12:02:00: the ticks of every and plain cannot insert their rows
        sched.step(clock.time())
        assert {r.job.name for r in sched.runs} == {"slow"}, "no tick started without its row"
        assert sched.store.away and (sched.store.problem or "").startswith("database unavailable: ")
        assert not sched.store.held, "a start is never held on a shared store"
        assert lines.count("not started") == 2
        assert sched.next_wake(clock.time()) > 0, "nothing is due while it is away: no busy loop"
        with pytest.raises(TriggerRefused, match="database unavailable"):
            sched.trigger("plain")

        go.touch()  # slow ends while the database is away: held, by its own row id
        await until(lambda: not sched.runs, "slow to end")
        assert len(sched.store.held) == 1
        clock.jump(MINUTE)  # 12:03:00: still away, still nothing starts
        sched.step(clock.time())
        assert not sched.runs and not (tmp_path / "logs" / "every").joinpath("4.log").exists()
        assert lines.count("database unavailable") == 1, "said once when it went"

        private_pg.start_again()
        assert sched.store.flush() and not sched.store.away and not sched.store.held
        assert lines.count("is back: 1 held history write(s) written") == 1
        clock.jump(0.5)
        sched.step(clock.time())  # the ticks that fell in the outage: missed, catch-up=last runs the newest
        await until(lambda: not sched.runs, "the catch-up run to end")
        sched.store.close()

        rows = [(r.job, r.status, r.trigger, r.scheduled_at.strftime("%H:%M") if r.scheduled_at else None)
                for r in history.query()]
        assert sorted(rows) == sorted([
            ("slow", RunStatus.FAILED, Trigger.SCHEDULE, "12:01"),
            ("every", RunStatus.SUCCESS, Trigger.SCHEDULE, "12:01"),
            ("plain", RunStatus.SUCCESS, Trigger.SCHEDULE, "12:01"),
            ("every", RunStatus.MISSED, Trigger.SCHEDULE, "12:02"), ("every", RunStatus.MISSED, Trigger.SCHEDULE, "12:03"),
            ("plain", RunStatus.MISSED, Trigger.SCHEDULE, "12:02"), ("plain", RunStatus.MISSED, Trigger.SCHEDULE, "12:03"),
            ("every", RunStatus.SUCCESS, Trigger.CATCH_UP, "12:03"),
        ])
        (slow,) = history.latest_runs("slow")
        assert slow.exit_code == 3 and slow.ended_at is not None
        outbox = open_postgres_outbox(url)
        alerts = [(row.event, row.run_id) for row in outbox.list_rows(limit=None) if row.kind == "alert"]
        outbox.close()
        assert alerts == [("failure", slow.run_id)], "the held end got its alert decision, once"
        history.close()

    asyncio.run(main())



def test_a_lost_server_cannot_block_a_call_for_long_unless_the_url_says_otherwise() -> None:
    from cronplus.store.postgres_conn import _defaults

    bounded = _defaults("postgresql://u@db.example:5432/cron")
    assert bounded["connect_timeout"] == 10 and bounded["tcp_user_timeout"] == 15_000
    assert bounded["keepalives"] == 1 and bounded["keepalives_idle"] + 2 * bounded["keepalives_interval"] <= 20
    given = _defaults("postgresql://u@db.example:5432/cron?tcp_user_timeout=0&connect_timeout=3")
    assert "tcp_user_timeout" not in given and "connect_timeout" not in given, "the URL's own settings win"


def test_a_retry_due_while_the_database_is_away_is_abandoned_and_its_failure_alerted_once_back(
        tmp_path: Path, private_pg: PgServer, lines: Lines) -> None:
    text = "# cronplus: name=flaky retries=2 retry-delay=1s alert=http://127.0.0.1:9/hook\n1 12 * * * exit 5\n"
    url = private_pg.url(schema=private_pg.new_schema())

    async def main() -> None:
        history = open_postgres(url, host="host-a")
        clock = FakeClock(T0)
        sched = Scheduler(parse_crontab(text, path=str(tmp_path / "crontab"), system=False), history=history,
                          alerting=Alerting(history, clock=clock), log_dir=tmp_path / "logs", owner="test", clock=clock)
        clock.jump(30)
        sched.step(clock.time())  # attempt 1 fails at once; its retry is due 1 s later (real time)
        await until(lambda: any(r.retry_timer is not None for r in sched.runs), "the retry's timer")
        private_pg.stop()
        await until(lambda: not sched.runs, "the retry to be given up")
        assert sched.store.away and lines.count("retry abandoned") == 1
        private_pg.start_again()
        assert sched.store.flush()
        sched.store.close()
        (attempt,) = history.latest_runs("flaky")
        assert (attempt.attempt, attempt.status, attempt.exit_code) == (1, RunStatus.FAILED, 5)
        assert attempt.reason == "exit 5; retry abandoned: its row cannot be inserted while the history database is away"
        assert history.last_final_run("flaky") == attempt, "the ended attempt is the run's final row"
        outbox = open_postgres_outbox(url)
        alerts = [(row.event, row.run_id) for row in outbox.list_rows(limit=None) if row.kind == "alert"]
        outbox.close()
        assert alerts == [("failure", attempt.run_id)]
        history.close()

    asyncio.run(main())


def test_held_ends_kept_on_disk_are_written_once_each_with_their_decision(tmp_path: Path, pg_url: str) -> None:
    from cronplus.store.heldwrites import replay, save

    history = open_postgres(pg_url, host="host-a")
    try:
        ids = history.start_runs([RunStart(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                           started_at=T0, log_path=None, owner="gone") for job in ("a", "b", "c")])
        history.finish_run(ids[2], status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason="exit 1", final=False)
        history.finish_run(ids[1], status=RunStatus.INTERRUPTED, ended_at=T0 + 1, exit_code=None,
                           reason="host host-a lost its lease", final=True)  # settled by another host meanwhile
        spool = tmp_path / "held-writes.jsonl"
        save(spool, [{"kind": "end", "run_id": ids[0], "status": "success", "ended_at": T0 + 2, "exit_code": 0,
                      "signal": None, "reason": None, "final": True, "outputs": [["K", "v"]], "usage": [None, None],
                      "excerpt": ["head\n", "tail\n"]}])
        save(spool, [{"kind": "end", "run_id": ids[1], "status": "success", "ended_at": T0 + 2, "exit_code": 0,
                      "final": True},
                     {"kind": "final", "run_id": ids[2], "reason": "retry abandoned: away"}])  # added, not replaced
        assert spool.stat().st_mode & 0o777 == 0o600
        decided: list[tuple[int, bool]] = []
        assert replay(history, spool, lambda record, will_retry: decided.append((record.run_id, will_retry))) == 2
        assert decided == [(ids[0], False), (ids[2], False)] and not spool.exists()
        a, b, c = (history.get_run(i) for i in ids)
        assert a is not None and (a.status, a.exit_code, a.outputs) == (RunStatus.SUCCESS, 0, (("K", "v"),))
        assert history.output_excerpt(ids[0]) is not None
        assert b is not None and b.status is RunStatus.INTERRUPTED, "another host's settlement is left alone"
        assert c is not None and c.reason == "exit 1; retry abandoned: away" and history.last_final_run("c") == c
        save(spool, [{"kind": "final", "run_id": ids[2], "reason": "retry abandoned: away"}])
        assert replay(history, spool, lambda record, will_retry: decided.append((record.run_id, will_retry))) == 0
    finally:
        history.close()
