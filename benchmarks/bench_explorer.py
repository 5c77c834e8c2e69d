#!/usr/bin/env python
"""Benchmark of the browser explorer: days per second during Play, the Step round trip, first load.

Run from the repository root (needs the ui extra; the browser part also Playwright and
/usr/bin/chromium, and is skipped, saying so, without them):

    python benchmarks/bench_explorer.py            # full run (about two minutes)
    python benchmarks/bench_explorer.py --quick    # CI smoke run (under a minute, no browser)
    python benchmarks/bench_explorer.py --json out.json --no-browser

Everything runs one after another in one process (the browser part against a server child),
so the figure to read next to each time is the reference measured in the same run: the bare
model step (`CorridorModel.step` of scenarios/baseline.yaml, no page). Targets (issue 12) are
printed PASS/MISS and never asserted:

1. reference: the bare model step, ms per day, over a year;
2. the play loop without a page (`sim.explorer.core.Runner`: step + snapshot), ms per day;
3. drawing one day (`sim.explorer.figures.draw`: map image, monitors, six SVG charts with the
   previous run faded), ms, mean and 95th percentile over a year;
4. the page rendered in-process (Solara's test renderer, no browser): Play through the page's
   own loop with a redraw every day, at the page's top speed and at its default speed,
   days per second (target >= 10) and whether every day was drawn; the Step button's round
   trip (click to drawn), ms;
5. in Chromium (headless, against `python -m sim.explorer`): first load (navigation to the
   map drawn, target < 11 s), Step round trip (click to the day shown, target < 1 s), and
   the days per second the page shows during Play at its default and top speeds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `python benchmarks/bench_explorer.py` works without PYTHONPATH
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")

import numpy as np  # noqa: E402

from benchmarks.bench_model import environment as model_environment  # noqa: E402
from sim.explorer import core  # noqa: E402
from sim.explorer.figures import AxisScales, draw, run_info  # noqa: E402

SCENARIO = "baseline"
CHROMIUM = Path("/usr/bin/chromium")
END_DAY = 365  # the baseline's `steps`: Play pauses there (`sim.explorer.core.Runner`)
PLAY_TARGET = 10.0  # days per second during Play, a redraw every day
STEP_TARGET_S = 1.0  # one Step, click to drawn
LOAD_TARGET_S = 11.0  # first load, navigation to the map drawn
FULL = dict(days=365, page_days=365, browser=True, browser_play_s=15.0)
QUICK = dict(days=120, page_days=120, browser=False, browser_play_s=8.0)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --------------------------------------------------------------------------- no page


def measure_core(days: int) -> dict:
    """The bare model step, the Runner's step + snapshot, and drawing one day."""
    session = core.Session(SCENARIO)
    model = session.new_model()
    started = time.perf_counter()
    for _ in range(days):
        model.step()
    bare = (time.perf_counter() - started) / days

    runner = core.Runner(session.new_model, describe=run_info)
    snapshots = []
    started = time.perf_counter()
    for _ in range(days):
        snapshots.append(runner.step())
    looped = (time.perf_counter() - started) / days
    previous = snapshots[-1]
    runner.restart()
    scales = AxisScales()
    times = []
    for snapshot in snapshots:  # a year drawn day by day, with a whole previous run faded under it
        started = time.perf_counter()
        draw(snapshot, previous, scales)
        times.append(time.perf_counter() - started)
    runner.close()
    return dict(
        days=days,
        bare_step_ms=bare * 1e3,
        runner_step_ms=looped * 1e3,
        draw_mean_ms=statistics.fmean(times) * 1e3,
        draw_p95_ms=float(np.percentile(times, 95)) * 1e3,
        draw_last_ms=times[-1] * 1e3,
    )


# --------------------------------------------------------------------------- the page, in-process


