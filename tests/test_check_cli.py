"""`cronplus check`: output lines, exit status, default crontab; run in-process (tests/incli.py)
with an environment of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import incli

FIXTURES = Path(__file__).parent / "fixtures" / "crontabs"


def check(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> incli.Completed[str]:
    return incli.run(["check", *args], env=incli.base_env(**(env or {})), stdin=stdin)


def test_a_valid_file_exits_0_and_says_ok(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("*/5 * * * * echo hi\n@daily echo day\n")
    result = check(str(f))
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: 2 jobs, 0 warnings\n", "")


def test_an_invalid_file_exits_1_with_every_error_as_file_line_col(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("60 * * * * a\n# cronplus: retry=3\n0 0 * * * b\n")
    result = check(str(f))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{f}:1:1: bad minute: 60 is out of range 0-59",
        f"{f}:2:13: unknown annotation key 'retry' (did you mean 'retries'?)",
        "invalid: 2 errors",
    ]


def test_warnings_are_printed_and_still_exit_0(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("CRON_TZ=UTC\n0 0 30 2 * never")  # also no final newline
    result = check(str(f))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"{f}:2:5: warning: schedule '0 0 30 2 *' never fires: no chosen day exists in the chosen months",
        f"{f}:2:17: warning: no newline at the end of the file (cronie ignores such a last line and Debian's crontab refuses the file; add one)",
    ]
    assert result.stdout == "ok: 1 job, 2 warnings\n"


def test_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = check(str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "no such crontab file" in result.stderr


def test_without_file_it_checks_the_managed_crontab(tmp_path: Path) -> None:
    f = tmp_path / "managed"
    f.write_text("0 0 * * 8 x\n")
    result = check(env={"CRONPLUS_CRONTAB": str(f)})
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{f}:1:9: bad day-of-week: 8 is out of range 0-7"
    f.write_text("0 0 * * 7 x\n")
    assert check("--crontab", str(f)).returncode == 0


def test_system_flag_reads_the_user_field(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("0 0 * * * root echo hi\n")
    assert check("--system", str(f)).returncode == 0
    result = check("--system", str(f), stdin=None)
    assert result.stdout == "ok: 1 job, 0 warnings\n"


def test_stdin_is_checked_with_dash() -> None:
    result = check("-", stdin="0 0 * * * * cmd\n")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("<stdin>:1:11: bad command: starts with '*'")


@pytest.mark.parametrize("name", ["debian-etc-crontab.crontab", "cron.d-with-user.crontab"])
def test_real_world_system_crontabs_pass(name: str) -> None:
    assert check("--system", str(FIXTURES / name)).returncode == 0


@pytest.mark.parametrize("name", ["typical-user.crontab", "annotated-pipeline.crontab"])
def test_real_world_user_crontabs_pass(name: str) -> None:
    assert check(str(FIXTURES / name)).returncode == 0


def test_an_invalid_file_also_shows_its_warnings_in_line_order(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("MAILTO=me you\n0 0 * * * * cmd\n")  # an unsafe MAILTO: a warning
    result = check(str(f))
    assert result.returncode == 1
    assert [line.split(": ")[0:2] for line in result.stderr.splitlines()] == [
        [f"{f}:1:1", "warning"], [f"{f}:2:11", "bad command"], ["invalid", "1 error"],
    ]
