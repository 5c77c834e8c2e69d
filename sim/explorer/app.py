"""The explorer page (Solara): `solara run sim.explorer.app`.

The page is the project's own (no Mesa SolaraViz): its play loop is a `Runner`
(`sim.explorer.core`), one stepping thread per page that publishes a read-only `Snapshot`
after each finished step; everything on the page is drawn from snapshots only, so a redraw
never reads a half-recorded step. Pause stops at once (no step starts after it returns);
closing the page (Solara unmounts it when the tab closes or the session is culled) closes
the runner, which ends its thread and lets go of the model.

Layout (a CSS grid; below 900 px wide it stacks: run controls, map, charts, parameters):
- the run bar: Play/Pause (Play pauses on the scenario's last day, `Runner.end_day`), Step,
  Reset, the speed (days per second, shown), "keep axes";
- the monitors: day, fighters per militia, insurgent cells, killed, defections, tension;
- the map (`sim.explorer.figures`: a one-pixel-per-cell image enlarged by the browser under
  the site markers and names), its legend, and the six charts on fixed axes with the
  previous run (before the last change or Reset) faded under the current one;
- the latest events; saving the parameters as a scenario YAML and exporting the run as CSV;
- the parameters: scenario picker, seed, one control per row of `core.CONTROL_TABLE`
  (slider or switch plus a field for the exact value, the schema's help as text and
  tooltip). Every change is validated as a whole scenario (`Session.propose`) before the
  model is rebuilt; a refused value shows its problems by the field's label and leaves
  the running model as it was. A valid change restarts the run at day 0.
"""

from __future__ import annotations

import threading

import ipyvue
import reacton.ipyvuetify as rv
import solara
import traitlets
from reacton.ipyvue import use_event

from sim.explorer.core import (
    DEFAULT_SPEED,
    MAX_SPEED,
    SEED_CONTROL,
    Control,
    Runner,
    Saved,
    Session,
    Snapshot,
    format_value,
    list_explorable,
)
from sim.explorer.figures import PANELS, AxisScales, draw, run_info
from sim.results import rerun_command
from sim.yaml_source import ScenarioError

TITLE = "Faction-sim explorer"
BLOCK = {"display": "block"}
HELP_STYLE = {
    "display": "block",
    "font-size": "12px",
    "color": "#555",
    "line-height": "1.25",
    "margin": "2px 0 10px 0",
}
CSS = """
.explorer-layout { display: grid; grid-template-columns: minmax(300px, 360px) minmax(0, 1fr);
  grid-template-areas: "side main"; gap: 12px; padding: 8px; align-items: start; }
.explorer-side { grid-area: side; min-width: 0; }
.explorer-main { grid-area: main; min-width: 0; }
@media (max-width: 900px) {
  .explorer-layout { grid-template-columns: minmax(0, 1fr); grid-template-areas: "main" "side"; padding: 4px; }
}
.explorer-runbar { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
.explorer-speed { min-width: 220px; flex: 1 1 220px; }
.explorer-monitors { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0; }
.explorer-monitor { border: 1px solid #ddd; border-radius: 4px; padding: 2px 8px; background: #fafafa; }
.explorer-monitor-name { font-size: 12px; color: #555; display: block; }
.explorer-monitor-value { font-size: 18px; font-weight: 600; display: block; }
.explorer-monitor-note { font-size: 11px; color: #777; display: block; }
.explorer-views { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 12px; }
.explorer-map-box { position: relative; width: 100%; }
.explorer-map-box > .explorer-map_sites { position: absolute; inset: 0; pointer-events: none; }
.explorer-map-frame { position: relative; width: 100%; }
.explorer-card-title { font-size: 16px; font-weight: 600; margin-bottom: 6px; }
.explorer-events-title { font-size: 16px; font-weight: 600; margin-bottom: 6px; }
.explorer-event { font-size: 13px; line-height: 1.35; }
.explorer-step-error { color: #b00020; font-size: 14px; }
.explorer-map-image, .explorer-map-svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%;
  image-rendering: pixelated; }
.explorer-site-label { position: absolute; font-size: 12px; line-height: 1; white-space: nowrap;
  pointer-events: none; color: #111;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 1px 1px 0 #fff, -1px -1px 0 #fff; }
.explorer-site-right { transform: translate(6px, -50%); }
.explorer-site-left { transform: translate(calc(-100% - 6px), -50%); }
.explorer-legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; margin-top: 4px; }
.explorer-key { display: inline-flex; align-items: center; gap: 4px; }
.explorer-swatch { display: inline-block; width: 12px; height: 12px; }
.explorer-dash { display: inline-block; width: 22px; height: 0; }
.explorer-note { font-size: 12px; color: #555; margin-top: 2px; }
.explorer-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 8px 12px; }
.explorer-chart-title { font-size: 14px; font-weight: 600; }
.explorer-chart-title { display: block; }
.explorer-plot { position: relative; }
.explorer-chart-svg { width: 100%; height: auto; display: block; }
.explorer-plot > [class^="explorer-lines-"] { position: absolute; inset: 0; pointer-events: none; }
.explorer-lines-svg { width: 100%; height: 100%; display: block; }
/* each region redrawn per day is laid out and painted on its own, not with the whole page */
.explorer-plot, .explorer-map-box, .explorer-monitors, .explorer-events { contain: layout paint; }
"""


