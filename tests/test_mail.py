"""MAILTO (README "Alerts") end to end with the real command: `cronplus trigger` runs the job, and the
mail reaches a real recording mailer ($CRONPLUS_MAILER) through the outbox; plus the message's
shape as cronie's do_command.c writes it, from the pure builder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from email import message_from_string
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from cronplus.alerts import mail
from cronplus.crontab.parser import parse_crontab
from tests.mailer import Mailbox

pytestmark = pytest.mark.e2e


def cronplus(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != mail.MAILER_ENV}
    full = {**base, "CRONPLUS_STATE_DIR": str(tmp_path / "state"), "CRONPLUS_CRONTAB": str(tmp_path / "crontab"),
            "HOME": str(tmp_path), **(env or {})}
    return subprocess.run([sys.executable, "-m", "cronplus", *args], capture_output=True, text=True, env=full,
                          timeout=60)


def me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def test_a_job_with_output_mails_it_as_cron_does_to_every_recipient(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    (tmp_path / "crontab").write_text(
        "MAILTO=ops@example.com,dev@example.org\n"
        "MAILFROM=cron@example.net\n"
        "# cronplus: name=report\n"
        "0 3 * * * echo 'hello from the job'; echo 'and its stderr' >&2\n"
    )
    out = cronplus(tmp_path, "trigger", "report", env={mail.MAILER_ENV: box.command})
    assert out.returncode == 0, out.stderr
    [got] = box.mails()
    assert got.argv == ["ops@example.com", "dev@example.org"]
    assert got.header("From") == '"(Cron Daemon)" <cron@example.net>'
    assert got.header("To") == "ops@example.com, dev@example.org"
    host = socket.gethostname().split(".")[0]
    assert got.header("Subject") == (
        f"Cron <{me()}@{host}> echo 'hello from the job'; echo 'and its stderr' >&2")
    assert got.header("MIME-Version") == "1.0"
    assert got.header("Content-Type") == "text/plain; charset=UTF-8"
    assert got.header("Auto-Submitted") == "auto-generated"
    env_lines = got.headers["X-Cron-Env"]
    assert "<MAILTO=ops@example.com,dev@example.org>" in env_lines and f"<LOGNAME={me()}>" in env_lines
    lines = got.body.splitlines()
    assert lines[:2] == ["hello from the job", "and its stderr"]
    assert lines[-1].startswith("-- cronplus: job report, run 1 attempt 1: success")
    table = cronplus(tmp_path, "alerts", "--json")
    [row] = [json.loads(line) for line in table.stdout.splitlines()]
    assert row["kind"] == "mail" and row["status"] == "delivered"
    assert row["target"] == "mailto:ops@example.com,dev@example.org" and row["event"] == "success"


def test_an_empty_mailto_sends_nothing_and_a_silent_success_sends_nothing(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    (tmp_path / "crontab").write_text(
        'MAILTO=""\n'
        "# cronplus: name=chatty\n"
        "0 3 * * * echo lots of output\n"
        "MAILTO=ops@example.com\n"
        "# cronplus: name=quiet\n"
        "0 3 * * * true\n"
    )
    for job in ("chatty", "quiet"):
        assert cronplus(tmp_path, "trigger", job, env={mail.MAILER_ENV: box.command}).returncode == 0
    assert box.mails() == []
    assert cronplus(tmp_path, "alerts", "--json").stdout == ""


def test_a_failing_job_without_output_is_mailed_with_its_status(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    (tmp_path / "crontab").write_text("MAILTO=ops@example.com\n# cronplus: name=silent-fail\n0 3 * * * exit 3\n")
    out = cronplus(tmp_path, "trigger", "silent-fail", env={mail.MAILER_ENV: box.command})
    assert out.returncode != 0
    [got] = box.mails()
    assert got.body == "-- cronplus: job silent-fail, run 1 attempt 1: failed (exit 3)\n"


def test_retries_mail_once_for_the_final_attempt(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    (tmp_path / "crontab").write_text(
        "MAILTO=ops@example.com\n# cronplus: name=flaky retries=1 retry-delay=0s\n"
        "0 3 * * * echo attempt $CRONPLUS_ATTEMPT; exit 1\n")
    cronplus(tmp_path, "trigger", "flaky", env={mail.MAILER_ENV: box.command})
    [got] = box.mails()
    assert got.body.startswith("attempt 2\n") and "run 2 attempt 2: failed (exit 1)" in got.body


def test_alert_mailto_sends_the_alert_through_the_mailer(tmp_path: Path) -> None:
    box = Mailbox(tmp_path)
    (tmp_path / "crontab").write_text(
        "# cronplus: name=backup alert=mailto:oncall@example.com\n0 3 * * * echo disk full >&2; exit 2\n")
    cronplus(tmp_path, "trigger", "backup", env={mail.MAILER_ENV: box.command})
    [got] = box.mails()
    assert got.argv == ["oncall@example.com"] and got.header("To") == "oncall@example.com"
    subject = str(make_header(decode_header(message_from_string(got.message)["Subject"])))
    assert subject == f"cronplus: 🔴 backup failed on {socket.gethostname()}"
    assert "exit 2" in got.body and "disk full" in got.body
    test = cronplus(tmp_path, "alerts", "--test", "backup", env={mail.MAILER_ENV: box.command})
    assert test.returncode == 0 and "mailto:oncall@example.com" in test.stdout and "delivered" in test.stdout
    assert len(box.mails()) == 2


def test_check_says_when_mail_has_no_mailer(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("MAILTO=ops@example.com\n0 3 * * * echo hi\n")
    if os.access(mail.DEFAULT_SENDMAIL, os.X_OK):
        pytest.skip("this machine has a sendmail")
    out = cronplus(tmp_path, "check")
    assert out.returncode == 0
    assert f"{tmp_path / 'crontab'}:2:1: warning: no mailer: /usr/sbin/sendmail is not installed" in out.stderr
    assert "ok: 1 job, 1 warning" in out.stdout
    configured = cronplus(tmp_path, "check", env={mail.MAILER_ENV: "cat >/dev/null"})
    assert "no mailer" not in configured.stderr
    (tmp_path / "crontab").write_text('MAILTO=""\n0 3 * * * echo hi\n')
    assert "no mailer" not in cronplus(tmp_path, "check").stderr


# -- the message, pure -------------------------------------------------------------------------

def job_of(text: str):
    return parse_crontab(text, path="ct", system=False).jobs[0]


def test_non_ascii_headers_are_encoded_and_newlines_cannot_add_headers() -> None:
    job = job_of("MAILTO=ops@example.com\n0 3 * * * echo grüße\n")
    text = mail.cron_message(job=job, recipients=("ops@example.com",), user="alice", hostname="web1.example.com",
                             output="grüße\n", status_line="-- done", cron_env=[("CONTENT_TYPE", "text/html\nBcc: x@y")])
    parsed = message_from_string(text)
    assert str(make_header(decode_header(parsed["Subject"]))) == "Cron <alice@web1> echo grüße"
    assert parsed["Bcc"] is None and parsed["Content-Type"] == "text/html Bcc: x@y"
    assert text.endswith("\n\ngrüße\n-- done\n")
    assert text.isascii() is False and text.split("\n\n")[0].isascii()


@pytest.mark.parametrize(("value", "ok"), [("ops@example.com", True), ("a@x.org,b@y.org", True), ("root", True),
                                           ("ops team", False), ("-oQ/tmp", False), ("a@x,,b@y", False),
                                           ("a;rm -rf /", False)])
def test_unsafe_addresses_are_refused_as_cronie_safe_p_does(value: str, ok: bool) -> None:
    assert (mail.address_problem(value) is None) is ok
    job = job_of(f"MAILTO={value}\n0 3 * * * true\n")
    assert bool(mail.mailto(job)) is ok


def test_the_output_is_capped_with_a_note(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"line\n" * 100_000)
    text, left = mail.read_output(str(log), max_bytes=1000)
    assert text == "line\n" * 200 and left == 500_000 - 1000


def test_mail_enabled_follows_the_mailto_in_effect_at_each_line() -> None:
    ct = parse_crontab(
        "0 1 * * * a\nMAILTO=ops@example.com\n0 2 * * * b\nMAILTO=\"\"\n0 3 * * * c\n"
        "# cronplus: alert=mailto:oncall@example.com\n0 4 * * * d\nMAILTO=bad address\n0 5 * * * e\n"
        "MAILTO=dev@example.org\n0 6 * * * f\n", path="ct", system=False)
    assert [j.command for j in mail.mail_enabled(ct)] == ["b", "d", "f"]
    assert [j.command for j in ct.jobs if mail.mailto(j)] == ["b", "f"]


def test_mail_enabled_is_one_pass_over_a_big_alternating_file() -> None:
    n = 20_000
    text = "".join(f"V{i}=x\n0 0 * * * job{i}\n" for i in range(n)) + "MAILTO=ops@example.com\n0 0 * * * last\n"
    ct = parse_crontab(text, path="ct", system=False)
    start = time.process_time()
    got = mail.mail_enabled(ct)
    assert [j.command for j in got] == ["last"]
    assert time.process_time() - start < 5.0  # N*N/2 = 2e8 steps would take minutes
