"""`# cronplus:` / `# cronplus-defaults:` annotations: every key, values, placement, errors."""

from __future__ import annotations

import pytest

from cronplus.crontab.annotations import KEYS, parse_duration, parse_size
from cronplus.crontab.jobnames import slug
from cronplus.crontab.parser import parse_crontab
from cronplus.errors import CrontabError, Severity
from cronplus.model import JobOptions
from cronplus.status import AlertEvent, AlertFormat, CatchUp, Overlap, TriggerRule


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_crontab(text, path="ct", system=False)


def options_of(annotation: str) -> JobOptions:
    return parse(f"# cronplus: {annotation}\n0 0 * * * cmd\n").jobs[0].options


def errors(text: str) -> list[str]:
    with pytest.raises(CrontabError) as info:
        parse(text)
    return [str(d) for d in info.value.diagnostics if d.severity is Severity.ERROR]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45", 45), ("0", 0), ("1.5", 1.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
     ("1d2h3m4s", 93784), ("2h", 7200)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "1m1h", "-5", "m", "1h 30m", "inf", "nan", "5ms"])
def test_bad_durations_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("512K", 512 * 1024), ("100M", 100 * 1024**2), ("1G", 1024**3), ("2g", 2 * 1024**3), ("10MB", 10 * 1024**2)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1.5M", "M", "10X", "-1"])
def test_bad_sizes_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("annotation", "field", "value"),
    [
        ("retries=3", "retries", 3),
        ("retry-delay=1m", "retry_delay", 60.0),
        ("backoff=2.5", "backoff", 2.5),
        ("max-retry-delay=2h", "max_retry_delay", 7200.0),
        ("timeout=1h30m", "timeout", 5400.0),
        ("timeout=none", "timeout", None),
        ("kill-grace=5s", "kill_grace", 5.0),
        ("overlap=queue", "overlap", Overlap.QUEUE),
        ("after=a,b", "after", ("a", "b")),
        ("trigger=one_failed", "trigger", TriggerRule.ONE_FAILED),
        ("skip-exit=3", "skip_exit", 3),
        ("catch-up=last", "catch_up", CatchUp.LAST),
        ("jitter=30s", "jitter", 30.0),
        ("tz=America/New_York", "tz", "America/New_York"),
        ("alert=https://hooks.example.com/T/B/X", "alert", "https://hooks.example.com/T/B/X"),
        ("alert=env:OPS_WEBHOOK", "alert", "env:OPS_WEBHOOK"),
        ("alert=none", "alert", None),
        ("alert-format=slack", "alert_format", AlertFormat.SLACK),
        ("alert-on=failure,success", "alert_on", frozenset({AlertEvent.FAILURE, AlertEvent.SUCCESS})),
        ("alert-secret=env:HOOK_KEY", "alert_secret", "env:HOOK_KEY"),
        ("alert-remind=6h", "alert_remind", 21600.0),
        ("ping=https://hc-ping.com/abc-uuid", "ping", "https://hc-ping.com/abc-uuid"),
        ("max-log-size=1G", "max_log_size", 1024**3),
    ],
)
def test_every_key_sets_its_option(annotation: str, field: str, value: object) -> None:
    if field == "after":  # the targets must exist
        text = "# cronplus: name=a\n0 0 * * * a\n# cronplus: name=b\n0 0 * * * b\n"
        job = parse(f"{text}# cronplus: {annotation}\n0 0 * * * c\n").jobs[2]
        assert job.options.after == value
        return
    assert getattr(options_of(annotation), field) == value


