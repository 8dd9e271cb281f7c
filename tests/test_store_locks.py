"""Opening the history database again in the same process (the delivery worker's outbox, the web
server's readers, a second writer) must leave the POSIX locks the first connection holds alone:
closing any descriptor of a file drops every POSIX lock the process has on it (fcntl(2)). A
connect that opened and closed the database file itself to make it 0600 did that, and the
supervisor's readers in other processes then read a stale database (runs seen `running` forever)."""

from __future__ import annotations

import os
from pathlib import Path

from cronplus.store.open import open_outbox, open_reader, open_writer
from tests.test_store_offloop import starts


def file_locks(path: Path) -> list[tuple[str, ...]]:
    """This process's POSIX locks on `path`: kind, mode and range of each, from /proc/locks."""
    st = path.stat()
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as locks:
        fields = [line.split()[1:] for line in locks if "->" not in line.split()[1]]
    return sorted(tuple(f) for f in fields if f[3] == str(os.getpid()) and f[4] == where)


def test_opening_the_database_again_keeps_the_first_connections_locks(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    writer = open_writer(db)
    try:
        writer.start_runs(starts(3))
        files = (db, tmp_path / "history.db-shm")
        held = [file_locks(f) for f in files]
        assert all(held)  # SQLite's shared lock on the database and its read lock on the wal-index
        for opener in (lambda: open_outbox(db), lambda: open_reader(db), lambda: open_writer(db)):
            other = opener()
            other.close()
            assert [file_locks(f) for f in files] == held
    finally:
        writer.close()
    assert oct(db.stat().st_mode & 0o777) == "0o600"


def test_an_in_memory_history_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    from cronplus.store.history import History

    monkeypatch.chdir(tmp_path)
    History(":memory:").close()
    assert list(tmp_path.iterdir()) == []
