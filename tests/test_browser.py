"""The explorer end to end in a real headless Chromium (Playwright, sync API).

Starts the explorer's server (`python -m sim.explorer`, as `run.py explore` does) on a free
localhost port and drives the page as a student would: moves a salary slider, steps, presses
Play for several seconds (the day advances and no panel - map, charts, monitors - ever
vanishes), Pause (the day stops), saves the parameters (a scenario `load_scenario`
accepts), types a bad value (refused, named by the field's label, the model untouched),
closes the tab while playing (the server's stepping thread ends: the server keeps a count of
them in the file named by SIM_EXPLORER_STATUS), and opens the page at a phone's width
(390 px: the parameters stack below a full-width map). Screenshots go to the test's tmp_path.

Every wait is on the page's own state (a day shown, a button's label, the status file),
with a generous timeout for loaded machines; none is a fixed short sleep.

Needs the `ui` extra (solara), the `playwright` Python package and Debian's `chromium` at
/usr/bin/chromium (Playwright's own browser download is not used). Without them the test is
skipped, saying what to install; the in-process page tests of tests/test_explorer.py still
cover the page's logic, so nothing else is lost.
"""

from __future__ import annotations

import json
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
PLAY_S = 4.0  # how long Play runs while the panels are watched
SALARY_LABEL = "IRGC salary (USD/month)"

pytest.importorskip("solara", reason="the ui extra (solara) is not installed: pip install -e '.[ui]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)  # every expect() waits this long, not Playwright's 5 s
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"),
]


@pytest.fixture()
def server(tmp_path):
    """The explorer on a free port; yields (url, output directory, log file, status file). Stopped after."""
    from sim.explorer.server import free_port, wait_until_up

    port = free_port()
    out = tmp_path / "explorer-out"
    log_path = tmp_path / "server.log"
    status = tmp_path / "status.json"
    env = {
        **os.environ,
        "SIM_EXPLORER_OUT": str(out),
        "SIM_EXPLORER_STATUS": str(status),
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
    }
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
            yield url, out, log_path, status
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


DAY = ".explorer-monitor-day .explorer-monitor-value"
PANELS = {  # selector -> how many the page shows
    ".explorer-map-image": 1,
    ".explorer-map_sites .explorer-site-label": 1,  # at least one site name
    ".explorer-chart-svg": 6,
    ".explorer-lines-svg": 6,
    ".explorer-monitor-day": 1,
}
WATCH_PANELS = """(panels) => {
    window.__vanished = [];
    window.__watch = setInterval(() => {
        for (const [selector, n] of Object.entries(panels)) {
            if (document.querySelectorAll(selector).length < n) window.__vanished.push(selector);
        }
    }, 50);
}"""


def _day(page) -> int:
    return int(page.locator(DAY).inner_text())


def _wait_for_day(page, day: int) -> None:
    sync_api.expect(page.locator(DAY)).to_have_text(str(day), timeout=UI_TIMEOUT_MS)


def _stepping_threads(status: Path) -> int | None:
    try:
        return json.loads(status.read_text())["stepping_threads"]
    except (OSError, ValueError, KeyError):
        return None


