"""`cronplus backfill` without a supervisor, in-process (tests/incli.py): the runs, the progress
lines, resuming, --dry-run, --json, and the one-line refusals (reversed range, --yes, unknown job)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests import incli

CRONTAB = ("# cronplus: name=a\n0 * * * * case $CRONPLUS_SCHEDULED_TIME in *T01:*) test -e {dir}/fixed || exit 1;; esac\n"
           "# cronplus: name=b after=a\n0 * * * * true\n")
RANGE = ["--from", "2026-01-01T00:00Z", "--to", "2026-01-01T02:00Z"]


def cronplus(tmp_path: Path, *args: str, text: str = CRONTAB) -> incli.Completed[str]:
    crontab = tmp_path / "crontab"
    if not crontab.exists():
        crontab.write_text(text.format(dir=tmp_path))
    env = incli.base_env(HOME=str(tmp_path))
    return incli.run(["--crontab", str(crontab), "--state-dir", str(tmp_path / "state"), *args], env=env)


def rows(tmp_path: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(tmp_path / "state" / "history.db")
    try:
        return [(job, status, trigger, at) for job, status, trigger, at in conn.execute(
            "SELECT job, status, trigger, strftime('%H:%M', scheduled_at, 'unixepoch') FROM runs ORDER BY run_id")]
    finally:
        conn.close()


def test_without_a_supervisor_backfill_runs_the_ticks_here_with_progress_and_exits_1_on_a_failed_tick(tmp_path: Path) -> None:
    out = cronplus(tmp_path, "backfill", "a", *RANGE)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("backfill of a: 3 tick(s) from 2026-01-01T00:00:00+00:00 to 2026-01-01T02:00:00+00:00, "
                        "1 at a time (no supervisor running)")
    assert "1/3 ticks done, 0 failed (2026-01-01T00:00:00+00:00 success, run 1)" in lines
    assert "2/3 ticks done, 1 failed (2026-01-01T01:00:00+00:00 failed, run 3)" in lines
    assert "a: run 3 failed, exit 1 in " in out.stdout and "b: run 4 upstream_failed (upstream a failed" in out.stdout
    assert lines[-1] == "backfill of a done: 3 tick(s) run, 1 failed"
    assert rows(tmp_path) == [("a", "success", "backfill", "00:00"), ("b", "success", "backfill", "00:00"),
                              ("a", "failed", "backfill", "01:00"), ("b", "upstream_failed", "backfill", "01:00"),
                              ("a", "success", "backfill", "02:00"), ("b", "success", "backfill", "02:00")]


def test_a_second_backfill_runs_only_the_ticks_not_yet_successful(tmp_path: Path) -> None:
    assert cronplus(tmp_path, "backfill", "a", *RANGE).returncode == 1
    (tmp_path / "fixed").touch()
    out = cronplus(tmp_path, "backfill", "a", *RANGE)
    assert out.returncode == 0, out.stderr
    assert "1 tick(s) from 2026-01-01T00:00:00+00:00 to 2026-01-01T02:00:00+00:00, 2 already succeeded (skipped; " \
           "--rerun runs them)" in out.stdout
    assert rows(tmp_path)[6:] == [("a", "success", "backfill", "01:00"), ("b", "success", "backfill", "01:00")]
    assert cronplus(tmp_path, "backfill", "a", *RANGE, "--rerun").returncode == 0
    assert len(rows(tmp_path)) == 14


def test_dry_run_lists_the_ticks_to_run_and_those_skipped_with_why_and_runs_nothing(tmp_path: Path) -> None:
    out = cronplus(tmp_path, "backfill", "a", *RANGE, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "state" / "history.db").exists()
    assert cronplus(tmp_path, "backfill", "a", "--from", "2026-01-01T00:00Z", "--to", "2026-01-01T00:00Z").returncode == 0
    out = cronplus(tmp_path, "backfill", "a", *RANGE, "--dry-run")
    assert out.stdout.splitlines() == [
        "2026-01-01T00:00:00+00:00  skip: run 1 already succeeded (--rerun runs it)",
        "2026-01-01T01:00:00+00:00  run", "2026-01-01T02:00:00+00:00  run",
        "2 tick(s) to run, 1 skipped (dry run: nothing ran)"]
    assert len(rows(tmp_path)) == 2
    out = cronplus(tmp_path, "backfill", "a", *RANGE, "--dry-run", "--json")
    assert [json.loads(line) for line in out.stdout.splitlines()] == [
        {"tick": "2026-01-01T00:00:00+00:00", "action": "skip", "reason": "run 1 succeeded", "run_id": 1},
        {"tick": "2026-01-01T01:00:00+00:00", "action": "run", "reason": None, "run_id": None},
        {"tick": "2026-01-01T02:00:00+00:00", "action": "run", "reason": None, "run_id": None}]
    rerun = cronplus(tmp_path, "backfill", "a", *RANGE, "--dry-run", "--rerun")
    assert rerun.stdout.splitlines()[-1] == "3 tick(s) to run, 0 skipped (dry run: nothing ran)"


def test_json_prints_each_finished_run_as_log_json_does_and_the_rest_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "fixed").touch()
    out = cronplus(tmp_path, "backfill", "a", "--from", "2026-01-01T00:00Z", "--to", "2026-01-01T00:00Z", "--json")
    assert out.returncode == 0, out.stderr
    runs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["job"], r["status"], r["trigger"], r["scheduled_at"]) for r in runs] == [
        ("a", "success", "backfill", "2026-01-01T00:00:00+00:00"), ("b", "success", "backfill", "2026-01-01T00:00:00+00:00")]
    assert "1/1 ticks done, 0 failed" in out.stderr


def test_more_than_1000_ticks_ask_for_yes_in_one_line_and_nothing_runs(tmp_path: Path) -> None:
    out = cronplus(tmp_path, "backfill", "b", "--from", "2026-01-01T00:00Z", "--to", "2026-03-01T00:00Z")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("cronplus backfill: 1,417 ticks of b from 2026-01-01T00:00:00+00:00 to 2026-03-01T00:00:00+00:00: "
                          "add --yes to run them (over 1,000 needs it)\n")
    assert not (tmp_path / "state" / "history.db").exists()
    dry = cronplus(tmp_path, "backfill", "b", "--from", "2026-01-01T00:00Z", "--to", "2026-03-01T00:00Z", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("  run\n") == 1417  # listing runs nothing: no --yes needed


def test_a_reversed_range_a_bad_time_and_an_unknown_job_are_one_line_each(tmp_path: Path) -> None:
    out = cronplus(tmp_path, "backfill", "a", "--from", "2026-01-02", "--to", "2026-01-01")
    assert (out.returncode, out.stderr) == (2, "cronplus backfill: --from 2026-01-02 is after --to 2026-01-01: "
                                               "nothing to backfill\n")
    out = cronplus(tmp_path, "backfill", "a", "--from", "last tuesday")
    assert out.returncode == 2 and out.stderr.startswith("cronplus backfill: cannot understand time 'last tuesday'")
    out = cronplus(tmp_path, "backfill", "aa", *RANGE)
    assert (out.returncode, out.stderr) == (1, "cronplus backfill: no job named 'aa' (did you mean 'a'?)\n")
    out = cronplus(tmp_path, "backfill", "a", *RANGE, "--parallel", "0")
    assert (out.returncode, out.stderr) == (2, "cronplus backfill: --parallel must be at least 1, not 0\n")
    assert not (tmp_path / "state" / "history.db").exists()  # none of them ran anything


def test_on_postgresql_a_backfill_records_its_runs_there_and_a_second_call_resumes(tmp_path: Path, pg_url: str) -> None:
    out = cronplus(tmp_path, "backfill", "a", *RANGE, "--db", pg_url)
    assert out.returncode == 1, out.stderr
    (tmp_path / "fixed").touch()
    again = cronplus(tmp_path, "backfill", "a", *RANGE, "--db", pg_url, "--json")
    assert again.returncode == 0, again.stderr
    assert "2 already succeeded" in again.stderr
    runs = [json.loads(line) for line in again.stdout.splitlines()]
    assert [(r["job"], r["status"], r["trigger"], r["scheduled_at"]) for r in runs] == [
        ("a", "success", "backfill", "2026-01-01T01:00:00+00:00"), ("b", "success", "backfill", "2026-01-01T01:00:00+00:00")]
    assert not (tmp_path / "state" / "history.db").exists()
