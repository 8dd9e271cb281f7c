"""`cronplus worker --queue NAME [--concurrency N] --broker URL --db URL`: carry out the attempts
of `queue=NAME` jobs that supervisors send through the broker (service/worker.py; docs/workers.md).
Each of --queue, --broker, --db may come from the environment instead (CRONPLUS_QUEUE, a comma
list; CRONPLUS_BROKER; CRONPLUS_DB), as the systemd unit's environment file gives them."""

from __future__ import annotations

import argparse

HELP = "run attempts of queue= jobs sent by supervisors (a Celery worker; docs/workers.md)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("--queue", metavar="NAME", action="append", default=[],
                   help="the queue to consume (queue=NAME in the crontab); repeat for several"
                        " (env CRONPLUS_QUEUE, a comma list: the systemd unit's environment file)")
    p.add_argument("--concurrency", metavar="N", type=int, default=4, help="attempts at once (default 4)")
    p.add_argument("--broker", metavar="URL", default=None,
                   help="the supervisors' broker, redis://HOST:6379/0 (env CRONPLUS_BROKER)")
    p.add_argument("--host-id", metavar="ID", default=None,
                   help="this worker's name in runs' host column (env CRONPLUS_HOST_ID; default the host name)")
    p.add_argument("--heartbeat", metavar="SECONDS", type=float, default=10.0,
                   help="how often the worker says it is alive; silent for 3 of them, its attempts are"
                        " recorded interrupted (default 10)")


def run(args: argparse.Namespace) -> int:
    from cronplus import paths
    from cronplus.cli.run import _host_id
    from cronplus.errors import UsageError
    from cronplus.service.worker import WorkerSettings, run_worker

    env = paths.environ_of(args)
    broker = args.broker or env.get("CRONPLUS_BROKER")
    if not broker:
        raise UsageError("cronplus worker needs --broker redis://HOST:6379/0 (or CRONPLUS_BROKER)")
    if not broker.startswith(("redis://", "rediss://", "redis+socket://")):
        from cronplus.redact import redact_url

        raise UsageError(f"--broker {redact_url(broker)}: use a Redis URL, redis://HOST:6379/0")
    if not 1 <= args.concurrency <= 1000:
        raise UsageError(f"--concurrency {args.concurrency}: use 1-1000")
    if not args.heartbeat > 0:
        raise UsageError("--heartbeat must be more than 0 seconds")
    import importlib.util

    if importlib.util.find_spec("celery") is None:
        raise UsageError("cronplus worker needs cronplus[celery]: pip install 'cronplus[celery]'")
    queues = tuple(q for given in args.queue or [env.get("CRONPLUS_QUEUE", "")] for q in given.split(",") if q)
    if not queues:
        raise UsageError("cronplus worker needs --queue NAME (or CRONPLUS_QUEUE)")
    settings = WorkerSettings(paths=paths.from_args(args), queues=queues, broker=broker,
                              concurrency=args.concurrency, host_id=_host_id(args), heartbeat_s=args.heartbeat)
    return run_worker(settings)