def _slug(key: str) -> str:
    return "control-" + key.replace(".", "-").replace("_", "-").lower()


# --------------------------------------------------------------------------- controls


@solara.component
def CommitSlider(value, low, high, step, on_commit, integer: bool = False):
    """A slider that reports its value once, when released or moved by the keyboard.

    Solara's SliderFloat/SliderInt report every position passed while dragging, and each
    report would rebuild the model; Vuetify's `change` event fires once per move.
    """
    slider = rv.Slider(
        v_model=value, min=low, max=high, step=step, hide_details=True, thumb_label=True, class_="explorer-slider"
    )

    def changed(widget, event, data):
        if data is not None:
            on_commit(int(round(data)) if integer else float(data))

    use_event(slider, "change", changed)
    return slider


@solara.component
def ControlRow(control: Control, value, draft: str | None, problem: str | None, on_propose):
    """A slider (or switch) and a field for the exact value of one scenario key, with the schema's help."""

    def propose(raw):
        on_propose(control.key, raw)

    with solara.Column(gap="0px", classes=["explorer-control", _slug(control.key)]):
        with solara.Tooltip(control.full_help):
            if control.kind == "bool":
                solara.Switch(label=control.label, value=bool(value), on_value=propose)
            else:
                solara.InputText(
                    control.label,
                    value=draft if draft is not None else format_value(value),
                    on_value=propose,
                    error=problem or bool(draft is not None),
                    dense=True,
                    classes=["explorer-input"],
                )
        if control.kind != "bool":
            CommitSlider(
                min(max(value, control.low), control.high),
                control.low,
                control.high,
                control.step,
                propose,
                integer=control.kind == "int",
            )
        solara.Text(control.full_help, style=HELP_STYLE, classes=["explorer-help"])


def _explorable_names() -> list[str]:
    return [name for name, _ in list_explorable()]


@solara.component
def ScenarioPicker(ref: str, on_select):
    """The scenario picker; its list is made in a thread (validating every scenario takes seconds).

    Until the list is ready the picker offers the open scenario only, so the first page load
    does not wait for it (`core.list_explorable` caches it for later pages).
    """
    listing = solara.use_thread(_explorable_names, [])
    options = list(listing.value or [])
    if ref not in options:
        options = [ref, *options]
    solara.Select(label="Scenario (scenarios/)", values=options, value=ref, on_value=on_select)


