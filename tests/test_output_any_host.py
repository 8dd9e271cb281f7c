"""A run's output from any host (issue 14 item 4): with a shared store (PostgreSQL) the capped
head and tail of each run's log go into its row at its end (engine/outputexcerpt.py), and
`cronplus output RUN_ID` on another host, or where the log is gone, prints them with a line
saying how much is not shown and where the full log is. A SQLite history keeps none (one host:
the log is here; no cost on the single-host path)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.outputexcerpt import EXCERPT_BYTES, read_excerpt, render
from cronplus.engine.scheduler import Scheduler
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore, OutputExcerpt
from cronplus.store.history import History
from cronplus.store.postgres import open_postgres
from tests.incli import base_env, run_bytes

T0 = 1_767_268_830.0  # 2026-01-01T12:00:30Z


# ---- the excerpt itself ----------------------------------------------------------------------

def test_a_log_that_fits_in_head_and_tail_is_kept_whole(tmp_path: Path) -> None:
    log = tmp_path / "1.log"
    text = "é" * (EXCERPT_BYTES // 2) + "tail\n" + "x" * 100  # the head's cap falls inside a character
    log.write_text(text)
    found = read_excerpt(str(log))
    assert found is not None
    head, tail = found
    assert head + tail == text and "\ufffd" not in head + tail
    assert render(OutputExcerpt(head, tail, log.stat().st_size), host="a", path=str(log)) == text.encode()


def test_a_long_log_keeps_its_first_and_last_8_kib_and_says_how_much_is_not_shown(tmp_path: Path) -> None:
    log = tmp_path / "2.log"
    body = b"".join(b"line %06d\n" % i for i in range(10_000))  # 120,000 bytes
    log.write_bytes(body)
    found = read_excerpt(str(log))
    assert found is not None
    head, tail = found
    assert head.encode() == body[:EXCERPT_BYTES] and tail.encode() == body[-EXCERPT_BYTES:]
    shown = render(OutputExcerpt(head, tail, len(body)), host="host-b", path=str(log))
    note = (f"[... {len(body) - 2 * EXCERPT_BYTES} bytes not shown: the full log is on host-b at {log} ...]\n").encode()
    assert shown == body[:EXCERPT_BYTES] + b"\n" + note + body[-EXCERPT_BYTES:]  # the note on a line of its own


def test_characters_cut_by_the_caps_are_dropped_whole_never_mangled(tmp_path: Path) -> None:
    log = tmp_path / "3.log"
    body = ("€" * 20_000).encode()  # 3 bytes each: neither cap falls between characters
    log.write_bytes(body)
    found = read_excerpt(str(log))
    assert found is not None
    head, tail = found
    assert set(head) == {"€"} and set(tail) == {"€"}
    assert EXCERPT_BYTES - 3 < len(head.encode()) <= EXCERPT_BYTES and EXCERPT_BYTES - 3 < len(tail.encode()) <= EXCERPT_BYTES
    assert read_excerpt(str(tmp_path / "missing.log")) is None


# ---- the supervisor keeps it in the row, `cronplus output` prints it -------------------------

CRONTAB = "# cronplus: name=talk\n* * * * * seq 1 20000; echo done\n"  # 108,894 bytes
SEQ = "".join(f"{i}\n" for i in range(1, 20_001)).encode() + b"done\n"


def run_once(store: HistoryStore, tmp_path: Path) -> int:
    """One tick of `talk` through a real Scheduler and its local executor; its run_id."""
    async def main() -> int:
        clock = FakeClock(T0)
        sched = Scheduler(parse_crontab(CRONTAB, path=str(tmp_path / "crontab"), system=False), history=store,
                          alerting=None, log_dir=tmp_path / "logs", owner="test", clock=clock)
        clock.jump(30)
        sched.step(clock.time())
        while sched.runs:
            await asyncio.sleep(0.02)
        sched.store.close()
        (record,) = store.latest_runs("talk")
        assert record.status is RunStatus.SUCCESS
        return record.run_id

    return asyncio.run(main())


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[HistoryStore]:
    store = open_postgres(pg_url, host="host-a")
    yield store
    store.close()


def output(db: str, run_id: int, *args: str, host: str) -> tuple[int, bytes, bytes]:
    done = run_bytes(["output", "--db", db, str(run_id), *args], env=base_env(CRONPLUS_HOST_ID=host))
    return done.returncode, done.stdout, done.stderr


def test_another_host_prints_the_head_and_tail_kept_in_the_row_and_where_the_log_is(
        tmp_path: Path, pg_store: HistoryStore, pg_url: str) -> None:
    run_id = run_once(pg_store, tmp_path)
    log = tmp_path / "logs" / "talk" / f"{run_id}.log"
    assert log.read_bytes() == SEQ
    code, out, err = output(pg_url, run_id, host="host-b")
    note = f"[... {len(SEQ) - 2 * EXCERPT_BYTES} bytes not shown: the full log is on host-a at {log} ...]\n"
    assert (code, err) == (0, b"")
    head = SEQ[:EXCERPT_BYTES]
    assert out == head + (b"" if head.endswith(b"\n") else b"\n") + note.encode() + SEQ[-EXCERPT_BYTES:]
    code, out, _ = output(pg_url, run_id, "--tail", "2", host="host-b")
    assert (code, out) == (0, b"20000\ndone\n")
    code, out, _ = output(pg_url, run_id, host="host-a")  # on the host that ran it: the whole log
    assert (code, out) == (0, SEQ)


def test_the_host_that_ran_it_prints_the_kept_part_once_its_log_is_gone(
        tmp_path: Path, pg_store: HistoryStore, pg_url: str) -> None:
    run_id = run_once(pg_store, tmp_path)
    log = tmp_path / "logs" / "talk" / f"{run_id}.log"
    log.unlink()
    code, out, _ = output(pg_url, run_id, host="host-a")
    assert code == 0
    assert f"bytes not shown: the full log is on host-a at {log} (no longer there) ...]".encode() in out
    assert out.startswith(SEQ[:EXCERPT_BYTES]) and out.endswith(SEQ[-EXCERPT_BYTES:])


def test_a_sqlite_history_keeps_no_excerpt_the_log_is_on_its_one_host(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    history = History(db)
    try:
        run_id = run_once(history, tmp_path)
        assert history.output_excerpt(run_id) is None and not history.shared
    finally:
        history.close()
    code, out, _ = output(str(db), run_id, host="elsewhere")
    assert (code, out) == (0, SEQ)


def test_json_gives_the_head_the_tail_and_what_is_not_shown(tmp_path: Path, pg_store: HistoryStore, pg_url: str) -> None:
    import json

    run_id = run_once(pg_store, tmp_path)
    code, out, _ = output(pg_url, run_id, "--json", host="host-b")
    got = json.loads(out)
    assert code == 0
    assert (got["host"], got["path"], got["log_bytes"]) == ("host-a", str(tmp_path / "logs" / "talk" / f"{run_id}.log"),
                                                            len(SEQ))
    assert got["head"].encode() == SEQ[:EXCERPT_BYTES] and got["tail"].encode() == SEQ[-EXCERPT_BYTES:]
    assert got["bytes_not_shown"] == len(SEQ) - 2 * EXCERPT_BYTES


class ElsewhereSite:
    """The part of web/http.Site the output handler uses: a shared store's reader; the log is not here."""

    def __init__(self, url: str) -> None:
        self.reader = open_postgres(url, readonly=True)

    def history(self) -> HistoryStore:
        return self.reader

    def output(self, run_id: int, *, offset: int = 0, limit: int | None = None) -> bytes | None:
        return None  # RequestSite.output's answer for a run another host ran


