"""The explorer end to end in a real headless Chromium (Playwright, sync API).

Starts the explorer's server (`python -m sim.explorer`, as `run.py explore` does) on a free
localhost port, loads the page, moves a salary slider, steps the model and checks that the
map and the charts were redrawn, that no error is shown, that saving writes a scenario
`load_scenario` accepts, and that a bad typed value is refused with a message while the
model keeps its state. Screenshots go to the test's tmp_path.

Needs the `ui` extra (solara), the `playwright` Python package and Debian's `chromium` at
/usr/bin/chromium (Playwright's own browser download is not used); skipped, saying which
is missing, without them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import PROJECT

from sim.scenario import load_scenario

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 120
UI_TIMEOUT_MS = 60_000  # one redraw takes well under a second; generous for loaded CI machines
SALARY_LABEL = "IRGC salary (USD/month)"

pytest.importorskip("solara", reason="the ui extra (solara) is not installed: pip install -e '.[ui]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"),
]


@pytest.fixture()
def server(tmp_path):
    """The explorer on a free port; yields (url, output directory, log file). Stopped after."""
    from sim.explorer.server import free_port, wait_until_up

    port = free_port()
    out = tmp_path / "explorer-out"
    log_path = tmp_path / "server.log"
    env = {**os.environ, "SIM_EXPLORER_OUT": str(out), "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sim.explorer", "baseline", "--port", str(port)],
            cwd=PROJECT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown stops the Solara child too
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_up(url, process, timeout=START_TIMEOUT_S)
            yield url, out, log_path
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    time.sleep(0.5)  # let the Solara child (same group) finish exiting
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture()
def browser_page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),  # a fresh profile per test
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1100},
            timeout=UI_TIMEOUT_MS,
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def _wait_for_day(page, day: int) -> None:
    page.get_by_text(f"Latest events (day {day})").wait_for(timeout=UI_TIMEOUT_MS)


def _shots(page) -> tuple[bytes, bytes]:
    return (
        page.locator(".explorer-map-image").screenshot(animations="disabled"),
        page.locator(".explorer-charts-image").screenshot(animations="disabled"),
    )


def _sources(page) -> tuple[str, str]:
    """The images' src (blob URLs, replaced whenever a new picture arrives)."""
    return (
        page.locator(".explorer-map-image").get_attribute("src"),
        page.locator(".explorer-charts-image").get_attribute("src"),
    )


def _wait_for_new_sources(page, old: tuple[str, str]) -> None:
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        new = _sources(page)
        if new[0] != old[0] and new[1] != old[1]:
            time.sleep(0.3)  # let the browser paint the new pictures
            return
        time.sleep(0.1)
    raise AssertionError(f"the map and charts were not redrawn within {UI_TIMEOUT_MS / 1000:.0f} s")


def test_explorer_in_a_real_browser(server, browser_page, tmp_path):
    url, out, log_path = server
    page = browser_page
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    expect = sync_api.expect

    page.goto(url, timeout=UI_TIMEOUT_MS)
    page.locator(".explorer-map-image").wait_for(state="visible")
    page.locator(".explorer-charts-image").wait_for(state="visible")
    _wait_for_day(page, 0)
    map_0, charts_0 = _shots(page)
    sources_0 = _sources(page)
    page.screenshot(path=str(tmp_path / "explorer-day0.png"), full_page=True)

    # move the IRGC salary slider to near its right end (the slider spans 0 .. 3x the scenario's salary)
    salary_input = page.get_by_label(SALARY_LABEL)
    scenario_salary = load_scenario("baseline").factions["IRGC"].salary_usd_month
    expect(salary_input).to_have_value(f"{scenario_salary:g}")
    top = max(3 * scenario_salary, 500)
    slider = page.locator(".control-factions-irgc-salary-usd-month .v-slider").first
    box = slider.bounding_box()
    assert box is not None
    slider.click(position={"x": box["width"] * 0.9, "y": box["height"] / 2})
    expect(salary_input).not_to_have_value(f"{scenario_salary:g}")
    salary = float(salary_input.input_value())
    assert 0.7 * top <= salary <= top, (salary, top)
    _wait_for_day(page, 0)  # a changed parameter restarts the run

    step = page.get_by_role("button", name="Step")
    for day in (1, 2, 3):
        step.click()
        _wait_for_day(page, day)
    _wait_for_new_sources(page, sources_0)  # the images arrive just after the text that announces the day
    map_3, charts_3 = _shots(page)
    sources_3 = _sources(page)
    assert map_3 != map_0, "the map did not change after three steps"
    assert charts_3 != charts_0, "the charts did not change after three steps"
    assert page.locator(".explorer-problems").count() == 0
    assert page.locator(".v-alert.error").count() == 0
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and "error in step" not in text
    page.screenshot(path=str(tmp_path / "explorer-day3.png"), full_page=True)

    # save the parameters: a scenario YAML that load_scenario (and so run.py run) accepts
    page.get_by_role("button", name="Save parameters as scenario YAML").click()
    page.get_by_text("Scenario saved to").wait_for()
    saved = sorted(out.glob("baseline_explorer-*.yaml"))
    assert len(saved) == 1
    loaded = load_scenario(saved[0])
    assert loaded.factions["IRGC"].salary_usd_month == pytest.approx(salary)
    assert loaded.provenance["factions.IRGC.salary_usd_month"].startswith("assumption: set in the explorer")
    expect(page.get_by_role("button", name=re.compile(r"Download baseline_explorer-.*\.yaml"))).to_be_visible()

    # a bad typed value: a message on the page, and the running model is left as it was
    salary_input.fill("-5")
    salary_input.press("Enter")
    problems = page.locator(".explorer-problems")
    problems.wait_for(state="visible")
    expect(problems).to_contain_text("factions.IRGC.salary_usd_month: input should be greater than or equal to 0")
    _wait_for_day(page, 3)
    time.sleep(0.5)
    assert _sources(page) == sources_3, "the map or charts were redrawn after a refused value"
    page.screenshot(path=str(tmp_path / "explorer-bad-value.png"), full_page=True)

    assert not failed, f"requests that failed: {failed}"
    log = log_path.read_text()
    assert "Traceback" not in log, log
    assert "Could not load URL" not in log, f"the page needed assets from the internet:\n{log}"