def measure_page(days: int) -> dict:
    """Play and Step through the page's own loop and widgets, rendered by Solara's test renderer."""
    import ipyvuetify as v
    import solara

    from sim.explorer.app import Page, RunCanvas

    os.environ[core.ENV_SCENARIO] = SCENARIO
    started = time.perf_counter()
    _, rc = solara.render(solara.AppLayout(children=[Page()]), handle_error=False)
    first_render = time.perf_counter() - started
    canvas = rc.find(RunCanvas).widget
    drawn: list[int] = []

    def on_change(change):
        match = re.search(r"explorer-monitor-day.*?explorer-monitor-value\">(\d+)<", change["new"]["monitors"])
        if match:
            drawn.append(int(match[1]))

    canvas.observe(on_change, "parts")

    def button(name):
        return rc.find(v.Btn, children=[name]).widget

    def speed_slider():
        return next(w for w in rc.find(v.Slider).widgets if str(w.label).startswith("Speed"))

    def play(speed: int, n_days: int) -> dict:
        speed_slider().v_model = speed
        button("Reset").click()
        drawn.clear()
        started = time.perf_counter()
        button("Play").click()
        while (not drawn or drawn[-1] < n_days) and time.perf_counter() - started < 600:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        # Not paused by itself at the run's last day? Found once and clicked: looking twice raced
        # with the loop pausing itself in between (a faster model reaches day 365 sooner).
        pause = rc.find(v.Btn, children=["Pause"]).widgets
        if pause:
            pause[0].click()
        shown = [d for d in drawn if d <= n_days]
        return dict(
            speed=speed,
            days=n_days,
            seconds=elapsed,
            days_per_s=n_days / elapsed,
            every_day_drawn=shown == list(range(1, n_days + 1)),
        )

    top = play(int(core.MAX_SPEED), days)
    default = play(int(core.DEFAULT_SPEED), min(days, 60))
    button("Reset").click()
    trips = []
    for _ in range(20):
        started = time.perf_counter()
        button("Step").click()  # synchronous in this renderer: returns once drawn
        trips.append(time.perf_counter() - started)
    rc.close()
    return dict(
        first_render_s=first_render,
        play_top=top,
        play_default=default,
        step_round_trip_ms=statistics.median(trips) * 1e3,
    )


# --------------------------------------------------------------------------- the page, in Chromium


