"""`# cronplus:` and `# cronplus-defaults:` annotations (README "The crontab language"): one key table, value converters.

Contract:
- `parse_duration("1h30m") -> float` seconds: `45`, `30s`, `5m`, `1h30m`, `2d` (units d h m s,
  each at most once, in that order). Raises ValueError.
- `parse_size("100M") -> int` bytes: plain bytes or K/M/G/T (binary, 1024), optional trailing B.
- `parse_pairs(text, col)` splits `k=v k2="v w"` into (key, value, key_col, value_col).
- `convert(key, value, loc) -> (field, converted)`; raises AnnotationError (a Diagnostic-ready
  message) for an unknown key (with "did you mean") or a bad value. Alert and ping values are
  secrets: messages show them only through redact.redact_url.
- `url_problem(url) -> str | None`: an alert/ping URL must be http(s), with a host, a port (if
  any) in 1-65535, and no whitespace or control character; also used on `env:VAR` values at
  send time.
- `build_options(values) -> JobOptions` from {field: converted}.

Numbers are ASCII digits only (`retries=１` is an error, as in the time fields); values and keys
echoed in messages go through `errors.shown` (escaped, cut to 40 characters).

Which lines an annotation attaches to is decided in crontab.py (see its docstring). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cronplus.errors import shown
from cronplus.model import JobOptions
from cronplus.redact import redact_url
from cronplus.status import AlertEvent, AlertFormat, CatchUp, Overlap, TriggerRule

NAME_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")
# re.ASCII: \d is 0-9 only (not `１`); at most 9 digits a part keeps int() small and exact.
_DURATION_RE = re.compile(r"(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9}(?:\.\d{1,9})?)s)?\Z", re.ASCII)
_SIZE_RE = re.compile(r"(\d{1,15})([KMGT]?)B?\Z", re.IGNORECASE | re.ASCII)
_WHOLE_RE = re.compile(r"\d{1,9}\Z", re.ASCII)
_DECIMAL_RE = re.compile(r"\d+(?:\.\d*)?\Z|\.\d+\Z", re.ASCII)
_ENV_RE = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*\Z")
_PAIR_RE = re.compile(r'\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|\Z)')


class AnnotationError(ValueError):
    """A bad annotation; `offset` is added to the value's column (0 = the value's start)."""

    def __init__(self, message: str, hint: str | None = None, *, on_key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.on_key = on_key


def parse_duration(text: str) -> float:
    """`45` -> 45.0, `30s`, `5m`, `1h30m`, `2d`. ValueError for anything else."""
    text = text.strip()
    if _DECIMAL_RE.match(text):  # plain seconds; not float()'s `１`, `1_0`, `1e3`, `inf`
        value = float(text)
        if value < float("inf"):
            return value
    m = _DURATION_RE.match(text)
    if not text or not m:
        raise ValueError(f"'{shown(text)}' is not a duration (like 45, 30s, 5m, 1h30m, 2d)") from None
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def parse_size(text: str) -> int:
    """`100M` -> 104857600; `1G`, `512K`, `4096`. ValueError for anything else."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"'{shown(text)}' is not a size (like 4096, 512K, 100M, 1G)")
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(m.group(1)) * int(1024**power)


@dataclass(frozen=True, slots=True)
class Pair:
    key: str
    value: str
    key_offset: int  # 0-based offsets into the text given to parse_pairs
    value_offset: int


def parse_pairs(text: str) -> Iterator[Pair | int]:
    """Split `k=v k2="a b"`: yields Pairs, or the int offset of a part that is not `key=value`."""
    pos = 0
    n = len(text)
    while pos < n:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return
        m = _PAIR_RE.match(text, pos)
        if not m:
            yield pos
            return
        raw = m.group(2)
        value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
        value_offset = m.start(2) + (1 if raw.startswith('"') else 0)
        yield Pair(m.group(1), value, m.start(1), value_offset)
        pos = m.end()


