"""Issue 9 item 7: hostile or broken crontab bytes never crash the parser, `check`, `run` or a
reload, and what the file holds is never echoed raw (escape sequences, NUL, undecodable bytes).
One fixture per class of crash found by fuzzing, named after the bug."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cronplus.crontab.fields import parse_schedule
from cronplus.crontab.parser import load_crontab, parse_crontab
from cronplus.errors import CrontabError, Diagnostic, ParserBug, escape, shown
from cronplus.model import EnvLines
from tests.http_receiver import Receiver
from tests.test_daemon import Supervisor

FIXTURES = Path(__file__).parent / "fixtures" / "crontabs"
full_env = {**os.environ, "PYTHONWARNINGS": "ignore"}

# fixture, --system?, what the one error says
CRASHERS = [
    ("issue-9-circled-digit.crontab", False, ":2:1: bad minute: '①' is not a digit: cron reads only ASCII 0-9"),
    ("issue-9-fullwidth-digit.crontab", False, ":2:1: bad minute: '１' is not a digit: cron reads only ASCII 0-9"),
    ("issue-9-long-cron-tz.crontab", False, ":2:9: bad CRON_TZ: unknown time zone 'a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/...'"),
    ("issue-9-nul-user.crontab", True, ":2:13: NUL byte in the line: cron would cut the line here"),
    ("issue-9-escape-sequences.crontab", False, r":2:1: bad minute: unexpected '\x1b'"),
]


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cronplus", "check", *args], capture_output=True, text=True,
                          env=full_env, timeout=60, check=False)


def assert_clean_lines(text: str) -> None:
    """No traceback, no raw control character: every line printable."""
    assert "Traceback" not in text
    for line in text.splitlines():
        assert line.isprintable(), repr(line)


@pytest.mark.parametrize(("name", "system", "expected"), CRASHERS)
def test_check_reports_each_crasher_in_one_line_and_exit_1(name: str, system: bool, expected: str) -> None:
    out = check(*(["--system"] if system else []), str(FIXTURES / name))
    assert out.returncode == 1, out.stderr
    assert_clean_lines(out.stderr)
    first = out.stderr.splitlines()[0]
    assert first.startswith(str(FIXTURES / name) + expected), first
    assert out.stderr.splitlines()[-1] == "invalid: 1 error"


def test_two_unnamed_jobs_with_the_same_undecodable_command_get_distinct_stable_names() -> None:
    ct = load_crontab(FIXTURES / "issue-9-non-utf8-same-command.crontab", system=False)
    assert [j.command for j in ct.jobs] == ["echo caf\udce9 \udcff"] * 2  # the bytes kept as they were
    first, second = (j.name for j in ct.jobs)
    assert first == "echo-caf"
    assert second.startswith("echo-caf-") and len(second) == len("echo-caf-") + 6
    again = load_crontab(FIXTURES / "issue-9-non-utf8-same-command.crontab", system=False)
    assert [j.name for j in again.jobs] == [first, second]


def test_check_accepts_the_undecodable_file_and_from_stdin_too() -> None:
    path = FIXTURES / "issue-9-non-utf8-same-command.crontab"
    assert check(str(path)).stdout == "ok: 2 jobs, 0 warnings\n"
    piped = subprocess.run([sys.executable, "-m", "cronplus", "check", "-"], input=path.read_bytes(),
                           capture_output=True, env=full_env, timeout=60, check=False)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, b"ok: 2 jobs, 0 warnings\n", b"")


def test_an_undecodable_byte_in_an_error_shows_as_its_hex() -> None:
    with pytest.raises(CrontabError) as exc:
        parse_crontab("\udcff * * * * true\n", path="ct", system=False)
    assert str(exc.value) == r"ct:1:1: bad minute: unexpected '\xff'"


@pytest.mark.parametrize("digits", ["１", "٣", "①", "¹"])
def test_only_ascii_digits_are_digits_in_fields_and_annotations(digits: str) -> None:
    for text in (f"0 {digits} * * * true\n", f"0 1-{digits} * * * true\n", f"*/{digits} * * * * true\n",
                 f"# cronplus: retries={digits}\n0 * * * * true\n", f"# cronplus: timeout={digits}\n0 * * * * true\n",
                 f"# cronplus: max-log-size={digits}M\n0 * * * * true\n", f"# cronplus: backoff={digits}\n0 * * * * true\n"):
        with pytest.raises(CrontabError):
            parse_crontab(text, path="ct", system=False)


def test_a_huge_number_is_out_of_range_not_a_crash() -> None:
    big = "9" * 5000  # int() refuses more than 4300 digits
    for text, message in ((f"{big} * * * * true\n", f"bad minute: {'9' * 40}... is out of range 0-59"),
                          (f"*/{big} * * * * true\n", "bad minute: step 9999999999"),
                          (f"# cronplus: retries={big}\n0 * * * * true\n", "bad retries: '999999999")):
        with pytest.raises(CrontabError) as exc:
            parse_crontab(text, path="ct", system=False)
        (diag,) = exc.value.diagnostics
        assert message in diag.message and len(str(diag)) < 300


def test_tokens_echoed_in_messages_are_cut_to_40_characters() -> None:
    with pytest.raises(CrontabError) as exc:
        parse_crontab("x" * 100_000 + " * * * * true\n", path="ct", system=False)
    assert str(exc.value) == f"ct:1:1: bad minute: '{'x' * 40}...' is not a number"


def test_the_escaping_helper_shows_every_invisible_character() -> None:
    assert escape("a\x1b[2Jb\x00c\x7f\udc80\u202e\xa0\u2028\U000e0001 ok") == \
        r"a\x1b[2Jb\x00c\x7f\x80\u202e\xa0\u2028\U000e0001 ok"
    assert shown("é" * 50) == "é" * 40 + "..."
    diag = Diagnostic(loc=__import__("cronplus.errors").errors.SourceLoc(path="a\x1bb", line=1), message="m\x07")
    assert str(diag) == r"a\x1bb:1:1: m\x07"


def test_cronplus_run_refuses_to_start_with_one_line_per_error(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_bytes((FIXTURES / "issue-9-circled-digit.crontab").read_bytes())
    out = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir",
                          str(tmp_path / "state"), "run"], capture_output=True, text=True, env=full_env,
                         timeout=60, check=False)
    assert out.returncode == 1
    assert_clean_lines(out.stderr)
    assert f"{crontab}:2:1: bad minute: '①' is not a digit" in out.stderr
    assert "supervisor not started" in out.stderr


@pytest.mark.parametrize("name", ["issue-9-long-cron-tz.crontab", "issue-9-escape-sequences.crontab"])
def test_a_reload_to_a_crasher_is_refused_logged_escaped_and_alerted(supervisors: list[Supervisor], tmp_path: Path,
                                                                       name: str) -> None:
    with Receiver() as rx:
        good = f"# cronplus-defaults: alert={rx.url()}\n# cronplus: name=keep\n0 0 1 1 * true\n"
        sup = Supervisor(tmp_path, good)
        supervisors.append(sup)
        sup.wait_ready()
        tmp = tmp_path / "crontab.new"
        tmp.write_bytes((FIXTURES / name).read_bytes())
        os.rename(tmp, sup.crontab)
        deadline = time.monotonic() + 10
        while "reload refused: keeping the previous crontab" not in sup.stderr:
            assert time.monotonic() < deadline, sup.stderr
            time.sleep(0.05)
        assert_clean_lines(sup.stderr)
        assert f"reload refused: {sup.crontab}:2:" in sup.stderr
        (alert,) = rx.wait_for(1)
        assert alert.json()["type"] == "cronplus.config_error"
        assert "\x1b" not in alert.body.decode()
        assert [j["name"] for j in sup.status()["jobs"]] == ["keep"]


def test_the_last_resort_guard_names_the_file_in_one_line_and_hides_the_exception_text() -> None:
    try:
        raise ValueError("https://hooks.example/secret-token")
    except ValueError as exc:
        bug = ParserBug("/etc/crontab", exc)
    (diag,) = bug.diagnostics
    assert str(diag).startswith("/etc/crontab:1:1: internal error in the parser (ValueError at test_parse_faults.py:")
    assert "secret" not in str(bug) and "\n" not in str(bug)
    assert isinstance(bug, CrontabError)


def test_a_schedule_expression_never_raises_anything_but_crontab_error() -> None:
    for expr in ("① * * * *", "9" * 5000 + " * * * *", "@" + "x" * 10_000, "\x00 * * * *"):
        with pytest.raises(CrontabError) as exc:
            parse_schedule(expr)
        assert not isinstance(exc.value, ParserBug)


def test_jobs_share_the_env_lines_instead_of_copying_them() -> None:
    text = "".join(f"V{i}={i}\n0 * * * * job {i}\n" for i in range(2000))
    ct = parse_crontab(text, path="ct", system=False)
    last = ct.jobs[-1].env
    assert len(last) == 2000 and last[-1] == ("V1999", "1999")
    assert ct.jobs[10].env == tuple((f"V{i}", str(i)) for i in range(11))
    assert ct.jobs[10].env == EnvLines.of((f"V{i}", str(i)) for i in range(11))
    assert ct.jobs[10].env != ct.jobs[11].env
    assert hash(ct.jobs[10].env) == hash(tuple(ct.jobs[10].env))
    assert list(reversed(ct.jobs[2].env)) == [("V2", "2"), ("V1", "1"), ("V0", "0")]
    again = parse_crontab(text, path="ct", system=False)  # another file's list: compared by digest
    assert [j.env for j in again.jobs] == [j.env for j in ct.jobs]
    changed = parse_crontab(text.replace("V5=5\n", "V5=6\n"), path="ct", system=False)
    assert changed.jobs[4].env == ct.jobs[4].env and changed.jobs[5].env != ct.jobs[5].env
    assert changed.jobs[-1].env != ct.jobs[-1].env


def test_an_annotation_value_the_converter_echoes_is_escaped_and_bounded() -> None:
    # found by the fuzz campaign: redact_url() keeps an `env:` value as it is
    with pytest.raises(CrontabError) as exc:
        parse_crontab("# cronplus-defaults: alert=env:\x1b[2JX" + "Y" * 5000 + "\n", path="ct", system=False)
    (diag,) = exc.value.diagnostics
    assert diag.message.startswith(r"bad alert: env:\x1b[2JXYYY") and diag.message.isprintable()
    assert len(diag.message) < 400


def test_install_from_stdin_takes_non_utf8_bytes_as_they_are(tmp_path: Path) -> None:
    # issue 10: bytes are bytes, as for cron and `check -` (was: refused in one line)
    out = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"), "--state-dir",
                          str(tmp_path / "state"), "install", "-"], input=b"0 * * * * echo \xff\n",
                         capture_output=True, env={**full_env, "LC_ALL": "C.UTF-8"}, timeout=60, check=False)
    assert (out.returncode, out.stderr) == (0, b"")
    assert (tmp_path / "crontab").read_bytes() == b"0 * * * * echo \xff\n"


def test_an_edit_saved_as_non_utf8_is_installed_byte_for_byte(tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf '0 * * * * echo \\377\\n' > \"$1\"\n")
    editor.chmod(0o755)
    out = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"), "--state-dir",
                          str(tmp_path / "state"), "edit"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env={**full_env, "EDITOR": str(editor), "VISUAL": str(editor), "TMPDIR": str(tmp_path)},
                         timeout=60, check=False)
    assert (out.returncode, out.stderr) == (0, "")  # issue 10: bytes are bytes (was: refused, kept)
    assert (tmp_path / "crontab").read_bytes() == b"0 * * * * echo \xff\n"


def test_a_file_level_refusal_escapes_the_path(tmp_path: Path) -> None:
    crontab = tmp_path / "a\x1b[2Jb.crontab"
    crontab.write_text("0 * * * * true\n")
    crontab.chmod(0o666)  # writable by others: cron refuses it before parsing
    out = check(str(crontab))
    assert out.returncode == 1
    assert_clean_lines(out.stderr)
    assert str(tmp_path / r"a\x1b[2Jb.crontab") in out.stderr


def test_memory_grows_linearly_when_env_lines_and_jobs_alternate() -> None:
    import tracemalloc

    text = "".join(f"V{i}=value {i}\n0 * * * * job {i}\n" for i in range(3000))
    tracemalloc.start()
    try:
        crontab = parse_crontab(text, path="ct", system=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(crontab.jobs[-1].env) == 3000
    # a copy of the env per job held 4.5 million pairs (39 MB here); shared, it is ~3.5 MB
    assert peak < 12_000_000, peak
