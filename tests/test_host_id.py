"""`cronplus run --host-id ID` (or $CRONPLUS_HOST_ID) names the supervisor in a cluster: the
runs it inserts carry that host, its owner id starts with it; a bad id is one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.incli import base_env, run
from tests.test_faults_restart import Shifted, offset_to_next_minute
from tests.waiting import wait_until


def test_the_runs_of_a_supervisor_started_with_host_id_carry_that_host(shifted, tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=hello\n* * * * * echo hi\n")
    offset, _tick = offset_to_next_minute(lead=3.0)
    sup = Shifted(tmp_path, offset, "--host-id", "box-a")
    shifted.append(sup)
    sup.wait_ready()

    def ran() -> list[dict[str, object]]:
        result = run(["--state-dir", str(sup.state), "log", "--json"], env=base_env())
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    wait_until(lambda: any(r["status"] == "success" for r in ran()), 90, "the tick's run")
    assert {r["host"] for r in ran()} == {"box-a"}
    sup.stop()


def test_a_host_id_with_a_space_is_one_line_naming_the_option(tmp_path: Path) -> None:
    result = run(["--state-dir", str(tmp_path / "state"), "run", "--host-id", "box a"], env=base_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cronplus run: --host-id: 'box a' is not a host id (printable, no spaces, at most 200 characters)"]


def test_the_host_id_comes_from_the_environment_when_no_option_gives_it(tmp_path: Path) -> None:
    result = run(["--state-dir", str(tmp_path / "state"), "run"], env=base_env(CRONPLUS_HOST_ID="bad\tid"))
    assert result.returncode == 2
    assert "CRONPLUS_HOST_ID: 'bad\\tid' is not a host id" in result.stderr