def _wait_for_threads(status: Path, n: int) -> None:
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if _stepping_threads(status) == n:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server has {_stepping_threads(status)} stepping threads, expected {n}")


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_explorer_in_a_real_browser(server, browser_page, tmp_path):
    url, out, log_path, status = server
    page = browser_page
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    expect = sync_api.expect

    page.goto(url, timeout=UI_TIMEOUT_MS)
    for selector in PANELS:
        page.locator(selector).first.wait_for(state="visible")
    _wait_for_day(page, 0)
    assert page.locator(".explorer-lines-svg circle").count() >= 6  # day 0: a dot per line, not blank charts
    assert page.get_by_text("Model Parameters").count() == 0 and page.get_by_text("Use Threads").count() == 0
    # legends, site names, chart text and monitors at least 11 px high on screen
    smallest = page.evaluate(
        """() => Math.min(...Array.from(document.querySelectorAll(
            '.explorer-chart-svg text, .explorer-legend, .explorer-site-label, .explorer-monitor-name'
        )).map(e => e.getBoundingClientRect().height))"""
    )
    assert smallest >= 11, smallest
    page.screenshot(path=str(tmp_path / "explorer-day0.png"))

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

    map_0 = page.locator(".explorer-map_layer").inner_html()
    step = page.get_by_role("button", name="Step")
    for day in (1, 2, 3):
        step.click()
        _wait_for_day(page, day)
    expect(page.locator(".explorer-events")).to_contain_text("Latest events (day 3)")
    assert page.locator(".explorer-map_layer").inner_html() != map_0, "the map did not change after three steps"

    # Play for several seconds: the day advances, and no panel vanishes at any moment
    page.evaluate(WATCH_PANELS, PANELS)
    page.get_by_role("button", name="Play").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.wait_for_function(f"+document.querySelector('{DAY}').textContent >= 8", timeout=UI_TIMEOUT_MS)
    started, first = time.monotonic(), _day(page)
    page.wait_for_timeout(PLAY_S * 1000)  # the panels are watched meanwhile (every 50 ms, in the page)
    assert _day(page) > first, f"the day stayed at {first} for {time.monotonic() - started:.1f} s of Play"
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    _wait_for_threads(status, 0)  # the server's stepping thread ended with Pause
    paused = _day(page)
    page.wait_for_timeout(1500)
    assert _day(page) == paused, "the day advanced after Pause"
    vanished = page.evaluate("() => { clearInterval(window.__watch); return window.__vanished; }")
    assert not vanished, f"panels missing at moments during Play: {sorted(set(vanished))}"
    assert page.locator(".explorer-step-error").count() == 0
    page.screenshot(path=str(tmp_path / "explorer-played.png"))

    # save the parameters: a scenario YAML that load_scenario (and so run.py run) accepts
    page.get_by_role("button", name="Save parameters as scenario YAML").click()
    page.get_by_text("Scenario saved to").wait_for()
    saved = sorted(out.glob("baseline_explorer-*.yaml"))
    assert len(saved) == 1
    loaded = load_scenario(saved[0])
    assert loaded.factions["IRGC"].salary_usd_month == pytest.approx(salary)
    assert loaded.provenance["factions.IRGC.salary_usd_month"].startswith("assumption: set in the explorer")
    expect(page.get_by_role("button", name=re.compile(r"Download baseline_explorer-.*\.yaml"))).to_be_visible()

    # a bad typed value: a message naming the field's label, and the running model is left as it was
    salary_input.fill("-5")
    salary_input.press("Enter")
    problems = page.locator(".explorer-problems")
    problems.wait_for(state="visible")
    expect(problems).to_contain_text(f"{SALARY_LABEL}: input should be greater than or equal to 0")
    expect(problems).not_to_contain_text("factions.IRGC")
    _wait_for_day(page, paused)
    page.screenshot(path=str(tmp_path / "explorer-bad-value.png"))

    # a phone's width: the page stacks, the parameters below a full-width map, nothing covering it
    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(url, timeout=UI_TIMEOUT_MS)
    phone.locator(".explorer-map-image").wait_for(state="visible")
    _wait_for_day(phone, 0)
    map_box = phone.locator(".explorer-map-frame").bounding_box()
    side_box = phone.locator(".explorer-side").bounding_box()
    assert map_box["width"] >= 300, map_box  # the issue saw 94 px
    assert not _overlap(map_box, side_box), (map_box, side_box)
    assert side_box["y"] >= map_box["y"] + map_box["height"], (map_box, side_box)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
    phone.screenshot(path=str(tmp_path / "explorer-phone.png"))
    phone.close()

    # close the tab while playing: the server's model stops (its stepping thread ends)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(f"+document.querySelector('{DAY}').textContent > {paused}", timeout=UI_TIMEOUT_MS)
    assert _stepping_threads(status) == 1
    page.close()
    _wait_for_threads(status, 0)

    assert not failed, f"requests that failed: {failed}"
    log = log_path.read_text()
    assert "Traceback" not in log, log
    assert "Could not load URL" not in log, f"the page needed assets from the internet:\n{log}"
