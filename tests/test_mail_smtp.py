"""The `smtp://HOST:PORT` mailer against a real SMTP server (aiosmtpd) on 127.0.0.1, port 0:
delivered with the envelope the message was built with; a 4xx is retried, a 5xx refusal fails
with the server's reason; a server that is down is retried."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from cronplus.alerts.delivery import DeliveryWorker, Policy
from cronplus.store import history, outbox
from tests.waiting import wait_until

FAST = Policy(backoff_base=0.05, backoff_max=0.2, max_age_s=3600, mail_timeout=5.0)


class Handler:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.tempfail = 0  # answer 451 to this many DATA commands first

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.tempfail:
            self.tempfail -= 1
            return "451 4.3.0 try again later"
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = Handler()
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            self.loop.create_server(lambda: SMTP(self.handler), "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def smtpd() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    if not server.loop.is_closed():
        server.close()



MESSAGE = 'From: "(Cron Daemon)" <cron@example.net>\nTo: ops@example.com\nSubject: Cron <alice@web1> true\n\nout\n'


def deliver(tmp_path: Path, mailer: str, recipients: list[str], *, policy: Policy = FAST,
            until: Callable[[outbox.OutboxRow], bool]) -> outbox.OutboxRow:
    db = tmp_path / "history.db"
    conn = history.connect(db)
    row_id = outbox.enqueue(conn, kind="mail", event="success", job="report", run_id=1,
                            target="mailto:" + ",".join(recipients), format="mail", secret_ref=None,
                            payload={"recipients": recipients, "message": MESSAGE, "sender": "cron@example.net"},
                            now=time.time())
    worker = DeliveryWorker(db, policy=policy, idle_poll_s=0.1, env={}, mailer=mailer)
    worker.start()
    try:
        wait_until(lambda: until(outbox.get(conn, row_id)))
    finally:
        worker.stop()
    row = outbox.get(conn, row_id)
    conn.close()
    return row


def test_mail_goes_to_the_smtp_server_with_its_envelope(tmp_path: Path, smtpd: SmtpServer) -> None:
    row = deliver(tmp_path, smtpd.url, ["ops@example.com", "dev@example.org"],
                  until=lambda r: r.status != "pending")
    assert row.status == "delivered"
    [(sender, rcpts, content)] = smtpd.handler.received
    assert sender == "cron@example.net" and rcpts == ["ops@example.com", "dev@example.org"]
    # The SMTP line ending is CRLF; the server keeps the line end before the final "."
    assert content.replace(b"\r\n", b"\n").rstrip(b"\n") == MESSAGE.encode().rstrip(b"\n")


def test_a_4xx_is_retried_until_the_server_takes_it(tmp_path: Path, smtpd: SmtpServer) -> None:
    smtpd.handler.tempfail = 2
    row = deliver(tmp_path, smtpd.url, ["ops@example.com"], until=lambda r: r.status != "pending")
    assert row.status == "delivered" and row.attempts == 3 and len(smtpd.handler.received) == 1


def test_a_5xx_refusal_fails_with_the_servers_reason(tmp_path: Path, smtpd: SmtpServer) -> None:
    row = deliver(tmp_path, smtpd.url, ["nobody@example.com"], until=lambda r: r.status != "pending")
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error == f"mailer {smtpd.url}: every recipient refused: 550 5.1.1 no such user here"


def test_a_server_that_is_down_is_retried(tmp_path: Path, smtpd: SmtpServer) -> None:
    url = smtpd.url
    smtpd.close()
    slow = Policy(backoff_base=60, backoff_max=60, max_age_s=3600, mail_timeout=5.0)
    row = deliver(tmp_path, url, ["ops@example.com"], policy=slow, until=lambda r: r.attempts >= 1)
    assert row.status == "pending" and row.last_error.startswith(f"mailer {url}: ")
    assert "refused" in row.last_error.lower()


def test_a_triggered_job_is_mailed_over_smtp_from_its_mailfrom(tmp_path: Path, smtpd: SmtpServer) -> None:
    from tests.test_mail import cronplus

    (tmp_path / "crontab").write_text(
        "MAILTO=ops@example.com\nMAILFROM=cron@example.net\n# cronplus: name=report\n0 3 * * * echo über\n")
    out = cronplus(tmp_path, "trigger", "report", env={"CRONPLUS_MAILER": smtpd.url})
    assert out.returncode == 0, out.stderr
    [(sender, rcpts, content)] = smtpd.handler.received
    assert sender == "cron@example.net" and rcpts == ["ops@example.com"]
    assert b"\r\n\r\n\xc3\xbcber\r\n-- cronplus: job report, run 1 attempt 1: success" in content