def _int(lo: int, hi: int | None) -> Callable[[str], int]:
    def conv(v: str) -> int:
        if not _WHOLE_RE.match(v) or int(v) < lo or (hi is not None and int(v) > hi):
            rng = f"{lo}-{hi}" if hi is not None else f">= {lo}"
            raise AnnotationError(f"'{shown(v)}' is not a whole number {rng}")
        return int(v)

    return conv


def _float_min(lo: float) -> Callable[[str], float]:
    def conv(v: str) -> float:
        value = float(v) if _DECIMAL_RE.match(v) else float("nan")
        if not value >= lo or value == float("inf"):
            raise AnnotationError(f"'{shown(v)}' is not a number >= {lo:g}")
        return value

    return conv


def _duration(v: str) -> float:
    try:
        return parse_duration(v)
    except ValueError as exc:
        raise AnnotationError(str(exc)) from None


def _timeout(v: str) -> float | None:
    if v == "none":
        return None
    value = _duration(v)
    if value <= 0:
        raise AnnotationError("a timeout must be more than 0 (or none)")
    return value


def _positive_duration(v: str, key: str) -> float:
    value = _duration(v)
    if value <= 0:
        raise AnnotationError(f"{key} must be more than 0")
    return value


def _size(v: str) -> int:
    try:
        return parse_size(v)
    except ValueError as exc:
        raise AnnotationError(str(exc)) from None


def _enum(kind: type[Any]) -> Callable[[str], Any]:
    def conv(v: str) -> Any:
        try:
            return kind(v)
        except ValueError:
            choices = " / ".join(m.value for m in kind)
            raise AnnotationError(f"'{shown(v)}' is not one of {choices}") from None

    return conv


def _names(v: str) -> tuple[str, ...]:
    names = tuple(v.split(","))
    for name in names:
        if not NAME_RE.match(name):
            raise AnnotationError(f"'{shown(name)}' is not a job name ([A-Za-z0-9_.-]+), in a comma list")
    if len(set(names)) != len(names):
        raise AnnotationError(f"'{shown(v)}' names a job twice")
    return names


MAX_NAME = 100  # a name is a directory under the log dir (<log_dir>/<name>/<run_id>.log)


def _name(v: str) -> str:
    if not NAME_RE.match(v):
        raise AnnotationError(f"'{shown(v)}' is not a job name: use letters, digits, _ . -")
    if len(v) > MAX_NAME:  # NAME_MAX is 255 bytes: a 300-character name would fail every run
        raise AnnotationError(f"'{shown(v)}' is {len(v)} characters: a job name has at most {MAX_NAME} "
                              "(it names the job's log directory)")
    if v in (".", ".."):
        raise AnnotationError(f"'{v}' cannot be a job name: it names the job's log directory")
    return v


def _tz(v: str) -> str:
    from cronplus.crontab.tzcheck import check_zone

    problem = check_zone(v)
    if problem:
        raise AnnotationError(problem)
    return v


