"""`cronplus why JOB [--at TIME] [--json]`: why the job did or did not run at a time (default:
its last expected tick), in plain sentences with the evidence: the first line is the verdict,
the rest adds to it. engine/explain.py reasons; this module only gathers what it needs (the
crontab, a read-only history, now, the crontab file's modification time, the passwd database in
system mode, the runs a running supervisor holds without a row yet: its control socket's
`status`) and prints.

`--json`: one object, `{job, at, tick, verdict, findings: [{verdict, sentence, ...evidence}]}`
(engine/findings.py: times ISO 8601 with offset, runs in `log --json`'s shape).

Exit status 0 whatever the verdict (the question was answered); 1 for an unknown job or an
unreadable crontab or history; 2 for a bad --at. No history yet is an empty history.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from cronplus.engine.explain import Held
    from cronplus.store.api import RunReader

HELP = "why a job did or did not run at a time (default: its last expected tick)"
STATUS_TIMEOUT_S = 4.0  # as `jobs`: a supervisor answers within 1 s even during a big tick


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("job", metavar="JOB", help="the job's name")
    p.add_argument("--at", metavar="TIME",
                   help="the time to explain: ISO 8601 (without an offset: wall time in the job's zone), "
                        "or '-2h', 'yesterday', '@UNIX' (default: the job's last expected tick)")
    p.add_argument("--json", action="store_true", help="one JSON object: verdict and findings with their evidence")


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from datetime import UTC, datetime

    from cronplus.cli.attime import load_job, parse_at
    from cronplus.engine.explain import World, explain

    crontab, job, where = load_job(args)
    now = time.time()
    at, wall = parse_at(args.at, job.tz, now=now) if args.at else (None, None)
    world = World(now=datetime.fromtimestamp(now, UTC), crontab_mtime=_mtime(crontab.path), system=crontab.system,
                  user_exists=_user_exists, held=_held(where.control_socket))
    reader = _open(where.db)
    try:
        answer = explain(job, reader, world, at=at, wall=wall)
    finally:
        reader.close()
    if args.json:
        print(json.dumps(answer.to_json()))
    else:
        print(f"{job.name}: {answer.verdict}")
        for sentence in answer.sentences():
            print(f"  {sentence}")
    return 0


def _open(db: str | os.PathLike[str]) -> RunReader:
    """The history, read-only; an empty one when the supervisor never ran (nothing to read):
    the answers then say no supervisor ran."""
    from cronplus.store.open import empty_reader, open_reader
    from cronplus.store.readhistory import NoHistoryError

    try:
        return open_reader(db)
    except NoHistoryError as exc:
        print(f"cronplus why: {exc}", file=sys.stderr)
        return empty_reader()


def _held(sock_path: Path) -> tuple[Held, ...] | None:
    """The runs the state dir's running supervisor holds without a row (waiting, queued,
    delayed), from its control socket's `status`; None when no supervisor answers."""
    if not sock_path.exists():
        return None
    from datetime import datetime

    from cronplus.engine.explain import Held
    from cronplus.service.control import NoSupervisor, request

    try:
        reply = next(request(sock_path, {"cmd": "status"}, timeout=STATUS_TIMEOUT_S), {})
    except (NoSupervisor, TimeoutError, OSError, ValueError):
        return None  # history alone still answers
    held = []
    for run in reply.get("runs", []) if isinstance(reply, dict) else []:
        try:
            pool, ahead = run.get("pool"), run.get("ahead")  # queued for a slot (engine/pools.py)
            held.append(Held(job=str(run["job"]), tick=datetime.fromisoformat(run["scheduled_at"]), state=str(run["state"]),
                             pool=pool if isinstance(pool, str) else None, ahead=ahead if isinstance(ahead, int) else None))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(held)


def _mtime(path: str) -> datetime | None:
    import os
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        return None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
