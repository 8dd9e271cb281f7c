"""The web pages show a run queued for a pool slot as such (the supervisor's snapshot gives its
pool and place in line), on the jobs page's "Now" list and in the job's row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cronplus.crontab.parser import parse_crontab
from cronplus.service.commands import RunState
from cronplus.store.history import History
from tests.pages_site import StoreSite, get, text

NOW = 1_780_000_000.0


def test_a_run_queued_for_a_pool_is_shown_with_its_pool_and_place_in_line(tmp_path: Path) -> None:
    crontab = parse_crontab("# cronplus-pools: gpu=1\n# cronplus: name=train pool=gpu\n0 2 * * * true\n"
                            "# cronplus: name=tune pool=gpu\n0 3 * * * true\n", path=str(tmp_path / "crontab"), system=False)
    History(tmp_path / "history.db").close()
    tick = datetime.fromtimestamp(NOW, UTC)
    runs = (RunState(job="train", run_id=1, attempt=1, state="active", trigger="manual", scheduled_at=tick, started_at=NOW),
            RunState(job="tune", run_id=None, attempt=1, state="queued", trigger="manual", scheduled_at=tick,
                     started_at=None, pool="pool gpu", ahead=0))
    site = StoreSite(tmp_path / "history.db", crontab, now=NOW, runs=runs)
    try:
        html = text(get(site, "/"))
    finally:
        site.close()
    now = html[html.index("<h2>Now</h2>"):]
    assert "queued for pool gpu (0 ahead)" in now
    row = html[html.index('href="/jobs/tune"'):]
    row = row[:row.index("</tr>")]  # the job's row of the table
    assert '<td data-label="Now"><span class="badge st-waiting"><span class="sym">…</span> queued for pool gpu (0 ahead)' in row
    assert "queued (overlap)" not in html
