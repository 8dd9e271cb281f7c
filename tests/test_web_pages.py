"""The pages (cronplus/web/pages/) rendered against real stores: a SQLite history written by
History, a crontab from the parser, outbox rows enqueued by the store (tests/pages_site.py).

Every page answers 200 with the CSP and no inline script or style; hostile job names, reasons
and output render as text; the job page's filters and pagination; the run page's attempts and
live follow; the graph's layers; the alert targets redacted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.service.commands import RunState
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History
from tests.pages_site import StoreSite, get, text

NOW = datetime(2026, 3, 4, 12, 0, 30, tzinfo=UTC).timestamp()
HOSTILE = "<script>alert('x')</script>\"'&" + "y" * 300
SLACK = "https://hooks.slack.com/services/T0/B0/SLACKSECRET42"
CRONTAB = f"""\
# cronplus: name=extract retries=2 timeout=10m alert={SLACK}
*/5 * * * * curl -s https://user:pw@api.example.com/pull?token=CMDSECRET99
# cronplus: name=transform after=extract
*/5 * * * * echo transform
# cronplus: name=load after=transform
*/5 * * * * echo load
# cronplus: name=report after=extract ping=https://hc-ping.com/PINGSECRET77
0 6 * * * echo report
# cronplus: name=lonely
@reboot echo lonely
"""


class Runs:
    """Rows written through History as the supervisor writes them, with log files of output."""

    def __init__(self, hist: History, logs: Path) -> None:
        self.hist, self.logs = hist, logs

    def add(self, job: str, *, start: float, seconds: float | None, status: RunStatus, exit_code: int | None = 0,
            output: bytes | None = None, attempt: int = 1, tick: float | None = None, reason: str | None = None,
            final: bool = True, signal: int | None = None) -> int:
        log = None
        if output is not None:
            self.logs.mkdir(exist_ok=True)
            log = self.logs / f"{len(list(self.logs.iterdir()))}.log"
            log.write_bytes(output)
        run_id = self.hist.start_run(job=job, attempt=attempt, trigger=Trigger.SCHEDULE,
                                     scheduled_at=start if tick is None else tick, tz=None, started_at=start,
                                     log_path=str(log) if log else None, owner="test")
        if seconds is not None:
            self.hist.finish_run(run_id, status=status, ended_at=start + seconds, exit_code=exit_code,
                                 reason=reason, final=final, signal=signal)
        return run_id


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StoreSite]:
    db = tmp_path / "state" / "history.db"
    hist = History(db)
    runs = Runs(hist, tmp_path / "logs")
    ids: dict[str, int] = {}
    for i in range(30):  # every 5 minutes for the last 2.5 hours
        start = NOW - 9000 + i * 300
        status = RunStatus.FAILED if i % 7 == 3 else RunStatus.SUCCESS
        ids[f"extract{i}"] = runs.add("extract", start=start, seconds=20 + i, status=status,
                                      exit_code=3 if status is RunStatus.FAILED else 0,
                                      reason="exit 3" if status is RunStatus.FAILED else None, output=b"pulled\n")
        runs.add("transform", start=start + 60, seconds=5, status=RunStatus.SUCCESS)
    ids["not_run"] = hist.record_not_run(job="load", status=RunStatus.UPSTREAM_FAILED, trigger=Trigger.SCHEDULE,
                                         scheduled_at=NOW - 3600, tz=None, at=NOW - 3500,
                                         reason="upstream transform failed").run_id
    tick = NOW - 600
    ids["try1"] = runs.add("report", start=tick, seconds=2, status=RunStatus.TIMEOUT, exit_code=None, tick=tick,
                           reason="timeout after 2s", final=False, signal=15)
    ids["try2"] = runs.add("report", start=tick + 30, seconds=1, status=RunStatus.SUCCESS, attempt=2, tick=tick,
                           output="déjà vu\n".encode())
    ids["load"] = runs.add("load", start=NOW - 40, seconds=None, status=RunStatus.RUNNING,
                           output=b"line 1\nline 2\n")
    ids["hostile"] = runs.add(HOSTILE, start=NOW - 30, seconds=None, status=RunStatus.RUNNING,
                              output=b"<script>alert(1)</script><img src=x onerror=alert(2)>\n")
    ids["hostile_done"] = runs.add(HOSTILE, start=NOW - 3000, seconds=3, status=RunStatus.FAILED, exit_code=1,
                                   reason="<b>reason</b>", output=b"</pre><script>evil()</script>")
    hist.enqueue_outbox(kind="alert", event="failure", job="extract", run_id=ids["extract3"], target=SLACK,
                        format="slack", secret_ref=None, payload={}, now=NOW - 100)
    hist.enqueue_outbox(kind="ping", event="success", job="report", run_id=ids["try2"],
                        target="https://hc-ping.com/PINGSECRET77", format="json", secret_ref=None, payload={},
                        now=NOW - 50)
    hist.enqueue_outbox(kind="alert", event="failure", job=HOSTILE, run_id=ids["hostile_done"], target="env:OPS_HOOK",
                        format="json", secret_ref=None, payload={}, now=NOW - 40)
    from cronplus.store import outbox

    outbox.mark_failed(hist.conn, 2, error="POST https://hc-ping.com/PINGSECRET77 refused", http_status=500)
    outbox.mark_delivered(hist.conn, 1, now=NOW - 90, http_status=200)
    hist.close()
    crontab = parse_crontab(CRONTAB, path=str(tmp_path / "crontab"), system=False)
    in_flight = [RunState(job="load", run_id=ids["load"], attempt=1, state="active", trigger="schedule",
                          scheduled_at=datetime.fromtimestamp(NOW - 40, UTC), started_at=NOW - 40),
                 RunState(job="transform", run_id=None, attempt=1, state="waiting", trigger="schedule",
                          scheduled_at=datetime.fromtimestamp(NOW - 30, UTC), started_at=None)]
    s = StoreSite(db, crontab, now=NOW, runs=in_flight, warnings=[f"{tmp_path}/crontab:3:1: <warn> & check"])
    s.ids = ids  # type: ignore[attr-defined]
    yield s
    s.close()


def ids(site: StoreSite) -> dict[str, int]:
    return site.ids  # type: ignore[attr-defined,no-any-return]


def pages(site: StoreSite) -> list[str]:
    return ["/", "/jobs/extract", "/jobs/report", "/jobs/lonely", "/jobs/" + quote(HOSTILE, safe=""),
            f"/runs/{ids(site)['try1']}", f"/runs/{ids(site)['load']}", f"/runs/{ids(site)['hostile']}",
            f"/runs/{ids(site)['hostile_done']}", f"/runs/{ids(site)['not_run']}", "/graph", "/timeline", "/alerts", "/alerts?status=failed"]


def test_every_page_answers_200_with_a_strict_csp_and_no_inline_script_or_style(site: StoreSite) -> None:
    for path in pages(site):
        response = get(site, path)
        assert response.status == 200, path
        assert response.content_type == "text/html; charset=utf-8"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        html = text(response)
        assert html.startswith("<!doctype html>")
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], path  # every script is a file
        assert " style=" not in html and "<style" not in html, path
        assert re.search(r"<[^>]*\son[a-z]+=", html) is None, path  # no event handler attribute in a tag
        assert 'href="/static/cronplus.css"' in html and 'src="/static/cronplus.js"' in html


def test_hostile_names_reasons_and_output_render_as_text(site: StoreSite) -> None:
    escaped_name = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&#x27;&amp;" + "y" * 300
    for path in pages(site):
        html = text(get(site, path))
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>reason" not in html, path
        assert "</pre><script>" not in html and "evil()</script>" not in html, path
    assert escaped_name in text(get(site, "/"))  # a job removed from the crontab while it runs is listed
    run = text(get(site, f"/runs/{ids(site)['hostile']}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in run
    done = text(get(site, f"/runs/{ids(site)['hostile_done']}"))
    assert "&lt;/pre&gt;&lt;script&gt;evil()&lt;/script&gt;" in done and "&lt;b&gt;reason&lt;/b&gt;" in done
    job = text(get(site, "/jobs/" + quote(HOSTILE, safe="")))
    assert escaped_name in job and "not in the crontab any more" in job
    assert 'href="/jobs/%3Cscript%3E' in text(get(site, "/alerts"))  # links carry the name URL-quoted


def test_no_secret_reaches_a_page(site: StoreSite) -> None:
    for path in pages(site):
        html = text(get(site, path))
        for secret in ("SLACKSECRET42", "PINGSECRET77", "CMDSECRET99", "user:pw"):
            assert secret not in html, (path, secret)
    alerts = text(get(site, "/alerts"))
    assert "https://hooks.slack.com/…" in alerts and "https://hc-ping.com/…" in alerts and "env:OPS_HOOK" in alerts
    job = text(get(site, "/jobs/extract"))
    assert "https://hooks.slack.com/…" in job and "curl" not in job  # the command needs the token
    signed_in = text(get(site, "/jobs/extract", authenticated=True))
    assert "curl -s https://api.example.com/…" in signed_in and "CMDSECRET99" not in signed_in


def test_the_jobs_page_shows_strips_last_and_next_runs_what_runs_and_the_reload(site: StoreSite) -> None:
    html = text(get(site, "/"))
    row = html[html.index('href="/jobs/extract"'):html.index('href="/jobs/transform"')]
    cells = re.findall(r'<a class="cell st-(\w+)" href="/runs/(\d+)"', row)
    assert len(cells) == 14  # the strip: the last 14 runs, oldest first
    assert [int(c[1]) for c in cells] == sorted(int(c[1]) for c in cells)
    assert ("failed", str(ids(site)["extract24"])) in cells and cells[-1] == ("success", str(ids(site)["extract29"]))
    assert "✗</a>" in row and "✓</a>" in row  # a symbol in every square, not colour alone
    nxt = re.search(r'<time datetime="([^"]+)" class="countdown"', row)  # next tick, counted down
    assert nxt is not None and datetime.fromisoformat(nxt.group(1)).timestamp() == NOW + 270
    assert "in 4min 30s" in row
    assert "at boot" in html  # @reboot has no next run
    now = html[html.index("<h2>Now</h2>"):]
    assert f'href="/runs/{ids(site)["load"]}"' in now and "waiting on upstream" in now
    assert "&lt;warn&gt; &amp; check" in html and "1 lint warning" in html
    assert "crontab loaded" in html and '<a href="/">6 jobs</a>' in html  # 5 in the crontab, 1 removed yet running
    many = [RunState(job="extract", run_id=i, attempt=1, state="active", trigger="schedule",
                     scheduled_at=datetime.fromtimestamp(NOW, UTC), started_at=NOW) for i in range(1, 81)]
    site.runs = tuple(many)
    crowded = text(get(site, "/"))
    assert crowded.count('<li><a href="/jobs/extract">') == 50 and "and 30 more" in crowded
    site._stats = type(site._stats)(reload_ok=False)
    assert "the last reload failed" in text(get(site, "/"))


def test_the_job_page_filters_by_status_and_since_and_pages_back(site: StoreSite) -> None:
    def run_ids(html: str) -> list[int]:
        table = html[html.index('<table class="runs"'):]
        return [int(n) for n in re.findall(r'<td data-label="Run"><a href="/runs/(\d+)"', table)]

    every = run_ids(text(get(site, "/jobs/extract")))
    assert len(every) == 30 and every == sorted(every, reverse=True)  # newest first
    failed = run_ids(text(get(site, "/jobs/extract?status=failed")))
    assert failed == [ids(site)[f"extract{i}"] for i in (24, 17, 10, 3)]
    recent = run_ids(text(get(site, "/jobs/extract?since=-30min")))  # since <= start: NOW-1800 is in
    assert recent == [ids(site)[f"extract{i}"] for i in (29, 28, 27, 26, 25, 24)]
    bad = get(site, "/jobs/extract?since=someday")
    assert bad.status == 400 and "someday" in text(bad)


def test_the_job_page_pages_fifty_runs_at_a_time(site: StoreSite) -> None:
    hist = History(site.db_path)
    runs = Runs(hist, site.db_path.parent / "more-logs")
    made = [runs.add("lonely", start=NOW - 100_000 + i, seconds=1, status=RunStatus.SUCCESS) for i in range(120)]
    hist.close()
    first = text(get(site, "/jobs/lonely"))
    older = re.search(r'<a href="(/jobs/lonely\?before=\d+)">Older runs', first)
    assert older is not None
    page2 = text(get(site, older.group(1).replace("&amp;", "&")))
    shown1 = [int(n) for n in re.findall(r'data-label="Run"><a href="/runs/(\d+)"', first)]
    shown2 = [int(n) for n in re.findall(r'data-label="Run"><a href="/runs/(\d+)"', page2)]
    assert shown1 == made[::-1][:50] and shown2 == made[::-1][50:100]
    assert "Newest runs" in page2


def test_the_job_page_shows_the_next_runs_options_edges_and_a_duration_chart(site: StoreSite) -> None:
    html = text(get(site, "/jobs/extract"))
    fires = [datetime.fromisoformat(t).timestamp() for t in re.findall(r'<li><time datetime="([^"]+)"', html)]
    assert fires == [NOW + 270 + k * 300 for k in range(5)]  # the next 5 ticks (in the local zone's offset)
    assert "<dt>retries</dt><dd><code>2</code></dd>" in html and "<dt>timeout</dt><dd><code>10min</code></dd>" in html
    downstream = html[html.index("Before (downstream)"):]
    assert 'href="/jobs/transform"' in downstream.split("</dd>")[0] and 'href="/jobs/report"' in downstream.split("</dd>")[0]
    chart = html[html.index("<svg"):html.index("</svg>")]
    assert chart.count('class="bar st-') == 30 and chart.count("bar st-failed") == 4
    assert chart.count('<text class="sym"') == 4  # a symbol above every bar that did not succeed


def test_run_now_asks_for_the_token_then_posts_to_the_trigger_action(site: StoreSite) -> None:
    anonymous = text(get(site, "/jobs/report"))
    assert 'action="/login"' in anonymous and 'name="token"' in anonymous and "/jobs/report/trigger" not in anonymous
    signed_in = text(get(site, "/jobs/report", authenticated=True))
    assert '<form class="run-now" method="post" action="/jobs/report/trigger">' in signed_in
    from cronplus.web.pages.routes import ROUTES

    assert [r.action for r in ROUTES if r.pattern == "/jobs/{name}/trigger"] == [True]
    response = get(site, "/jobs/report/trigger", method="POST", authenticated=True)
    assert response.status == 303 and site.triggered == ["report"]
    new = site.history().get_run(int(response.headers["Location"].rsplit("/", 1)[1]))
    assert new is not None and (new.job, new.trigger, new.status) == ("report", Trigger.MANUAL, RunStatus.RUNNING)


def test_the_run_page_lists_the_attempts_of_its_tick_and_says_why(site: StoreSite) -> None:
    html = text(get(site, f"/runs/{ids(site)['try1']}"))
    attempts = html[html.index("<h2>Attempts</h2>"):]
    assert f'href="/runs/{ids(site)["try1"]}">1<' in attempts and f'href="/runs/{ids(site)["try2"]}">2<' in attempts
    assert "timeout after 2s" in html and "SIGTERM (15)" in html and "◷" in html
    assert "No output kept" in html
    assert "déjà vu" in text(get(site, f"/runs/{ids(site)['try2']}"))
    never = text(get(site, f"/runs/{ids(site)['not_run']}"))  # decided, never started: no times, no log
    assert "⇡" in never and "upstream failed" in never and "upstream transform failed" in never
    assert "<dt>Started</dt><dd>-</dd>" in never and "No output kept" in never


def test_a_running_run_is_followed_through_its_tail(site: StoreSite) -> None:
    run_id = ids(site)["load"]
    html = text(get(site, f"/runs/{run_id}"))
    assert f'data-follow="/runs/{run_id}/tail" data-offset="14"' in html and "line 1\nline 2\n" in html
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in html
    assert 'class="refresh"' not in html  # an in-place refresh would cut the follow off its <pre>
    assert 'class="refresh"' in text(get(site, "/"))
    log = site.history().get_run(run_id).log_path  # type: ignore[union-attr]
    with open(str(log), "ab") as f:
        f.write(b"line 3\n")
    tail = get(site, f"/runs/{run_id}/tail?offset=14")
    assert tail.body == b"line 3\n" and tail.headers["X-Run-Status"] == "running"
    assert tail.headers["X-Next-Offset"] == "21"
    finished = text(get(site, f"/runs/{ids(site)['hostile_done']}"))
    assert "data-follow" not in finished and "http-equiv" not in finished
    assert get(site, "/runs/999999").status == 404 and get(site, "/runs/abc").status == 404
    assert get(site, "/runs/999999/tail").status == 404


def test_the_graph_places_jobs_in_columns_by_depth_coloured_by_last_status(site: StoreSite) -> None:
    html = text(get(site, "/graph"))
    svg = html[html.index("<svg"):html.index("</svg>")]
    boxes = dict((name, float(x)) for x, name in re.findall(
        r'<rect class="node st-\w+" x="([\d.]+)".*?<text class="label"[^>]*>([^<]+)</text>', svg))
    assert boxes["extract"] < boxes["transform"] == boxes["report"] < boxes["load"]
    assert 'class="node st-running"' in svg  # load runs now
    assert re.search(r'class="node st-success"[^>]*><title>report', svg)
    assert svg.count('class="edge"') == 3 and "extract → transform" in svg
    assert "1 job without" in html and 'href="/jobs/lonely"' in html.split("</svg>")[1]


def test_the_timeline_draws_a_row_per_job_and_a_bar_per_run_of_the_last_day(site: StoreSite) -> None:
    html = text(get(site, "/timeline"))
    svg = html[html.index("<svg"):html.index("</svg>")]
    labels = re.findall(r'<text class="label"[^>]*>([^<]+)</text>', svg)
    assert labels[:4] == ["extract", "transform", "load", "report"]
    assert svg.count('class="bar st-') == 30 + 30 + 1 + 2 + 2  # a run that never started has no bar
    assert 'class="now"' in svg
    earlier = text(get(site, f"/timeline?end={NOW - 86400:.0f}"))
    assert "No runs in this window" in earlier and "next 24 h" in earlier
    hour = text(get(site, "/timeline?hours=1"))
    svg = hour[hour.index("<svg"):hour.index("</svg>")]
    assert svg.count('class="bar st-') == 12 + 12 + 1 + 2 + 2  # the runs of the last hour (hostile_done too)
    assert len(re.findall(r'<line class="grid"', svg)) == 6  # a tick every 10 minutes
    assert 'href="/timeline?hours=1&amp;end=' in hour and "previous 1 h" in hour
    for bad in ("nan", "inf", "-1e400", "x"):
        assert 'class="now"' in text(get(site, f"/timeline?end={bad}")), bad  # the last 24 h instead


def test_the_alerts_page_filters_by_state(site: StoreSite) -> None:
    html = text(get(site, "/alerts"))
    assert html.count("<tr><td") == 3
    failed = text(get(site, "/alerts?status=failed"))
    assert failed.count("<tr><td") == 1 and "POST https://hc-ping.com/… refused" in failed
    assert "1 delivered" in html and "1 failed" in html and "1 pending" in html


def test_static_assets_are_served_from_the_package_and_nothing_else(site: StoreSite) -> None:
    css = get(site, "/static/cronplus.css")
    assert css.status == 200 and css.content_type.startswith("text/css") and b"--failed" in css.body  # type: ignore[operator]
    js = get(site, "/static/cronplus.js")
    assert js.status == 200 and js.content_type.startswith("text/javascript")
    assert get(site, "/static/..%2Fhttp.py").status == 404 and get(site, "/static/nope.css").status == 404
    assert get(site, "/jobs/nosuch").status == 404


def test_a_refused_run_now_says_why_and_offers_to_force_it(site: StoreSite) -> None:
    site.refuse = "report: upstream extract has not run for this tick (--force runs it anyway)"
    refused = get(site, "/jobs/report/trigger", method="POST", authenticated=True)
    html = text(refused)
    assert refused.status == 409 and "upstream extract has not run" in html and site.triggered == []
    assert "http-equiv" not in html and 'data-refresh=""' in html  # reloading a POST's URL would not show the job
    assert '<input type="hidden" name="force" value="1"><button type="submit" class="force">' in html
    forced = get(site, "/jobs/report/trigger", method="POST", authenticated=True, body=b"force=1")
    assert forced.status == 303 and site.triggered == ["report"]
    unknown = get(site, "/jobs/nosuch/trigger", method="POST", authenticated=True)
    assert unknown.status == 404


def test_the_jobs_page_shows_a_hundred_jobs_a_page_and_filters_by_name_and_failing(tmp_path: Path) -> None:
    text_ = "".join(f"# cronplus: name=job{i:03}\n*/5 * * * * echo {i}\n" for i in range(120))
    db = tmp_path / "state" / "history.db"
    hist = History(db)
    runs = Runs(hist, tmp_path / "logs")
    runs.add("job007", start=NOW - 60, seconds=1, status=RunStatus.FAILED, exit_code=1)
    runs.add("job110", start=NOW - 60, seconds=1, status=RunStatus.SUCCESS)
    hist.close()
    site = StoreSite(db, parse_crontab(text_, path=str(tmp_path / "crontab"), system=False), now=NOW)
    try:
        def listed(url: str) -> list[str]:
            return re.findall(r'<a class="job" href="/jobs/(job\d+)"', text(get(site, url)))

        first = text(get(site, "/"))
        assert listed("/") == [f"job{i:03}" for i in range(100)] and "page 1 of 2" in first
        assert 'href="/?page=2"' in first and "120 jobs" in first
        assert listed("/?page=2") == [f"job{i:03}" for i in range(100, 120)]
        assert listed("/?q=JOB11") == [f"job{i:03}" for i in range(110, 120)]
        assert listed("/?show=failing") == ["job007"] and listed("/?q=zzz") == []
    finally:
        site.close()


def test_every_static_asset_is_package_data() -> None:
    """A wheel ships what pyproject's package-data names: each served asset must match it."""
    import tomllib
    from fnmatch import fnmatch

    from cronplus.web.pages.static import TYPES

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cronplus.web"]
    for name in TYPES:
        assert (root / "cronplus" / "web" / "static" / name).is_file(), name
        assert any(fnmatch(f"static/{name}", g) for g in globs), name


