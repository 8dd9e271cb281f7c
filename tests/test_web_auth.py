"""Who may act through the HTTP server of a real supervisor: the token file (0600, made once,
never printed), bearer token or the session cookie of POST /login, the Origin check against
cross-site requests, and the refusal of a non-loopback address without --http-token-file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_daemon import JOBS
from tests.web_supervisor import WebSupervisor, start_web

pytestmark = pytest.mark.e2e


def test_the_token_file_is_0600_made_once_and_never_printed(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    token_file = sup.state / "http.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = sup.token
    assert len(token) >= 32
    assert sup.stop() == 0
    again = start_web(supervisors, tmp_path, JOBS)
    assert again.token == token  # kept across restarts: a browser's cookie stays valid
    assert again.trigger("hello").status == 202
    assert again.stop() == 0
    assert token not in sup.stderr and token not in again.stderr


def test_a_trigger_needs_the_token(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    none = sup.trigger("hello", auth=False, origin=sup.origin)
    assert none.status == 401 and none.json()["status"] == 401
    assert none.headers["www-authenticate"].startswith("Bearer")
    wrong = sup.request("POST", "/api/v1/jobs/hello/trigger", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status in (401, 403)
    assert sup.get("/api/v1/runs").json()["runs"] == []  # nothing ran
    ok = sup.trigger("hello")
    assert ok.status == 202 and isinstance(ok.json()["run_id"], int)


def test_a_cross_site_request_cannot_trigger_even_with_the_token(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
        reply = sup.trigger("hello", origin=origin)
        assert reply.status == 403 and "cross-site" in reply.json()["error"], origin
    referer = sup.request("POST", "/api/v1/jobs/hello/trigger", headers={
        "Authorization": f"Bearer {sup.token}", "Referer": "http://evil.example/page"})
    assert referer.status == 403
    assert sup.get("/api/v1/runs").json()["runs"] == []
    assert sup.trigger("hello", origin=sup.origin).status == 202  # the page's own origin


def test_the_login_form_sets_an_httponly_samesite_cookie_that_then_acts(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": sup.origin}
    bad = sup.request("POST", "/login", headers=form, body="token=guess&next=/jobs/hello")
    assert bad.status == 401 and "set-cookie" not in bad.headers
    foreign = sup.request("POST", "/login", headers={**form, "Origin": "http://evil.example"},
                          body=f"token={sup.token}")
    assert foreign.status == 403 and "set-cookie" not in foreign.headers
    good = sup.request("POST", "/login", headers=form, body=f"token={sup.token}&next=/jobs/hello")
    assert good.status == 303 and good.headers["location"] == "/jobs/hello"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert sup.token not in cookie
    session = cookie.split(";", 1)[0]
    offsite = sup.request("POST", "/login", headers=form, body=f"token={sup.token}&next=//evil.example/")
    assert offsite.headers["location"] == "/"

    with_cookie = sup.request("POST", "/api/v1/jobs/hello/trigger", headers={"Cookie": session, "Origin": sup.origin})
    assert with_cookie.status == 202, with_cookie.body
    # The cookie alone, from another site or with no origin at all: refused.
    for headers in ({"Cookie": session, "Origin": "http://evil.example"}, {"Cookie": session}):
        assert sup.request("POST", "/api/v1/jobs/hello/trigger", headers=headers).status == 403
    forged = sup.request("POST", "/api/v1/jobs/hello/trigger",
                         headers={"Cookie": "cronplus_session=0000", "Origin": sup.origin})
    assert forged.status == 401
    out = sup.request("POST", "/logout", headers={"Cookie": session, "Origin": sup.origin})
    assert out.status == 303 and "Max-Age=0" in out.headers["set-cookie"]


def test_a_non_loopback_address_needs_a_token_file(supervisors, tmp_path: Path) -> None:
    refused = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"),
                              "--state-dir", str(tmp_path / "state"), "run", "--http", "0.0.0.0:0"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--http-token-file" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state" / "http.token").exists()

    token_file = tmp_path / "web.token"
    token_file.write_text("a-token-the-operator-chose-0123456789\n")
    token_file.chmod(0o600)
    sup = WebSupervisor(tmp_path, JOBS, http="0.0.0.0:0", env={"CRONPLUS_HTTP_TOKEN_FILE": str(token_file)})
    supervisors.append(sup)
    sup.wait_http()
    port = sup.url.rsplit(":", 1)[1]
    sup.url = f"http://127.0.0.1:{port}"
    ok = sup.request("POST", "/api/v1/jobs/hello/trigger",
                     headers={"Authorization": "Bearer a-token-the-operator-chose-0123456789"})
    assert ok.status == 202
    assert not (sup.state / "http.token").exists()  # the named file is the token, no other


def test_a_token_file_others_can_read_is_refused_in_one_line(tmp_path: Path) -> None:
    token_file = tmp_path / "web.token"
    token_file.write_text("secret-token-value\n")
    os.chmod(token_file, 0o644)
    crontab = tmp_path / "crontab"
    crontab.write_text(JOBS)
    out = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir",
                          str(tmp_path / "state"), "run", "--http", "127.0.0.1:0", "--http-token-file", str(token_file)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and f"chmod 600 {token_file}" in out.stderr
    assert "secret-token-value" not in out.stderr and "Traceback" not in out.stderr


def test_on_loopback_a_foreign_host_header_is_refused_against_dns_rebinding(supervisors, tmp_path: Path) -> None:
    sup = start_web(supervisors, tmp_path, JOBS)
    port = sup.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        reply = sup.get("/api/v1/jobs", headers={"Host": host})
        assert reply.status == 403 and "Host" in reply.json()["error"], host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert sup.get("/api/v1/jobs", headers={"Host": host}).status == 200, host
