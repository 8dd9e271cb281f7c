"""What keeps the supervisor's loop off the disk at a tick (store/history.py, store/checkpoint.py):
a transaction that writes nothing takes no lock; the writer store.open gives the supervisor
never checkpoints in its commits, a thread of its own does."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from cronplus.status import Trigger
from cronplus.store.checkpoint import COMMITS
from cronplus.store.history import History, RunStart
from cronplus.store.open import open_outbox, open_writer

T0 = 1_750_000_000.0


def starts(n: int, tick: float = T0) -> list[RunStart]:
    return [RunStart(job=f"job-{i}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=tick, tz=None,
                     started_at=tick, log_path=f"/var/log/cronplus/job-{i}/{i}.log", owner="sup") for i in range(n)]


def test_a_transaction_that_writes_nothing_never_waits_for_another_writer(tmp_path: Path) -> None:
    """A run's start with no ping to send is a transaction with no write: while the delivery
    worker holds the write lock it used to wait the busy timeout (10 s), then fail."""
    writer = History(tmp_path / "history.db")
    box = open_outbox(tmp_path / "history.db")
    row = writer.enqueue_outbox(kind="alert", event="failure", job="j", run_id=None, target="http://x/",
                                format="json", secret_ref=None, payload={}, now=T0)
    try:
        with box.batch():  # the worker's transaction: it holds the write lock
            box.mark_retry(row, next_attempt_at=T0 + 60, error="HTTP 503", http_status=503)
            called = []
            with writer.transaction():
                writer.after_commit(lambda: called.append(1))
                assert writer.get_run(1) is None  # reads need no lock either
            assert called == [1]
    finally:
        box.close()
        writer.close()


def test_a_transaction_begins_at_its_first_write_and_keeps_all_or_nothing(tmp_path: Path) -> None:
    writer = History(tmp_path / "history.db")
    try:
        called = []
        try:
            with writer.transaction():
                writer.after_commit(lambda: called.append("committed"))
                run_id = writer.start_runs(starts(1))[0]
                writer.kv_set("k", "v")
                raise RuntimeError("the alert decision failed")
        except RuntimeError:
            pass
        assert writer.get_run(run_id) is None and writer.kv_get("k") is None and called == []
        with writer.transaction():
            writer.kv_set("k", "v")
            with writer.transaction():  # nested: a savepoint in the begun transaction
                writer.kv_set("k2", "v2")
        assert (writer.kv_get("k"), writer.kv_get("k2")) == ("v", "v2")
    finally:
        writer.close()


def test_the_supervisors_writer_leaves_checkpoints_to_a_thread_of_its_own(tmp_path: Path) -> None:
    writer = open_writer(tmp_path / "history.db")
    assert isinstance(writer, History) and writer.checkpointer is not None
    try:
        # a commit never checkpoints: SQLite's own (wal_autocheckpoint) is off on this connection
        assert writer.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        db_size = (tmp_path / "history.db").stat().st_size
        tick = T0
        deadline = time.monotonic() + 60
        # Until a checkpoint has run and the log's pages reached the database: a PASSIVE one copies
        # what it can without waiting, so under load a first one may copy nothing (it did once, in
        # CI); the next ones, while the writer goes on, copy the rest.
        while ((writer.checkpointer.checkpoints == 0 or (tmp_path / "history.db").stat().st_size <= db_size)
               and time.monotonic() < deadline):
            tick += 60
            writer.start_runs(starts(10, tick))  # a chunk of a tick's rows
        assert writer.checkpointer.checkpoints >= 1
        assert (tmp_path / "history.db").stat().st_size > db_size  # the log's pages reached the database
        threads = {t.name for t in threading.enumerate()}
        assert "cronplus-checkpoint" in threads
    finally:
        writer.close()
    assert "cronplus-checkpoint" not in {t.name for t in threading.enumerate()}
    conn = sqlite3.connect(tmp_path / "history.db")
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] >= 10 * COMMITS
    conn.close()


def shm_locks(db: Path) -> list[tuple[str, ...]]:
    """This process's POSIX locks on the database's -shm file, from /proc/locks: kind, mode and
    range of each (not the line's leading ordinal, which other processes' locks shift)."""
    st = (db.parent / f"{db.name}-shm").stat()
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as locks:
        fields = [line.split()[1:] for line in locks if "->" not in line.split()[1]]
    return sorted(tuple(f) for f in fields if f[3] == str(os.getpid()) and f[4] == where)


def test_the_checkpointer_leaves_sqlites_locks_on_the_shared_memory_file_alone(tmp_path: Path) -> None:
    """SQLite holds a POSIX read lock on the -shm file while it uses it; closing any descriptor
    of that file drops it (fcntl(2)). Without it, the next process to open the database takes the
    wal-index for unused and resets it under the supervisor (seen: the supervisor died of SIGBUS
    at a tick); a checkpointer that read the log's size from the -shm file did that."""
    db = tmp_path / "history.db"
    writer = open_writer(db)
    assert isinstance(writer, History) and writer.checkpointer is not None
    try:
        held = shm_locks(db)
        assert held  # SQLite's own, taken when it opened the wal-index
        tick = T0
        deadline = time.monotonic() + 60
        while writer.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            tick += 60
            writer.start_runs(starts(5, tick))
        assert writer.checkpointer.checkpoints >= 1
        assert shm_locks(db) == held
    finally:
        writer.close()
