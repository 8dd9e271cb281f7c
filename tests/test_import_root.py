"""`cronplus import` into a system-format crontab (root's case: `crontab -l` has no user field):
`--as-user USER` converts, and without it the refusal names both ways. A fake `crontab` first on
PATH, the real CLI in a subprocess."""

from __future__ import annotations

import getpass
import subprocess
import sys

from cronplus.cli.importing import add_user_field
from tests.test_import import fake_crontab, run_import, target

ROOT_CRONTAB = (
    "# m h dom mon dow command\n"
    "SHELL=/bin/bash\n"
    "MAILTO = \"ops@example.com\"\n"
    "\n"
    "# cronplus: name=backup retries=2\n"
    "30 2 * * *  /usr/local/bin/backup.sh >/dev/null 2>&1\n"
    "@reboot\t/usr/local/bin/warm-cache --all\n"
    "  */15 9-17 * * mon-fri   cd /srv && ./poll.sh   # trailing words\n"
    "@daily echo 50% | wc -c\n"
)

CONVERTED = (
    "# m h dom mon dow command\n"
    "SHELL=/bin/bash\n"
    "MAILTO = \"ops@example.com\"\n"
    "\n"
    "# cronplus: name=backup retries=2\n"
    "30 2 * * *  root  /usr/local/bin/backup.sh >/dev/null 2>&1\n"
    "@reboot\troot\t/usr/local/bin/warm-cache --all\n"
    "  */15 9-17 * * mon-fri   root   cd /srv && ./poll.sh   # trailing words\n"
    "@daily root echo 50% | wc -c\n"
)


def test_the_user_field_goes_after_the_schedule_of_every_job_line_and_nowhere_else() -> None:
    assert add_user_field(ROOT_CRONTAB, "root") == CONVERTED
    assert add_user_field("0 * * * * true", "root") == "0 * * * * root true"  # no final newline


def test_import_into_a_system_crontab_with_as_user_root_converts_and_installs(tmp_path) -> None:
    bindir = fake_crontab(tmp_path, ROOT_CRONTAB)
    proc = run_import(tmp_path, f"{bindir}:/usr/bin:/bin", "--system", "--as-user", "root")
    assert proc.returncode == 0, proc.stderr
    assert target(tmp_path).read_text() == CONVERTED
    check = subprocess.run([sys.executable, "-m", "cronplus", "check", "--system", str(target(tmp_path))],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_import_into_a_system_crontab_without_as_user_names_both_ways(tmp_path) -> None:
    bindir = fake_crontab(tmp_path, ROOT_CRONTAB)
    proc = run_import(tmp_path, f"{bindir}:/usr/bin:/bin", "--system")
    assert proc.returncode == 1
    assert f"--as-user {getpass.getuser()}" in proc.stderr and "--crontab" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not target(tmp_path).exists()


def test_as_user_into_a_user_format_crontab_is_a_usage_error(tmp_path) -> None:
    bindir = fake_crontab(tmp_path, ROOT_CRONTAB)
    proc = run_import(tmp_path, f"{bindir}:/usr/bin:/bin", "--as-user", "root")
    assert proc.returncode == 2 and "user format" in proc.stderr and not target(tmp_path).exists()


def test_an_unknown_user_is_rejected_before_anything_is_installed(tmp_path) -> None:
    bindir = fake_crontab(tmp_path, "0 * * * * true\n")
    proc = run_import(tmp_path, f"{bindir}:/usr/bin:/bin", "--system", "--as-user", "no-such-user-cronplus")
    assert proc.returncode == 1 and "no-such-user-cronplus" in proc.stderr and not target(tmp_path).exists()