def test_the_timeline_pages_a_hundred_jobs_and_draws_a_run_that_began_before_the_day(tmp_path: Path) -> None:
    text_ = "".join(f"# cronplus: name=job{i:03}\n*/5 * * * * echo {i}\n" for i in range(120))
    db = tmp_path / "state" / "history.db"
    hist = History(db)
    runs = Runs(hist, tmp_path / "logs")
    long_one = runs.add("job000", start=NOW - 86400 - 7200, seconds=3 * 3600, status=RunStatus.SUCCESS)
    runs.add("job001", start=NOW - 86400 - 7200, seconds=60, status=RunStatus.SUCCESS)  # ended before the day
    for i in range(120):
        runs.add(f"job{i:03}", start=NOW - 3600 + i, seconds=5, status=RunStatus.SUCCESS)
    hist.close()
    site = StoreSite(db, parse_crontab(text_, path=str(tmp_path / "crontab"), system=False), now=NOW)
    try:
        first = text(get(site, "/timeline"))
        labels = re.findall(r'<text class="label"[^>]*>(job\d+)</text>', first)
        assert labels == [f"job{i:03}" for i in range(100)] and "jobs 1 to 100 of 120" in first
        assert f'<a href="/runs/{long_one}"><rect class="bar st-success" x="150"' in first  # clipped at the day's start
        assert first.count('class="bar st-') == 101
        second = text(get(site, "/timeline?page=2"))
        assert re.findall(r'<text class="label"[^>]*>(job\d+)</text>', second) == [f"job{i:03}" for i in range(100, 120)]
    finally:
        site.close()


