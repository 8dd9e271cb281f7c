"""The crontab language: text -> frozen model.Crontab (README "The crontab language"; docs/cron-compat.md), or CrontabError with every error.

Contract:
- `parse_schedule(expr, loc=None) -> Schedule`: one 5-field expression or `@nickname` (it lives
  in fields.py; imported from here).
- `parse_crontab(text, path=, system=) -> Crontab`: the whole file; raises CrontabError (the
  subclass InvalidCrontab) listing ALL errors (fields, annotations, dependencies), one
  `FILE:LINE:COL: message` each; lint findings go to `Crontab.warnings`. It raises nothing
  else: an unexpected exception is a bug, turned into ParserBug (one line naming the file).
- `load_crontab(path, system=None) -> Crontab`: reads the file (the only I/O here), after
  filechecks.py has refused one cron would refuse (owner, mode, hard links). Bytes that are not
  UTF-8 are kept as surrogate escapes (cron treats the file as bytes) and shown as `\\xNN`.
- Linear in the file: jobs share the env lines (model.EnvLines), no per-line pass over all jobs.

Line handling follows cronie (src/entry.c load_entry, src/env.c load_env); the field grammar
lives in fields.py, env lines in envlines.py, `# cronplus:` annotations in annotations.py,
default job names in jobnames.py, dependency checks in deps.py, warnings in lint.py.

Decisions where cron has nothing to say:
- A `# cronplus:` line annotates the next job line. Several in a row merge (a later value of
  the same key wins). Ordinary comments and env lines may sit between an annotation and its
  job; a blank line may not (it usually means the job line was deleted, and silently moving
  the options to the next job would be worse), nor the end of the file: both are errors.
- `# cronplus-defaults:` applies to every job line after it; later defaults lines update
  earlier ones key by key; `name` and `after` cannot be defaults.
- A missing final newline: cronie drops that line, Debian's crontab refuses the file; we
  accept it with a warning.
- System crontabs: a user field naming no existing user is a warning, not an error. cronie
  logs "bad username" and skips just that line (entry.c load_entry); refusing the whole file
  would stop every other job. The job is kept: the runner looks the user up at each spawn and
  records the run `failed` ("no such user 'carol'"), which alerts; a user created later works
  without a reload.
- A NUL byte in a line (other than a plain comment) is an error: cron reads lines as C strings
  and would silently cut the line there, and no NUL can reach exec, the environment or getpwnam.
- A job line whose command starts with `*` is "bad command" (cronie's "common typo" check),
  which is how a 6-field (seconds) expression is caught; `0 0 * * * 5 cmd` runs `5 cmd`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cronplus.crontab import deps, lint, pools, textchecks
from cronplus.crontab.annotations import (
    NOT_DEFAULTS,
    AnnotationError,
    build_options,
    convert,
    parse_pairs,
)
from cronplus.crontab.envlines import parse_env_line, split_percent
from cronplus.crontab.fields import FIELDS, parse_fields, parse_nickname
from cronplus.crontab.fields import (
    parse_schedule as parse_schedule,  # the public entry point stays here
)
from cronplus.crontab.jobnames import assign_names
from cronplus.crontab.tzcheck import check_zone
from cronplus.errors import (
    CrontabError,
    Diagnostic,
    InvalidCrontab,
    ParserBug,
    Severity,
    SourceLoc,
    shown,
)
from cronplus.model import Crontab, EnvLines, JobSpec, Schedule
from cronplus.paths import is_system_format

# ---------------------------------------------------------------- whole files

_ANNOTATION = re.compile(r"#\s*cronplus(-defaults)?\s*:")
_LOOKS_LIKE_ANNOTATION = re.compile(r"#\s*cronplus\b")
_EMPTY_ENV = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*$")


@dataclass
class _Pending:
    """Annotation values waiting for their job line: field -> (value, loc of the value)."""

    values: dict[str, tuple[Any, SourceLoc]] = field(default_factory=dict)
    first: SourceLoc | None = None


@dataclass
class _RawJob:
    loc: SourceLoc
    schedule: Schedule
    command: str
    stdin: str | None
    env: EnvLines
    options: dict[str, tuple[Any, SourceLoc]]
    cron_tz: str | None
    user: str | None
    field_cols: tuple[int, ...]


class _Parser:
    def __init__(self, path: str, system: bool) -> None:
        self.path = path
        self.system = system
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.env = EnvLines()  # the env lines so far; every job keeps the view at its line
        self.cron_tz: str | None = None
        self.defaults: dict[str, tuple[Any, SourceLoc]] = {}
        self.pending = _Pending()
        self.jobs: list[_RawJob] = []
        self.broken_names: set[str] = set()  # name= of job lines with errors: no cascade errors
        self.users: dict[str, bool] = {}  # user field -> exists, looked up once per parse
        self.pools: dict[str, tuple[int | None, SourceLoc]] = {}  # `# cronplus-pools:` name -> (slots, where); None: bad

    def loc(self, line: int, col: int) -> SourceLoc:
        return SourceLoc(path=self.path, line=line, col=col)

    def error(self, line: int, col: int, message: str, hint: str | None = None) -> None:
        self.errors.append(Diagnostic(loc=self.loc(line, col), message=message, hint=hint))

    def warn(self, line: int, col: int, message: str, hint: str | None = None) -> None:
        self.warnings.append(
            Diagnostic(loc=self.loc(line, col), message=message, hint=hint, severity=Severity.WARNING)
        )

    # -- lines
    def feed(self, lineno: int, raw: str) -> None:
        body = raw.lstrip(" \t")
        indent = len(raw) - len(body)
        if not body.strip():
            self._end_pending(lineno, "a blank line separates it from the next job line")
            return
        if "\0" in raw and not (body[0] == "#" and _LOOKS_LIKE_ANNOTATION.match(raw, indent) is None):
            # cron reads a line as a C string: it would silently lose the rest of this line;
            # and a NUL cannot reach exec, the environment or getpwnam(). Comments may have one.
            self.error(lineno, raw.index("\0") + 1, "NUL byte in the line: cron would cut the line here",
                       "remove it; a NUL usually means the file is not text")
            self.pending = _Pending()
            return
        if body[0] == "#":
            self._comment(lineno, raw, indent)
            return
        env = parse_env_line(raw)
        if env is not None:
            self._env(lineno, raw, *env)
            return
        self._job(lineno, raw, indent)

    def _end_pending(self, lineno: int, why: str) -> None:
        if self.pending.first is not None:
            first = self.pending.first
            self.errors.append(
                Diagnostic(loc=first, message=f"annotation has no job line after it ({why})")
            )
            self.pending = _Pending()

    def _comment(self, lineno: int, raw: str, indent: int) -> None:
        if (d := pools.DIRECTIVE.match(raw, indent)) is not None:  # pools, not a job's annotation
            found, problems = pools.parse_line(raw[d.end():], d.end() + 1)
            for col, message, hint in problems:
                self.error(lineno, col, message, hint)
            for name, slots, col in found:
                if name in self.pools:
                    self.error(lineno, col, f"pool {name} is defined twice (first at line {self.pools[name][1].line})")
                self.pools.setdefault(name, (slots, self.loc(lineno, col)))
            return
        m = _ANNOTATION.match(raw, indent)
        if m is None:
            if _LOOKS_LIKE_ANNOTATION.match(raw, indent):
                self.error(lineno, indent + 1, "malformed annotation", pools.misspelt_directive(raw[indent:])
                           or "write '# cronplus: key=value ...' or '# cronplus-defaults: key=value ...'")
                self.pools |= {n: (None, self.loc(lineno, indent + 1)) for n in pools.named(raw[indent:]) if n not in self.pools}
            return
        defaults = m.group(1) is not None
        target = self.defaults if defaults else self.pending.values
        if not defaults and self.pending.first is None:
            self.pending.first = self.loc(lineno, indent + 1)
        seen: set[str] = set()
        for item in parse_pairs(raw[m.end():]):
            if isinstance(item, int):
                self.error(lineno, m.end() + item + 1, "bad annotation: expected key=value",
                           'quote values with spaces: key="a b"')
                return
            key_col = m.end() + item.key_offset + 1
            value_col = m.end() + item.value_offset + 1
            if item.key in seen:
                self.error(lineno, key_col, f"annotation key '{shown(item.key)}' given twice on one line")
                continue
            seen.add(item.key)
            if defaults and item.key in NOT_DEFAULTS:
                self.error(lineno, key_col, f"'{shown(item.key)}' cannot be a default; it belongs to one job",
                           "put it in a '# cronplus:' line above the job")
                continue
            try:
                fld, value = convert(item.key, item.value)
            except AnnotationError as exc:
                col = key_col if exc.on_key else value_col
                prefix = "" if exc.on_key else f"bad {item.key}: "  # a known key (convert() passed it)
                # converters quote values through shown(); this also covers redacted URLs
                self.error(lineno, col, prefix + shown(exc.message, 300), exc.hint and shown(exc.hint, 1000))
                continue
            target[fld] = (value, self.loc(lineno, value_col))

    def _env(self, lineno: int, raw: str, name: str, value: str) -> None:
        if name == "CRON_TZ":
            problem = check_zone(value)
            if problem:
                after_eq = raw.index("=") + 1
                col = after_eq + len(raw[after_eq:]) - len(raw[after_eq:].lstrip()) + 1
                self.error(lineno, col, f"bad CRON_TZ: {problem}")
                return
            self.cron_tz = value
        if name in ("MAILTO", "MAILFROM") and value:
            from cronplus.crontab.mailto import address_problem

            problem = address_problem(value)
            if problem:  # cron logs it UNSAFE and sends nothing (cronie do_command.c safe_p)
                problem = shown(problem, 300)
                self.warn(lineno, 1, f"{name} {problem}: no mail is sent" if name == "MAILTO"
                          else f"{name} {problem}: mail comes from the crontab's user")
        self.env = self.env.extend(name, value)

    def _job(self, lineno: int, raw: str, indent: int) -> None:
        five = _FIVE_FIELDS.match(raw, indent)
        tokens: list[tuple[str, int, int]]
        if five is not None and raw[indent] != "@":
            tokens = [(text, *span) for text, span in zip(five.groups(), five.regs[1:], strict=True)]
        else:
            tokens = []
            for m in _FIELD_TOKEN.finditer(raw):  # only the schedule words: the command is the rest
                tokens.append((m.group(), m.start(), m.end()))
                if len(tokens) == 5 or tokens[0][0].startswith("@"):
                    break
        first = tokens[0][0]
        if first.startswith("-") and len(first) > 1:
            self.error(lineno, indent + 1, "bad minute: a leading '-' (cronie's do-not-log flag) is "
                       "cronie-only; other crons reject the line", "remove the '-'")
            self.pending = _Pending()
            return
        n_sched = 1 if first.startswith("@") else 5
        bad_errors = len(self.errors)
        schedule: Schedule | None = None
        cols = tuple(t[1] + 1 for t in tokens[:n_sched])
        if n_sched == 1:
            try:
                schedule = parse_nickname(first, path=self.path, line=lineno, col=indent + 1)
            except CrontabError as exc:
                self.errors.extend(exc.diagnostics)
        elif len(tokens) < 5:
            empty = _EMPTY_ENV.match(raw)
            if empty:
                var = empty.group(1)
                self.error(lineno, indent + 1, f"bad minute: '{shown(var)}=' with no value is not an environment line for cron",
                           f'write {shown(var)}=""')
            else:
                self._short_line(lineno, raw, tokens)
            self.pending = _Pending()
            return
        else:
            texts = [t[0] for t in tokens[:5]]
            try:
                schedule = parse_fields(texts, cols, path=self.path, line=lineno, text=" ".join(texts))
            except CrontabError as exc:
                self.errors.extend(exc.diagnostics)
        rest_at = tokens[n_sched - 1][2]
        user: str | None = None
        rest = raw[rest_at:].lstrip(" \t")
        rest_col = len(raw) - len(rest) + 1
        if self.system:
            user, rest, rest_col = self._user(lineno, raw, rest, rest_col)
        command = None
        if user is not None or not self.system:
            command = self._command(lineno, rest, rest_col, raw, nickname=n_sched == 1)
        options = {**self.defaults, **self.pending.values}
        if self.pending.first is not None:
            self.pending = _Pending()
        if schedule is None or command is None or len(self.errors) > bad_errors:
            if "name" in options:
                self.broken_names.add(options["name"][0])
            return
        cmd, stdin = split_percent(command)
        self.jobs.append(
            _RawJob(loc=self.loc(lineno, indent + 1), schedule=schedule, command=cmd, stdin=stdin,
                    env=self.env, options=options, cron_tz=self.cron_tz, user=user,
                    field_cols=cols)
        )

    def _short_line(self, lineno: int, raw: str, tokens: list[tuple[str, int, int]]) -> None:
        """Fewer than 5 fields: report a bad field first (`hello world`), else the missing one."""
        texts = [t[0] for t in tokens] + ["*"] * (5 - len(tokens))
        cols = [t[1] + 1 for t in tokens] + [1] * (5 - len(tokens))
        try:
            parse_fields(texts, cols, path=self.path, line=lineno)
        except CrontabError as exc:
            self.errors.extend(exc.diagnostics)
            return
        missing = FIELDS[len(tokens)].name
        self.error(lineno, len(raw.rstrip()) + 1, f"bad {missing}: missing (a job line has 5 time fields and a command)")

    def _user(self, lineno: int, raw: str, rest: str, col: int) -> tuple[str | None, str, int]:
        m = re.match(r"\S+", rest)
        if m is None or m.group().startswith("*"):
            self.error(lineno, col, "bad command: missing the user field and the command"
                       if m is None else "bad command: starts with '*' where the user field goes",
                       "a system crontab line is: 5 fields, user, command")
            return None, "", col
        name = m.group()
        exists = self.users.get(name)
        if exists is None:
            exists = self.users[name] = _user_exists(name)
        if not exists:
            self.warn(lineno, col, f"no such user '{shown(name)}': its jobs will run as failed runs",
                      "create the user, or fix the user field (a system crontab line is: 5 fields, user, command)")
        after = rest[m.end():].lstrip(" \t")
        return name, after, col + len(rest) - len(after)

    def _command(self, lineno: int, rest: str, col: int, raw: str, *, nickname: bool) -> str | None:
        if not rest.strip():
            # cronie rejects it; Debian's cron (not after an @nickname) installs an empty command
            hint = None if nickname or self.system else (
                "Debian's cron would run an empty command, cronie rejects the line: "
                "write 'true' for a job that does nothing")
            self.error(lineno, len(raw.rstrip()) + 1, "bad command: missing after the schedule", hint)
            return None
        if rest.startswith("*"):
            # cronie entry.c: "check for premature EOL and catch a common typo"
            self.error(lineno, col, "bad command: starts with '*' (cron has no seconds field: a "
                       "6th time field is read as the command, and cron rejects a leading '*')")
            return None
        if len(rest) * 4 >= MAX_COMMAND and (size := len(rest.encode("utf-8", "surrogateescape"))) >= MAX_COMMAND:
            # Debian's cron reads the command into char cmd[MAX_COMMAND] (cron.h: 1000) and
            # refuses a longer one; cronie takes it. Put the work in a script.
            self.error(lineno, col, f"command too long: {size} bytes, Debian's cron refuses {MAX_COMMAND} or more",
                       "move the command into a script and run that")
            return None
        return rest


MAX_COMMAND = 1000  # bytes; Debian's cron.h MAX_COMMAND
_FIELD_TOKEN = re.compile(r"[^ \t]+")
_FIVE_FIELDS = re.compile(r"([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)[ \t]+([^ \t]+)")


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def parse_crontab(text: str, *, path: str, system: bool) -> Crontab:
    """A whole crontab -> Crontab; CrontabError (every error, then the warnings) when invalid.
    Never raises anything else: an unexpected exception becomes ParserBug (a CrontabError)."""
    import gc

    # Parsing allocates many small objects and no cycles; the cyclic GC's passes over the
    # growing heap cost ~15% of a 10,000-job check. Paused only for the parse, then restored.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, path, system)
    except CrontabError:
        raise
    except Exception as exc:  # noqa: BLE001 - the last-resort guard at the parse boundary
        raise ParserBug(path, exc) from exc
    finally:
        if was_enabled:
            gc.enable()


def _parse(text: str, path: str, system: bool) -> Crontab:
    parser = _Parser(path, system)
    binary = textchecks.not_text(text)
    if binary is not None:  # one error, not one per line of an executable
        parser.error(binary.line, binary.col, binary.message, binary.hint)
        raise InvalidCrontab(parser.errors, [])
    bom = textchecks.bom(text)
    if bom is not None:
        parser.error(bom.line, bom.col, bom.message, bom.hint)
        text = text[1:]  # the rest is still checked
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif text:
        parser.warn(len(lines), len(lines[-1]) + 1, "no newline at the end of the file",
                    "cronie ignores such a last line and Debian's crontab refuses the file; add one")
    crlf = textchecks.crlf(lines)
    if crlf is not None:
        parser.error(crlf.line, crlf.col, crlf.message, crlf.hint)
    for lineno, raw in enumerate(lines, 1):
        parser.feed(lineno, raw)
    parser._end_pending(len(lines), "it is at the end of the file")
    return _finish(parser)


def _finish(parser: _Parser) -> Crontab:
    names = assign_names(
        [(r.options["name"][0] if "name" in r.options else None, r.schedule.text, r.command) for r in parser.jobs]
    )
    jobs: list[JobSpec] = []
    after_locs: dict[str, SourceLoc] = {}
    for raw, name in zip(parser.jobs, names, strict=True):
        values = {k: v for k, (v, _) in raw.options.items()}
        options = build_options(values)
        if "after" in raw.options:
            after_locs[name] = raw.options["after"][1]
        jobs.append(
            JobSpec(loc=raw.loc, name=name, schedule=raw.schedule, command=raw.command, stdin=raw.stdin,
                    env=raw.env, options=options, tz=options.tz or raw.cron_tz, user=raw.user,
                    explicit_name=("name" in raw.options))
        )
    pool_locs = {name: raw.options["pool"][1] for raw, name in zip(parser.jobs, names, strict=True) if "pool" in raw.options}
    pool_diags = lint.lint_pools(jobs, parser.pools, pool_locs)
    parser.warnings += [d for d in pool_diags if d.severity is Severity.WARNING]
    errors = parser.errors + deps.check(jobs, after_locs, known=parser.broken_names)
    errors += [d for d in pool_diags if d.severity is not Severity.WARNING]
    if errors:
        errors.sort(key=lambda d: (d.loc.line, d.loc.col))
        raise InvalidCrontab(errors, parser.warnings)
    # trigger= (own or from defaults) that no job using it combines with after=: a no-op.
    trigger_used: dict[SourceLoc, bool] = {}
    for raw in parser.jobs:
        if "trigger" in raw.options:
            at = raw.options["trigger"][1]
            trigger_used[at] = trigger_used.get(at, False) or "after" in raw.options
    for at in (at for at, used in trigger_used.items() if not used):
        parser.warnings.append(Diagnostic(loc=at, severity=Severity.WARNING, message="trigger= has no "
                                          "effect without after=", hint="add after=JOB or remove trigger="))
    warnings = parser.warnings + lint.lint_jobs(jobs, {j.name: r.field_cols for j, r in zip(jobs, parser.jobs, strict=True)})
    warnings.sort(key=lambda d: (d.loc.line, d.loc.col))
    defaults = build_options({k: v for k, (v, _) in parser.defaults.items()})
    return Crontab(path=parser.path, system=parser.system, jobs=tuple(jobs), defaults=defaults,
                   warnings=tuple(warnings), pools=tuple((n, slots) for n, (slots, _) in parser.pools.items() if slots is not None))


def load_crontab(path: str | os.PathLike[str], *, system: bool | None = None) -> Crontab:
    """Read and parse a crontab file. `system=None`: system format when under /etc (paths)."""
    p = Path(path)
    if system is None:
        system = is_system_format(p)
    from cronplus.filechecks import read_crontab

    # A file cron would refuse to run (owner, mode, hard links) is refused before parsing.
    return parse_crontab(read_crontab(p, system=system), path=str(path), system=system)
