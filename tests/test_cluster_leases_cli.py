"""`cronplus run --lease DURATION` (or $CRONPLUS_LEASE): a bad lease is one line naming where it
came from, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.incli import base_env, run


@pytest.mark.parametrize(("given", "says"), [
    ("0.5s", "--lease: '0.5s' is shorter than 1s (the heartbeat runs every quarter of it)"),
    ("soon", "--lease: "),
])
def test_a_bad_lease_is_one_line_naming_the_option(tmp_path: Path, given: str, says: str) -> None:
    result = run(["--state-dir", str(tmp_path / "state"), "run", "--lease", given], env=base_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cronplus run: {says}"), lines


def test_the_lease_comes_from_the_environment_when_no_option_gives_it(tmp_path: Path) -> None:
    result = run(["--state-dir", str(tmp_path / "state"), "run"], env=base_env(CRONPLUS_LEASE="0s"))
    assert result.returncode == 2
    assert "CRONPLUS_LEASE: '0s' is shorter than 1s" in result.stderr


def test_the_lease_is_60s_unless_given_and_a_duration_otherwise() -> None:
    from cronplus.cli import build_command_parser
    from cronplus.cli.run import _lease

    parser, _ = build_command_parser("run")
    assert _lease(parser.parse_args([])) == 60.0
    assert _lease(parser.parse_args(["--lease", "1m30s"])) == 90.0
