"""The browser explorer without a browser: controls from the schema, validation, saving,
export, the play loop (`Runner`: snapshots never half-recorded, Pause, close, restart, a
failing step), and the Solara page itself (rendered in-process with Solara's test renderer:
Play, Pause and closing the page, monitors, fixed-axis charts with the previous run faded).

The logic tests need no user-interface package; the page tests need the `ui` extra
(solara) and are skipped, with that reason, only where it is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from helpers import PROJECT, SCENARIOS

from sim.explorer import core
from sim.explorer.core import CONTROL_TABLE, ExplorerModel, Session, field_bounds, schema_field
from sim.keypath import get as get_path
from sim.runner import run_model
from sim.scenario import load_scenario, scenario_from_dict, scenario_to_dict

EXPLORABLE = [name for name, _ in core.list_explorable()]
HAS_UI = importlib.util.find_spec("solara") is not None
needs_ui = pytest.mark.skipif(
    not HAS_UI,
    reason="the ui extra (Solara) is not installed (pip install -e '.[ui]'): the explorer's page tests are "
    "skipped; its model-side tests and the rest of the project do not need it",
)
SALARY = "factions.IRGC.salary_usd_month"


@pytest.fixture()
def out_dir(tmp_path, monkeypatch):
    """Saved files go to a temporary directory, never into the project's results/."""
    out = tmp_path / "explorer"
    monkeypatch.setenv(core.ENV_OUT, str(out))
    return out


# --------------------------------------------------------------------------- the control table


def test_the_scenario_picker_lists_the_scenarios_that_are_not_designs():
    names = set(EXPLORABLE)
    assert {"baseline", "toy_two_towns", "salary_parity", "supply_route_closed"} <= names
    assert not any(name.startswith("sweep_") for name in names)
    for name in names:
        scenario = load_scenario(name)
        assert all(getattr(scenario, section) is None for section in core.DESIGN_SECTIONS), name
    for path in SCENARIOS.glob("*.yaml"):
        if path.stem not in names:  # a sweep or calibration design: still explorable by path, design dropped
            assert core.DESIGN_SECTIONS
            assert all(getattr(core.load_explorable(str(path)), s) is None for s in core.DESIGN_SECTIONS)


def test_every_table_row_names_a_schema_parameter():
    for spec in CONTROL_TABLE:
        key = spec.key.format(militia="X", patron="X", supply_patron="X", tribe="X")
        field, kind = schema_field(key)
        assert kind in (bool, int, float), key
        assert field.description, f"{key}: the schema field has no help text"
        bounds = field_bounds(field)
        if kind is not bool and spec.span is None:
            assert "le" in bounds or "lt" in bounds, f"{key}: an unbounded field needs a span in the table"


def test_the_controls_cover_what_students_try():
    keys = {c.key for c in Session("baseline").controls}
    for militia in ("IRGC", "NDF", "MILSEC"):
        for what in ("salary_usd_month", "privileges", "exempts_conscription"):
            assert f"factions.{militia}.{what}" in keys
    assert "factions.ISIS.salary_usd_month" not in keys  # insurgents have no salary to try
    for patron in ("Iran", "Russia", "Regime"):
        assert f"patrons.{patron}.funding_usd_day" in keys
    assert "patrons.Iran.supply_open" in keys  # the one patron with a supply route
    assert "patrons.Russia.supply_open" not in keys
    assert {
        "rules.mediation.interval_days",
        "rules.mediation.min_days_between",
        "rules.mediation.p_success_base",
        "rules.insurgency.growth_per_clash",
        "rules.insurgency.base_growth_per_day",
        "tribes.deir_tribes.responsiveness",
        "tribes.bukamal_tribes.responsiveness",
    } <= keys


@pytest.mark.parametrize("name", EXPLORABLE)
def test_every_control_maps_to_a_valid_scenario_key(name):
    """Each control's default, minimum and maximum (on and off for switches) make a valid
    scenario, and the value lands at the control's key path."""
    session = Session(name)
    assert session.controls
    for control in session.controls:
        trials = [True, False] if control.kind == "bool" else [control.default, control.low, control.high]
        for value in trials:
            data = session.candidate({**session.values, control.key: value})
            scenario = scenario_from_dict(data, source="test")
            assert get_path(scenario_to_dict(scenario), control.key) == value, (control.key, value)