def url_problem(url: str) -> str | None:
    """What makes `url` unusable as an alert/ping target, or None. The answer never quotes
    the URL beyond its scheme and host (redact_url): its path or query is a token."""
    shown = redact_url(url)
    shown = "the URL" if shown.startswith("<") else shown
    if any(ch == " " or not ch.isprintable() for ch in url):  # any whitespace or control/format char
        return f"{shown} contains a space or a control character"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced [ in the host
        return "the URL cannot be parsed (is the host right?)"
    if parts.scheme.lower() not in ("http", "https") or not url.lower().startswith(parts.scheme.lower() + "://"):
        return f"{shown} is not an http:// or https:// URL"
    if not host:
        return f"{shown} has no host"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 and parts.netloc.rpartition("@")[2].removeprefix("[").rpartition("]")[2].count(":"):
        return f"{shown} has a bad port: use 1-65535"
    return None


def _url(v: str, *, env_ok: bool) -> str | None:
    if v == "none":
        return None
    if env_ok and _ENV_RE.match(v):
        return v  # resolved and checked at send time (delivery.build_request)
    if "://" not in v:
        # Never echo the value: it may be a token pasted in the wrong place.
        forms = "an http(s):// URL, env:VAR, mailto:ADDR or none" if env_ok else "an http(s):// URL or none"
        raise AnnotationError(f"{redact_url(v)} is not {forms}")
    problem = url_problem(v)
    if problem:
        raise AnnotationError(problem)
    return v


def _alert(v: str) -> str | None:
    """alert=: an http(s) URL, env:VAR, none, or mailto:ADDR[,ADDR...] (sent as cron mail)."""
    from cronplus.crontab.mailto import MAILTO_SCHEME, address_problem

    if v.lower().startswith(MAILTO_SCHEME):
        addresses = v[len(MAILTO_SCHEME):]
        problem = address_problem(addresses) if addresses else "mailto: needs an address (alert=mailto:ops@example.com)"
        if problem:
            raise AnnotationError(problem)
        return MAILTO_SCHEME + addresses
    return _url(v, env_ok=True)


def _secret(v: str) -> str | None:
    if v == "none":
        return None
    if not _ENV_RE.match(v):
        raise AnnotationError("the HMAC key must be given as env:VAR, not inline", "put it in the environment")
    return v


def _events(v: str) -> frozenset[AlertEvent]:
    out: set[AlertEvent] = set()
    for word in v.split(","):
        try:
            event = AlertEvent(word)
        except ValueError:
            event = AlertEvent.TEST
        if event is AlertEvent.TEST:
            choices = ",".join(e.value for e in AlertEvent if e is not AlertEvent.TEST)
            raise AnnotationError(f"'{shown(word)}' is not an alert event", f"events: {choices}")
        out.add(event)
    return frozenset(out)


def _signed(v: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"[-+]?\d{1,3}", v, re.ASCII) or not lo <= int(v) <= hi:
        raise AnnotationError(f"'{shown(v)}' is not a whole number {lo} to {hi}")
    return int(v)


def _size_min(v: str, lo: int) -> int:
    value = _size(v)
    if value < lo:
        raise AnnotationError(f"'{shown(v)}' is too small: at least 1M (a shell alone needs more)")
    return value


def _cpus(v: str) -> float:
    """cpu-max: `50%` (of one CPU, systemd's CPUQuota=) or `1.5` (CPUs); at least 1%."""
    text = v[:-1] if v.endswith("%") else v
    value = float(text) if _DECIMAL_RE.match(text) else float("nan")
    cpus = value / 100 if v.endswith("%") else value
    if not cpus >= 0.01 or cpus > 10_000:
        raise AnnotationError(f"'{shown(v)}' is not a CPU share (like 50%, 150% or 1.5 CPUs; at least 1%)")
    return cpus
POOL_NAME_RE = r"[A-Za-z0-9_.-]{1,100}\Z"  # `# cronplus-pools:` names (crontab/pools.py)


def _pool(v: str) -> str:
    if not re.match(POOL_NAME_RE, v):
        raise AnnotationError(f"'{shown(v)}' is not a pool name", "name one of the '# cronplus-pools:' line")
    return v

def _queue(v: str) -> str | None:
    """queue=: a Celery queue name (a Redis key part: no spaces, no colons), or none (run here)."""
    if v == "none":
        return None
    if not re.match(POOL_NAME_RE, v):
        raise AnnotationError(f"'{shown(v)}' is not a queue name: use letters, digits, _ . - (at most 100)")
    return v


def _command(v: str) -> str:
    """wait-for=: a shell command (quote it when it has spaces: wait-for="test -e /data/in")."""
    if not v.strip():
        raise AnnotationError("wait-for needs a command", 'quote it: wait-for="test -e /data/in/today.csv"')
    return v


def _positive(v: str) -> float:
    value = _duration(v)
    if value <= 0:
        raise AnnotationError("a duration here must be more than 0")
    return value


def _choice(v: str, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise AnnotationError(f"'{shown(v)}' is not one of {' / '.join(choices)}")
    return v


def _run_on(v: str) -> str:
    from cronplus.crontab.runon import host_id_problem

    problem = host_id_problem(v)
    if problem:
        raise AnnotationError(problem, "run-on= is any, all or a supervisor's --host-id")
    return v


# key -> (JobOptions field or "name", converter). The one table: "did you mean" searches it.
KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "name": ("name", _name),
    "retries": ("retries", _int(0, None)),
    "retry-delay": ("retry_delay", _duration),
    "backoff": ("backoff", _float_min(1.0)),
    "max-retry-delay": ("max_retry_delay", _duration),
    "timeout": ("timeout", _timeout),
    "kill-grace": ("kill_grace", _duration),
    "overlap": ("overlap", _enum(Overlap)),
    "after": ("after", _names),
    "trigger": ("trigger", _enum(TriggerRule)),
    "skip-exit": ("skip_exit", _int(0, 255)),
    "catch-up": ("catch_up", _enum(CatchUp)),
    "jitter": ("jitter", _duration),
    "tz": ("tz", _tz),
    "alert": ("alert", _alert),
    "alert-format": ("alert_format", _enum(AlertFormat)),
    "alert-on": ("alert_on", _events),
    "alert-secret": ("alert_secret", _secret),
    "alert-remind": ("alert_remind", _duration),
    "ping": ("ping", lambda v: _url(v, env_ok=False)),
    "max-log-size": ("max_log_size", _size),
    "slow-factor": ("slow_factor", _float_min(1.0)),
    "expected-duration": ("expected_duration", lambda v: _positive_duration(v, "expected-duration")),
    # resource limits (engine/limits.py)
    "nice": ("nice", lambda v: _signed(v, -20, 19)),
    "memory-max": ("memory_max", lambda v: _size_min(v, 1024 * 1024)),
    "cpu-max": ("cpu_max", lambda v: _cpus(v)),
    "tasks-max": ("tasks_max", _int(1, None)),
    "pool": ("pool", _pool),  # crontab/pools.py
    # sensors (engine/sensors.py)
    "wait-for": ("wait_for", lambda v: _command(v)),
    "wait-every": ("wait_every", lambda v: _positive(v)),
    "wait-timeout": ("wait_timeout", lambda v: _positive(v)),
    "wait-timeout-status": ("wait_timeout_status", lambda v: _choice(v, ("failed", "skipped"))),
    # Celery workers (engine/celeryexec.py, `cronplus worker --queue NAME`)
    "queue": ("queue", lambda v: _queue(v)),
    "queue-timeout": ("queue_timeout", lambda v: _timeout(v)),
    "run-on": ("run_on", lambda v: _run_on(v)),  # a cluster's supervisors (crontab/runon.py)
}
NOT_DEFAULTS = ("name", "after")  # per-job by nature; a default would be a duplicate or a cycle


def convert(key: str, value: str) -> tuple[str, Any]:
    """(field, converted value) or AnnotationError."""
    entry = KEYS.get(key)
    if entry is None:
        hint = _key_hint(key.lower()[:40])
        raise AnnotationError(f"unknown annotation key '{shown(key)}'", hint, on_key=True)
    field, conv = entry
    return field, conv(value)


@lru_cache(maxsize=256)  # a file with many copies of one typo asks for the same hint
def _key_hint(key: str) -> str:
    from cronplus.crontab.keyhints import key_hint  # other tools' names too (`cpus`, `pids-max`)

    return key_hint(key, KEYS)


def build_options(values: dict[str, Any]) -> JobOptions:
    """{JobOptions field: value} (a "name" entry is ignored) -> JobOptions."""
    return _options(tuple(sorted((k, v) for k, v in values.items() if k != "name")))


@lru_cache(maxsize=1024)  # most jobs of a big file share their options; JobOptions is frozen
def _options(items: tuple[tuple[str, Any], ...]) -> JobOptions:
    return JobOptions(**dict(items))