@solara.component
def ParameterPanel(session: Session, revision: int, on_propose, on_select, on_restore, select_problems):
    """Scenario picker, seed, and the scenario's controls grouped by faction and topic."""
    with solara.Card("Scenario", classes=["explorer-scenario"]):
        ScenarioPicker(session.ref, on_select)
        solara.Text(session.origin.description, style=HELP_STYLE)
        seed_problem = "; ".join(session.field_problems.get("seed", [])) or None
        solara.InputText(
            "Seed",
            value=session.drafts.get("seed", str(session.seed)),
            on_value=lambda raw: on_propose("seed", raw),
            error=seed_problem or False,
            dense=True,
            classes=["explorer-seed"],
        )
        solara.Text(
            f"{SEED_CONTROL.help}; allowed: {SEED_CONTROL.allowed}. Changing a value restarts the run at day 0.",
            style=HELP_STYLE,
        )
        solara.Button(
            "Back to the scenario's values",
            on_click=on_restore,
            text=True,
            small=True,
            disabled=not session.changes() and not session.drafts,
        )
    problems = select_problems + session.problems
    if problems:
        with solara.Column(classes=["explorer-problems"]).key("problems"):
            with solara.Error(text=True, outlined=True):
                solara.Text("Not applied: the model keeps running with the last valid values.", style=BLOCK)
                for line in problems:
                    solara.Text(line, style={**BLOCK, "font-size": "13px"})
    groups: dict[str, list[Control]] = {}
    for control in session.controls:
        groups.setdefault(control.group, []).append(control)
    with solara.Card("Parameters", classes=["explorer-parameters"]):
        for group, controls in groups.items():
            with solara.Details(summary=group, expand=group == next(iter(groups))):
                for control in controls:
                    problems = session.field_problems.get(control.key)
                    ControlRow(
                        control,
                        session.values[control.key],
                        session.drafts.get(control.key),
                        "; ".join(problems) if problems else None,
                        on_propose,
                    ).key(f"{session.ref}:{control.key}")


# --------------------------------------------------------------------------- the run


@solara.component
def RunBar(runner: Runner, playing: solara.Reactive, speed: solara.Reactive, keep_axes: solara.Reactive, on_reset):
    """Play/Pause, Step, Reset, the speed in days per second, and whether the charts keep their axes."""

    def toggle():
        playing.set(runner.press())  # a Pause that meets the run's end stays a pause (`Runner.press`)

    def set_speed(value):
        runner.speed = float(value)
        speed.set(value)

    with solara.Card(classes=["explorer-run"]):
        with solara.Div(classes=["explorer-runbar"]):
            solara.Button(
                "Pause" if playing.value else "Play",
                on_click=toggle,
                color="primary",
                classes=["explorer-play"],
            )
            solara.Button(
                "Step", on_click=runner.step, outlined=True, disabled=playing.value, classes=["explorer-step"]
            )
            solara.Button("Reset", on_click=on_reset, outlined=True, classes=["explorer-reset"])
            with solara.Div(classes=["explorer-speed"]):
                solara.SliderInt(
                    f"Speed: {speed.value} days per second",
                    value=speed.value,
                    min=1,
                    max=int(MAX_SPEED),
                    on_value=set_speed,
                )
            solara.Checkbox(
                label="keep chart axes (compare runs)",
                value=keep_axes.value,
                on_value=keep_axes.set,
            )


DYNAMIC = ("monitors", "map_title", "map_layer", "events", *(f"lines-{p.key}" for p in PANELS))  # change every day


def _chart_html(panel) -> str:
    return (
        f'<div class="explorer-chart explorer-chart-box-{panel.key}">'
        f'<span class="explorer-chart-title">{panel.title}</span>'
        f'<div class="explorer-plot">'
        f'<div class="explorer-chart-{panel.key}" v-html="still[\'chart-{panel.key}\']"></div>'
        f'<div class="explorer-lines-{panel.key}" v-html="parts[\'lines-{panel.key}\']"></div></div>'
        f'<div class="explorer-legend-{panel.key}" v-html="still[\'legend-{panel.key}\']"></div></div>'
    )


CANVAS_TEMPLATE = (
    """<template><div class="explorer-canvas">
<div class="explorer-monitors" v-html="parts.monitors"></div>
<div class="explorer-views">
  <div class="v-card v-sheet theme--light elevation-2 ma-2 explorer-map"><div class="v-card__text">
    <div class="explorer-card-title" v-html="parts.map_title"></div>
    <div class="explorer-map-box"><div class="explorer-map_layer" v-html="parts.map_layer"></div>
      <div class="explorer-map_sites" v-html="still.map_sites"></div></div>
    <div class="explorer-map_legend" v-html="still.map_legend"></div>
  </div></div>
  <div class="v-card v-sheet theme--light elevation-2 ma-2 explorer-events-card"><div class="v-card__text">
    <div class="explorer-events" v-html="parts.events"></div>
  </div></div>
</div>
<div class="v-card v-sheet theme--light elevation-2 ma-2 explorer-charts-card"><div class="v-card__title">Charts</div>
  <div class="v-card__text"><div class="explorer-charts">"""
    + "".join(_chart_html(p) for p in PANELS)
    + """</div></div></div>
</div></template>
<script>
module.exports = {
  watch: { frame(value) { requestAnimationFrame(() => this.ack(value)); } },
  mounted() { this.ack(this.frame); },
};
</script>"""
)


