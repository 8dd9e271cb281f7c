"""Fuzzing the crontab parser (issue 9): crontabs generated from the grammar, and real ones
(examples/, tests/fixtures/) mutated byte by byte. Whatever the input, `parse_crontab` returns a
Crontab or raises CrontabError, never anything else, and never through the last-resort guard
(ParserBug: an internal exception would be a bug even though the user sees one line); every
message is one printable line of bounded length.

Bounded: derandomized (the same examples every run, so CI is reproducible), no example database
(database=None; Hypothesis still caches the source's constants in .hypothesis/, git-ignored), a
fixed number of examples. FUZZ_EXAMPLES=20000 runs a bigger, random campaign by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cronplus.crontab.parser import parse_crontab
from cronplus.errors import CrontabError, Diagnostic, ParserBug

ROOT = Path(__file__).parent.parent
CORPUS = sorted([ROOT / "examples" / "crontab", *(ROOT / "tests" / "fixtures" / "crontabs").glob("*.crontab")])
CAMPAIGN = "FUZZ_EXAMPLES" in os.environ  # by hand: more examples, and random ones
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not CAMPAIGN, database=None,
                suppress_health_check=list(HealthCheck))
MAX_LINE = 1000  # a diagnostic quotes at most a few 40-character tokens


def assert_parses_or_refuses(data: bytes, *, system: bool) -> None:
    text = data.decode("utf-8", "surrogateescape")  # as load_crontab reads a file
    try:
        crontab = parse_crontab(text, path="fuzz.crontab", system=system)
    except ParserBug as exc:  # the guard held, but the parser raised something unexpected
        raise AssertionError(f"internal exception: {exc}") from exc.__cause__
    except CrontabError as exc:
        assert exc.diagnostics
        for diag in [*exc.diagnostics, *getattr(exc, "warnings", ())]:
            assert_one_clean_line(diag)
        return
    for diag in crontab.warnings:
        assert_one_clean_line(diag)


def assert_one_clean_line(diag: Diagnostic) -> None:
    assert diag.message.isprintable(), repr(diag.message)  # escaped where it is made
    assert diag.hint is None or diag.hint.isprintable(), repr(diag.hint)
    line = str(diag)
    assert line.isprintable() and len(line) <= MAX_LINE, repr(line[:2000])


# ---------------------------------------------------------------- (a) from the grammar

# Mostly valid pieces (so the fuzz walks the success path and lint too), some broken ones.
GOOD_VALUE = st.one_of(st.integers(1, 12).map(str), st.sampled_from(["0", "jan", "dec", "sun", "Mon", "7"]))
BAD_VALUE = st.one_of(st.integers(0, 70).map(str), st.sampled_from(
    ["FEB", "sat", "foo", "L", "W", "?", "january", "１", "①", "٣", "0x1", "-1", "", "9" * 30]))
VALUE = st.one_of(GOOD_VALUE, GOOD_VALUE, GOOD_VALUE, BAD_VALUE)
RANGE = st.one_of(
    VALUE,
    st.just("*"),
    st.builds(lambda a, b: f"{a}-{b}", VALUE, VALUE),
    st.builds(lambda r, s: f"{r}/{s}", st.one_of(st.just("*"), st.builds(lambda a, b: f"{a}-{b}", VALUE, VALUE)), VALUE),
)
FIELD = st.lists(RANGE, min_size=1, max_size=3).map(",".join)
NICKNAME = st.sampled_from(["@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                            "@hourly", "@Daily", "@dialy", "@", "@every"])
FIVE = st.lists(FIELD, min_size=5, max_size=5).map(" ".join)
SCHEDULE = st.one_of(FIVE, FIVE, FIVE, st.lists(FIELD, min_size=1, max_size=6).map(" ".join), NICKNAME)
COMMAND = st.one_of(
    st.sampled_from(["/usr/bin/true", "echo 50\\% done", "mail -s hi root%line one%line two", "*/5 oops",
                     "cd / && run-parts --report /etc/cron.hourly", "", "echo $HOME > /tmp/x 2>&1"]),
    st.text(max_size=30),
)
USER = st.sampled_from(["root", "nobody", "no-such-user-xyz", "", "r\x00ot"])
ENV = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["SHELL", "PATH", "MAILTO", "CRON_TZ", "A", "'Q'", "\"B C\""]),
              st.one_of(st.sampled_from(["/bin/sh", "UTC", "Europe/Berlin", "Mars/Base", "''", '"x y"', "a/" * 60 + "b",
                                         "../../etc/passwd", "Etc/GMT+5", ""]), st.text(max_size=20))),
    st.sampled_from(["MAILTO=", "A = 1", "'open=1", "=x"]),
)
ANNOTATION_VALUE = st.one_of(
    st.sampled_from(["3", "30s", "1h30m", "２", "none", "skip", "queue", "all_done", "env:HOOK", "https://h.example/t",
                     "UTC", "Mars/Base", '"a b"', "100M", "a,b", "job1", "failure,config_error", "1.5", "nan", "-1"]),
    st.text(max_size=12),
)
ANNOTATION = st.builds(
    lambda prefix, pairs: prefix + " ".join(f"{k}={v}" for k, v in pairs),
    st.sampled_from(["# cronplus: ", "# cronplus-defaults: ", "#cronplus:", "# cronplus "]),
    st.lists(st.tuples(st.sampled_from(["name", "retries", "retry-delay", "backoff", "timeout", "overlap", "after",
                                        "trigger", "skip-exit", "catch-up", "jitter", "tz", "alert", "alert-on",
                                        "ping", "max-log-size", "retires", "Name"]), ANNOTATION_VALUE), max_size=3),
)
COMMON = ["*", "1", "*/2", "1-5", "1,3,5", "2-6/2", "0"]
GOOD_FIVE = st.tuples(st.sampled_from([*COMMON, "*/7", "59", "0-30/10"]), st.sampled_from([*COMMON, "23", "*/6"]),
                      st.sampled_from([*COMMON[:-1], "31", "30"]), st.sampled_from([*COMMON[:-1], "feb", "jan-jun"]),
                      st.sampled_from([*COMMON, "mon-fri", "7", "sun,sat"])).map(" ".join)
PLAIN_JOB = st.builds(lambda s, c: f"{s} {c}", GOOD_FIVE, st.sampled_from(["/usr/bin/true", "run.sh --all", "echo a%b"]))
LINE = st.one_of(
    PLAIN_JOB,
    PLAIN_JOB,
    st.builds(lambda s, c: f"{s} {c}", SCHEDULE, COMMAND),
    st.builds(lambda s, u, c: f"{s} {u} {c}", SCHEDULE, USER, COMMAND),
    ENV,
    ANNOTATION,
    st.sampled_from(["", "# a comment", "   ", "\t# indented", "-0 * * * * true"]),
)


@FUZZ
@given(lines=st.lists(LINE, max_size=12), system=st.booleans(), newline=st.sampled_from(["\n", "\r\n", ""]))
def test_crontabs_from_the_grammar_parse_or_are_refused_cleanly(lines: list[str], system: bool, newline: str) -> None:
    text = "\n".join(lines) + newline
    assert_parses_or_refuses(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode(), system=system)


# ---------------------------------------------------------------- (b) real files, mutated

INSERTS = [b"\x00", b"\x1b[2J", b"\x1b]0;x\x07", b"\xff", b"\xc3", b"\xe2\x80\xae", "１".encode(), "①".encode(),
           "\u2028".encode(), b"\r", b"\t", b"%", b"\\", b'"', b"=", b"#", b"@", b"/", b"-", b",", b"*",
           b"a/" * 400, b"9" * 5000, b"x" * 20000, b"\n", b" cronplus: name=a after=a\n"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(CORPUS[draw(st.integers(0, len(CORPUS) - 1))].read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(INSERTS))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            end = data.find(b"\n", at)
            line = data[at:end + 1] if end >= 0 else data[at:]
            data[at:at] = bytes(line) * draw(st.integers(1, 50))
    return bytes(data)


@FUZZ
@given(data=mutated(), system=st.booleans())
def test_real_crontabs_mutated_parse_or_are_refused_cleanly(data: bytes, system: bool) -> None:
    assert_parses_or_refuses(data, system=system)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 8 and all(p.stat().st_size for p in CORPUS)
