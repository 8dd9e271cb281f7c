"""Bad input stays small and safe (issue 10 item 2): a binary file is one error; errors are capped
at 20 and counted; a BOM, CRLF line ends, a command cron refuses as too long and a job name
that cannot be a directory name are errors naming what they are; non-UTF-8 bytes are bytes
for check, install, import and edit alike."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.errors import CrontabError
from tests.test_import import fake_crontab, run_import, target

env = {**os.environ, "PYTHONWARNINGS": "ignore", "LC_ALL": "C.UTF-8"}


def cronplus(tmp_path: Path, *args: str, stdin: bytes | None = None, extra: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"), "--state-dir",
                           str(tmp_path / "state"), *args], input=stdin, capture_output=True,
                          env={**env, **(extra or {})}, timeout=60, check=False)


def errors_of(text: str) -> list[str]:
    with pytest.raises(CrontabError) as info:
        parse_crontab(text, path="ct", system=False)
    return [str(d) for d in info.value.diagnostics]


def test_an_executable_is_one_error_not_thousands(tmp_path: Path) -> None:
    x = tmp_path / "x"
    shutil.copyfile("/bin/ls", x)
    out = cronplus(tmp_path, "check", str(x))
    lines = out.stderr.decode().splitlines()
    # ELF: 7f 'E' 'L' 'F' 02 ... -> the 02 (64-bit class) is the first byte no text holds
    assert lines == [f"{x}:1:5: not a crontab: binary data at byte 5 (is this the right file? a crontab is text)",
                     "invalid: 1 error"]
    assert out.returncode == 1 and len(out.stderr) < 300


def test_install_and_run_refuse_a_binary_file_in_one_line(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    (tmp_path / "blob").write_bytes(data)
    out = cronplus(tmp_path, "install", str(tmp_path / "blob"))
    assert out.returncode == 1
    assert out.stderr.decode().splitlines()[0] == (f"{tmp_path / 'blob'}:1:1: not a crontab: binary data at byte 1 "
                                                   "(is this the right file? a crontab is text)")
    assert len(out.stderr.decode().splitlines()) == 2 and not (tmp_path / "crontab").exists()


def test_a_single_stray_nul_keeps_its_column_error() -> None:
    assert errors_of("0 0 * * * echo a\x00b\n") == [
        "ct:1:17: NUL byte in the line: cron would cut the line here (remove it; a NUL usually means the file is not text)"
    ]


def test_latin1_after_the_sample_is_not_binary() -> None:
    text = "# caf\udce9 cr\udce8me\n" * 50 + "0 0 * * * echo caf\udce9\n"
    assert len(parse_crontab(text, path="ct", system=False).jobs) == 1


def test_errors_are_capped_at_20_and_counted(tmp_path: Path) -> None:
    (tmp_path / "many").write_text("".join(f"{60 + i} * * * * job{i}\n" for i in range(100)))
    out = cronplus(tmp_path, "check", str(tmp_path / "many"))
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 22, lines
    assert lines[19].startswith(f"{tmp_path / 'many'}:20:1: bad minute: 79 is out of range")
    assert lines[20:] == ["... and 80 more errors", "invalid: 100 errors"]
    out = cronplus(tmp_path, "install", str(tmp_path / "many"))
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 22 and lines[20] == "... and 80 more errors", lines


def test_a_supervisor_logs_at_most_20_errors_of_its_crontab(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("".join(f"{60 + i} * * * * job{i}\n" for i in range(50)))
    out = cronplus(tmp_path, "run")
    assert out.returncode == 1
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 22, lines
    assert lines[20].endswith("... and 30 more errors")
    assert lines[21].endswith("has 50 error(s)")


BOM_MESSAGE = "UTF-8 byte order mark at the start of the file: cron reads it as part of the first line"


@pytest.mark.parametrize("first", [
    "0 0 * * * true\n",   # cron: a bad minute ("\ufeff0")
    "# a comment\n",      # cron: not a comment any more, a bad job line
    "MAILTO=ops@example.com\n",  # cron: sets a variable named "\ufeffMAILTO", not MAILTO
])
def test_a_bom_is_an_error_naming_it(first: str) -> None:
    found = errors_of("\ufeff" + first + "0 1 * * * true\n")
    assert len(found) == 1 and found[0].startswith(f"ct:1:1: {BOM_MESSAGE} ("), found


def test_a_bom_and_other_errors_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "bom").write_bytes(b"\xef\xbb\xbf0 0 * * * true\n99 * * * * x\n")
    out = cronplus(tmp_path, "check", str(tmp_path / "bom"))
    lines = out.stderr.decode().splitlines()
    assert lines[0].startswith(f"{tmp_path / 'bom'}:1:1: {BOM_MESSAGE}")
    assert lines[1].startswith(f"{tmp_path / 'bom'}:2:1: bad minute: 99 is out of range")


def test_crlf_line_ends_are_one_error_saying_dos2unix(tmp_path: Path) -> None:
    (tmp_path / "win").write_bytes(b"# from notepad\r\n0 0 * * * /usr/local/bin/backup.sh\r\n0 1 * * * true\r\n")
    out = cronplus(tmp_path, "check", str(tmp_path / "win"))
    assert out.returncode == 1
    assert out.stderr.decode().splitlines() == [
        f"{tmp_path / 'win'}:1:15: CRLF line ends (a Windows editor?) (and 2 more lines): cron keeps the \\r in "
        "commands and values, so /bin/sh runs 'cmd\\r' (convert with dos2unix)",
        "invalid: 1 error",
    ]


def test_a_command_debians_cron_refuses_as_too_long() -> None:
    assert parse_crontab("0 0 * * * " + "x" * 999 + "\n", path="ct", system=False).jobs[0].command == "x" * 999
    assert errors_of("0 0 * * * " + "x" * 1000 + "\n") == [
        "ct:1:11: command too long: 1000 bytes, Debian's cron refuses 1000 or more (move the command into a script "
        "and run that)"
    ]
    # bytes, as cron counts them: 500 two-byte characters
    assert errors_of("0 0 * * * echo " + "é" * 500 + "\n")[0].startswith("ct:1:11: command too long: 1005 bytes")


def test_a_job_name_that_cannot_name_its_log_directory_is_rejected_at_parse_time(tmp_path: Path) -> None:
    long = "n" * 300
    (tmp_path / "named").write_text(f"# cronplus: name={long}\n0 0 * * * true\n")
    out = cronplus(tmp_path, "check", str(tmp_path / "named"))
    assert out.returncode == 1
    assert out.stderr.decode().splitlines()[0] == (
        f"{tmp_path / 'named'}:1:18: bad name: '{'n' * 40}...' is 300 characters: a job name has at most 100 "
        "(it names the job's log directory)")
    assert len(parse_crontab(f"# cronplus: name={'n' * 100}\n0 0 * * * true\n", path="ct", system=False).jobs) == 1
    assert errors_of("# cronplus: name=..\n0 0 * * * true\n")[0].startswith("ct:1:18: bad name: '..' cannot be")


def test_derived_names_stay_short() -> None:
    ct = parse_crontab(f"0 0 * * * {'a' * 600} {'b' * 300}\n0 1 * * * {'a' * 600} {'b' * 300}\n", path="ct",
                       system=False)
    assert all(len(j.name) <= 60 for j in ct.jobs)


LATIN1 = b'# caf\xe9 cr\xe8me br\xfbl\xe9e\nMAILTO=""\n' b"0 0 * * * echo caf\xe9\n"


def test_check_install_import_and_edit_agree_on_latin1_bytes(tmp_path: Path) -> None:
    (tmp_path / "latin1").write_bytes(LATIN1)
    checked = cronplus(tmp_path, "check", str(tmp_path / "latin1"))
    assert (checked.returncode, checked.stdout) == (0, b"ok: 1 job, 0 warnings\n"), checked.stderr
    from_stdin = cronplus(tmp_path, "check", "-", stdin=LATIN1)
    assert (from_stdin.returncode, from_stdin.stdout) == (0, b"ok: 1 job, 0 warnings\n"), from_stdin.stderr

    installed = cronplus(tmp_path, "install", str(tmp_path / "latin1"))
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "crontab").read_bytes() == LATIN1
    (tmp_path / "crontab").unlink()
    piped = cronplus(tmp_path, "install", "-", stdin=LATIN1)
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "crontab").read_bytes() == LATIN1
    listed = cronplus(tmp_path, "list")
    assert (listed.returncode, listed.stdout) == (0, LATIN1)

    editor = tmp_path / "editor.sh"  # appends a job: the Latin-1 bytes around it must survive
    editor.write_text("#!/bin/sh\necho '0 1 * * * true' >> \"$1\"\n")
    editor.chmod(0o755)
    edited = cronplus(tmp_path, "edit", extra={"EDITOR": str(editor), "VISUAL": "", "TMPDIR": str(tmp_path)})
    assert edited.returncode == 0, edited.stderr
    assert (tmp_path / "crontab").read_bytes() == LATIN1 + b"0 1 * * * true\n"

    imp = tmp_path / "imp"
    imp.mkdir()
    bindir = fake_crontab(imp, "placeholder\n")
    (imp / "user.crontab").write_bytes(LATIN1)
    proc = run_import(imp, f"{bindir}:/usr/bin:/bin")
    assert proc.returncode == 0, proc.stderr
    assert target(imp).read_bytes() == LATIN1
