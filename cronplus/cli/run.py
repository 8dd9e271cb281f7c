"""`cronplus run`: the supervisor in the foreground (what systemd starts)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.service.serving import HttpServing

HELP = "run the supervisor in the foreground (what systemd starts)"


def _duration(text: str) -> float:
    from cronplus.crontab.annotations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    from cronplus.crontab.annotations import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("--shutdown-grace", type=_duration, default=30.0, metavar="DURATION",
                   help="on SIGTERM, let running jobs finish this long before stopping them (default 30s; "
                        "keep it below systemd's TimeoutStopSec)")
    p.add_argument("--max-age", type=_duration, default=None, metavar="DURATION",
                   help="retention: drop runs older than this (default 90d; 0 keeps all)")
    p.add_argument("--max-runs-per-job", type=int, default=None, metavar="N",
                   help="retention: keep at most N runs per job (default 10000; 0 keeps all)")
    p.add_argument("--max-log-size-total", type=_size, default=None, metavar="SIZE",
                   help="retention: total size of run logs (default 1G; 0 keeps all)")
    p.add_argument("--max-running", metavar="N", default=None,
                   help="run at most N jobs at once, all jobs together; the rest wait queued, first come first"
                        " served (env CRONPLUS_MAX_RUNNING; default no cap; pools: '# cronplus-pools:')")
    p.add_argument("--mailer", metavar="CMD", default=None,
                   help="send MAILTO mail with CMD (run by /bin/sh, message on stdin, recipients as \"$@\"),"
                        " as crond -m does (default /usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem"
                        " RECIPIENTS; smtp://HOST:PORT sends to that SMTP relay; env CRONPLUS_MAILER)")
    p.add_argument("--http", metavar="HOST:PORT", default=None,
                   help="serve the web pages, the HTTP API and /metrics there (env CRONPLUS_HTTP; off by default;"
                        " port 0 picks a free port, written to <state>/http.address)")
    p.add_argument("--host-id", metavar="ID", default=None,
                   help="this supervisor's name in a cluster (runs' host, run-on=HOST; env CRONPLUS_HOST_ID;"
                        " default the host name)")
    p.add_argument("--lease", metavar="DURATION", default=None,
                   help="with a shared --db (PostgreSQL): a supervisor silent this long has its running runs"
                        " taken over by the others; it heart-beats every quarter of it (env CRONPLUS_LEASE;"
                        " default 60s)")
    p.add_argument("--broker", metavar="URL", default=None,
                   help="Celery broker for queue= jobs, redis://HOST:6379/0 (env CRONPLUS_BROKER; docs/workers.md)")
    p.add_argument("--http-token-file", metavar="FILE", default=None,
                   help="the token that actions need (default <state>/http.token, made at first start);"
                        " required to serve a non-loopback address (env CRONPLUS_HTTP_TOKEN_FILE)")


def _limit(value: float | None, default: float) -> float | None:
    if value is None:
        return default
    return None if value == 0 else value


def _http(args: argparse.Namespace) -> HttpServing:
    """The server of `--http` (or CRONPLUS_HTTP); serving.NO_HTTP, and nothing of cronplus.web
    imported, when neither is given."""
    from cronplus import paths
    from cronplus.errors import UsageError
    from cronplus.service.serving import NO_HTTP

    env = paths.environ_of(args)
    address = args.http or env.get("CRONPLUS_HTTP") or None
    token_file = args.http_token_file or env.get("CRONPLUS_HTTP_TOKEN_FILE") or None
    if address is None:
        if args.http_token_file:
            raise UsageError("--http-token-file needs --http HOST:PORT")
        return NO_HTTP
    from cronplus.web.auth import address_problem
    from cronplus.web.mount import HttpService, parse_address

    host, port = parse_address(address)
    problem = address_problem(host, token_file)
    if problem:
        raise UsageError(problem)
    return HttpService(host, port, token_file=token_file)


def _given(args: argparse.Namespace, attr: str, env: str) -> tuple[str | None, str]:
    """An option's value, else its environment variable's (empty: unset), with the name to
    quote in an error: (value or None, "--option" or "ENV")."""
    from cronplus import paths

    if (value := getattr(args, attr)) is not None:
        return value, "--" + attr.replace("_", "-")
    return paths.environ_of(args).get(env) or None, env


def _max_running(args: argparse.Namespace) -> int | None:
    """--max-running N, else $CRONPLUS_MAX_RUNNING: a whole number >= 1 (one line naming it otherwise)."""
    from cronplus.errors import UsageError

    given, where = _given(args, "max_running", "CRONPLUS_MAX_RUNNING")
    if given is None:
        return None
    if not (given.isascii() and given.isdigit() and 1 <= int(given) <= 1_000_000):
        raise UsageError(f"{where}: '{given[:40]}' is not a whole number of runs 1-1000000")
    return int(given)


def run(args: argparse.Namespace) -> int:
    from cronplus import paths
    from cronplus.service.daemon import Settings, run_supervisor
    from cronplus.store import history

    max_runs = _limit(args.max_runs_per_job, history.DEFAULT_MAX_RUNS_PER_JOB)
    max_log = _limit(args.max_log_size_total, history.DEFAULT_MAX_LOG_BYTES)
    settings = Settings(
        paths=paths.from_args(args),
        shutdown_grace=args.shutdown_grace,
        max_age_s=_limit(args.max_age, history.DEFAULT_MAX_AGE_S),
        max_runs_per_job=int(max_runs) if max_runs is not None else None,
        max_log_bytes=int(max_log) if max_log is not None else None,
        mailer=args.mailer,
        http=_http(args),
        max_running=_max_running(args),
        host_id=_host_id(args),
        lease_s=_lease(args),
        broker=_given(args, "broker", "CRONPLUS_BROKER")[0],
    )
    return run_supervisor(settings)


def _lease(args: argparse.Namespace) -> float:
    """--lease DURATION, else $CRONPLUS_LEASE, else 60s: at least 1s (one line naming it otherwise)."""
    from cronplus.crontab.annotations import parse_duration
    from cronplus.errors import UsageError

    given, where = _given(args, "lease", "CRONPLUS_LEASE")
    if given is None:
        return 60.0
    try:
        seconds = parse_duration(given)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if seconds < 1:
        raise UsageError(f"{where}: {given[:40]!r} is shorter than 1s (the heartbeat runs every quarter of it)")
    return seconds


def _host_id(args: argparse.Namespace) -> str | None:
    """--host-id, else $CRONPLUS_HOST_ID: printable, no whitespace, at most 200 characters."""
    from cronplus.errors import UsageError

    given, where = _given(args, "host_id", "CRONPLUS_HOST_ID")
    if given is None:
        return None
    if not given.isprintable() or any(c.isspace() for c in given) or len(given) > 200:
        raise UsageError(f"{where}: {given[:40]!r} is not a host id (printable, no spaces, at most 200 characters)")
    return str(given)
