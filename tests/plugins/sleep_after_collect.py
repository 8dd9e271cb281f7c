"""`--sleep-after-collect=SECONDS`: wait that long between collection and the first test.

It proves that no test depends on the wall-clock time at which it was collected (a "now"
computed at import or in a parametrize list goes stale by that much, as on a loaded machine):
    .venv/bin/python -m pytest -q -p tests.plugins.sleep_after_collect --sleep-after-collect=61
"""

from __future__ import annotations

import time

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--sleep-after-collect", type=float, default=0.0, metavar="SECONDS",
                     help="sleep this long after collection, before the first test runs")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    seconds: float = session.config.getoption("--sleep-after-collect")
    if seconds > 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"sleeping {seconds:g} s after collection")
        time.sleep(seconds)
