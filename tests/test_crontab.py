"""Whole crontab files: env lines, %, system user field, comments, columns, real-world fixtures."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from cronplus.crontab.envlines import parse_env_line
from cronplus.crontab.parser import load_crontab, parse_crontab, split_percent
from cronplus.errors import CronplusError, CrontabError, Severity

FIXTURES = Path(__file__).parent / "fixtures" / "crontabs"


def parse(text: str, *, system: bool = False):  # type: ignore[no-untyped-def]
    return parse_crontab(text, path="ct", system=system)


def errors(text: str, *, system: bool = False) -> list[str]:
    with pytest.raises(CrontabError) as info:
        parse(text, system=system)
    return [str(d) for d in info.value.diagnostics if d.severity is Severity.ERROR]


# --- environment lines (cronie env.c load_env)

@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=b", ("A", "b")),
        ("A = b  ", ("A", "b")),
        ("  PATH = /usr/bin:/bin", ("PATH", "/usr/bin:/bin")),
        ('A="x y"', ("A", "x y")),
        ("A='x y'  ", ("A", "x y")),
        ("'A'='b'", ("A", "b")),
        ('A=""', ("A", "")),
        ("A=b c # not a comment", ("A", "b c # not a comment")),
        ("X==y", ("X", "=y")),
        ("A=$HOME/bin", ("A", "$HOME/bin")),  # no variable expansion
        ('A="x" y', None),  # something after the closing quote
        ("A=", None),  # cronie: nothing after '=' is not an env setting
        ("FOO bar=baz", None),
        ("0 * * * * a=b", None),
        ('A="open', None),
    ],
)
def test_env_lines_follow_cronies_load_env(line: str, expected: tuple[str, str] | None) -> None:
    assert parse_env_line(line) == expected


def test_env_lines_apply_to_the_job_lines_after_them_in_order() -> None:
    ct = parse("0 0 * * * one\nA=1\nSHELL=/bin/bash\n0 0 * * * two\nA=2\n0 0 * * * three\n")
    envs = [job.env for job in ct.jobs]
    assert envs == [(), (("A", "1"), ("SHELL", "/bin/bash")), (("A", "1"), ("SHELL", "/bin/bash"), ("A", "2"))]
    assert [job.shell for job in ct.jobs] == ["/bin/sh", "/bin/bash", "/bin/bash"]


def test_cron_tz_applies_to_the_following_jobs() -> None:
    ct = parse("0 0 * * * a\nCRON_TZ=Asia/Tokyo\n0 0 * * * b\nCRON_TZ=UTC\n0 0 * * * c\n")
    assert [job.tz for job in ct.jobs] == [None, "Asia/Tokyo", "UTC"]


def test_an_empty_env_assignment_is_an_error_with_the_fix() -> None:
    assert errors("MAILTO=\n") == ["ct:1:1: bad minute: 'MAILTO=' with no value is not an environment line for cron (write MAILTO=\"\")"]


def test_an_unknown_cron_tz_is_an_error_at_the_value() -> None:
    assert errors("CRON_TZ = Mars/Base\n") == [
        "ct:1:11: bad CRON_TZ: unknown time zone 'Mars/Base' (an IANA name like Europe/Berlin or UTC)"
    ]


# --- commands and %

@pytest.mark.parametrize(
    ("raw", "command", "stdin"),
    [
        ("echo hi", "echo hi", None),
        ("cat % a%b", "cat ", " a\nb"),
        ("mail -s x me%line1%line2%", "mail -s x me", "line1\nline2\n"),
        (r"date +\%F", "date +%F", None),
        (r"echo \%x%in\%put", "echo %x", "in%put"),
        (r"echo a\\b", r"echo a\\b", None),
        ("echo a # b", "echo a # b", None),
    ],
)
def test_percent_ends_the_command_and_the_rest_is_stdin(raw: str, command: str, stdin: str | None) -> None:
    assert split_percent(raw) == (command, stdin)
    job = parse(f"0 0 * * * {raw}\n").jobs[0]
    assert (job.command, job.stdin) == (command, stdin)


def test_a_hash_after_a_command_is_part_of_the_command() -> None:
    assert parse("@daily echo x # y\n").jobs[0].command == "echo x # y"


def test_comments_blank_lines_and_indentation_are_ignored() -> None:
    ct = parse("# comment\n\n   \n\t# indented comment\n  5 4 * * *\tcmd\n")
    assert len(ct.jobs) == 1
    assert ct.jobs[0].loc.line == 5 and ct.jobs[0].loc.col == 3


def test_job_location_and_schedule_are_kept() -> None:
    job = parse("A=1\n*/5\t1  * * mon  do it\n").jobs[0]
    assert str(job.loc) == "ct:2:1"
    assert job.schedule.text == "*/5 1 * * mon"
    assert job.command == "do it"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0 * * *\n", "ct:1:10: bad command: missing after the schedule (Debian's cron would run an empty command, cronie rejects the line: write 'true' for a job that does nothing)"),
        ("0 0 * * *   \n", "ct:1:10: bad command: missing after the schedule (Debian's cron would run an empty command, cronie rejects the line: write 'true' for a job that does nothing)"),
        ("@daily\n", "ct:1:7: bad command: missing after the schedule"),
        ("0 0 * * * * cmd\n", "ct:1:11: bad command: starts with '*' (cron has no seconds field: a 6th time field is read as the command, and cron rejects a leading '*')"),
        ("0 0 *\n", "ct:1:6: bad month: missing (a job line has 5 time fields and a command)"),
        ("hello\n", "ct:1:1: bad minute: 'hello' is not a number"),
        ("@DAILY x\n", "ct:1:1: bad time specifier: '@DAILY' (@ names are lowercase only in cron: write @daily)"),
        ("  0 99 * * * x\n", "ct:1:5: bad hour: 99 is out of range 0-23"),
    ],
)
def test_bad_job_lines_use_crons_words_and_exact_columns(text: str, message: str) -> None:
    assert errors(text) == [message]


def test_a_sixth_numeric_field_is_just_the_start_of_the_command_as_in_cron() -> None:
    assert parse("0 0 * * * 5 cmd\n").jobs[0].command == "5 cmd"


def test_all_errors_of_a_file_are_reported_at_once_in_line_order() -> None:
    got = errors("60 * * * * a\nok=1\n0 0 * * 8 b\n@fortnightly c\n0 0 * * * d\n")
    assert [m.split(": ")[0] for m in got] == ["ct:1:1", "ct:3:9", "ct:4:1"]


# --- system crontabs

def test_system_crontabs_have_a_user_field() -> None:
    ct = parse("0 0 * * * root echo hi\n@reboot nobody  /bin/true\n", system=True)
    assert [(j.user, j.command) for j in ct.jobs] == [("root", "echo hi"), ("nobody", "/bin/true")]
    assert ct.system


def test_the_same_line_in_user_format_runs_the_user_name_as_a_command() -> None:
    assert parse("0 0 * * * root echo hi\n").jobs[0].command == "root echo hi"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0 * * * root\n", "ct:1:15: bad command: missing after the schedule"),
        ("0 0 * * *\n", "ct:1:10: bad command: missing the user field and the command (a system crontab line is: 5 fields, user, command)"),
        ("0 0 * * * * root cmd\n", "ct:1:11: bad command: starts with '*' where the user field goes (a system crontab line is: 5 fields, user, command)"),
    ],
)
def test_system_line_errors(text: str, message: str) -> None:
    assert errors(text, system=True) == [message]


# --- files

def test_a_missing_final_newline_is_accepted_with_a_warning() -> None:
    ct = parse("0 0 * * * a\n0 1 * * * b")
    assert [j.command for j in ct.jobs] == ["a", "b"]
    assert [str(w) for w in ct.warnings] == [
        "ct:2:12: warning: no newline at the end of the file (cronie ignores such a last line and Debian's crontab refuses the file; add one)"
    ]


def test_an_empty_file_has_no_jobs() -> None:
    ct = parse("")
    assert ct.jobs == () and ct.warnings == ()


def test_load_crontab_of_a_missing_file_is_a_cronplus_error(tmp_path: Path) -> None:
    with pytest.raises(CronplusError, match="no such crontab file"):
        load_crontab(tmp_path / "nope")


def test_load_crontab_reads_user_format_outside_etc(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    f.write_text("0 0 * * * root echo\n")
    ct = load_crontab(f)
    assert not ct.system and ct.jobs[0].command == "root echo" and ct.path == str(f)


def test_debian_etc_crontab_parses_as_a_system_crontab() -> None:
    ct = load_crontab(FIXTURES / "debian-etc-crontab.crontab", system=True)
    assert [j.user for j in ct.jobs] == ["root"] * 4
    names = [j.name for j in ct.jobs]
    assert names[:2] == ["run-parts-report-etc-cron-hourly", "test-x-usr-sbin-anacron"]
    assert all(n.startswith("test-x-usr-sbin-anacron-") and len(n) == len(names[1]) + 7 for n in names[2:])
    assert len(set(names)) == 4
    assert ct.jobs[0].schedule.minutes == {17} and ct.jobs[0].schedule.hour_star
    assert ct.jobs[2].schedule.weekdays == {0}
    assert ct.jobs[0].env == (("SHELL", "/bin/sh"),)


def test_a_cron_d_file_with_user_fields_and_reboot() -> None:
    ct = load_crontab(FIXTURES / "cron.d-with-user.crontab", system=True)
    assert [(j.user, j.schedule.text) for j in ct.jobs] == [("root", "0 */12 * * *"), ("root", "@reboot"), ("nobody", "*/5 * * * *")]
    assert ct.jobs[1].schedule.reboot
    assert ("MAILTO", "") in ct.jobs[0].env
    assert ct.warnings == ()


def test_a_typical_user_crontab() -> None:
    ct = load_crontab(FIXTURES / "typical-user.crontab", system=False)
    assert len(ct.jobs) == 6
    assert all(j.tz == "Europe/Berlin" for j in ct.jobs)
    assert ct.jobs[1].schedule.weekdays == {1, 2, 3, 4, 5}
    assert ct.jobs[2].schedule.months == {1, 7}
    assert ct.jobs[4].command == "tar czf /tmp/home-$(date +%F).tgz /home/me/docs"
    assert (ct.jobs[5].command, ct.jobs[5].stdin) == ("cat ", " Monday\nreport")


def test_cronies_do_not_log_dash_is_rejected_as_cronie_only() -> None:
    assert errors("-0 0 * * * cmd\n") == [
        "ct:1:1: bad minute: a leading '-' (cronie's do-not-log flag) is cronie-only; other crons reject the line (remove the '-')"
    ]


def test_a_crlf_file_is_an_error_once() -> None:
    # issue 10: cron keeps the \r in the command, so every run of these jobs would fail
    assert errors("0 0 * * * a\r\n0 1 * * * b\r\n") == [
        "ct:1:12: CRLF line ends (a Windows editor?) (and 1 more line): cron keeps the \\r in commands and values, "
        "so /bin/sh runs 'cmd\\r' (convert with dos2unix)"
    ]


def test_random_garbage_raises_only_crontab_errors() -> None:
    import random

    from cronplus.crontab.parser import parse_schedule

    alphabet = [*"0123456789*/-,@#%\\\"' \t=\nabcLW?HR~MONjanFRI", "# cronplus: ", "name=", "after=", "@daily", "\r"]
    rnd = random.Random(7)
    for _ in range(1500):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 60)))
        for system in (False, True):
            try:
                parse(text, system=system)
            except CrontabError as exc:
                assert exc.diagnostics and all(d.loc.line >= 1 and d.loc.col >= 1 for d in exc.diagnostics)
        with contextlib.suppress(CrontabError):
            parse_schedule(text)


def test_crontab_error_diagnostics_hold_errors_only_and_warnings_ride_along() -> None:
    with pytest.raises(CrontabError) as info:
        parse("MAILTO=me you\n60 * * * * x\n")  # an unsafe MAILTO: a warning
    assert [d.severity for d in info.value.diagnostics] == [Severity.ERROR]
    assert [str(w.loc) for w in info.value.warnings] == ["ct:1:1"]  # type: ignore[attr-defined]
