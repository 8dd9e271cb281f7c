"""`cronplus why` for a paused job's tick: the `paused` verdict (engine/explain.py step 5, before
the downtime check), from the pause the store keeps."""

from __future__ import annotations

from pathlib import Path

from tests.test_scheduler import ts
from tests.test_why import run, scenario, verdicts, why, why_json


def test_a_tick_stepped_over_while_paused_is_explained_as_paused_with_who_and_since(tmp_path: Path) -> None:
    async def main() -> None:
        w = scenario(tmp_path, "# cronplus: name=a\n* * * * * true\n", ts("2026-03-02T09:59:30"))
        w.sched.pause(["a"], "alice")
        for t in ("2026-03-02T10:00:00", "2026-03-02T10:01:00"):
            w.clock.jump(ts(t) - w.clock.time())
            w.sched.step(w.clock.time())
        w.history.close()

    run(main())
    answer = why_json(tmp_path, "a", "--at", "2026-03-02T10:01:00+00:00")
    assert verdicts(answer) == ["paused"]
    finding = answer["findings"][0]
    assert (finding["by"], finding["since"], finding["everything"]) == ("alice", "2026-03-02T09:59:30+00:00", False)
    text = why(tmp_path, "a", "--at", "2026-03-02T10:01:00+00:00").stdout
    assert text.splitlines()[0] == "a: paused"
    assert "paused since 2026-03-02 09:59:30+00:00 (by alice)" in text and "cronplus resume JOB" in text
    before = why_json(tmp_path, "a", "--at", "2026-03-02T09:59:00+00:00")  # a tick before the pause: not "paused"
    assert "paused" not in verdicts(before)