def test_the_key_table_covers_every_job_option() -> None:
    fields = {f for f in JobOptions.__dataclass_fields__}  # type: ignore[attr-defined]
    assert {field for field, _ in KEYS.values()} - {"name"} == fields


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("retries=x", "ct:1:21: bad retries: 'x' is not a whole number >= 0"),
        ("retries=-1", "ct:1:21: bad retries: '-1' is not a whole number >= 0"),
        ("retry-delay=soon", "ct:1:25: bad retry-delay: 'soon' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
        ("backoff=0.5", "ct:1:21: bad backoff: '0.5' is not a number >= 1"),
        ("max-retry-delay=1y", "ct:1:29: bad max-retry-delay: '1y' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
        ("timeout=0", "ct:1:21: bad timeout: a timeout must be more than 0 (or none)"),
        ("kill-grace=x", "ct:1:24: bad kill-grace: 'x' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
        ("overlap=wait", "ct:1:21: bad overlap: 'wait' is not one of skip / queue / replace / allow"),
        ("after=a,,b", "ct:1:19: bad after: '' is not a job name ([A-Za-z0-9_.-]+), in a comma list"),
        ("trigger=always", "ct:1:21: bad trigger: 'always' is not one of all_success / all_done / one_success / all_failed / one_failed / none_failed"),
        ("skip-exit=256", "ct:1:23: bad skip-exit: '256' is not a whole number 0-255"),
        ("catch-up=all", "ct:1:22: bad catch-up: 'all' is not one of none / last"),
        ("jitter=x", "ct:1:20: bad jitter: 'x' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
        ("tz=Mars/Base", "ct:1:16: bad tz: unknown time zone 'Mars/Base' (an IANA name like Europe/Berlin or UTC)"),
        ("alert-format=xml", "ct:1:26: bad alert-format: 'xml' is not one of json / slack / discord / teams / ntfy"),
        ("alert-on=failure,oops", "ct:1:22: bad alert-on: 'oops' is not an alert event (events: failure,timeout,retry,recovery,missed,upstream_failed,success,config_error,slow)"),
        ("alert-secret=hunter2-secret", "ct:1:26: bad alert-secret: the HMAC key must be given as env:VAR, not inline (put it in the environment)"),
        ("alert-remind=often", "ct:1:26: bad alert-remind: 'often' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"),
        ("max-log-size=huge", "ct:1:26: bad max-log-size: 'huge' is not a size (like 4096, 512K, 100M, 1G)"),
        ("name=has/slash", "ct:1:18: bad name: 'has/slash' is not a job name: use letters, digits, _ . -"),
        ("retry=3", "ct:1:13: unknown annotation key 'retry' (did you mean 'retries'?)"),
        ("timout=5", "ct:1:13: unknown annotation key 'timout' (did you mean 'timeout'?)"),
        ("zzz=1", "ct:1:13: unknown annotation key 'zzz' (keys: " + " ".join(KEYS) + ")"),
        ("retries", "ct:1:13: bad annotation: expected key=value (quote values with spaces: key=\"a b\")"),
        ('name="a b', "ct:1:13: bad annotation: expected key=value (quote values with spaces: key=\"a b\")"),
        ("retries=1 retries=2", "ct:1:23: annotation key 'retries' given twice on one line"),
    ],
)
def test_bad_annotations_point_at_the_value(annotation: str, message: str) -> None:
    assert errors(f"# cronplus: {annotation}\n0 0 * * * cmd\n") == [message]


@pytest.mark.parametrize(
    "value",
    ["https://hooks.slack.com/services/T0/B0/SECRETXYZ?x", "hooks.slack.com/services/T0/B0/SECRETXYZ", "ftp://host/SECRETXYZ"],
)
@pytest.mark.parametrize("key", ["alert", "ping", "alert-secret"])
def test_secrets_are_never_echoed_in_errors(key: str, value: str) -> None:
    if key != "alert-secret" and value.startswith("https://"):
        value = value.replace("https://", "gopher://")
    got = errors(f"# cronplus: {key}={value}\n0 0 * * * cmd\n")
    assert len(got) == 1 and "SECRETXYZ" not in got[0]


def test_quoted_values_may_contain_spaces_and_escaped_quotes() -> None:
    ct = parse('# cronplus: name="nightly.backup_1" alert-on="failure"\n0 0 * * * cmd\n')
    assert ct.jobs[0].name == "nightly.backup_1" and ct.jobs[0].explicit_name
    assert errors('# cronplus: timeout="1h 30m"\n0 0 * * * cmd\n') == [
        "ct:1:22: bad timeout: '1h 30m' is not a duration (like 45, 30s, 5m, 1h30m, 2d)"
    ]


def test_several_annotation_lines_in_a_row_merge_later_wins() -> None:
    opts = parse("# cronplus: retries=1 timeout=5m\n# cronplus: retries=4\n0 0 * * * cmd\n").jobs[0].options
    assert (opts.retries, opts.timeout) == (4, 300.0)


def test_annotations_attach_only_to_the_next_job_line() -> None:
    ct = parse("# cronplus: retries=5\n0 0 * * * a\n0 0 * * * b\n")
    assert [j.options.retries for j in ct.jobs] == [5, 0]


def test_comments_and_env_lines_may_sit_between_an_annotation_and_its_job() -> None:
    ct = parse("# cronplus: retries=5\n# plain comment\nA=1\n0 0 * * * a\n")
    assert ct.jobs[0].options.retries == 5


def test_a_blank_line_after_an_annotation_is_an_error() -> None:
    assert errors("# cronplus: retries=5\n\n0 0 * * * a\n") == [
        "ct:1:1: annotation has no job line after it (a blank line separates it from the next job line)"
    ]


def test_an_annotation_at_the_end_of_the_file_is_an_error() -> None:
    assert errors("0 0 * * * a\n  # cronplus: retries=5\n") == [
        "ct:2:3: annotation has no job line after it (it is at the end of the file)"
    ]


def test_a_malformed_annotation_marker_is_an_error() -> None:
    assert errors("# cronplus retries=5\n0 0 * * * a\n") == [
        "ct:1:1: malformed annotation (write '# cronplus: key=value ...' or '# cronplus-defaults: key=value ...')"
    ]


def test_defaults_apply_to_all_later_jobs_and_annotations_override_them() -> None:
    ct = parse(
        "0 0 * * * before\n"
        "# cronplus-defaults: retries=2 retry-delay=30s alert=env:OPS\n"
        "0 0 * * * a\n"
        "# cronplus: retries=0\n0 0 * * * b\n"
        "# cronplus-defaults: retries=7\n0 0 * * * c\n"
    )
    assert [(j.options.retries, j.options.retry_delay, j.options.alert) for j in ct.jobs] == [
        (0, 10.0, None), (2, 30.0, "env:OPS"), (0, 30.0, "env:OPS"), (7, 30.0, "env:OPS"),
    ]
    assert ct.defaults.retries == 7 and ct.defaults.alert == "env:OPS"


@pytest.mark.parametrize("key", ["name=x", "after=x"])
def test_name_and_after_cannot_be_defaults(key: str) -> None:
    got = errors(f"# cronplus-defaults: {key}\n0 0 * * * cmd\n")
    assert got == [f"ct:1:22: '{key.split('=')[0]}' cannot be a default; it belongs to one job (put it in a '# cronplus:' line above the job)"]


def test_tz_annotation_overrides_cron_tz() -> None:
    ct = parse("CRON_TZ=Asia/Tokyo\n# cronplus: tz=UTC\n0 0 * * * a\n0 0 * * * b\n")
    assert [j.tz for j in ct.jobs] == ["UTC", "Asia/Tokyo"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/opt/ml/train.sh --full > /tmp/log 2>&1", "opt-ml-train-sh-full"),
        ("cd / && run-parts --report /etc/cron.hourly", "run-parts-report-etc-cron-hourly"),
        ("echo HELLO", "echo-hello"),
        (">/dev/null", "dev-null"),
        ("!!!", "job"),
        ("/usr/bin/php /var/www/html/artisan schedule:run --verbose --no-interaction", "usr-bin-php-var-www-html-artisan"),
    ],
)
def test_default_names_are_slugs_of_the_command(command: str, expected: str) -> None:
    assert slug(command) == expected
    assert len(slug(command)) <= 40


def test_default_names_get_a_stable_hash_suffix_only_when_needed() -> None:
    text = "0 0 * * * echo hi\n0 1 * * * echo hi\n0 1 * * * echo hi\n# cronplus: name=other\n0 0 * * * x\n"
    first = [j.name for j in parse(text).jobs]
    again = [j.name for j in parse(text).jobs]
    assert first == again
    assert first[0] == "echo-hi"
    assert first[1].startswith("echo-hi-") and len(first[1]) == len("echo-hi-") + 6
    assert first[2] == first[1] + "-2"
    assert not any(j.explicit_name for j in parse(text).jobs[:3])


def test_an_explicit_name_takes_the_slug_from_an_unnamed_job() -> None:
    ct = parse("0 0 * * * echo hi\n# cronplus: name=echo-hi\n0 1 * * * other\n")
    assert ct.jobs[1].name == "echo-hi" and ct.jobs[0].name.startswith("echo-hi-")
