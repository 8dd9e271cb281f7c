"""`cronplus alerts` as users run it, in-process with an environment of its own (tests/incli.py),
against a real receiver."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.alerts.alerting import new_payload
from cronplus.store import history, outbox
from tests import incli
from tests.http_receiver import Receiver

TOKEN = "T000SECRET/B000SECRET/XYZTOKENSECRET"


def cronplus(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> incli.Completed[str]:
    full_env = incli.base_env(HOME=str(tmp_path), CRONPLUS_STATE_DIR=str(tmp_path / "state"),
                              CRONPLUS_CRONTAB=str(tmp_path / "crontab"), **(env or {}))
    return incli.run(["alerts", *args], env=full_env)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def write_crontab(tmp_path: Path, url: str) -> None:
    (tmp_path / "crontab").write_text(
        f"# cronplus: name=backup alert={url} alert-format=slack\n"
        "0 3 * * * /opt/backup.sh\n"
        "# cronplus: name=quiet\n"
        "0 4 * * * /bin/true\n"
    )


def test_alerts_test_delivers_a_test_alert_synchronously_and_exits_0(tmp_path, rx) -> None:
    write_crontab(tmp_path, rx.url(f"/services/{TOKEN}"))
    result = cronplus(tmp_path, "--test", "backup")
    assert result.returncode == 0, result.stderr
    assert "delivered" in result.stdout and TOKEN not in result.stdout + result.stderr
    [request] = rx.requests
    body = request.json()
    assert "test alert" in body["text"] and body["blocks"][0]["type"] == "header"


def test_alerts_test_reports_a_refused_delivery_with_a_redacted_reason_and_exits_1(tmp_path, rx) -> None:
    rx.always(404)
    write_crontab(tmp_path, rx.url(f"/services/{TOKEN}"))
    result = cronplus(tmp_path, "--test", "backup")
    assert result.returncode == 1
    assert "failed: HTTP 404" in result.stderr and TOKEN not in result.stdout + result.stderr
    rx.stop()  # a receiver that is down: failed too, and not left queued for the supervisor
    result = cronplus(tmp_path, "--test", "backup")
    assert result.returncode == 1 and "connection refused" in result.stderr
    listing = cronplus(tmp_path, "--json")
    assert [json.loads(line)["status"] for line in listing.stdout.splitlines()] == ["failed", "failed"]


def test_alerts_test_names_a_job_without_target_or_an_unknown_job(tmp_path, rx) -> None:
    write_crontab(tmp_path, rx.url())
    result = cronplus(tmp_path, "--test", "quiet")
    assert result.returncode == 1 and "has no alert= target" in result.stderr
    result = cronplus(tmp_path, "--test", "bakup")
    assert result.returncode == 1 and "did you mean 'backup'" in result.stderr


def test_the_alerts_table_shows_deliveries_with_targets_redacted(tmp_path) -> None:
    conn = history.connect(tmp_path / "state" / "history.db")
    now = time.time()
    url = f"https://hooks.slack.com/services/{TOKEN}"
    for i, (event, target) in enumerate((("failure", url), ("recovery", "env:OPS_HOOK"))):
        row_id = outbox.enqueue(conn, kind="alert", event=event, job="backup", run_id=i, target=target, format="slack",
                                secret_ref=None, payload=new_payload({"event": event}, now=now), now=now)
    outbox.mark_failed(conn, row_id, error="HTTP 404 Not Found (permanent, not retried)", http_status=404)
    conn.close()
    table = cronplus(tmp_path)
    assert table.returncode == 0, table.stderr
    assert "https://hooks.slack.com/…" in table.stdout and "env:OPS_HOOK" in table.stdout
    assert "HTTP 404" in table.stdout and "SECRET" not in table.stdout
    lines = cronplus(tmp_path, "--json", "--status", "failed").stdout.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["recovery"]
    everything = cronplus(tmp_path, "--json").stdout
    assert "SECRET" not in everything and json.loads(everything.splitlines()[0])["status"] == "pending"


def test_alerts_with_no_database_yet_says_so_and_exits_0(tmp_path) -> None:
    result = cronplus(tmp_path)
    assert result.returncode == 0 and "no alert deliveries yet" in result.stderr
