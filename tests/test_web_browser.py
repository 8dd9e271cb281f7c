"""The pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
selenium) against a real `cronplus run --http 127.0.0.1:0` with real runs: the jobs page names
every job and its state and a run's output is two clicks away; a running job's output page
shows new lines as they are written, without reloading; the token form, then the "Run now"
button, start a run that then appears in the job's history.

One browser for the session. Screenshots go to the test's tmp_path, and to
$CRONPLUS_SCREENSHOTS when it names a directory (how docs/screenshots/ is made).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web_supervisor import WebSupervisor, start_web

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900")
CRONTAB = """\
# cronplus: name=greet
0 0 1 1 * echo "hello from $CRONPLUS_JOB <b>not bold</b>"
# cronplus: name=ticker
0 0 1 1 * for i in 1 2 3; do echo "tick $i"; done; while [ ! -e GATE/go ]; do sleep 0.1; done; for i in 4 5 6; do echo "tick $i"; done; while [ ! -e GATE/end ]; do sleep 0.1; done; echo "tick 7"
# cronplus: name=publish after=greet
0 0 1 1 * echo published
# cronplus: name=check-disk alert=http://127.0.0.1:9/hooks/HOOKSECRET123
0 0 1 1 * echo "checking /var"; exit 3
"""


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("needs Debian's chromium and chromium-driver (tests/system-packages.sh installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    home = tmp_path_factory.mktemp("chromium")
    options = Options()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors: CSP refusals, 404s
    for flag in (*FLAGS, f"--user-data-dir={home / 'profile'}"):
        options.add_argument(flag)
    # The browser's own temp files stay in its directory, not in the session's $TMPDIR.
    env = {**os.environ, "TMPDIR": str(home), "HOME": str(home)}
    service = Service(executable_path=DRIVER, log_output=subprocess.DEVNULL, env=env)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 30) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A page that reloads while it is read (the run's end) leaves found elements stale: ask again.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(
        condition, message=f"waited for {what}")


def shoot(driver: Any, tmp_path: Path, name: str, size: tuple[int, int] = (1280, 900)) -> Path:
    """A screenshot of the whole page (the window grown to the page's height)."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight, 400)")
    driver.set_window_size(size[0], min(max(int(height) + 80, 480), 4000))
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(*size)
    if os.environ.get("CRONPLUS_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["CRONPLUS_SCREENSHOTS"]) / path.name)
    return path


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors since the last call (a CSP violation, a failed load, a script error)."""
    return [str(entry["message"]) for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def body_text(driver: Any) -> str:
    return str(driver.find_element("tag name", "body").text)


def gate(tmp_path: Path, name: str) -> None:
    """Lets the ticker go on: `go` after its third line, `end` after its sixth."""
    (tmp_path / name).touch()


def triggered(sup: WebSupervisor, job: str) -> int:
    reply = sup.trigger(job)
    assert reply.status == 202, reply.text
    return int(reply.json()["run_id"])


@pytest.fixture
def sup(supervisors: list[Any], tmp_path: Path, browser: Any) -> Iterator[WebSupervisor]:
    browser.delete_all_cookies()
    browser.get_log("browser")  # drop what the previous test left
    yield start_web(supervisors, tmp_path, CRONTAB.replace("GATE", str(tmp_path)))
    gate(tmp_path, "go")  # a ticker left waiting by a failed test ends, not lingers
    gate(tmp_path, "end")


def test_the_jobs_page_names_every_job_and_its_state_and_a_run_s_output_is_two_clicks_away(
        sup: WebSupervisor, browser: Any, tmp_path: Path) -> None:
    for _ in range(3):
        run_id = triggered(sup, "greet")
        assert sup.wait_final(run_id)["status"] == "success"
    assert sup.wait_final(triggered(sup, "check-disk"))["status"] == "failed"
    browser.get(sup.url + "/")
    text = body_text(browser)
    for job in ("greet", "ticker", "publish", "check-disk"):
        assert job in text
    failing = browser.find_element("css selector", 'tr:has(a.job[href="/jobs/check-disk"])')
    assert "failed" in failing.text and failing.find_element("css selector", "a.cell.st-failed").text == "✗"
    row = browser.find_element("css selector", 'tr:has(a.job[href="/jobs/greet"])')
    assert "success" in row.text and row.find_element("css selector", "a.cell.st-success").text == "✓"
    assert "no run yet" in browser.find_element("css selector", 'tr:has(a.job[href="/jobs/ticker"])').text
    assert browser.find_element("css selector", 'link[rel="stylesheet"]')
    assert browser.execute_script("return getComputedStyle(document.querySelector('.cell.st-success')).backgroundColor") \
        == "rgb(0, 158, 115)"  # the stylesheet from /static/ applied, under the server's CSP
    shoot(browser, tmp_path, "jobs")
    browser.execute_script("window.cronplusSamePage = true")  # gone if the page reloads
    assert sup.wait_final(triggered(sup, "greet"))["status"] == "success"
    browser.find_element("css selector", "footer a.refresh").click()
    wait(browser, lambda d: len(d.find_elements("css selector", 'tr:has(a.job[href="/jobs/greet"]) a.cell')) == 4,
         "the new run in greet's strip")
    assert browser.execute_script("return window.cronplusSamePage") is True  # refreshed in place

    browser.find_element("css selector", 'a.job[href="/jobs/greet"]').click()
    wait(browser, lambda d: d.current_url.endswith("/jobs/greet"), "the job page")
    assert "Durations" in body_text(browser) and "History" in body_text(browser)
    shoot(browser, tmp_path, "job")
    browser.find_element("css selector", f'td[data-label="Run"] a[href="/runs/{run_id}"]').click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{run_id}"), "the run page")
    output = browser.find_element("id", "output").text
    assert "hello from greet <b>not bold</b>" in output  # the job's output, as text
    assert browser.find_elements("css selector", "#output b") == []
    shoot(browser, tmp_path, "run")

    for path, name in (("/graph", "graph"), ("/timeline", "timeline"), ("/alerts", "alerts")):
        browser.get(sup.url + path)
        assert browser.find_element("tag name", "h1").text
        if name == "alerts":  # the failure's alert, to a port where nothing listens: retried
            wait(browser, lambda d: (d.refresh() or "http://127.0.0.1:9/…" in body_text(d)), "the alert row")
            assert "HOOKSECRET123" not in browser.page_source
        shoot(browser, tmp_path, name)
    assert console_errors(browser) == []  # nothing refused by the CSP, nothing failed to load


def test_on_a_phone_s_width_no_page_scrolls_sideways(sup: WebSupervisor, browser: Any, tmp_path: Path) -> None:
    run_id = triggered(sup, "greet")
    sup.wait_final(run_id)
    browser.set_window_size(390, 844)
    try:
        for path in ("/", "/jobs/greet", f"/runs/{run_id}", "/graph", "/timeline", "/alerts"):
            browser.get(sup.url + path)
            wide = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert wide[0] <= wide[1], (path, wide)  # wide charts scroll in their own box
        browser.get(sup.url + "/")
        shoot(browser, tmp_path, "jobs-phone", size=(390, 844))
    finally:
        browser.set_window_size(1280, 900)


def test_a_running_job_s_output_page_shows_new_lines_as_they_are_written(
        sup: WebSupervisor, browser: Any, tmp_path: Path) -> None:
    run_id = triggered(sup, "ticker")
    browser.get(f"{sup.url}/runs/{run_id}")
    wait(browser, lambda d: "tick 3" in d.find_element("id", "output").text, "the first lines")
    browser.execute_script("window.cronplusSamePage = true")  # gone if the page reloads
    gate(tmp_path, "go")
    wait(browser, lambda d: "tick 6" in d.find_element("id", "output").text, "the lines written after the page loaded")
    assert browser.execute_script("return window.cronplusSamePage") is True  # appended, not reloaded
    assert "running" in browser.find_element("tag name", "h1").text
    shoot(browser, tmp_path, "run-live")
    gate(tmp_path, "end")
    # When the run ends the page reloads once and says how it ended.
    wait(browser, lambda d: "success" in d.find_element("tag name", "h1").text, "the run's end", timeout=60)
    output = browser.find_element("id", "output").text
    assert [line for line in output.splitlines() if line.startswith("tick")] == [f"tick {i}" for i in range(1, 8)]


def test_the_run_now_button_with_the_token_starts_a_run_that_then_appears(
        sup: WebSupervisor, browser: Any, tmp_path: Path) -> None:
    browser.get(sup.url + "/jobs/greet")
    assert browser.find_elements("css selector", "form.run-now button[type=submit]")[0].text == "Sign in"
    browser.find_element("css selector", 'input[name="token"]').send_keys(sup.token)
    browser.find_element("css selector", "form.login button").click()
    wait(browser, lambda d: d.find_elements("css selector", 'form[action="/jobs/greet/trigger"] button'), "the button")
    assert browser.current_url.endswith("/jobs/greet")
    browser.find_element("css selector", 'form[action="/jobs/greet/trigger"] button').click()
    wait(browser, lambda d: "/runs/" in d.current_url, "the new run's page")
    run_id = int(browser.current_url.rsplit("/", 1)[1])
    assert sup.wait_final(run_id)["trigger"] == "manual"
    browser.get(sup.url + "/jobs/greet")
    assert browser.find_elements("css selector", f'td[data-label="Run"] a[href="/runs/{run_id}"]')
    shoot(browser, tmp_path, "job-after-run-now")
    browser.find_element("css selector", "form.sign-out button").click()
    wait(browser, lambda d: d.current_url.rstrip("/") == sup.url.rstrip("/"), "the jobs page after signing out")
    browser.get(sup.url + "/jobs/greet")
    assert browser.find_elements("css selector", 'input[name="token"]')  # asked for the token again


def test_without_javascript_the_pages_work_and_a_running_run_s_page_reloads_itself(
        sup: WebSupervisor, browser: Any, tmp_path: Path) -> None:
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        run_id = triggered(sup, "ticker")
        browser.get(sup.url + "/")
        assert "ticker" in body_text(browser) and "running" in body_text(browser)
        browser.find_element("css selector", f'a[href="/runs/{run_id}"]').click()
        wait(browser, lambda d: d.current_url.endswith(f"/runs/{run_id}"), "the run page")
        wait(browser, lambda d: "tick 3" in d.find_element("id", "output").text, "the first lines")
        gate(tmp_path, "go")
        # Only a reload can bring new lines now: the <noscript> meta refresh does, every 3 s.
        wait(browser, lambda d: "tick 6" in d.find_element("id", "output").text, "a reload with later output")
        gate(tmp_path, "end")
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
