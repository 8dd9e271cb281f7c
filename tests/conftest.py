"""Fixtures shared by the test modules: a state dir in tmp_path, a History writer on it, the
real supervisors a test starts (killed at the end), and the session's own temp dir.

Order: a test must leave the process as it found it, or the tests after it would depend on
it; `process_state` fails a test that changes the environment, the working directory, signal
handlers or the logging setup and does not put them back.

Temp files: for the whole session $TMPDIR (which every child inherits, and tempfile follows)
is a directory of the session's own, so nothing a test or a command under test makes lands in
the real /tmp. Everything a test puts there must be gone when the session ends: what is left is
a leak (a command that does not clean up, or a test that should have used tmp_path), and fails
the session.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cronplus.store.history import History

if TYPE_CHECKING:
    from tests.pgserver import PgServer
    from tests.redisserver import RedisServer
    from tests.test_daemon import Supervisor


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def history(state: Path) -> Iterator[History]:
    h = History(state / "history.db")
    yield h
    h.close()


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    """Real `cronplus run` processes a test started; any still alive at the end is killed."""
    started: list[Supervisor] = []
    yield started
    for sup in started:
        if sup.proc.poll() is None:
            sup.proc.kill()
            sup.proc.wait()


@pytest.fixture(scope="session", autouse=True)
def session_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$TMPDIR for the session: children inherit it, and this process's tempfile uses it. No
    runtime directory of the developer's session either (rundir.py would put the supervisors'
    $CRONPLUS_OUTPUT files there): a test that wants one sets it."""
    tmpdir = tmp_path_factory.mktemp("TMPDIR")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmpdir))
        mp.delenv("RUNTIME_DIRECTORY", raising=False)
        mp.delenv("XDG_RUNTIME_DIR", raising=False)
        mp.setattr(tempfile, "tempdir", str(tmpdir))
        yield tmpdir
        left = sorted(p.name for p in tmpdir.iterdir())
    if left:
        pytest.fail(f"the tests left {left} in $TMPDIR ({tmpdir}): each would have stayed in /tmp", pytrace=False)



def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The random order's seed even under -q (pytest-randomly prints it only in the header), so
    an order-dependent failure can be replayed with --randomly-seed=SEED."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"test order: --randomly-seed={seed}")


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGALRM)


def _process_state() -> dict[str, Any]:
    def logger_state(name: str | None) -> tuple[Any, ...]:
        logger = logging.getLogger(name)
        # pytest's own capture handlers come and go with each phase of a test
        ours = tuple(h for h in logger.handlers if not type(h).__module__.startswith("_pytest"))
        return (ours, logger.level, logger.propagate, logger.disabled)

    return {
        "os.environ": {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
        "cwd": os.getcwd(),
        "signal handlers": {sig.name: _handler(sig) for sig in _SIGNALS},
        "root logger": logger_state(None),
        '"cronplus" logger': logger_state("cronplus"),
        "tempfile.tempdir": tempfile.tempdir,
        "umask": _umask(),
    }


def _handler(sig: signal.Signals) -> Any:
    """The handler of `sig`; pytest-timeout's own SIGALRM timer counts as the default (it takes
    it off when a test fails, before this guard looks again)."""
    handler = signal.getsignal(sig)
    return signal.SIG_DFL if getattr(handler, "__module__", "") == "pytest_timeout" else handler


def _umask() -> str:
    """The process's umask, read without setting it (os.umask would, for every thread)."""
    with open("/proc/self/status") as f:
        return next((line.split()[1] for line in f if line.startswith("Umask:")), "?")


@pytest.fixture(autouse=True)
def process_state() -> Iterator[None]:
    """Fails a test that leaves process-wide state changed (what monkeypatch undoes is fine:
    it is undone before this check)."""
    before = _process_state()
    yield
    after = _process_state()
    changed = [key for key in before if before[key] != after[key]]
    if changed:
        details = "; ".join(f"{key}: {_diff(before[key], after[key])}" for key in changed)
        pytest.fail(f"the test left process-wide state changed (later tests would depend on it): {details}",
                    pytrace=False)


def _diff(before: Any, after: Any) -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in keys)
    return f"{before!r} -> {after!r}"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """The session's one PostgreSQL server (tests/pgserver.py), started by the first test that
    wants it and stopped at the end; locally a skip when its binaries are missing, in CI a failure."""
    from tests.pgserver import start_server

    server = start_server(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A URL (with the role's password) to an empty schema of this test's own, dropped after it."""
    schema = pg_server.new_schema()
    yield pg_server.url(schema=schema)
    pg_server.drop_schema(schema)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's one Redis server (tests/redisserver.py), the Celery broker of queue= tests;
    locally a skip without redis-server, in CI a failure."""
    from tests.redisserver import start_server

    server = start_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A broker URL to a database of this test's own, flushed."""
    return redis_server.fresh_url()


class Lines(logging.Handler):
    """The "cronplus" logger's lines, for the `lines` fixture (set up on the logger itself: caplog
    would depend on whether an earlier test in this process made the logger stop propagating)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("cronplus")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def shifted() -> Iterator[list[Any]]:
    """Supervisors started on a shifted clock (tests/test_faults_restart.py `Shifted`), killed
    at the end of the test if still running."""
    started: list[Any] = []
    yield started
    for sup in started:
        if sup.proc.poll() is None:
            sup.proc.kill()
            sup.proc.wait()
