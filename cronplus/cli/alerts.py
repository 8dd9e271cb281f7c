"""`cronplus alerts [--json] [--status S] [-n N]` and `cronplus alerts --test JOB`.

The table lists outbox rows (alerts, pings and mail), oldest first: id, created, job, event,
target (redacted: scheme and host only, or the `env:VAR` name; mail shows `mailto:ADDRESSES`),
format, status, attempts, the next attempt (pending) or delivery time, and the last error (stored
redacted). On a terminal it fits the width (cli/fit.py); `--wide` or a pipe: every column in
full. `--json` prints one object per line with the same fields (times ISO 8601), plus `run`: the
run the alert is about, in the shape of `cronplus log --json` (history.run_json), or null (a test
alert, a pruned run).

`--test JOB` loads the crontab, enqueues a `test` alert to that job's `alert=` target and sends
it right away, synchronously: prints `delivered` (exit 0) or `failed: <redacted reason>` (exit
1). A test alert that failed is marked failed, so the supervisor does not retry it later.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cronplus.errors import CronplusError, UsageError

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.store.outbox import OutboxRow

HELP = "alert deliveries: pending, delivered, failed; send a test alert"
HEADERS = ("ID", "CREATED", "JOB", "EVENT", "TARGET", "FORMAT", "STATUS", "ATTEMPTS", "NEXT/DELIVERED", "LAST ERROR")
# On a narrow terminal (cli/fit.py): the error, target and job are shortened, then format,
# attempts, creation time, target and next/delivered time go, in that order.
DROP = {"FORMAT": 1, "ATTEMPTS": 2, "CREATED": 3, "TARGET": 4, "NEXT/DELIVERED": 5}
FLEX = {"JOB": 10, "TARGET": 16, "LAST ERROR": 16}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("--json", action="store_true", help="one JSON object per delivery, one a line")
    p.add_argument("--status", choices=("pending", "delivered", "failed"), help="only deliveries in this state")
    p.add_argument("-n", "--lines", type=int, default=20, metavar="N", help="the newest N deliveries (default 20; 0 = all)")
    p.add_argument("--test", metavar="JOB", help="send a test alert to JOB's alert target now")
    p.add_argument("--wide", action="store_true", help="every column in full, however wide the terminal")


def run(args: argparse.Namespace) -> int:
    from cronplus import paths as paths_mod

    paths = paths_mod.from_args(args)
    if args.test:
        return _send_test(paths, args.test, paths_mod.environ_of(args))
    if args.lines < 0:
        raise UsageError("-n/--lines takes a number >= 0")
    return _list(paths, status=args.status, limit=args.lines or None, as_json=args.json, wide=args.wide)


def _list(paths: Any, *, status: str | None, limit: int | None, as_json: bool, wide: bool = False) -> int:
    from contextlib import closing

    from cronplus.store.open import exists, open_outbox, open_reader, sqlite_path
    from cronplus.store.readhistory import NoHistoryError, run_json
    from cronplus.store.schema import StoreError

    if not exists(paths.db):
        print("no alert deliveries yet", file=sys.stderr)
        return 0
    try:
        with closing(open_outbox(paths.db, readonly=True)) as box:
            rows = box.list_rows(status=status, limit=limit)
        runs: dict[int, RunRecord] = {}
        ids = sorted({row.run_id for row in rows if row.run_id is not None})
        if as_json and ids:
            with closing(open_reader(paths.db)) as reader:
                for start in range(0, len(ids), 500):  # SQLite caps the ? of one statement
                    runs.update((r.run_id, r) for r in reader.runs_by_id(ids[start:start + 500]))
    except NoHistoryError:
        print("no alert deliveries yet", file=sys.stderr)
        return 0
    except StoreError as exc:
        from cronplus.store.schema import db_problem

        raise CronplusError(db_problem(sqlite_path(paths.db) or paths.db_path, exc)) from exc
    if as_json:
        for row in rows:
            record = runs.get(row.run_id) if row.run_id is not None else None
            obj = row_to_json(row)
            obj["run"] = run_json(record) if record is not None else None
            print(json.dumps(obj, ensure_ascii=False))
        return 0
    if not rows:
        print("no alert deliveries" + (f" with status {status}" if status else ""), file=sys.stderr)
        return 0
    from cronplus.cli.fit import Column, table, terminal_width

    columns = [Column(h, drop=DROP.get(h, 0), flex=FLEX.get(h, 0)) for h in HEADERS]
    print(table(columns, [_table_row(r) for r in rows], width=terminal_width(wide=wide), tablefmt="simple"))
    return 0


def _event(row: OutboxRow) -> str:
    return f"{row.kind} {row.event}" if row.kind in ("ping", "mail") else row.event


def _target(row: OutboxRow) -> str:
    """Webhook and ping URLs carry tokens (redacted); mail addresses are shown."""
    from cronplus.redact import redact_url

    return row.target if row.kind == "mail" else redact_url(row.target)


def row_to_json(row: OutboxRow) -> dict[str, Any]:
    from cronplus.alerts.payloads import iso

    return {
        "id": row.id,
        "created_at": iso(row.created_at),
        "kind": row.kind,
        "job": row.job,
        "event": row.event,
        "run_id": row.run_id,
        "target": _target(row),
        "format": "ping" if row.kind == "ping" else row.format,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "delivered_at": iso(row.delivered_at),
        "http_status": row.http_status,
        "last_error": row.last_error,
    }


def _table_row(row: OutboxRow) -> list[str]:
    from cronplus.humanize import local_time

    when = local_time(row.next_attempt_at) if row.status == "pending" else local_time(row.delivered_at)
    return [
        str(row.id),
        local_time(row.created_at),
        row.job or "-",
        _event(row),
        _target(row),
        "ping" if row.kind == "ping" else row.format,
        row.status,
        str(row.attempts),
        when,
        row.last_error or "",  # shortened only to fit a terminal (cli/fit.py)
    ]


def _send_test(paths: Any, name: str, env: Mapping[str, str]) -> int:
    from cronplus.alerts.alerting import enqueue_alert, test_alert_data
    from cronplus.alerts.delivery import deliver_now
    from cronplus.clock import SystemClock
    from cronplus.crontab.parser import load_crontab
    from cronplus.redact import redact_url
    from cronplus.store.open import open_outbox, open_writer

    crontab = load_crontab(paths.crontab, system=paths.system)
    job = crontab.job(name)
    if job is None:
        import difflib

        close = difflib.get_close_matches(name, [j.name for j in crontab.jobs], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise CronplusError(f"no job named '{name}' in {paths.crontab}{hint}")
    if not job.options.alert:
        raise CronplusError(f"job '{name}' has no alert= target (set alert=URL or alert=env:VAR)")
    now = SystemClock().time()
    paths.ensure()  # the test alert's row is written to the state directory
    store = open_writer(paths.db)
    try:
        row_id = enqueue_alert(store, job.options, test_alert_data(job, host=socket.gethostname()), now=now)
    finally:
        store.close()
    assert row_id is not None
    box = open_outbox(paths.db)  # the delivery side, as the supervisor's worker has it
    try:
        row = deliver_now(box, row_id, env=env)
        assert row is not None
        target = job.options.alert if row.kind == "mail" else redact_url(job.options.alert)
        if row.status == "delivered":
            how = "mailer exit 0" if row.kind == "mail" else f"HTTP {row.http_status}"
            print(f"test alert {row_id} to {target} ({row.format}): delivered ({how})")
            return 0
        if row.status == "pending":  # a transient failure: a test should not linger in the queue
            box.mark_failed(row_id, error=f"{row.last_error}", http_status=row.http_status,
                           count_attempt=False)
        print(f"test alert {row_id} to {target} ({row.format}): failed: {row.last_error}", file=sys.stderr)
        return 1
    finally:
        box.close()
