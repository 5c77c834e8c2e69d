"""The explorer page (Solara, on Mesa's SolaraViz): `solara run sim.explorer.app`.

Layout: SolaraViz gives the app bar, the Step / Play-pause / Reset buttons, the play and
render intervals and the step counter (sidebar). This module adds, in the sidebar, the
scenario picker, the seed and one control per row of `sim.explorer.core.CONTROL_TABLE`
(slider or switch, plus a field to type an exact value, with the schema's help text);
and, in the main area, the corridor map, the charts, the latest events, and the buttons
that save the parameters as a scenario YAML and export the run's time series as CSV.

Every change is validated as a whole scenario (`Session.propose`) before the model is
rebuilt; a refused value shows its problem lines and leaves the running model as it was.
A valid change restarts the run at day 0 with the new values (the page always shows a run
of the parameters it displays). Reset restarts it with the same values and seed.
"""

from __future__ import annotations

import io
import warnings

# Mesa 3.3's ComponentsView returns early (before its hooks) when it has no components, as
# here (the map and charts are this module's own layout); hook order stays the same on every
# render, so Solara's rules-of-hooks warning about it (issued when Mesa's module is imported)
# does not apply. Mesa 3.5 no longer triggers it.
warnings.filterwarnings("ignore", message=r".*ComponentsView: `use_state` found despite early return")

import reacton.ipyvuetify as rv  # noqa: E402
import solara  # noqa: E402
from mesa.visualization import SolaraViz  # noqa: E402
from mesa.visualization.utils import update_counter  # noqa: E402
from reacton.ipyvue import use_event  # noqa: E402

from sim.explorer.core import (  # noqa: E402
    SEED_CONTROL,
    Control,
    Saved,
    Session,
    defection_totals,
    format_value,
    latest_events,
    list_explorable,
)
from sim.explorer.figures import charts_figure, map_figure  # noqa: E402
from sim.results import rerun_command  # noqa: E402
from sim.yaml_source import ScenarioError  # noqa: E402

TITLE = "Faction-sim explorer"
BLOCK = {"display": "block"}
HELP_STYLE = {
    "display": "block",
    "font-size": "0.75rem",
    "color": "#555",
    "line-height": "1.2",
    "margin": "2px 0 10px 0",
}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    figure.clear()
    return buffer.getvalue()


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
    """A slider (or switch) and a field for the exact value of one scenario key."""

    def propose(raw):
        on_propose(control.key, raw)

    with solara.Column(gap="0px", classes=["explorer-control", _slug(control.key)]):
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
            CommitSlider(
                min(max(value, control.low), control.high),
                control.low,
                control.high,
                control.step,
                propose,
                integer=control.kind == "int",
            )
        solara.Text(control.full_help, style=HELP_STYLE, classes=["explorer-help"])


@solara.component
def ParameterPanel(session: Session, revision: int, on_propose, on_select, on_restore):
    """Scenario picker, seed, and the scenario's controls grouped by faction and topic."""
    options = [name for name, _ in list_explorable()]
    if session.ref not in options:
        options = [session.ref, *options]
    with solara.Card("Scenario", classes=["explorer-scenario"]):
        solara.Select(label="Scenario (scenarios/)", values=options, value=session.ref, on_value=on_select)
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


# --------------------------------------------------------------------------- main area


@solara.component
def ModelView(model: solara.Reactive, session: Session, revision: int):
    """Map, charts and latest events; redrawn after every step (SolaraViz's update counter)."""
    update_counter.get()
    current = model.value
    dependencies = [getattr(current, "build", id(current)), current.steps]
    map_png = solara.use_memo(lambda: _png(map_figure(current)), dependencies)
    charts_png = solara.use_memo(lambda: _png(charts_figure(current)), dependencies)
    with solara.Columns([5, 7]):
        with solara.Card("Corridor map", classes=["explorer-map"]):
            solara.Image(map_png, width="100%", classes=["explorer-map-image"])
        with solara.Card("Charts", classes=["explorer-charts"]):
            solara.Image(charts_png, width="100%", classes=["explorer-charts-image"])
    with solara.Card(f"Latest events (day {current.steps})", classes=["explorer-events"]):
        lines = latest_events(current, 12)
        if lines:  # plain text, not Markdown: Solara's Markdown loads KaTeX from a CDN
            with solara.Column(gap="2px", classes=["explorer-event-list"]):
                for line in lines:
                    solara.Text(f"\u2022 {line}", style=BLOCK)
        else:
            solara.Text("No meeting, clash or attack yet: press Step or Play.")
        totals = defection_totals(current)
        if totals:
            text = ", ".join(f"{pair.replace('>', ' → ')}: {n}" for pair, n in totals.items())
            solara.Text(f"Defections so far: {text}", style=HELP_STYLE)


