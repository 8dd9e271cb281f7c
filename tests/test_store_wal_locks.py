"""A second connection the supervisor opens on its history (the outbox's) must not drop the
first one's SQLite locks: another process closing its connection would then delete the WAL the
supervisor still writes to, and every later commit would be invisible to readers (cronplus log,
jobs): a cross-process check of schema._connect's O_EXCL creation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cronplus.store.schema import connect

READ = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT count(*) FROM kv').fetchone()[0]); c.close()"


def other_process_count(db: Path) -> int:
    done = subprocess.run([sys.executable, "-c", READ, str(db)], capture_output=True, text=True, check=True, timeout=30)
    return int(done.stdout)


def test_commits_after_a_second_connection_stay_visible_to_other_processes(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    first = connect(db)
    first.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
    second = connect(db)  # as the supervisor's delivery worker opens the outbox
    try:
        assert other_process_count(db) == 1  # its close must not checkpoint and delete the WAL
        first.execute("INSERT INTO kv (key, value) VALUES ('b', '2')")
        assert other_process_count(db) == 2
    finally:
        second.close()
        first.close()
