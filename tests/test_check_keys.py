"""`cronplus check` covers every `# cronplus:` key: one bad value a key gives exactly one
`FILE:LINE:COL: bad KEY: ...` line, the column that of the value; an unknown key gets a "did you
mean" (spelling, `_` for `-`, and other tools' names for the same setting); the pools line's
mistakes; the sensor lint. Run in-process (tests/incli.py), as the real command."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronplus.crontab.annotations import KEYS, NOT_DEFAULTS
from cronplus.crontab.keyhints import ALIASES
from tests import incli

# key -> (a bad value, the message after "bad KEY: ")
BAD: dict[str, tuple[str, str]] = {
    "name": ("a/b", "'a/b' is not a job name: use letters, digits, _ . -"),
    "retries": ("-1", "'-1' is not a whole number >= 0"),
    "retry-delay": ("soon", "'soon' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
    "backoff": ("0.5", "'0.5' is not a number >= 1"),
    "max-retry-delay": ("1h2h", "'1h2h' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
    "timeout": ("0", "a timeout must be more than 0 (or none)"),
    "kill-grace": ("-1", "'-1' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
    "overlap": ("wait", "'wait' is not one of skip / queue / replace / allow"),
    "after": ("a,,b", "'' is not a job name ([A-Za-z0-9_.-]+), in a comma list"),
    "trigger": ("any", "'any' is not one of all_success / all_done / one_success / all_failed / one_failed / none_failed"),
    "skip-exit": ("256", "'256' is not a whole number 0-255"),
    "catch-up": ("all", "'all' is not one of none / last"),
    "jitter": ("1x", "'1x' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
    "tz": ("Mars/Base", "unknown time zone 'Mars/Base' (an IANA name like Europe/Berlin or UTC)"),
    "alert": ("ftp://x", "ftp://x/… is not an http:// or https:// URL"),
    "alert-format": ("xml", "'xml' is not one of json / slack / discord / teams / ntfy"),
    "alert-on": ("boom", "'boom' is not an alert event (events: failure,timeout,retry,recovery,missed,"
                         "upstream_failed,success,config_error,slow)"),
    "alert-secret": ("abc", "the HMAC key must be given as env:VAR, not inline (put it in the environment)"),
    "alert-remind": ("often", "'often' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
    "ping": ("nope", "<redacted> is not an http(s):// URL or none"),
    "max-log-size": ("big", "'big' is not a size (like 4096, 512K, 100M, 1G)"),
    "slow-factor": ("0.5", "'0.5' is not a number >= 1"),
    "expected-duration": ("0", "expected-duration must be more than 0"),
    "nice": ("20", "'20' is not a whole number -20 to 19"),
    "memory-max": ("12", "'12' is too small: at least 1M (a shell alone needs more)"),
    "cpu-max": ("0%", "'0%' is not a CPU share (like 50%, 150% or 1.5 CPUs; at least 1%)"),
    "tasks-max": ("0", "'0' is not a whole number >= 1"),
    "pool": ("a/b", "'a/b' is not a pool name (name one of the '# cronplus-pools:' line)"),
    "wait-for": ("", 'wait-for needs a command (quote it: wait-for="test -e /data/in/today.csv")'),
    "wait-every": ("0", "a duration here must be more than 0"),
    "wait-timeout": ("soon", "'soon' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
    "wait-timeout-status": ("ok", "'ok' is not one of failed / skipped"),
    "queue": ("gpu:1", "'gpu:1' is not a queue name: use letters, digits, _ . - (at most 100)"),
    "queue-timeout": ("0", "a timeout must be more than 0 (or none)"),
    "run-on": ("h" * 201, "a host id has at most 200 characters (run-on= is any, all or a supervisor's --host-id)"),
}


def check(tmp_path: Path, text: str) -> incli.Completed[str]:
    f = tmp_path / "crontab"
    f.write_text(text)
    return incli.run(["check", str(f)], env=incli.base_env())


def test_every_key_of_the_parser_has_a_bad_value_case_here() -> None:
    assert [key for key in KEYS if key not in BAD] == [], "add a bad value and its message to BAD"


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_bad_value_is_one_line_at_the_values_column(tmp_path: Path, key: str) -> None:
    value, message = BAD[key]
    for written, col in ((f"{key}={value}", 14 + len(key)), (f'{key}="{value}"', 15 + len(key))):
        if not value and '"' not in written:
            continue  # `wait-for=` with nothing: only the quoted form is a value
        result = check(tmp_path, f"# cronplus: {written}\n0 0 * * * true\n")
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.splitlines() == [f"{tmp_path / 'crontab'}:1:{col}: bad {key}: {message}", "invalid: 1 error"]


@pytest.mark.parametrize(("written", "meant"), [
    ("pol", "pool"), ("pools", "pool"), ("Pool", "pool"),
    ("waitfor", "wait-for"), ("wait_for", "wait-for"), ("wait-until", "wait-for"), ("sensor", "wait-for"),
    ("wait-interval", "wait-every"), ("poke_interval", "wait-every"),
    ("wait-timout", "wait-timeout"), ("wait_timeout_status", "wait-timeout-status"), ("soft_fail", "wait-timeout-status"),
    ("memory_max", "memory-max"), ("memory", "memory-max"), ("MemoryMax", "memory-max"),
    ("cpus", "cpu-max"), ("CPUQuota", "cpu-max"),
    ("task-max", "tasks-max"), ("pids-max", "tasks-max"), ("pids_limit", "tasks-max"), ("TasksMax", "tasks-max"),
    ("priority", "nice"), ("niceness", "nice"),
    ("slow", "alert-on=slow"), ("slowfactor", "slow-factor"), ("expected", "expected-duration"),
    ("alerton", "alert-on"), ("timezone", "tz"), ("depends_on", "after"),
])
def test_an_unknown_key_gets_the_key_meant(tmp_path: Path, written: str, meant: str) -> None:
    result = check(tmp_path, f"# cronplus: {written}=1\n0 0 * * * true\n")
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'crontab'}:1:13: unknown annotation key '{written}' (did you mean '{meant}'?)", "invalid: 1 error"]


@pytest.mark.parametrize("key", sorted(set(BAD) - set(NOT_DEFAULTS)))
def test_a_bad_value_in_a_defaults_line_is_one_line_at_the_values_column_too(tmp_path: Path, key: str) -> None:
    value, message = BAD[key]
    result = check(tmp_path, f'# cronplus-defaults: {key}="{value}"\n0 0 * * * true\n')
    assert result.stderr.splitlines() == [f"{tmp_path / 'crontab'}:1:{24 + len(key)}: bad {key}: {message}",
                                          "invalid: 1 error"]


def test_every_alias_names_a_key_of_the_parser() -> None:
    assert [a for a in ALIASES.values() if a.partition("=")[0] not in KEYS] == []


@pytest.mark.parametrize(("line", "error"), [
    ("# cronplus-pool: gpu=1", "1:1: malformed annotation (did you mean '# cronplus-pools:'?)"),
    ("# cronplus-pools gpu=1", "1:1: malformed annotation (add the colon: '# cronplus-pools: ...')"),
    ("# cronplus-defaults retries=1", "1:1: malformed annotation (add the colon: '# cronplus-defaults: ...')"),
    ("# cronplus-pools: gpu=1 db=x", "1:28: bad pool db: 'x' is not a whole number 0-100000 (the most runs of the pool's jobs at once)"),
    ("# cronplus-pools: gpu=1 gpu=2", "1:25: pool gpu is defined twice (first at line 1)"),
    ("# cronplus-pools: gpu=1 g/pu=1", "1:25: 'g/pu' is not a pool name (use letters, digits, _ . -)"),
    ("# cronplus-pools:", "1:18: empty pools line (like '# cronplus-pools: gpu=1 db=4')"),
])
def test_the_pools_lines_mistakes_are_one_line_each(tmp_path: Path, line: str, error: str) -> None:
    result = check(tmp_path, line + "\n# cronplus: name=a pool=gpu\n0 0 * * * true\n")
    assert result.stderr.splitlines()[0] == f"{tmp_path / 'crontab'}:{error}"


def test_a_pool_no_line_defines_is_an_error_at_the_value_with_the_closest_pool(tmp_path: Path) -> None:
    result = check(tmp_path, "# cronplus-pools: gpu=1\n# cronplus: name=a pool=gpo\n0 0 * * * true\n"
                             "# cronplus: name=b pool=gpu\n0 0 * * * true\n")
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'crontab'}:2:25: job a: pool 'gpo' is not defined by a '# cronplus-pools:' line (did you mean 'gpu'?)",
        "invalid: 1 error"]


def test_check_warns_on_an_unused_pool_a_pool_of_0_slots_and_a_sensor_probed_only_once(tmp_path: Path) -> None:
    f = tmp_path / "crontab"
    result = check(tmp_path, "# cronplus-pools: gpu=1 spare=2 none=0\n"
                             "# cronplus: name=a pool=gpu wait-for=true wait-timeout=30s\n0 3 * * * true\n"
                             "# cronplus: name=b pool=none wait-for=true wait-every=2h wait-timeout=1h\n0 3 * * * true\n"
                             "# cronplus: name=c wait-for=true wait-every=1m wait-timeout=1h\n0 3 * * * true\n")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"{f}:1:25: warning: pool spare is used by no job (add pool=spare to a job, or remove it)",
        f"{f}:1:33: warning: pool none has 0 slots: its jobs never run (give it at least 1)",
        f"{f}:3:1: warning: job a: wait-every=30s is not shorter than wait-timeout=30s: its sensor is probed once, "
        "then the run times out (make wait-every a fraction of wait-timeout, e.g. wait-every=1m wait-timeout=1h)",
        f"{f}:5:1: warning: job b: wait-every=2h is not shorter than wait-timeout=1h: its sensor is probed once, "
        "then the run times out (make wait-every a fraction of wait-timeout, e.g. wait-every=1m wait-timeout=1h)",
    ]
    assert result.stdout == "ok: 3 jobs, 4 warnings\n"


@pytest.mark.parametrize("line", ["# cronplus-pools: gpu=x", "# cronplus-pool: gpu=1", "# cronplus-pools gpu=1"])
def test_a_broken_pools_line_is_one_error_not_one_more_at_each_job_of_its_pool(tmp_path: Path, line: str) -> None:
    result = check(tmp_path, line + "\n# cronplus: name=a pool=gpu\n0 0 * * * true\n# cronplus: name=b pool=gpu\n0 0 * * * true\n")
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and errors[0].startswith(f"{tmp_path / 'crontab'}:1:") and errors[1] == "invalid: 1 error"