def measure_browser(play_s: float) -> dict:
    """First load, Step round trip and days per second shown during Play, in headless Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return dict(skipped="the playwright Python package is not installed (it comes with the dev extra)")
    if not CHROMIUM.exists():
        return dict(skipped=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    from sim.explorer.server import free_port, wait_until_up

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sim.explorer", SCENARIO, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    timeout_ms = 120_000
    try:
        wait_until_up(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            day = page.locator(".explorer-monitor-day .explorer-monitor-value")
            started = time.perf_counter()
            page.goto(url, timeout=timeout_ms)
            page.locator(".explorer-map-image").wait_for(timeout=timeout_ms)
            page.locator(".explorer-chart-svg").first.wait_for(timeout=timeout_ms)
            first_load = time.perf_counter() - started
            trips = []
            for k in range(1, 11):
                started = time.perf_counter()
                page.get_by_role("button", name="Step").click()
                page.wait_for_function(
                    f"document.querySelector('.explorer-monitor-day .explorer-monitor-value')?.textContent === '{k}'",
                    timeout=timeout_ms,
                )
                trips.append(time.perf_counter() - started)

            def play(speed: int | None) -> dict:
                if speed is not None:  # the slider's keyboard: End = its top
                    page.locator(".explorer-speed .v-slider__thumb-container").focus()
                    page.keyboard.press("End")
                    page.get_by_text(f"Speed: {speed} days per second").wait_for(timeout=timeout_ms)
                # From day 0 (Reset), until `play_s` pass or Play pauses at the run's last day (365).
                page.get_by_role("button", name="Reset").click()
                page.wait_for_function(
                    "document.querySelector('.explorer-monitor-day .explorer-monitor-value')?.textContent === '0'",
                    timeout=timeout_ms,
                )
                first = 0
                started = time.perf_counter()
                page.get_by_role("button", name="Play").click()
                last, elapsed = first, 0.0
                while time.perf_counter() - started < play_s:
                    time.sleep(0.1)
                    now = int(day.inner_text())
                    if now != last:  # timed to the last day seen to change (not the idle time after the end)
                        last, elapsed = now, time.perf_counter() - started
                    if now >= END_DAY:
                        break
                if page.get_by_role("button", name="Pause").count():
                    page.get_by_role("button", name="Pause").click()
                shown = (last - first) / elapsed if elapsed > 0 else 0.0
                return dict(speed=speed or int(core.DEFAULT_SPEED), seconds=elapsed, days_per_s=shown)

            default = play(None)
            top = play(int(core.MAX_SPEED))
            browser.close()
        return dict(
            first_load_s=first_load,
            step_round_trip_ms=statistics.median(trips) * 1e3,
            play_default=default,
            play_top=top,
        )
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        server.wait(timeout=30)


# --------------------------------------------------------------------------- report


def environment() -> dict:
    """bench_model's environment (date, source fingerprint, versions, CPUs), plus Solara's version and the load."""
    try:
        import solara

        solara_version = solara.__version__
    except ImportError:
        solara_version = "not installed"
    return {
        **model_environment(),
        "solara": solara_version,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def render(env: dict, mode: str, res: dict) -> str:
    lines = []
    add = lines.append
    add(f"Explorer benchmark ({mode}) - {env['date']}")
    add(
        f"Python {env['python']}, Mesa {env['mesa']}, Solara {env['solara']}, "
        f"CPUs {env['usable_cpus']} usable / {env['cpu_count']}, {env['platform']}"
    )
    add(f"sim/ source fingerprint (sha256 of sim/**/*.py): {env['sim_sha256']}")
    if env["load_average"]:
        add("load average at start: " + ", ".join(f"{x:.2f}" for x in env["load_average"]))
    c = res["core"]
    bare = c["bare_step_ms"]
    add("")
    add(f"1. Reference: bare model step ({SCENARIO}, {c['days']} days)      {bare:8.2f} ms/day")
    add(
        f"2. Play loop, no page (Runner: step + snapshot)   {c['runner_step_ms']:8.2f} ms/day"
        f"   = {c['runner_step_ms'] / bare:.1f} x the bare step"
    )
    add(
        f"3. Drawing one day (figures.draw)                 {c['draw_mean_ms']:8.2f} ms mean, "
        f"{c['draw_p95_ms']:.2f} ms p95, {c['draw_last_ms']:.2f} ms on day {c['days']}"
        f"   = {c['draw_mean_ms'] / bare:.1f} x the bare step"
    )
    if "page" in res:
        p = res["page"]
        add("4. The page in-process (Solara's test renderer, no browser)")
        add(f"   first render                                   {p['first_render_s']:8.2f} s")
        for name in ("play_top", "play_default"):
            r = p[name]
            ok = r["days_per_s"] >= PLAY_TARGET and r["every_day_drawn"]
            target = f"   target >= {PLAY_TARGET:.0f}   {verdict(ok)}" if name == "play_top" else ""
            add(
                f"   Play at speed {r['speed']:>2} days/s: {r['days']} days in {r['seconds']:6.2f} s = "
                f"{r['days_per_s']:6.1f} days/s, every day drawn: {'yes' if r['every_day_drawn'] else 'NO'}{target}"
            )
        add(
            f"   Step round trip (click to drawn), median of 20   {p['step_round_trip_ms']:8.1f} ms"
            f"   = {p['step_round_trip_ms'] / bare:.0f} x the bare step"
        )
    if "browser" in res:
        b = res["browser"]
        add("5. The page in headless Chromium (server: python -m sim.explorer)")
        if "skipped" in b:
            add(f"   skipped: {b['skipped']}")
        else:
            add(
                f"   first load (to the map drawn)                  {b['first_load_s']:8.2f} s"
                f"   target < {LOAD_TARGET_S:.0f} s   {verdict(b['first_load_s'] < LOAD_TARGET_S)}"
            )
            add(
                f"   Step round trip (click to day shown), median   {b['step_round_trip_ms']:8.1f} ms"
                f"   target < {STEP_TARGET_S * 1e3:.0f} ms   {verdict(b['step_round_trip_ms'] < STEP_TARGET_S * 1e3)}"
            )
            for name in ("play_default", "play_top"):
                r = b[name]
                line = (
                    f"   Play at speed {r['speed']:>2} days/s: shown {r['days_per_s']:6.1f} days/s "
                    f"over {r['seconds']:.1f} s"
                )
                if name == "play_top":
                    line += f"   target >= {PLAY_TARGET:.0f}   {verdict(r['days_per_s'] >= PLAY_TARGET)}"
                add(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer days, no browser (CI smoke run, < 1 min)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--no-browser", action="store_true", help="skip the headless-Chromium part")
    parser.add_argument("--no-page", action="store_true", help="skip the in-process page (no ui extra needed)")
    args = parser.parse_args(argv)

    mode = "quick" if args.quick else "full"
    p = QUICK if args.quick else FULL
    env = environment()
    started = time.perf_counter()
    results = {"core": measure_core(p["days"])}
    if not args.no_page:
        results["page"] = measure_page(p["page_days"])
    if p["browser"] and not args.no_browser:
        results["browser"] = measure_browser(p["browser_play_s"])
    print(render(env, mode, results))
    elapsed = time.perf_counter() - started
    print(f"\n(benchmark wall time {elapsed:.1f} s)")
    if args.json:
        payload = dict(mode=mode, parameters=p, environment=env, results=results, benchmark_wall_s=elapsed)
        Path(args.json).write_text(json.dumps(payload, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
