"""setup_logging: journald mode (priority prefixes, no timestamps) when the stream's dev:inode is
$JOURNAL_STREAM, plain timestamped lines otherwise; real files stand in for the journal's socket."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.service.systemd import NOTICE, is_journal_stream, setup_logging, syslog_priority


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    """setup_logging changes the process-wide "cronplus" logger and adds a handler to the root
    logger; put both back for other tests (caplog needs propagation to the root logger, and a
    root handler left on a closed test file would get every later library warning)."""
    logger = logging.getLogger("cronplus")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    root_handlers = list(logging.getLogger().handlers)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
    logging.getLogger().handlers[:] = root_handlers


def journal_id(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def log_all_levels(logger: logging.Logger) -> None:
    logger.debug("d")
    logger.info("loaded 3 jobs")
    logger.log(NOTICE, "n")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")


def test_journal_mode_prefixes_each_line_with_its_syslog_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stderr"
    with open(out, "w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", journal_id(out))
        logger = setup_logging(stream, level=logging.DEBUG)
        log_all_levels(logger)
    assert out.read_text().splitlines() == ["<7>d", "<6>loaded 3 jobs", "<5>n", "<4>w", "<3>e", "<2>c"]


def test_plain_mode_has_a_timestamp_and_level_name_when_journal_stream_names_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.write_text("")
    out = tmp_path / "stderr"
    with open(out, "w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", journal_id(other))
        setup_logging(stream).info("loaded 3 jobs")
    (line,) = out.read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO loaded 3 jobs", line), line


def test_plain_mode_without_journal_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    buffer = io.StringIO()
    setup_logging(buffer).warning("crontab invalid, keeping the old one")
    assert buffer.getvalue().endswith(" WARNING crontab invalid, keeping the old one\n")
    assert not buffer.getvalue().startswith("<")


def test_a_traceback_stays_on_one_line_with_one_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "stderr"
    with open(out, "w") as stream:
        monkeypatch.setenv("JOURNAL_STREAM", journal_id(out))
        logger = setup_logging(stream)
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            logger.exception("reload failed\nsecond line")
    (line,) = out.read_text().splitlines()
    assert line.startswith("<3>reload failed | second line | Traceback (most recent call last):")
    assert line.endswith("ZeroDivisionError: division by zero")


def test_calling_setup_twice_does_not_duplicate_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    first, second = io.StringIO(), io.StringIO()
    setup_logging(first)
    logger = setup_logging(second)
    logger.info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    ours = [h for h in logger.handlers if type(h) is logging.StreamHandler]  # pytest may add capture handlers
    assert len(ours) == 1


def test_child_loggers_reach_the_handler_and_the_root_logger_gets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    buffer, root_buffer = io.StringIO(), io.StringIO()
    root_handler = logging.StreamHandler(root_buffer)
    logging.getLogger().addHandler(root_handler)
    try:
        setup_logging(buffer)
        logging.getLogger("cronplus.scheduler").info("tick")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert "tick" in buffer.getvalue()
    assert root_buffer.getvalue() == ""


def test_level_comes_from_cronplus_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONPLUS_LOG_LEVEL", "debug")
    assert setup_logging(io.StringIO()).level == logging.DEBUG
    monkeypatch.setenv("CRONPLUS_LOG_LEVEL", "nonsense")
    assert setup_logging(io.StringIO()).level == logging.INFO


def test_a_stream_without_a_file_descriptor_is_never_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not is_journal_stream(io.StringIO())


@pytest.mark.parametrize("value", ["", "garbage", "1:", ":2", "a:b"])
def test_a_malformed_journal_stream_means_plain_mode(tmp_path: Path, value: str) -> None:
    with open(tmp_path / "f", "w") as stream:
        assert not is_journal_stream(stream, {"JOURNAL_STREAM": value})


def test_stderr_of_a_real_process_is_detected_through_its_inherited_descriptor(tmp_path: Path) -> None:
    # The way systemd does it: the child's fd 2 is the journal stream, JOURNAL_STREAM names it.
    out = tmp_path / "journal-standin"
    code = "from cronplus.service.systemd import setup_logging; setup_logging().info('started')"
    with open(out, "w") as stream:
        env = dict(os.environ, JOURNAL_STREAM=journal_id(out))
        subprocess.run([sys.executable, "-c", code], stderr=stream, env=env, check=True, timeout=30)
    assert out.read_text() == "<6>started\n"


def test_priorities_follow_sd_daemon_h() -> None:
    assert [syslog_priority(lv) for lv in (5, 10, 20, 25, 30, 40, 50)] == [7, 7, 6, 5, 4, 3, 2]


def test_a_library_warning_gets_the_same_prefix_instead_of_reaching_stderr_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: watchdog logged "InotifyEmitter.queue_events() called when the thread is
    inactive" through logging's last-resort handler, a raw line in the journal."""
    root = logging.getLogger()
    saved = list(root.handlers)
    out = tmp_path / "stderr"
    try:
        with open(out, "w") as stream:
            monkeypatch.setenv("JOURNAL_STREAM", journal_id(out))
            setup_logging(stream)
            setup_logging(stream)  # idempotent: still one line per record
            logging.getLogger("some.library").error("emitter went away")
            logging.getLogger("some.library").info("chatty detail")
    finally:
        root.handlers[:] = saved
    assert out.read_text().splitlines() == ["<3>emitter went away"]