def test_the_api_answers_another_hosts_run_with_the_kept_head_and_tail(
        tmp_path: Path, pg_store: HistoryStore, pg_url: str) -> None:
    from cronplus.web.api import get_output
    from cronplus.web.http import Request

    run_id = run_once(pg_store, tmp_path)
    site = ElsewhereSite(pg_url)
    try:
        reply = get_output(Request(method="GET", path=f"/api/v1/runs/{run_id}/output", query={}, headers={},
                                   params={"run_id": str(run_id)}),
                           site)  # type: ignore[arg-type]
    finally:
        site.reader.close()
    assert reply.status == 200 and reply.headers["X-Output-Excerpt"] == "head-tail"
    body = reply.body
    assert isinstance(body, bytes)
    assert body.startswith(SEQ[:EXCERPT_BYTES]) and body.endswith(SEQ[-EXCERPT_BYTES:])
    assert f"{len(SEQ) - 2 * EXCERPT_BYTES} bytes not shown: the full log is on host-a at ".encode() in body


def test_a_run_still_running_on_another_host_is_named_with_where_its_log_is(
        tmp_path: Path, pg_store: HistoryStore, pg_url: str) -> None:
    log = tmp_path / "elsewhere" / "7.log"  # on host-a's disk, not here
    run_id = pg_store.start_run(job="talk", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                                started_at=T0, log_path=str(log), owner="host-a:1:1")
    code, out, err = output(pg_url, run_id, host="host-b")
    assert (code, out) == (1, b"")
    assert err.decode().strip() == (f"cronplus output: the output of run {run_id} (talk) is on host-a at {log}: run"
                                    f" `cronplus output {run_id}` there (it is still running: its first and last 8 KiB"
                                    " are kept in history when it ends)")


def test_the_run_page_shows_the_kept_head_and_tail_of_another_hosts_run(
        tmp_path: Path, pg_store: HistoryStore, pg_url: str) -> None:
    from cronplus.web.pages.run import _output

    run_id = run_once(pg_store, tmp_path)
    record = pg_store.get_run(run_id)
    assert record is not None
    site = ElsewhereSite(pg_url)
    try:
        page = str(_output(site, record, running=False))  # type: ignore[arg-type]
    finally:
        site.reader.close()
    assert f"The full log is on host-a at {record.log_path}" in page
    assert "1\n2\n3\n" in page and "20000\ndone\n" in page
    assert f"[... {len(SEQ) - 2 * EXCERPT_BYTES} bytes not shown: the full log is on host-a at" in page
