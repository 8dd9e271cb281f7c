"""`cronplus install-service --http`: the unit's supervisor serves the web page, as `run --http`
would, and an address the supervisor would refuse is refused before any unit is written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.test_install_service import VENV_CRONPLUS, environment, install_service

needs_script = pytest.mark.skipif(not os.access(VENV_CRONPLUS, os.X_OK), reason="cronplus script not installed")


@needs_script
def test_http_goes_into_exec_start(tmp_path: Path) -> None:
    result = install_service(tmp_path, "--user", "--dry-run", "--http", "127.0.0.1:8080", env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"ExecStart={VENV_CRONPLUS} run --http 127.0.0.1:8080\n" in result.stdout


@needs_script
def test_another_address_needs_a_token_file_which_becomes_absolute(tmp_path: Path) -> None:
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(tmp_path / "units"))
    refused = install_service(tmp_path, "--user", "--http", "0.0.0.0:8080", env=env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "--http-token-file" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "units").exists()  # nothing written
    result = install_service(tmp_path, "--user", "--dry-run", "--http", "0.0.0.0:8080", "--http-token-file", "tok",
                             env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"run --http 0.0.0.0:8080 --http-token-file {tmp_path}/tok\n" in result.stdout


def test_a_token_file_without_an_address_and_a_bad_port_are_one_line(tmp_path: Path) -> None:
    for args in (["--http-token-file", "tok"], ["--http", "127.0.0.1:99999"], ["--http", "nocolon"]):
        result = install_service(tmp_path, "--user", "--dry-run", *args, env=environment(tmp_path), module=True)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert sys.executable not in result.stdout  # no unit printed
