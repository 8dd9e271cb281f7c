"""Nightly report from cronplus's own history: runs per job and status over the last day.

Reads the history database read-only with the stdlib sqlite3 (path from $CRONPLUS_HISTORY_DB,
default state/history.db), never writing to it, so it cannot disturb the supervisor. Writes
reports/<date>.txt and prints the same text (it lands in the run's log too)."""

from __future__ import annotations

import datetime
import os
import sqlite3
import time
from pathlib import Path

import mlcommon as ml

WINDOW_S = 24 * 3600


def summarize(db: Path, since: float) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT job, status, COUNT(*), MAX(started_at) FROM runs"
            " WHERE COALESCE(started_at, scheduled_at) >= ? AND final = 1"
            " GROUP BY job, status ORDER BY job, status",
            (since,),
        ).fetchall()
    finally:
        conn.close()
    lines = []
    for job, status, count, _last in rows:
        lines.append(f"{job:<12} {status:<16} {count}")
    return lines


def main() -> int:
    db = Path(os.environ.get("CRONPLUS_HISTORY_DB", "state/history.db"))
    now = time.time()
    day = datetime.date.today().isoformat()
    header = [f"cronplus example report for the 24h before {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}", ""]
    if not db.exists():
        body = [f"no history database at {db} yet"]
    else:
        body = [f"{'job':<12} {'status':<16} runs"] + (summarize(db, now - WINDOW_S) or ["(no finished runs)"])
    model = ml.read_json(ml.data_dir() / "model.json")
    body += ["", f"deployed model: {model['id']} (eval MSE {model['eval_mse']:.4f})" if model else "deployed model: none"]
    text = "\n".join(header + body) + "\n"
    ml.write_atomic(ml.data_dir() / "reports" / f"{day}.txt", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