@solara.component
def SavePanel(model: solara.Reactive, session: Session, revision: int):
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
            exported.set(session.export_timeseries(model.value))
            failure.set(None)
        except OSError as error:
            failure.set(f"could not export the data: {error}")

    with solara.Card("Save and export", classes=["explorer-save"]):
        changes = session.changes()
        if changes:
            solara.Text(
                "Changed from the scenario: " + ", ".join(f"{k} = {format_value(v)}" for k, (_, v) in changes.items()),
                style=HELP_STYLE,
            )
        with solara.Row():
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
    with solara.Row(classes=["explorer-saved"], style={"align-items": "center"}):
        solara.Text(text)
        solara.FileDownload(saved.data, filename=saved.filename, label=f"Download {saved.filename}", mime_type=mime)


# --------------------------------------------------------------------------- the page


@solara.component
def SidebarBelowControls(panel):
    """Put `panel` in the sidebar below SolaraViz's own cards (Step / Play / Reset first).

    Solara orders sidebar content by the depth of the component that adds it (shallower
    first); SolaraViz adds its cards one level below the page, so this adds two below.
    """
    _Deeper(panel)


@solara.component
def _Deeper(panel):
    with solara.Sidebar():
        solara.Column(children=[panel])


@solara.component
def Page():
    """The whole page; each browser tab has its own session and model."""
    session = solara.use_memo(Session, [])
    # When the page goes (tab closed, session culled), Solara runs this effect's cleanup:
    # the session closes, and its model stops stepping in the play loop's thread.
    solara.use_effect(lambda: session.close, [])
    first_model = solara.use_memo(session.new_model, [])
    model = solara.use_reactive(first_model)
    revision, set_revision = solara.use_state(0)
    select_problems = solara.use_reactive([])

    def changed():
        set_revision(lambda r: r + 1)

    def on_propose(key, raw):
        if session.propose(key, raw):  # valid: rebuild; refused: the model stays as it is
            model.value = session.new_model()
        changed()

    def on_select(ref):
        try:
            session.select(ref)
        except ScenarioError as error:
            select_problems.set([str(p) for p in error.problems])
            changed()
            return
        select_problems.set([])
        model.value = session.new_model()
        changed()

    def on_restore():
        session.restore_defaults()
        model.value = session.new_model()
        changed()

    with solara.Column(classes=["explorer-page"]) as main:
        solara.Title(f"{TITLE}: {session.name}")
        SolaraViz(
            model,
            components=[],
            model_params={"source": session},  # Reset rebuilds from the session's current values
            name=f"{TITLE}: {session.name}",
            play_interval=100,
            render_interval=1,
        )
        SidebarBelowControls(ParameterPanel(session, revision, on_propose, on_select, on_restore))
        problems = select_problems.value + session.problems
        if problems:
            with solara.Column(classes=["explorer-problems"]).key("problems"):
                with solara.Error(text=True, outlined=True):
                    solara.Text("Not applied: the model keeps running with the last valid values.", style=BLOCK)
                    for line in problems:
                        solara.Text(line, style={**BLOCK, "font-family": "monospace", "font-size": "0.85rem"})
        # keyed, so the problems box coming and going does not remount (and redraw) them
        ModelView(model, session, revision).key("model-view")
        SavePanel(model, session, revision).key("save-panel")
    return main


page = Page
