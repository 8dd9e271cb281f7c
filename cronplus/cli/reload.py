"""`cronplus reload`: ask the running supervisor to reload its crontab now, and wait for the answer.

It is what the systemd units run as `ExecReload=`, so `systemctl reload cronplus` returns once the
reload is done and fails when the new file is refused (SIGHUP cannot tell its sender either).
The supervisor sends RELOADING=1 and READY=1 around the reload itself, before it answers.

- Applied: stdout `reloaded: N job(s)`, exit 0.
- Refused: the first errors (`FILE:LINE:COL: message`) on stderr, then one line saying the
  previous crontab stays in effect; exit 1.
- No supervisor on the state dir (nothing listens on its control socket), or none answering
  within ANSWER_TIMEOUT_S: one line saying so, exit 1.
"""

from __future__ import annotations

import argparse
import sys

HELP = "reload the running supervisor's crontab and wait: exit 1 when it refuses the file"

ANSWER_TIMEOUT_S = 60.0  # below systemd's default 90 s for ExecReload=; a 10,000-job parse takes ~1 s
SHOWN_ERRORS = 10  # the rest are in the supervisor's log and in `cronplus check`


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # only the global options (--state-dir finds the supervisor)


def run(args: argparse.Namespace) -> int:
    from cronplus import paths
    from cronplus.errors import CronplusError
    from cronplus.service import control

    where = paths.from_args(args)
    sock = where.control_socket
    try:
        reply = next(control.request(sock, {"cmd": "reload"}, timeout=ANSWER_TIMEOUT_S), None)
    except control.NoSupervisor:
        raise CronplusError(f"no supervisor is running on state dir {where.state_dir} (nothing listens on {sock}); "
                            "start one with `cronplus run` or `systemctl start cronplus`") from None
    except TimeoutError:
        raise CronplusError(f"the supervisor on {sock} did not answer within {ANSWER_TIMEOUT_S:g}s; "
                            "the reload may still happen (see its log)") from None
    except (OSError, ValueError) as exc:
        raise CronplusError(f"cannot talk to the supervisor on {sock}: {exc}") from None
    if reply is None:
        raise CronplusError(f"the supervisor on {sock} closed the connection without an answer")
    jobs = reply.get("jobs")
    if reply.get("ok"):
        print(f"reloaded: {jobs} job(s)")
        return 0
    lines = str(reply.get("error") or "refused").splitlines()
    for line in lines[:SHOWN_ERRORS]:
        print(line, file=sys.stderr)
    if len(lines) > SHOWN_ERRORS:
        print(f"... and {len(lines) - SHOWN_ERRORS} more (cronplus check shows them all)", file=sys.stderr)
    print(f"cronplus reload: refused; the supervisor keeps the previous crontab ({jobs} job(s))", file=sys.stderr)
    return 1
