"""`POST /api/v1/jobs/NAME/trigger` with `{"params": {...}}` on a real `cronplus run --http`:
the run gets CRONPLUS_PARAM_<K> and records them; bad ones are a 400 naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.web_supervisor import start_web

pytestmark = pytest.mark.e2e


def test_the_api_trigger_passes_params_to_the_run_and_refuses_bad_ones(supervisors, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    sup = start_web(supervisors, tmp_path, f"# cronplus: name=report\n0 0 1 1 * echo \"$CRONPLUS_PARAM_day\" > {seen}\n")
    headers = {"Authorization": f"Bearer {sup.token}", "Content-Type": "application/json"}
    reply = sup.request("POST", "/api/v1/jobs/report/trigger", headers=headers,
                        body=json.dumps({"params": {"day": "2026-12-01"}}))
    assert reply.status == 202, reply.body
    run = sup.wait_final(reply.json()["run_id"])
    assert run["status"] == "success" and run["params"] == {"day": "2026-12-01"}
    assert seen.read_text() == "2026-12-01\n"
    for params, said in (({"bad-key": "x"}, "'bad-key' is not a name"), ({"day": 3}, "parameters are names and strings"),
                         (["day"], "params must be a JSON object"), ({"v": "x" * 5000}, "at most 4096")):
        bad = sup.request("POST", "/api/v1/jobs/report/trigger", headers=headers, body=json.dumps({"params": params}))
        assert bad.status == 400, bad.body
        assert said in bad.json()["error"]
    assert len(sup.get("/api/v1/runs").json()["runs"]) == 1
