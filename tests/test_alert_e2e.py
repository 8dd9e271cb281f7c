"""End to end with the real command: `cronplus trigger` runs a job, the alert reaches a real
receiver (the in-process worker flushes due alerts before the command exits)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http_receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def cronplus(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRONPLUS_STATE_DIR": str(tmp_path / "state"), "CRONPLUS_CRONTAB": str(tmp_path / "crontab"),
           "CRONPLUS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "cronplus", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_a_triggered_failing_job_alerts_once_and_its_recovery_follows(tmp_path, rx) -> None:
    flag = tmp_path / "ok"
    (tmp_path / "crontab").write_text(
        f"# cronplus: name=flaky alert={rx.url('/hook/SECRETPATH')}\n"
        f"0 3 * * * echo working; test -f {flag} || {{ echo 'disk full' >&2; exit 3; }}\n"
    )
    first = cronplus(tmp_path, "trigger", "flaky")
    second = cronplus(tmp_path, "trigger", "flaky")
    flag.write_text("")
    third = cronplus(tmp_path, "trigger", "flaky")
    got = rx.wait_for(2, timeout=10)
    assert [r.json()["data"]["event"] for r in got] == ["failure", "recovery"]
    failure = got[0].json()["data"]
    assert failure["exit_code"] == 3 and "disk full" in failure["output_tail"]
    assert got[1].json()["data"]["incident"]["failed_runs"] == 2
    assert all(r.headers["webhook-signature"].startswith("v1,") for r in got)
    table = cronplus(tmp_path, "alerts")
    assert table.returncode == 0 and table.stdout.count("delivered") == 2
    for out in (first, second, third, table):
        assert "SECRETPATH" not in out.stdout + out.stderr
