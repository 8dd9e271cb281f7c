"""Ticks missed before a job's first handled tick are recorded: a supervisor that ran a few
seconds (no tick of its minutely job yet), then was down two minutes, records those ticks
`missed` at its next start (ticks.LastTicks' baseline for a job first seen)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.test_faults_restart import Shifted

pytestmark = pytest.mark.e2e  # real supervisors and the real command


def test_ticks_missed_while_down_before_the_first_tick_are_recorded(shifted, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "crontab").write_text("# cronplus: name=minutely catch-up=none\n* * * * * true\n")
    # The first supervisor's clock reads 10 s into a minute: its first tick is 50 s away, it is
    # stopped long before. The second one's clock is 130 s later: two minutes went by unwatched
    # (a third tick would need 40 s between the starts).
    now = time.time()
    first_minute = (now // 60 + 5) * 60
    offset = first_minute + 10 - now
    sup = Shifted(tmp_path, offset, "--shutdown-grace", "0.2")
    shifted.append(sup)
    sup.wait_ready()
    time.sleep(1.0)
    assert sup.stop() == 0
    conn = sqlite3.connect(tmp_path / "state" / "history.db")
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0

    again = Shifted(tmp_path, offset + 130, "--shutdown-grace", "0.2")
    shifted.append(again)
    again.wait_ready()
    assert again.stop() == 0
    rows = conn.execute("SELECT job, status, trigger, scheduled_at FROM runs ORDER BY run_id").fetchall()
    ticks = [first_minute + 60, first_minute + 120]
    assert [(job, status, trigger) for job, status, trigger, _ in rows] == [("minutely", "missed", "schedule")] * 2
    assert [_epoch(r[3]) for r in rows] == ticks
    conn.close()


def _epoch(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value)).timestamp()
