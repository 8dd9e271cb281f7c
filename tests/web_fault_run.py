"""`cronplus run --http` with two faults a test injects by signal, to see /healthz answer 503:
SIGUSR1 blocks the event loop for 3 s (a stuck loop), SIGUSR2 cancels the scheduling task (a
loop that no longer schedules). /healthz waits 0.5 s for the loop instead of 5 s. The rest is the
real supervisor, as the command line builds it.

Usage: python -m tests.web_fault_run --crontab FILE --state-dir DIR run --http 127.0.0.1:0
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from cronplus import paths
from cronplus.cli import build_command_parser
from cronplus.service.daemon import Daemon, Settings, run_supervisor
from cronplus.web.mount import HttpService, parse_address

STUCK_S = 3.0


class FaultyHttp(HttpService):
    def start(self, daemon: Daemon) -> None:
        super().start(daemon)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, time.sleep, STUCK_S)
        loop.add_signal_handler(signal.SIGUSR2, self._cancel_scheduler, loop)

    @staticmethod
    def _cancel_scheduler(loop: asyncio.AbstractEventLoop) -> None:
        for task in asyncio.all_tasks(loop):
            if task.get_name() == "scheduler":
                task.cancel()


def main() -> int:
    parser, _ = build_command_parser("run")
    args = parser.parse_args([a for a in sys.argv[1:] if a != "run"])
    host, port = parse_address(args.http)
    http = FaultyHttp(host, port, health_timeout=0.5)
    return run_supervisor(Settings(paths=paths.from_args(args), shutdown_grace=args.shutdown_grace, http=http))


if __name__ == "__main__":
    sys.exit(main())
