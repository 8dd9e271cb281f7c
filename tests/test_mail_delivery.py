"""Mail through the outbox: a real mailer subprocess that fails is retried with the outbox's
backoff until it takes the message; a hung one is killed and retried; the message survives its
run's log being pruned; a real supervisor mails with `--mailer CMD` and warns once at start when
there is no mailer."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from cronplus.alerts import mail
from cronplus.alerts.delivery import DeliveryWorker, Policy
from cronplus.store import history, outbox
from tests.mailer import Mailbox
from tests.test_daemon import Supervisor
from tests.waiting import wait_until

FAST = Policy(backoff_base=0.05, backoff_max=0.2, max_age_s=3600, mail_timeout=5.0)



def enqueue_mail(conn, recipients: list[str], message: str = "Subject: x\n\nbody\n") -> int:
    return outbox.enqueue(conn, kind="mail", event="failed", job="backup", run_id=1,
                          target="mailto:" + ",".join(recipients), format="mail", secret_ref=None,
                          payload={"recipients": recipients, "message": message}, now=time.time())


def test_a_failing_mailer_is_retried_until_it_takes_the_message(tmp_path: Path) -> None:
    box = Mailbox(tmp_path, fail_first=2)
    db = tmp_path / "history.db"
    conn = history.connect(db)
    row_id = enqueue_mail(conn, ["ops@example.com"], "Subject: x\n\nthe body\n")
    worker = DeliveryWorker(db, policy=FAST, idle_poll_s=0.1, env={}, mailer=box.command)
    worker.start()
    try:
        wait_until(lambda: outbox.get(conn, row_id).status == "delivered")
    finally:
        worker.stop()
    row = outbox.get(conn, row_id)
    conn.close()
    assert box.failures() == 2 and row.attempts == 3
    [got] = box.mails()
    assert got.argv == ["ops@example.com"] and got.message == "Subject: x\n\nthe body\n"


def test_a_failed_attempt_says_why_and_stays_pending(tmp_path: Path) -> None:
    box = Mailbox(tmp_path, fail_first=1000)
    db = tmp_path / "history.db"
    conn = history.connect(db)
    row_id = enqueue_mail(conn, ["ops@example.com"])
    slow = Policy(backoff_base=60, backoff_max=60, max_age_s=3600)
    worker = DeliveryWorker(db, policy=slow, idle_poll_s=0.1, env={}, mailer=box.command)
    worker.start()
    try:
        wait_until(lambda: outbox.get(conn, row_id).attempts == 1)
    finally:
        worker.stop()
    row = outbox.get(conn, row_id)
    conn.close()
    assert row.status == "pending" and row.next_attempt_at > time.time() + 30
    assert row.last_error == f'mailer {box.command}: exit 75: sendmail: temporary failure, try later'


def test_a_hung_mailer_is_killed_and_retried(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    conn = history.connect(db)
    row_id = enqueue_mail(conn, ["ops@example.com"])
    marker = tmp_path / "started"
    policy = Policy(backoff_base=60, backoff_max=60, max_age_s=3600, mail_timeout=0.5)
    worker = DeliveryWorker(db, policy=policy, idle_poll_s=0.1, env={},
                            mailer=f"touch {marker}; sleep 60 & wait")
    worker.start()
    try:
        wait_until(lambda: outbox.get(conn, row_id).attempts == 1)
    finally:
        worker.stop()
    row = outbox.get(conn, row_id)
    conn.close()
    assert marker.exists() and row.status == "pending"
    assert row.last_error.endswith("still running after 0.5s: killed")


def test_no_mailer_installed_is_retried_with_a_clear_reason(tmp_path: Path) -> None:
    if os.access(mail.DEFAULT_SENDMAIL, os.X_OK):
        pytest.skip("this machine has a sendmail")
    db = tmp_path / "history.db"
    conn = history.connect(db)
    row_id = enqueue_mail(conn, ["ops@example.com"])
    worker = DeliveryWorker(db, policy=Policy(backoff_base=60, backoff_max=60), idle_poll_s=0.1, env={})
    worker.start()
    try:
        wait_until(lambda: outbox.get(conn, row_id).attempts == 1)
    finally:
        worker.stop()
    row = outbox.get(conn, row_id)
    conn.close()
    assert row.status == "pending"
    assert row.last_error.startswith("mailer /usr/sbin/sendmail cannot start: No such file or directory")


def test_a_supervisor_mails_with_its_mailer_even_after_the_log_is_pruned(tmp_path: Path, supervisors) -> None:
    """The message is built when the run ends: the supervisor's mailer fails while the run's log
    is deleted, and the mail still carries the output once the mailer works."""
    box = Mailbox(tmp_path, fail_first=1)
    (tmp_path / "crontab").write_text("MAILTO=ops@example.com\n# cronplus: name=report\n0 3 * * * echo the-output\n")
    sup = Supervisor(tmp_path, "", "--mailer", box.command,
                     env={"CRONPLUS_STATE_DIR": str(tmp_path / "state")})
    supervisors.append(sup)
    sup.wait_ready()
    from cronplus.service import control

    list(control.request(sup.state / "control.sock", {"cmd": "trigger", "job": "report", "wait": False}))
    wait_until(lambda: box.failures() == 1)
    shutil.rmtree(sup.state / "logs")
    wait_until(lambda: len(box.mails()) == 1, timeout=30)  # the outbox's backoff: 5 s, then 10 s
    assert sup.stop() == 0
    [got] = box.mails()
    assert got.argv == ["ops@example.com"] and got.body.startswith("the-output\n")
    assert "no mailer" not in sup.stderr


def test_a_supervisor_without_a_mailer_warns_once_at_start(tmp_path: Path, supervisors) -> None:
    if os.access(mail.DEFAULT_SENDMAIL, os.X_OK):
        pytest.skip("this machine has a sendmail")
    (tmp_path / "crontab").write_text("MAILTO=ops@example.com\n0 3 * * * echo hi\n")
    if os.environ.get(mail.MAILER_ENV):
        pytest.skip("$CRONPLUS_MAILER is set")
    sup = Supervisor(tmp_path, "")
    supervisors.append(sup)
    sup.wait_ready()
    assert sup.stop() == 0
    assert sup.stderr.count("no mailer: /usr/sbin/sendmail is not installed") == 1