class RunCanvas(ipyvue.VueTemplate):
    """Monitors, map, events and charts in one widget: a day's redraw is one message to the browser.

    `parts` holds the regions that change every day (DYNAMIC), `still` those that change
    seldom (site names, legends, chart axes with the previous run); both are HTML from
    `figures.draw`, bound with v-html into a fixed layout. `frame` is the number of the
    drawing; the browser answers it (`vue_ack`) once painted, see `wait`.
    """

    template = traitlets.Unicode(CANVAS_TEMPLATE).tag(sync=True)
    parts = traitlets.Dict().tag(sync=True)
    still = traitlets.Dict().tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.acked = -1
        self.answering = False  # a browser has acknowledged at least once
        self.cond = threading.Condition()

    def vue_ack(self, data):
        """Called from the browser with the frame it has painted."""
        with self.cond:
            self.acked = max(self.acked, int(data or 0))
            self.answering = True
            self.cond.notify_all()

    def wait(self, frame: int, timeout: float) -> None:
        """Return once the browser has painted `frame`, or after `timeout` s, or at once without a browser.

        Play then never runs ahead of what the browser can show: no backlog of days builds up
        in the page, and Pause looks as immediate as it is. Without a browser (Solara's test
        renderer) no acknowledgement ever comes, and nothing waits.
        """
        with self.cond:
            if self.answering:
                self.cond.wait_for(lambda: self.acked >= frame, timeout)


ACK_TIMEOUT_S = 1.0  # a hidden tab paints nothing: then Play goes on at one day per second at most
FRAMES_IN_FLIGHT = 3  # drawn but not yet shown by the browser: enough to keep it busy, a fifth of a second


class Painter:
    """The page's drawing widget, made once; `paint(snapshot)` sets its HTML (`figures.draw`).

    Painting bypasses Solara's render: a step changes only the canvas's `parts` (and `still`
    when the axes or legends change), one message to the browser, not a reconciliation of
    the whole page. Called from the stepping thread while playing and from the page's thread
    on Step or Reset; a lock keeps paints in order. Before drawing, it waits (at most
    ACK_TIMEOUT_S) until the browser has shown all but FRAMES_IN_FLIGHT - 1 of the frames sent.
    """

    def __init__(self, runner: Runner):
        self.runner = runner
        self.scales = AxisScales()
        self.lock = threading.Lock()
        self.canvas = RunCanvas()
        self.painted = -1  # seq of the snapshot drawn last

    def paint(self, snapshot: Snapshot) -> None:
        """Draw `snapshot` (and the runner's previous run, faded).

        A snapshot older than the one drawn last is skipped: the stepping thread may reach
        here with its last day just after a Reset drew day 0 of the next run.
        """
        with self.lock:
            if snapshot.seq < self.painted:
                return
            self.canvas.wait(self.painted - FRAMES_IN_FLIGHT + 1, ACK_TIMEOUT_S)
            parts = draw(snapshot, self.runner.previous, self.scales)
            dynamic = {name: parts.pop(name) for name in DYNAMIC}
            with self.canvas.hold_sync():  # one message
                if parts != self.canvas.still:
                    self.canvas.still = parts
                self.canvas.parts = dynamic
                self.canvas.frame = snapshot.seq
            self.painted = snapshot.seq

    def regions(self) -> dict[str, str]:
        """Every region's HTML as drawn last (name -> HTML), for tests."""
        return {**self.canvas.still, **self.canvas.parts}

    def repaint(self) -> None:
        """Draw the newest snapshot again (after a change of the axes option)."""
        with self.lock:
            self.painted = -1
        self.paint(self.runner.snapshot)

    def close(self) -> None:
        """Close the widget (the page is gone)."""
        self.canvas.close()