@pytest.mark.parametrize("name", EXPLORABLE)
def test_defaults_are_the_scenario_values_and_ranges_the_schema_bounds(name):
    scenario = load_scenario(name)
    data = scenario_to_dict(scenario)
    session = Session(name)
    assert session.seed == scenario.seed
    for control in session.controls:
        assert control.default == get_path(data, control.key), control.key
        field, _ = schema_field(control.key)
        assert control.help == field.description
        assert control.unit == (field.json_schema_extra or {}).get("unit", "")
        if control.unit:
            assert control.label.endswith(f"({control.unit})")
        if control.kind == "bool":
            continue
        bounds = field_bounds(field)
        assert control.low >= bounds.get("ge", bounds.get("gt", float("-inf")))
        assert control.high <= bounds.get("le", bounds.get("lt", float("inf")))
        assert control.low <= control.default or control.default < control.low == bounds.get("ge")
        assert control.step > 0
        if control.kind == "int":
            assert control.step == 1
    model = session.new_model()
    assert model.config == scenario
    assert model.run_seed == scenario.seed


def test_an_unbounded_field_gets_a_slider_relative_to_the_scenario_value():
    controls = {c.key: c for c in Session("baseline").controls}
    funding = controls["patrons.Iran.funding_usd_day"]  # no upper bound in the schema
    scenario_value = load_scenario("baseline").patrons["Iran"].funding_usd_day
    assert funding.low == 0 and funding.high == pytest.approx(max(3 * scenario_value, 5000), abs=funding.step)
    assert "3x" in funding.slider_note
    assert controls["factions.IRGC.privileges"].high == 1.0  # bounded: the schema's bound
    assert controls["factions.IRGC.privileges"].slider_note == ""


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "key, raw, words",
    [
        (SALARY, "-5", "greater than or equal to 0"),
        (SALARY, "200000", "less than or equal to 100000"),
        (SALARY, "abc", "not a number"),
        (SALARY, "", "a number is needed"),
        (SALARY, "nan", "finite number"),
        ("rules.mediation.interval_days", "2.5", "valid integer"),
        ("rules.mediation.interval_days", "0", "greater than or equal to 1"),
        ("rules.mediation.p_success_base", "1.5", "less than or equal to 1"),
        ("seed", "-1", "greater than or equal to 0"),
        ("seed", "seven", "not a number"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_and_changes_nothing(key, raw, words):
    session = Session("baseline")
    model = session.new_model()
    for _ in range(3):
        model.step()
    scenario, values, seed = session.scenario, dict(session.values), session.seed
    assert session.propose(key, raw) is False
    assert session.problems and any(words in line for line in session.problems), session.problems
    label = session.control(key).label  # the field's label as its control shows it, not the key path
    assert all(line.startswith(f"{label}: ") for line in session.problems), session.problems
    assert not any(key in line for line in session.problems if key != "seed"), session.problems
    assert session.drafts[key] == raw  # the page keeps showing what was typed
    assert session.scenario is scenario and session.values == values and session.seed == seed
    assert model.steps == 3  # the page rebuilds the model only when propose() returns True
    # a valid value then clears the problem and applies
    good = "7" if key == "seed" else ("31" if "interval" in key else "0.51" if "p_success" in key else "237")
    assert session.propose(key, good) is True
    assert session.problems == [] and key not in session.drafts


def test_a_valid_value_is_applied_and_reset_rebuilds_from_it():
    session = Session("baseline")
    assert session.propose(SALARY, "237") is True
    supply = not session.values["patrons.Iran.supply_open"]
    assert session.propose("patrons.Iran.supply_open", supply) is True
    assert session.propose("seed", str(session.seed + 1)) is True
    assert session.scenario.factions["IRGC"].salary_usd_month == 237.0
    assert session.scenario.patrons["Iran"].supply_open is supply
    # the page's Reset rebuilds with session.new_model, from the latest valid values
    rebuilt = session.new_model()
    assert rebuilt.config.factions["IRGC"].salary_usd_month == 237.0
    assert rebuilt.run_seed == session.origin.seed + 1
    assert set(session.changes()) == {SALARY, "patrons.Iran.supply_open", "seed"}
    session.restore_defaults()
    assert session.changes() == {} and session.scenario == session.origin


# --------------------------------------------------------------------------- saving and export


def test_files_go_to_the_projects_results_directory_not_the_current_one(tmp_path, monkeypatch):
    from sim.results import RESULTS_DIR

    monkeypatch.delenv(core.ENV_OUT, raising=False)
    monkeypatch.chdir(tmp_path)
    assert core.output_dir() == RESULTS_DIR / "explorer" and core.output_dir().is_absolute()
    # The default itself, pointed into tmp_path so the test leaves the real results/ alone.
    project_results = tmp_path / "project" / "results" / "explorer"
    monkeypatch.setattr(core, "DEFAULT_OUT", project_results)
    session = Session("toy_two_towns")
    saved = session.save_scenario()
    exported = session.export_timeseries(session.new_model())
    assert saved.path.parent == project_results and exported.path.parent == project_results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # nothing in the current directory


def test_the_saved_yaml_is_a_full_scenario_that_run_py_accepts(out_dir):
    session = Session("baseline")
    assert session.propose(SALARY, "237")
    assert session.propose("rules.mediation.interval_days", "19")
    saved = session.save_scenario()
    assert saved.path.parent == out_dir and saved.path.suffix == ".yaml"
    assert saved.path.read_bytes() == saved.data
    loaded = load_scenario(saved.path)
    assert loaded.name == "baseline_explorer"
    assert loaded.factions["IRGC"].salary_usd_month == 237.0
    assert loaded.rules.mediation.interval_days == 19
    for key in (SALARY, "rules.mediation.interval_days"):
        assert loaded.provenance[key].startswith("assumption: set in the explorer")
    kept = "factions.NDF.salary_usd_month"  # an unchanged parameter keeps its source
    assert loaded.provenance[kept] == session.origin.provenance[kept]

    def parameters(s):
        skip = ("name", "description", "provenance", *core.DESIGN_SECTIONS)
        return {k: v for k, v in scenario_to_dict(s).items() if k not in skip}

    assert parameters(loaded) == parameters(session.scenario)  # fully resolved: nothing lost, nothing added
    from sim.cli import main

    assert main(["validate", str(saved.path)]) == 0
    run = run_model(loaded, seed=loaded.seed, steps=3)
    assert len(run.timeseries) == 4
    again = session.save_scenario()  # a second save never overwrites the first
    assert again.path != saved.path and saved.path.exists()


def test_the_csv_export_has_the_timeseries_columns(out_dir):
    session = Session("toy_two_towns")
    model = session.new_model()
    for _ in range(5):
        model.step()
    saved = session.export_timeseries(model)
    assert saved.path.parent == out_dir and saved.path.suffix == ".csv"
    frame = pd.read_csv(saved.path)
    reference = run_model(session.scenario, seed=session.seed, steps=5).timeseries
    assert list(frame.columns) == ["replicate", "seed", *reference.columns]  # as in a results directory
    assert list(frame["step"]) == [0, 1, 2, 3, 4, 5]
    assert (frame["seed"] == session.seed).all()
    for column in ("fighters.Blue", "territory.Red", "killed.Blue", "defections.Blue>Red", "tension.Blue~Red"):
        assert column in frame.columns
    pd.testing.assert_series_equal(frame["fighters.Blue"], reference["fighters.Blue"], check_dtype=False)


def test_events_are_described_in_words():
    session = Session("baseline")
    model = session.new_model()
    for _ in range(session.scenario.rules.mediation.interval_days):  # the first scheduled meeting
        model.step()
    lines = core.latest_events(model, 50)
    assert lines and all(line.startswith("day ") for line in lines)
    kinds = {e["event"] for e in model.events if e["event"] in core.EVENT_KINDS}
    assert "meeting" in kinds
    assert any("meeting IRGC\u2013NDF" in line for line in lines)


def test_the_model_never_imports_the_explorer():
    code = (
        "import sys, sim, sim.model, sim.api, sim.runner, sim.plots, sim.scenario; "
        "bad = [m for m in sys.modules if m.startswith('sim.explorer') or m.startswith('solara')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT, timeout=120)


# --------------------------------------------------------------------------- the page (needs solara)


@pytest.fixture()
def page(monkeypatch, out_dir):
    """The explorer page rendered in-process (no server, no browser) on the toy scenario."""
    solara = pytest.importorskip(
        "solara",
        reason="the ui extra (Solara) is not installed (pip install -e '.[ui]'): the explorer's page tests are "
        "skipped; nothing else needs it",
    )
    from sim.explorer.app import Page

    monkeypatch.setenv(core.ENV_SCENARIO, "toy_two_towns")
    box, rc = solara.render(solara.AppLayout(children=[Page()]), handle_error=False)
    yield rc
    rc.close()


def _regions(rc) -> dict[str, str]:
    """The page's drawn regions (class explorer-<name>) -> their HTML now."""
    from sim.explorer.app import RunCanvas

    canvas = rc.find(RunCanvas).widget
    return {f"explorer-{name}": html for name, html in {**canvas.still, **canvas.parts}.items()}


def _day(rc) -> int:
    events = _regions(rc)["explorer-events"]
    return int(re.search(r"Latest events \(day (\d+)\)", events)[1])


def _has_button(rc, name) -> bool:
    import ipyvuetify as v

    return bool(rc.find(v.Btn, children=[name]).widgets)


def _button(rc, name):
    import ipyvuetify as v

    return rc.find(v.Btn, children=[name]).widget


@needs_ui
def test_the_page_builds_with_the_map_charts_monitors_and_every_control(page):
    import ipyvuetify as v

    from sim.explorer.figures import PANELS

    session = Session("toy_two_towns")
    labels = {w.label for w in page.find(v.TextField).widgets}
    for control in session.controls:
        if control.kind == "bool":
            assert page.find(v.Switch, label=control.label), control.label
        else:
            assert control.label in labels, control.label
    assert "Seed" in labels
    for name in ("Play", "Step", "Reset", "Save parameters as scenario YAML", "Export run data (CSV)"):
        assert page.find(v.Btn, children=[name]), name
    regions = _regions(page)
    assert 'src="data:image/png;base64,' in regions["explorer-map_layer"]
    assert "Al-" not in regions["explorer-map_sites"] and "explorer-site-label" in regions["explorer-map_sites"]
    for panel in PANELS:  # not blank at day 0: axes, a label with its unit, and a dot per line
        chart = regions[f"explorer-chart-{panel.key}"]
        assert "<svg" in chart and panel.y_label in chart and "day of the run" in chart, panel.key
    assert "<circle" in regions["explorer-lines-fighters"]
    assert f"Speed: {core.DEFAULT_SPEED:.0f} days per second" in {w.label for w in page.find(v.Slider).widgets}
    monitors = regions["explorer-monitors"]
    for name in ("Day", "Blue fighters", "Killed so far", "Defections so far", "Tension"):
        assert name in monitors, name
    assert "Model Parameters" not in str(page.find(v.CardTitle).widgets) and not page.find(
        v.Checkbox, label="Use Threads"
    )
    shown = {str(c) for w in page.find(v.Html, tag="span").widgets for c in (w.children or [])}
    tips = {str(c) for w in page.find(v.Tooltip).widgets for c in (w.children or [])}
    for control in session.controls:  # every control shows the schema's help text, as text and tooltip
        assert control.full_help in shown and control.full_help in tips, control.key


@needs_ui
def test_picking_another_scenario_replaces_the_controls_and_the_model(page):
    import ipyvuetify as v

    _button(page, "Step").click()
    assert _day(page) == 1

    def picker():
        return page.find(v.Select, label="Scenario (scenarios/)").widget

    assert _wait_until(lambda: set(EXPLORABLE) <= set(picker().items)), picker().items  # listed in a thread
    picker = picker()
    picker.v_model = "salary_parity"
    assert _day(page) == 0
    parity = load_scenario("salary_parity").factions["IRGC"].salary_usd_month
    assert page.find(v.TextField, label="IRGC salary (USD/month)").widget.v_model == f"{parity:g}"
    assert not page.find(v.TextField, label="Blue salary (USD/month)")
    assert "IRGC fighters" in _regions(page)["explorer-monitors"]


@needs_ui
def test_stepping_redraws_the_map_and_charts_and_reset_keeps_the_run_faded(page):
    before = _regions(page)
    assert _day(page) == 0 and "explorer-previous" not in before["explorer-chart-fighters"]
    for _ in range(3):
        _button(page, "Step").click()
    assert _day(page) == 3
    after = _regions(page)
    assert after["explorer-map_layer"] != before["explorer-map_layer"]
    assert after["explorer-lines-fighters"] != before["explorer-lines-fighters"]
    assert ">3</span>" in after["explorer-monitors"]  # the day monitor
    _button(page, "Reset").click()
    assert _day(page) == 0
    reset = _regions(page)
    assert "explorer-previous" in reset["explorer-chart-fighters"]  # the run before Reset, faded
    assert "previous run (faded)" in reset["explorer-legend-fighters"]


@needs_ui
def test_on_the_page_a_bad_value_shows_the_fields_label_and_leaves_the_model_running(page):
    import ipyvuetify as v

    for _ in range(2):
        _button(page, "Step").click()
    field = page.find(v.TextField, label="Blue salary (USD/month)").widget
    field.v_model = "-5"
    field.fire_event("keyup.enter", None)
    alerts = [str(w.children) for w in page.find(v.Alert).widgets]
    assert any("Blue salary (USD/month): input should be greater than or equal to 0" in a for a in alerts)
    assert not any("factions.Blue" in a for a in alerts)
    field = page.find(v.TextField, label="Blue salary (USD/month)").widget
    assert field.error
    assert _day(page) == 2  # the running model is untouched
    _button(page, "Step").click()
    assert _day(page) == 3
    field.v_model = "180"
    field.fire_event("keyup.enter", None)
    assert not page.find(v.Alert).widgets
    assert _day(page) == 0  # a valid value restarts the run with it
    assert "explorer-previous" in _regions(page)["explorer-chart-fighters"]


@needs_ui
def test_the_save_and_export_buttons_write_files_and_offer_downloads(page, out_dir):
    import ipyvuetify as v

    _button(page, "Step").click()
    _button(page, "Save parameters as scenario YAML").click()
    _button(page, "Export run data (CSV)").click()
    yaml_files, csv_files = sorted(out_dir.glob("*.yaml")), sorted(out_dir.glob("*.csv"))
    assert len(yaml_files) == 1 and len(csv_files) == 1
    assert load_scenario(yaml_files[0]).name == "toy_two_towns_explorer"
    assert len(pd.read_csv(csv_files[0])) == 2  # days 0 and 1
    buttons = " ".join(str(w.children) for w in page.find(v.Btn).widgets)
    assert f"Download {yaml_files[0].name}" in buttons and f"Download {csv_files[0].name}" in buttons


@needs_ui
def test_serve_refuses_a_bad_scenario_before_starting_a_server(tmp_path):
    from sim.explorer.server import serve
    from sim.yaml_source import ScenarioError

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {SCENARIOS / 'baseline.yaml'}\nname: bad\nfactions:\n  NDF:\n    salary_usd_month: -5\n")
    with pytest.raises(ScenarioError, match="salary_usd_month"):
        serve(str(bad))
    with pytest.raises(ScenarioError):
        serve("no_such_scenario")


def _answering_server():
    """A plain HTTP server answering 200 on a free localhost port, in a thread: (server, port)."""
    import http.server

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


_LISTENER = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
    "print(s.getsockname()[1], flush=True); time.sleep(60)"
)


@needs_ui
def test_listens_on_tells_which_process_holds_a_port():
    from sim.explorer.server import listens_on

    child = subprocess.Popen([sys.executable, "-c", _LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        assert listens_on(child, port) is True
        assert listens_on(child, port + 1 if port < 65535 else port - 1) is False
        other, other_port = _answering_server()
        try:
            assert listens_on(child, other_port) is False  # this process answers there, not the child
        finally:
            other.shutdown()
    finally:
        child.kill()
        child.wait()
    assert listens_on(child, port) is False  # ended


@needs_ui
def test_another_server_on_the_port_is_not_taken_for_the_explorers_own():
    # Two `run.py explore --port N` started at once both found the port free; the second printed
    # the first's address as its own, then its server failed (errno 98) and it exited 3.
    from sim.explorer.server import PortTaken, wait_until_up

    other, port = _answering_server()
    url = f"http://127.0.0.1:{port}/"
    try:
        silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:  # alive but not listening: the answer is not its, so no return before the time is up
            with pytest.raises(RuntimeError, match="did not answer"):
                wait_until_up(url, silent, timeout=1.5)
        finally:
            silent.kill()
            silent.wait()
        failed = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(1)"])
        failed.wait()
        with pytest.raises(PortTaken, match=f"port {port} is in use by another server"):
            wait_until_up(url, failed, timeout=30)
        wait_until_up(url, None, timeout=30)  # without a process, any answer counts
    finally:
        other.shutdown()


@needs_ui
@pytest.mark.slow
def test_serve_says_the_port_is_taken_when_another_server_wins_the_race(monkeypatch, capfd, tmp_path):
    # The other explorer binds between this one's check and its server's start: exit status 2, no
    # address, one line (the server child's banner with the address and uvicorn's bind error were
    # printed too: capfd sees the child's output, which shares this process's stdout and stderr).
    from sim.explorer import server

    other, port = _answering_server()
    monkeypatch.setattr(server, "port_is_free", lambda *args: True)  # the race: both found the port free
    try:
        status = server.serve("toy_two_towns", port=port, out_dir=tmp_path)
    finally:
        other.shutdown()
    out, err = capfd.readouterr()
    assert status == 2, err
    assert "http" not in out, out
    assert err.splitlines() == [f"error: port {port} is in use by another server; choose another or leave --port out"]


@needs_ui
def test_closing_the_page_stops_its_model_and_frees_it(monkeypatch, out_dir):
    """Play steps in the page's own thread; Pause stops at once; closing the tab while playing stops it.

    And the closed page's models are freed.
    """
    import gc
    import weakref

    import solara
    import solara.comm

    from sim.explorer.app import Page

    monkeypatch.setenv(core.ENV_SCENARIO, "toy_two_towns")
    built = []
    build = ExplorerModel.__init__

    def recorded(self, source):
        build(self, source)
        built.append(weakref.ref(self))

    monkeypatch.setattr(ExplorerModel, "__init__", recorded)
    before = core.live_stepping_threads()
    rendered = solara.render(solara.AppLayout(children=[Page()]), handle_error=False)
    rc = rendered[1]
    _button(rc, "Play").click()
    assert _wait_until(lambda: _day(rc) >= 3), "the page does not play"
    assert core.live_stepping_threads() == before + 1
    _button(rc, "Pause").click()
    paused = built[-1]().steps
    time.sleep(0.5)  # several days at the default speed
    assert built[-1]().steps == paused and _day(rc) == paused
    assert _wait_until(lambda: core.live_stepping_threads() == before), "the stepping thread outlived Pause"
    _button(rc, "Play").click()
    assert _wait_until(lambda: built[-1]().steps >= paused + 2), "Play does not resume"
    # Played to the toy's last day (90 at the default 15 days a second: about 6 s), Play pauses
    # and the button says Play again.
    assert _wait_until(lambda: _day(rc) == 90 and _has_button(rc, "Play"), within_s=120), "Play did not stop at the end"
    assert _wait_until(lambda: core.live_stepping_threads() == before)
    time.sleep(core.END_GRACE_S)  # a press at once would be the Pause the button showed (`Runner.press`)
    _button(rc, "Play").click()  # pressed again at the end: it plays on
    assert _wait_until(lambda: built[-1]().steps >= 92), "Play does not go on past the end when pressed again"
    rc.close()  # what Solara does when the tab closes (or the session is culled)
    assert _wait_until(lambda: core.live_stepping_threads() == before), "the model still runs after its page closed"
    rendered = rc = None
    # Only in this in-process renderer (no kernel): Solara keeps the widgets' stand-in comms
    # for debugging, and with them the page; a server's kernel drops its widgets on close.
    solara.comm.orphan_comm_stacks.clear()
    gc.collect()
    assert all(ref() is None for ref in built)


def _wait_until(condition, within_s=60.0) -> bool:
    deadline = time.monotonic() + within_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


# --------------------------------------------------------------------------- the play loop (no UI)


def _toy_runner(**kwargs) -> core.Runner:
    session = Session("toy_two_towns")
    return core.Runner(session.new_model, **kwargs)


def _consistent(snapshot: core.Snapshot) -> None:
    lengths = {len(values) for values in snapshot.series.values()}
    assert lengths == {snapshot.day + 1}, (snapshot.day, lengths)
    assert all(not values.flags.writeable for values in snapshot.series.values())
    assert not snapshot.control.flags.writeable and not snapshot.share.flags.writeable


def test_a_reader_never_sees_a_half_recorded_step_while_the_model_plays():
    """The race of issue 12 (`Length of values (N+1) does not match length of index (N)`): gone by design."""
    from sim.explorer.figures import PANELS, AxisScales, chart_svg, run_info

    runner = _toy_runner(speed=math.inf, describe=run_info)
    seen, failures, days = [], [], 300
    stop = threading.Event()

    def reader():  # the page's side: read and draw whatever snapshot is newest, as fast as it can
        scales = AxisScales()
        while not stop.is_set():
            snapshot = runner.snapshot
            try:
                _consistent(snapshot)
                for panel in PANELS:
                    chart_svg(panel, snapshot.info, snapshot, None, scales)
            except Exception as error:  # noqa: BLE001 - collected and reported below
                failures.append(repr(error))
            seen.append(snapshot.day)

    drawn, checkpoints = [], (50, 150, 250)

    def on_snapshot(snapshot):  # on the stepping thread, outside the runner's lock, as the page's redraw is
        drawn.append(snapshot.day)
        if snapshot.day in checkpoints:  # a loaded machine may starve the reader: let it catch up here
            _wait_until(lambda: snapshot.day in seen[-50:])

    runner.on_snapshot = on_snapshot
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        runner.play()
        assert runner.wait_for(runner.end_day, timeout=120).day == runner.end_day == 90
        assert _wait_until(lambda: not runner.playing)  # the toy's end (90 days): Play pauses there
        runner.play()  # pressed again, it plays on past the end
        final = runner.wait_for(days, timeout=120)
    finally:
        runner.pause()
        stop.set()
        thread.join()
        runner.close()
    assert final.day >= days
    assert not failures, failures[:3]
    assert set(checkpoints) <= set(seen)  # the reader really read during the run, whatever the machine's load
    assert drawn == list(range(1, len(drawn) + 1))  # every day handed to the page once, in order
    assert seen == sorted(seen)


def test_pause_stops_at_once_and_close_ends_the_thread():
    # 50 days a second at most: the toy's end (day 90, where Play pauses) is over a second away throughout.
    runner = _toy_runner(speed=50.0)
    runner.play()
    runner.wait_for(5)
    runner.pause()  # no step may start after this returns
    day = runner.snapshot.day
    model = runner.model
    time.sleep(0.3)
    assert runner.snapshot.day == day == model.steps and not runner.playing
    runner.step()  # Step while paused: exactly one day
    assert runner.snapshot.day == day + 1
    runner.play()
    runner.wait_for(day + 5)
    before = threading.active_count()
    runner.close()  # closing while playing: the thread ends, the model is let go
    assert core.live_stepping_threads() == 0 and threading.active_count() == before - 1
    assert runner.model is None and runner.closed
    runner.play()  # a closed runner stays closed
    assert core.live_stepping_threads() == 0


def test_play_pauses_on_the_scenarios_last_day_and_plays_on_when_pressed_again():
    # Play ran on past the scenario's `steps` (to day 445 of the toy's 90), unlike the run on the command line.
    from sim.explorer.figures import monitors, run_info

    runner = _toy_runner(speed=math.inf, describe=run_info)
    try:
        assert runner.end_day == runner.model.config.steps == 90 == runner.snapshot.info.steps
        for _ in range(3):
            runner.step()
        runner.play()
        assert _wait_until(lambda: not runner.playing, within_s=120), "Play did not pause at the run's end"
        time.sleep(0.2)  # no step after the pause
        assert runner.snapshot.day == runner.model.steps == 90 and not runner.snapshot.error
        assert _wait_until(lambda: core.live_stepping_threads() == 0)
        assert ("Day", "90", "the scenario's end (90)") in monitors(runner.snapshot, runner.snapshot.info)
        runner.step()  # Step goes past it, a day at a time
        assert runner.snapshot.day == 91
        assert ("Day", "91", "past the scenario's 90") in monitors(runner.snapshot, runner.snapshot.info)
        runner.play()  # and so does Play, pressed at or past the end
        assert runner.wait_for(100, timeout=120).day >= 100 and runner.playing
        runner.pause()
        runner.restart()  # a new run at day 0: Play pauses at its end again
        assert ("Day", "0", "of 90") in monitors(runner.snapshot, runner.snapshot.info)
        runner.play()
        assert _wait_until(lambda: not runner.playing, within_s=120) and runner.snapshot.day == 90
    finally:
        runner.close()


def test_a_pause_pressed_as_the_run_ends_stays_a_pause():
    # The page shows the pause at the end a few ms late: a Pause pressed on the last day played the run on.
    runner = _toy_runner(speed=math.inf)
    try:
        assert runner.press() is True  # Play
        assert _wait_until(lambda: not runner.playing, within_s=120) and runner.snapshot.day == 90
        assert runner.press() is False and not runner.playing  # the Pause the user saw: no Play
        time.sleep(0.2)
        assert runner.snapshot.day == 90
        assert runner.press() is True  # pressed again: it plays on past the end
        assert runner.wait_for(95, timeout=120).day >= 95
        assert runner.press() is False  # Pause while playing
        runner.restart()
        runner.press()
        assert _wait_until(lambda: not runner.playing, within_s=120)
        runner.restart()  # a new run at once after the end (Reset): a press is a Play (it hung the benchmark)
        assert runner.press() is True
        assert _wait_until(lambda: not runner.playing, within_s=120) and runner.snapshot.day == 90
        runner.step()  # a Step after the end: a press is a Play
        assert runner.press() is True
        runner.pause()
        runner.restart()
        runner.press()
        assert _wait_until(lambda: not runner.playing, within_s=120)
        time.sleep(core.END_GRACE_S + 0.1)  # a press well after the end is a Play
        assert runner.press() is True
    finally:
        runner.close()


def test_a_restart_keeps_the_previous_run_and_play_keeps_its_pace():
    runner = _toy_runner(speed=20.0)
    for _ in range(4):
        runner.step()
    runner.restart()
    assert runner.previous.day == 4 and runner.snapshot.day == 0 and runner.snapshot.run != runner.previous.run
    start = time.monotonic()
    runner.play()
    runner.wait_for(10)
    elapsed = time.monotonic() - start
    runner.close()
    assert elapsed >= 9 / 20  # never faster than the speed asked for (no upper bound: the machine may be busy)


def test_a_failing_step_pauses_the_run_and_says_why(monkeypatch):
    runner = _toy_runner(speed=math.inf)
    runner.step()

    def broken():
        raise FloatingPointError("overflow in influence")

    monkeypatch.setattr(runner.model, "step", broken)
    runner.play()
    assert _wait_until(lambda: not runner.playing)
    snapshot = runner.snapshot
    assert snapshot.day == 1 and "FloatingPointError: overflow in influence" in snapshot.error
    assert _wait_until(lambda: core.live_stepping_threads() == 0)
    runner.close()


@needs_ui
def test_a_late_drawing_of_an_older_day_never_replaces_a_newer_one():
    """The stepping thread may reach the painter with its last day just after Reset drew day 0 of the next run."""
    from sim.explorer.app import Painter
    from sim.explorer.figures import run_info

    runner = _toy_runner(describe=run_info)
    painter = Painter(runner)
    late = runner.step()  # the last day of a run, drawn late
    fresh = runner.restart()  # day 0 of the next run, drawn first
    painter.paint(fresh)
    shown = painter.regions()
    painter.paint(late)
    assert painter.regions() == shown
    assert "Latest events (day 0)" in shown["events"]
    painter.close()
    runner.close()


def test_after_a_change_of_scenario_the_charts_start_afresh():
    """Baseline then the toy scenario: the fighters axis fitted ~2,000 fighters and flattened the toy's ~250."""
    from sim.explorer.figures import AxisScales, draw, run_info

    scales = AxisScales(keep=True)
    big = core.Runner(Session("baseline").new_model, speed=math.inf, describe=run_info)
    small = core.Runner(Session("toy_two_towns").new_model, speed=math.inf, describe=run_info)
    try:
        big.step()
        draw(big.snapshot, None, scales)
        big_top = scales.tops["fighters"][0]
        small.step()
        parts = draw(small.snapshot, big.snapshot, scales)
        small_top = scales.tops["fighters"][0]
        highest = max(float(v.max()) for k, v in small.snapshot.series.items() if k.startswith("fighters."))
        assert highest <= small_top < big_top  # fitted to the toy's own fighters
        assert "previous run" not in parts["legend-fighters"]  # baseline's lines are not the toy's previous run
        small.step()
        draw(small.snapshot, None, scales)
        assert scales.tops["fighters"][0] == small_top  # within one world the axes stay (keep)
    finally:
        big.close()
        small.close()


def test_the_map_draws_only_the_river_that_can_show():
    """A river of 10,000 points round the globe was one 10,000-point SVG line; the baseline's is drawn whole."""
    import numpy as np

    from sim.explorer.figures import map_sites_html, run_info
    from sim.model import CorridorModel

    config = load_scenario("baseline")
    info = run_info(CorridorModel(config, seed=1))
    assert info.river is not None and len(info.river) == 1 and len(info.river[0]) == len(config.grid.river.path)
    assert map_sites_html(info).count("<polyline") == 2  # the white casing and the river

    rng = np.random.default_rng(3)
    far = np.column_stack([rng.uniform(-89, 89, 9_990), rng.uniform(-179, 179, 9_990)]).round(4).tolist()
    data = scenario_to_dict(config)
    data["grid"]["river"]["path"] = far[:5000] + [list(p) for p in config.grid.river.path] + far[5000:]
    info = run_info(CorridorModel(scenario_from_dict(data), seed=1))
    drawn = sum(len(piece) for piece in info.river)
    assert len(config.grid.river.path) <= drawn < 200, drawn
    html = map_sites_html(info)
    assert html.count("<polyline") == 2 * len(info.river) and "nan" not in html


@pytest.mark.parametrize(("overrides", "impassable"), [([], True), (["grid.cells=[]"], False)])
def test_the_map_legend_names_impassable_ground_where_the_grid_has_it(overrides, impassable):
    """The toy's impassable cells were drawn grey on the map with no key for that grey."""
    from sim.explorer.figures import map_legend_html, run_info
    from sim.figures import IMPASSABLE_COLOUR
    from sim.model import CorridorModel

    config = load_scenario(SCENARIOS / "toy_two_towns.yaml", overrides)
    legend = map_legend_html(run_info(CorridorModel(config, seed=1)))
    assert ("impassable ground" in legend) == impassable
    assert (IMPASSABLE_COLOUR in legend) == impassable
    assert "outside the modelled area" not in legend  # the toy's grid has no outside cells


def test_the_map_title_fits_any_scenario():
    """The toy's map was titled 'Corridor map' (the page's heading names the scenario)."""
    from sim.explorer.figures import AxisScales, draw, run_info

    runner = core.Runner(Session("toy_two_towns").new_model, speed=math.inf, describe=run_info)
    try:
        runner.step()
        parts = draw(runner.snapshot, None, AxisScales(keep=True))
    finally:
        runner.close()
    assert parts["map_title"] == "Control map, day 1"


def test_the_map_legend_shows_the_colours_the_map_draws():
    """Swatches were each faction's full colour, ISIS's included, which no cell ever shows; the map's
    cells run from a pale shade (a small share of the cell's influence) to the full colour."""
    import numpy as np
    from matplotlib.colors import to_hex

    from sim.explorer.figures import map_legend_html, run_info
    from sim.figures import TERRAINS, cell_colours
    from sim.model import CorridorModel

    model = CorridorModel(load_scenario("baseline"), seed=1)
    info = run_info(model)
    legend = map_legend_html(info)
    names = list(model.faction_names)
    militias = [f for f in range(len(names)) if model.is_militia[f]]
    rural = np.full((1, 2), TERRAINS.index("rural"))
    for f in militias:
        # what the map draws for a cell of f where f has none of the influence, and all of it
        influence = np.zeros((len(names), 1, 2))
        influence[f, 0, 1] = 1.0
        palest, fullest = (to_hex(rgb).upper() for rgb in cell_colours(np.full((1, 2), f), influence, rural)[0])
        swatch = re.search(rf'<span class="explorer-swatch" style="([^"]*)"></span>{names[f]}<', legend)
        assert swatch and palest in swatch.group(1) and fullest in swatch.group(1), (names[f], palest, fullest, legend)
    assert "ISIS" in names and ">ISIS<" not in legend  # the insurgents hold no cell: no colour of theirs on the map
    assert info.holders == tuple(militias)