def test_the_timeline_of_a_clock_set_back_still_shows_the_day_s_runs(site: StoreSite) -> None:
    """Runs stamped after now (the supervisor's clock went back a week) are not in the window;
    the day's runs still are, however many newer rows come first (the walk from the newest
    gives up after SCAN rows and the time index answers: bench_pages measured 12.7 s without)."""
    from cronplus.store.api import RunStart
    from cronplus.web.pages import timeline

    hist = History(site.db_path)
    hist.start_runs([RunStart(job="extract", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=NOW + 7 * 86400 + i,
                              tz=None, started_at=NOW + 7 * 86400 + i, log_path=None, owner="test")
                     for i in range(timeline.SCAN + 10)])  # more than the walk from the newest reads
    hist.close()
    html = text(get(site, "/timeline"))
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert svg.count('class="bar st-') == 30 + 30 + 1 + 2 + 2


def test_the_longest_name_and_a_hostile_command_render_escaped_and_whole_where_it_matters(tmp_path: Path) -> None:
    long_name = "n" * 50 + "." + "m" * 49  # the parser's longest (a 300-character one comes only from history: above)
    crontab = f"# cronplus: name={long_name}\n* * * * * echo \"<script>alert('c')</script>\" 'q\"uote' && true\n"
    db = tmp_path / "state" / "history.db"
    History(db).close()
    site = StoreSite(db, parse_crontab(crontab, path=str(tmp_path / "crontab"), system=False), now=NOW)
    try:
        jobs = text(get(site, "/"))
        assert f'title="{long_name}"' in jobs and long_name[:39] + "…" in jobs  # clipped, whole on hover
        job = text(get(site, "/jobs/" + long_name, authenticated=True))
        assert f"<h1>{long_name}</h1>" in job and "<script>alert" not in job
        assert "echo &quot;&lt;script&gt;alert(&#x27;c&#x27;)&lt;/script&gt;&quot; &#x27;q&quot;uote&#x27; &amp;&amp; true" in job
    finally:
        site.close()