@solara.component
def RunView(runner: Runner, playing: solara.Reactive, keep_axes: solara.Reactive):
    """Monitors, map, events and charts: one widget made once, painted for each snapshot (`Painter`)."""
    painter = solara.use_memo(lambda: Painter(runner), [])

    def connect():
        def publish(snapshot: Snapshot):  # in the stepping thread while playing
            painter.paint(snapshot)
            if snapshot.error or not runner.playing:  # a failed step, or the run's last day, paused it
                playing.set(False)

        runner.on_snapshot = publish
        painter.paint(runner.snapshot)
        return painter.close

    solara.use_effect(connect, [])

    def axes_option():
        painter.scales.keep = keep_axes.value
        if not keep_axes.value:
            painter.scales.tops.clear()
        painter.repaint()

    solara.use_effect(axes_option, [keep_axes.value])
    solara.Div(classes=["explorer-run-view"], children=[painter.canvas])


@solara.component
def SavePanel(runner: Runner, session: Session, revision: int):
    """Save the parameters as a scenario YAML; export the run's time series as CSV."""
    saved = solara.use_reactive(None)
    exported = solara.use_reactive(None)
    failure = solara.use_reactive(None)

    def save():
        try:
            saved.set(session.save_scenario())
            failure.set(None)
        except OSError as error:
            failure.set(f"could not save the scenario: {error}")

    def export():
        try:
            with runner.locked() as model:  # no step while the table is read
                exported.set(session.export_timeseries(model))
            failure.set(None)
        except OSError as error:
            failure.set(f"could not export the data: {error}")

    with solara.Card("Save and export", classes=["explorer-save"]):
        changes = session.changes()
        if changes:
            solara.Text(
                "Changed from the scenario: "
                + ", ".join(f"{session.control(k).label} = {format_value(v)}" for k, (_, v) in changes.items()),
                style=HELP_STYLE,
            )
        with solara.Row(style={"flex-wrap": "wrap"}):
            solara.Button("Save parameters as scenario YAML", on_click=save, color="primary", outlined=True)
            solara.Button("Export run data (CSV)", on_click=export, color="primary", outlined=True)
        if failure.value:
            solara.Error(failure.value)
        if saved.value is not None:
            shown = saved.value.shown_path
            command = rerun_command(["python", "run.py", "run", shown])
            _saved_file(saved.value, f"Scenario saved to {shown}; run it with: {command}", "text/yaml")
        if exported.value is not None:
            _saved_file(exported.value, f"Time series saved to {exported.value.shown_path}", "text/csv")


def _saved_file(saved: Saved, text: str, mime: str):
    with solara.Row(classes=["explorer-saved"], style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Text(text)
        solara.FileDownload(saved.data, filename=saved.filename, label=f"Download {saved.filename}", mime_type=mime)


# --------------------------------------------------------------------------- the page


@solara.component
def Page():
    """The whole page; each browser tab has its own session, runner and model."""
    session = solara.use_memo(Session, [])
    playing = solara.use_reactive(False)
    runner = solara.use_memo(lambda: Runner(session.new_model, describe=run_info), [])
    # When the page goes (tab closed, session culled), Solara runs this effect's cleanup: the
    # runner stops its thread and lets go of the model (without waiting: the thread may be
    # drawing this very page).
    solara.use_effect(lambda: lambda: runner.close(wait=False), [])
    speed = solara.use_reactive(int(DEFAULT_SPEED))
    keep_axes = solara.use_reactive(True)
    revision, set_revision = solara.use_state(0)
    select_problems = solara.use_reactive([])

    def changed():
        set_revision(lambda r: r + 1)

    def restart():
        runner.restart(session.new_model)

    def on_propose(key, raw):
        if session.propose(key, raw):  # valid: rebuild; refused: the model stays as it is
            restart()
        changed()

    def on_select(ref):
        try:
            session.select(ref)
        except ScenarioError as error:
            select_problems.set([str(p) for p in error.problems])
            changed()
            return
        select_problems.set([])
        restart()
        changed()

    def on_restore():
        session.restore_defaults()
        restart()
        changed()

    with solara.Div(classes=["explorer-layout"]):
        solara.Title(f"{TITLE}: {session.name}")
        solara.Style(CSS)
        with solara.Div(classes=["explorer-main"]):
            solara.Text(f"{TITLE}: {session.name}", style={"font-size": "20px", "font-weight": "600", **BLOCK})
            RunBar(runner, playing, speed, keep_axes, restart)
            RunView(runner, playing, keep_axes).key("run-view")
            SavePanel(runner, session, revision).key("save-panel")
        with solara.Div(classes=["explorer-side"]):
            ParameterPanel(session, revision, on_propose, on_select, on_restore, select_problems.value)


page = Page
