"""Event data: ACLED-layout export of a run's events, and compare-events against a synthetic export."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_cli import run_cli

import sim
from sim import acled
from sim.acled import (
    ACLED_COLUMNS,
    ELSEWHERE,
    EventDataError,
    _acled_rows,
    build_places,
    compare_events,
    place_model,
    place_observed,
    read_observed,
    to_acled,
)
from sim.cli import main
from sim.results import load_run
from sim.scenario import load_scenario
from sim.yaml_source import ScenarioError

PROJECT_SCENARIOS = Path(sim.__file__).resolve().parent.parent / "scenarios"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("acled") / "baseline-run"
    sim.simulate("baseline", seed=3, steps=30, replicates=2).save(out, plots=False)
    return out


def test_export_has_acled_columns_dates_and_coordinates(run_dir):
    done = run_cli("export-acled", run_dir)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(run_dir / "acled_events.csv")
    assert tuple(table.columns) == ACLED_COLUMNS
    assert len(table) > 0
    assert set(table["replicate"]) <= {0, 1}
    config = load_scenario(run_dir / "scenario.yaml")
    dates = pd.to_datetime(table["event_date"], format="%Y-%m-%d")
    start = pd.Timestamp(config.start_date)
    assert dates.min() >= start and dates.max() <= start + pd.Timedelta(days=30)
    assert (table["year"] == dates.dt.year).all()
    b = config.grid.bounds
    located = table.dropna(subset=["latitude", "longitude"])
    assert len(located) == len(table)  # baseline has bounds, every event has a cell or a site
    assert located["latitude"].between(b.lat_min, b.lat_max).all()
    assert located["longitude"].between(b.lon_min, b.lon_max).all()
    assert table["event_type"].isin(["Battles", "Strategic developments"]).all()
    assert pd.api.types.is_integer_dtype(table["fatalities"])
    labels = {f.label for f in config.factions.values()}
    assert set(table["actor1"]) <= labels


def test_fatalities_equal_the_killed_of_clashes_and_attacks(run_dir):
    run = load_run(run_dir)
    config = load_scenario(run_dir / "scenario.yaml")
    table = to_acled(run.events, config, run.maps)
    fighting = run.events[run.events["event"].isin(["clash", "insurgent_attack"])]
    killed = fighting.reindex(columns=["killed_a", "killed_b"]).fillna(0).to_numpy().sum()
    assert table["fatalities"].sum() == killed
    assert (table["event_type"] == "Battles").sum() == len(fighting)
    assert "defection" not in set(table["sub_event_type"])


def test_meeting_outcomes_and_no_bounds():
    config = load_scenario("scenarios/toy_two_towns.yaml")  # a grid without bounds
    events = pd.DataFrame(
        [
            {"replicate": 0, "seed": 1, "step": 5, "event": "meeting", "site": "bridge", "outcome": "agreement"},
            {"replicate": 0, "seed": 1, "step": 6, "event": "meeting", "site": "bridge", "outcome": "failure"},
            {"replicate": 0, "seed": 1, "step": 7, "event": "defection"},
            {"replicate": 0, "seed": 1, "step": 8, "event": "clash", "row": 0, "col": 0, "killed_a": 1, "killed_b": 2},
        ]
    )
    maps = {"site_names": ["bridge"], "site_labels": ["The bridge"], "site_rows": [6], "site_cols": [12]}
    table = to_acled(events, config, maps)
    assert list(table["sub_event_type"]) == ["Agreement", "Other", "Armed clash"]
    assert list(table["location"]) == ["The bridge", "The bridge", "cell 0,0"]
    assert table["latitude"].isna().all() and table["longitude"].isna().all()
    assert list(table["fatalities"]) == [0, 0, 3]
    assert table["event_date"].iloc[0] == "2019-11-06"


def test_compare_events_writes_table_and_plot(run_dir, tmp_path):
    observed = pd.DataFrame(
        {
            "event_id_cnty": ["SYN1", "SYN2", "SYN3", "SYN4"],
            "event_date": ["2019-11-03", "2019-11-20", "2019-12-02", "2020-01-15"],
            "year": [2019, 2019, 2019, 2020],
            "event_type": ["Battles", "Battles", "Strategic developments", "Violence against civilians"],
            "sub_event_type": ["Armed clash", "Armed clash", "Agreement", "Attack"],
            "actor1": ["A", "A", "A", "A"],
            "actor2": ["B", "B", "B", ""],
            "location": ["Town", "Town", "Town", "Town"],
            "latitude": [34.5] * 4,
            "longitude": [40.9] * 4,
            "fatalities": [2, 1, 0, 1],
        }
    )
    path = tmp_path / "observed.csv"
    observed.to_csv(path, index=False)
    out = tmp_path / "cmp"
    done = run_cli("compare-events", run_dir, path, "--out", out)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "comparison.csv")
    for column in (
        "month",
        "month_index",
        "event_type",
        "model_count_median",
        "model_count_p5",
        "model_count_p95",
        "model_fatalities_median",
        "observed_count",
        "observed_fatalities",
    ):
        assert column in table.columns
    nov = table[(table["month"] == "2019-11") & (table["event_type"] == "Battles")].iloc[0]
    assert nov["observed_count"] == 2 and nov["observed_fatalities"] == 3
    simulated = table.dropna(subset=["model_count_median"])
    assert len(simulated) > 0
    assert (simulated["model_count_p5"] <= simulated["model_count_median"]).all()
    assert (out / "plots" / "compare_events.png").stat().st_size > 1000


def test_malformed_observed_file_is_one_line_exit_2(run_dir, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,kind\n2019-11-01,Battles\n")
    done = run_cli("compare-events", run_dir, path, "--out", tmp_path / "cmp")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "missing column" in done.stderr
    path.write_text("event_date,event_type,fatalities\nnot-a-date,Battles,1\n")
    done = run_cli("compare-events", run_dir, path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


# --- per-place comparison, on the toy scenario given geographic bounds -----------------

TOY_BOUNDS = {"lat_min": 34.0, "lat_max": 34.6, "lon_min": 40.0, "lon_max": 41.2}  # synthetic, no real place
TOY_SET = "grid.bounds={" + ", ".join(f"{k}: {v}" for k, v in TOY_BOUNDS.items()) + "}"
ACLED_HEADER = (
    "event_id_cnty",
    "event_date",
    "year",
    "event_type",
    "sub_event_type",
    "actor1",
    "actor2",
    "admin1",
    "location",
    "latitude",
    "longitude",
    "geo_precision",
    "notes",
    "fatalities",
)


def _cell_centre(row: int, col: int, height: int = 12, width: int = 24) -> tuple[float, float]:
    """Latitude, longitude of a toy cell's centre under TOY_BOUNDS (row 0 north)."""
    b = TOY_BOUNDS
    lat = b["lat_max"] - (row + 0.5) / height * (b["lat_max"] - b["lat_min"])
    lon = b["lon_min"] + (col + 0.5) / width * (b["lon_max"] - b["lon_min"])
    return round(lat, 5), round(lon, 5)


def _write_observed(path, rows: list[dict]) -> None:
    """A synthetic file in ACLED's layout (extra columns ACLED has are kept, as in a real export)."""
    full = []
    for i, row in enumerate(rows):
        base = {c: "" for c in ACLED_HEADER}
        base.update(event_id_cnty=f"SYN{i + 1}", year=row["event_date"][:4], admin1="Synthetic", geo_precision=1)
        base.update(sub_event_type="Armed clash", actor1="A", actor2="B", notes="synthetic, with a comma")
        base.update(row)
        full.append(base)
    pd.DataFrame(full, columns=list(ACLED_HEADER)).to_csv(path, index=False)


WEST, BRIDGE, EAST = _cell_centre(6, 4), _cell_centre(6, 12), _cell_centre(6, 19)
OBSERVED_ROWS = [
    # at the west town's coordinates: West town, by coordinates
    {"event_date": "2019-11-03", "event_type": "Battles", "location": "Westville", "latitude": WEST[0],
     "longitude": WEST[1], "fatalities": 2},
    # 1 km off the bridge, whatever the name says: Bridge, by coordinates
    {"event_date": "2019-11-20", "event_type": "Battles", "location": "Somewhere", "latitude": BRIDGE[0] + 0.009,
     "longitude": BRIDGE[1], "fatalities": 1},
    # far from every site (outside the grid), named like a site: elsewhere (coordinates win)
    {"event_date": "2019-12-02", "event_type": "Battles", "location": "West town", "latitude": 36.5,
     "longitude": 38.0, "fatalities": 4},
    # inside the grid, far from every site: elsewhere
    {"event_date": "2019-12-05", "event_type": "Battles", "location": "Field", "latitude": 34.55,
     "longitude": 40.03, "fatalities": 0},
    # no coordinates: by name, ignoring case and punctuation
    {"event_date": "2019-12-10", "event_type": "Strategic developments", "sub_event_type": "Agreement",
     "location": "east-TOWN", "fatalities": 0},
    # no coordinates, unknown name: elsewhere, counted
    {"event_date": "2019-12-11", "event_type": "Violence against civilians", "sub_event_type": "Attack",
     "location": "Atlantis", "fatalities": 1},
]  # fmt: skip


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("acled-toy") / "toy-run"
    sim.simulate("toy_two_towns", seed=11, steps=60, replicates=3, overrides=[TOY_SET]).save(out, plots=False)
    return out


@pytest.fixture(scope="module")
def toy_comparison(toy_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("acled-cmp")
    observed = base / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)
    result = compare_events(toy_dir, observed, base / "cmp")
    return result, observed


def test_observed_events_are_placed_by_coordinates_then_by_name(toy_comparison):
    result, _ = toy_comparison
    placed = pd.read_csv(result.directory / "observed_places.csv", keep_default_na=False)
    assert list(placed["place"]) == ["West town", "Bridge", ELSEWHERE, ELSEWHERE, "East town", ELSEWHERE]
    assert list(placed["place_site"]) == ["west_town", "bridge", "", "", "east_town", ""]
    assert list(placed["matched_by"]) == ["coordinates", "coordinates", "none", "none", "name", "none"]
    km = pd.to_numeric(placed["distance_km"])
    assert km.iloc[0] < 0.01 and 0.9 < km.iloc[1] < 1.1 and km.iloc[2] > 100 and km.iloc[4:].isna().all()
    assert list(placed["inside_grid"]) == ["True", "True", "False", "True", "", ""]
    assert result.matched == {"coordinates": 2, "name": 1, "none": 3}
    assert result.n_outside_grid == 1
    record = json.loads((result.directory / "compare_events.json").read_text(encoding="utf-8"))
    assert record["matching"]["observed_placed_by"] == result.matched
    assert [p["site"] for p in record["places"]] == ["west_town", "east_town", "bridge"]  # towns and the crossing
    # the default radius: two cells of the longer side (0.05 degrees of latitude, ~5.6 km)
    assert record["matching"]["radius_km"] == pytest.approx(2 * 0.05 * 111.32, rel=1e-3)


@pytest.mark.parametrize(
    ("km", "shown", "recorded"),
    [("0.001", "1 m", 0.001), ("0.0004", "0.4 m", 0.0004), ("6.4", "6.4 km", 6.4), ("2e4", "20000.0 km", 20000.0)],
)
def test_the_match_radius_is_shown_and_recorded_as_given(toy_dir, tmp_path, capsys, km, shown, recorded):
    # --match-km 0.001 printed "within 0.0 km" (one decimal), recorded 0.0 in compare_events.json
    # (three decimals), and --match-km 1e300 printed 301 digits.
    observed = tmp_path / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)
    out = tmp_path / "cmp"
    assert main(["compare-events", str(toy_dir), str(observed), "--out", str(out), "--match-km", km]) == 0
    assert f"placed by coordinates (within {shown}): " in capsys.readouterr().err
    record = json.loads((out / "compare_events.json").read_text(encoding="utf-8"))
    assert record["matching"]["radius_km"] == recorded


@pytest.mark.parametrize("km", ["20000.5", "1e6", "1e300"])
def test_a_match_radius_beyond_half_round_the_earth_is_refused(toy_dir, tmp_path, capsys, km):
    # 1e6 km was accepted (helper-88): every numeric input has a finite, documented range
    observed = tmp_path / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)
    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as stop:
        main(["compare-events", str(toy_dir), str(observed), "--out", str(out), "--match-km", km])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "--match-km: must be at most 20,000 km" in err, err
    assert not out.exists()
    with pytest.raises(EventDataError, match="at most 20,000 km"):
        compare_events(toy_dir, observed, out, match_km=float(km))
    assert not out.exists()


def test_per_place_counts_conserve_the_per_type_totals(toy_comparison, toy_dir):
    result, observed = toy_comparison
    by_type = pd.read_csv(result.directory / "comparison.csv")
    by_place = pd.read_csv(result.directory / "comparison_by_place.csv", keep_default_na=False, na_values=[""])
    assert set(by_place["place"]) == {"West town", "East town", "Bridge", ELSEWHERE}
    summed = by_place.groupby(["month", "event_type"]).sum(numeric_only=True, min_count=1)
    merged = by_type.merge(summed.reset_index(), on=["month", "event_type"], how="left", suffixes=("", "_places"))
    for column in ("observed_count", "observed_fatalities", "model_count_mean", "model_fatalities_mean"):
        both = merged[[column, f"{column}_places"]].dropna(how="all")
        assert both.notna().all().all(), column  # empty in one table only where empty in the other
        assert both[column].to_numpy() == pytest.approx(both[f"{column}_places"].to_numpy(), abs=1e-5), column
    # nothing dropped: every observed row and every model event is in some place
    assert by_place["observed_count"].sum() == len(pd.read_csv(observed))
    assert by_place["observed_fatalities"].sum() == 8
    run = load_run(toy_dir)
    model = to_acled(run.events, load_scenario(toy_dir / "scenario.yaml"), run.maps)
    assert (by_place["model_count_mean"] * by_place["n_replicates"]).sum() == pytest.approx(len(model), abs=1e-3)
    assert len(model) > 0
    elsewhere = by_place[(by_place["place"] == ELSEWHERE) & (by_place["event_type"] == "Battles")]
    assert elsewhere.set_index("month")["observed_count"].to_dict() == {"2019-11": 0, "2019-12": 2}
    band = by_place.dropna(subset=["model_count_median"])
    assert (band["model_count_p5"] <= band["model_count_median"]).all()
    assert (band["model_count_median"] <= band["model_count_p95"]).all()


def test_per_place_plots_are_written(toy_comparison):
    result, _ = toy_comparison
    for name in ("compare_events.png", "battles_by_place.png", "battle_fatalities_by_place.png"):
        assert (result.directory / "plots" / name).stat().st_size > 1000
    assert set(result.paths) <= set(result.directory.rglob("*"))
    assert not [p for p in result.directory.parent.iterdir() if p.name.startswith(".")]  # no staging left


def _tick_labels(monkeypatch) -> list:
    """Where `sim.figures.save_png` is replaced: the y tick labels of each visible panel drawn, figure by figure."""
    drawn = []

    def keep(fig, path, dpi=None):
        fig.canvas.draw()
        drawn.append([[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes if ax.get_visible()])
        return path

    monkeypatch.setattr("sim.figures.save_png", keep)
    return drawn


def test_count_panels_have_whole_number_ticks_even_when_every_value_is_0(tmp_path, monkeypatch):
    # A place with no battles was drawn on 0..0.055 and labelled 0.000, 0.006, ... (events per month);
    # MaxNLocator(integer=True) gives fractions when fewer than two whole numbers are in view.
    drawn = _tick_labels(monkeypatch)
    rows = [
        {"event_type": "Battles", "place": place, "month_index": m, "month": f"2020-0{m + 1}", "model_count_p5": 0.0,
         "model_count_median": 0.0, "model_count_p95": high, "observed_count": 0.0, "model_fatalities_p5": 0.0,
         "model_fatalities_median": 0.0, "model_fatalities_p95": high, "observed_fatalities": 0.0}
        for place, high in (("Buqrus", 0.0), ("Hajin", 0.5), ("Al-Bukamal", 3.0)) for m in range(4)
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    acled.plot_by_place(table, tmp_path / "b.png", "footer")
    acled.plot_by_place(table, tmp_path / "f.png", "footer", what="fatalities")
    acled.plot_comparison(table[table["place"] != "Al-Bukamal"].drop(columns="place"), tmp_path / "c.png", "footer")
    assert len(drawn) == 3
    for figure in drawn:
        for labels in figure:
            assert len(labels) >= 2 and all(text.lstrip("−-").isdigit() for text in labels), figure
            assert labels[0] == "0"


def _toy_sites(hq_row: int, hq_col: int) -> dict:
    """The toy scenario's sites as `load_run`'s maps give them: the two towns, and Blue's headquarters at (row, col)."""
    return {
        "site_names": ["west_town", "bridge", "blue_hq"],
        "site_labels": ["West town", "Bridge", "Blue HQ"],
        "site_rows": [6, 6, hq_row],
        "site_cols": [4, 12, hq_col],
    }


def test_model_events_take_the_place_of_their_site_or_nearest_place():
    config = load_scenario("scenarios/toy_two_towns.yaml", [TOY_SET])
    maps = _toy_sites(hq_row=5, hq_col=4)
    events = pd.DataFrame(
        [
            {"replicate": 0, "seed": 1, "step": 3, "event": "new_headquarters", "site": "blue_hq", "faction": "Blue"},
            {"replicate": 0, "seed": 1, "step": 4, "event": "clash", "row": 6, "col": 13, "killed_a": 1},
            {"replicate": 0, "seed": 1, "step": 5, "event": "clash", "row": 0, "col": 23, "killed_b": 2},
            {"replicate": 0, "seed": 1, "step": 6, "event": "meeting", "site": "bridge", "outcome": "agreement"},
        ]
    )
    places = build_places(config, maps)
    assert places.labels == ["West town", "Bridge"]  # the headquarters, near West town, is not a place of its own
    placed = place_model(_acled_rows(events, config, maps), places)
    assert list(placed["place"]) == ["West town", "Bridge", ELSEWHERE, "Bridge"]
    # without bounds: cells for the model, names for observed rows; --match-km cannot apply
    plain = load_scenario("scenarios/toy_two_towns.yaml")
    places = build_places(plain, maps)
    assert places.radius_km is None
    assert list(place_model(_acled_rows(events, plain, maps), places)["place"]) == list(placed["place"])
    with pytest.raises(EventDataError, match="no grid.bounds"):
        build_places(plain, maps, radius_km=5.0)


def test_a_headquarters_far_from_every_locality_is_a_place_of_its_own():
    """A headquarters beyond the radius of every town and crossing gets its own place (its events and the
    observed ones there were counted only under ELSEWHERE); one within it still belongs to the locality."""
    config = load_scenario("scenarios/toy_two_towns.yaml", [TOY_SET])
    maps = _toy_sites(hq_row=0, hq_col=23)
    events = pd.DataFrame(
        [
            {"replicate": 0, "seed": 1, "step": 3, "event": "new_headquarters", "site": "blue_hq", "faction": "Blue"},
            {"replicate": 0, "seed": 1, "step": 5, "event": "clash", "row": 0, "col": 22, "killed_b": 2},
            {"replicate": 0, "seed": 1, "step": 6, "event": "clash", "row": 12, "col": 0, "killed_b": 1},
        ]
    )
    places = build_places(config, maps)
    assert places.labels == ["West town", "Bridge", "Blue HQ"] and places.site_place["blue_hq"] == 2
    assert list(place_model(_acled_rows(events, config, maps), places)["place"]) == ["Blue HQ", "Blue HQ", ELSEWHERE]
    # observed events there, by coordinates and by name, take the same place
    lat, lon = places.lat[2], places.lon[2]
    nan = float("nan")
    observed = pd.DataFrame({"latitude": [lat, nan], "longitude": [lon, nan], "location": ["", "Blue HQ"]})
    assert list(place_observed(observed, places)["place"]) == ["Blue HQ", "Blue HQ"]


def test_the_syria_wide_places_leave_no_site_elsewhere():
    """syria_wide's headquarters at Nubl and Al-Zahraa and near the T4 airbase, and its Al-Sukhnah post, far
    from every town, are places; the corridor's sites (all near a locality) give the same places as before."""
    from sim.geography import build_geography

    for name, extra in (("syria_wide", {"nubl_zahraa", "t4_base", "sukhnah"}), ("baseline", set())):
        config = load_scenario(f"scenarios/{name}.yaml")
        places = build_places(config, build_geography(config))
        localities = {k for k, site in config.sites.items() if site.kind in acled.PLACE_KINDS}
        assert set(places.names) == localities | extra, name
        assert all(place is not None for place in places.site_place.values()), name


@pytest.mark.parametrize(
    ("name", "overrides", "steps", "match_km"),
    [
        ("syria_wide", [], 240, None),  # sites by lat/lon, headquarters and posts as places of their own
        ("syria_wide", [], 240, 30.0),  # another radius: places overlap
        ("baseline", [], 365, None),
        ("toy_two_towns", [], 365, None),  # no bounds: observed rows by name
        ("toy_two_towns", [TOY_SET], 365, None),  # bounds, sites at their cells' centres
    ],
)
def test_a_run_compared_with_its_own_export_agrees_place_by_place(tmp_path, name, overrides, steps, match_km):
    """The model's events and the same events read back from `export-acled` are put at the same places, month by
    month: on syria_wide they disagreed at 11 places (model events were placed by cells and site membership,
    observed rows by coordinates, with a site's event exported at its cell's centre rather than the site's own
    coordinates)."""
    disagree = {}
    for seed in (1, 2):
        out = tmp_path / f"{name}-{seed}"
        sim.simulate(name, seed=seed, steps=steps, replicates=1, overrides=overrides).save(out, plots=False)
        exported = acled.export_acled(out)
        result = compare_events(out, exported, out / "cmp", match_km=match_km)
        table = pd.read_csv(result.directory / "comparison_by_place.csv", keep_default_na=False, na_values=[""])
        assert table["observed_count"].sum() == len(pd.read_csv(exported)) > 10, (name, seed)
        for what in ("count", "fatalities"):
            model, observed = table[f"model_{what}_mean"].fillna(0), table[f"observed_{what}"].fillna(0)
            rows = table[model != observed]
            disagree.update({(seed, what, r.month, r.event_type, r.place): (m, o) for r, m, o in zip(
                rows.itertuples(), model[rows.index], observed[rows.index])})  # fmt: skip
    assert not disagree, disagree


def _main(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_compare_events_refuses_a_non_empty_out(toy_dir, tmp_path, capsys):
    observed = tmp_path / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    code, err = _main(capsys, "compare-events", toy_dir, observed, "--out", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(out) in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "earlier work"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert _main(capsys, "compare-events", toy_dir, observed, "--out", a_file)[0] == 2


def test_compare_events_default_is_a_new_directory_each_time(toy_dir, tmp_path, capsys):
    observed = tmp_path / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)
    before = set(toy_dir.iterdir())
    assert _main(capsys, "compare-events", toy_dir, observed)[0] == 0
    assert _main(capsys, "compare-events", toy_dir, observed)[0] == 0
    new = sorted(set(toy_dir.iterdir()) - before)
    assert len(new) == 2 and all(p.name.startswith("events-") for p in new)
    assert all((p / "comparison_by_place.csv").is_file() for p in new)
    assert not [p for p in toy_dir.iterdir() if p.name.startswith(".")]


def test_a_failed_comparison_leaves_nothing(toy_dir, tmp_path, monkeypatch):
    observed = tmp_path / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(acled, "plot_by_place", explode)
    with pytest.raises(RuntimeError):
        compare_events(toy_dir, observed, tmp_path / "cmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["observed.csv"]


def test_export_refuses_an_existing_file(toy_dir, tmp_path, capsys):
    out = tmp_path / "events.csv"
    assert _main(capsys, "export-acled", toy_dir, "--out", out)[0] == 0
    first = out.read_text()
    code, err = _main(capsys, "export-acled", toy_dir, "--out", out)
    assert code == 2 and str(out) in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == first
    assert [p.name for p in tmp_path.iterdir()] == ["events.csv"]  # no temporary file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"event_date,event_type,fatalities,location\n", "no events"),
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles,1,Ab\xfb Kamal\n", "not UTF-8"),
        (b"event_date,kind,fatalities,location\n2019-11-01,Battles,1,X\n", "missing column(s) event_type"),
        (b"event_date,event_type,fatalities\n2019-11-01,Battles,1\n", "missing column(s) location, latitude"),
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles,two,X\n", "fatalities 'two'"),
        (b"event_date,event_type,fatalities,location\n2019-11-31,Battles,1,X\n", "is not a date"),
        (b"event_date,event_type,fatalities,location\n05/11/2019,Battles,1,X\n", "ambiguous"),
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles,1e400,X\n", "not a whole count"),
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles,2.5,X\n", "not a whole count"),
        # 32 digits were read as 1e+32 (digits lost) and written to comparison.csv
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles," + b"9" * 32 + b",X\n",
         "is not a whole count in [0, 1,000,000]"),
        (b"event_date,event_type,fatalities,location,latitude,longitude\n2019-11-01,Battles,1,,34.1,north\n",
         "longitude 'north'"),
        (b"event_date,event_type,fatalities,location,latitude,longitude\n2019-11-01,Battles,1,X,34.1,40.2\n"
         b"2019-11-02,Battles,1,,,\n", "data row 2: no coordinates (latitude, longitude) and no location"),
        # an extra field shifted the row ("event_date 'Battles' is not a date"); a repeated column read one of two
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles,1,Abu Kamal, Syria\n",
         "a row has more fields than the header (4); quote a field that holds a comma"),
        (b"event_date,event_type,fatalities,location\n2019-11-01,Battles,1,X\n2019-11-02,Battles,1,Y,Z\n",
         "Expected 4 fields in line 3, saw 5"),
        (b"event_date,event_type,fatalities,location,event_type\n2019-11-01,Battles,1,X,Riots\n",
         "column(s) 'event_type' more than once in the header"),
    ],
)  # fmt: skip
def test_bad_observed_input_is_one_line_exit_2(toy_dir, tmp_path, capsys, content, message):
    path = tmp_path / "observed.csv"
    path.write_bytes(content)
    code, err = _main(capsys, "compare-events", toy_dir, path, "--out", tmp_path / "cmp")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert str(path) in err and message in err
    assert not (tmp_path / "cmp").exists()


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "observed.csv"
    path.write_bytes(b"\xef\xbb\xbfevent_date,event_type,fatalities,location\n2019-11-01,Battles,1,X\n")
    table = read_observed(path)
    assert list(table["event_date"]) == [pd.Timestamp("2019-11-01")] and table["fatalities"].iloc[0] == 1
    path.write_bytes(b"event_date,event_type,fatalities,location\n01 November 2019,Battles,1,X\n")  # ACLED's older form
    assert list(read_observed(path)["event_date"]) == [pd.Timestamp("2019-11-01")]


def test_acled_event_types_in_another_case_or_spacing_are_read_as_acleds(tmp_path):
    """'battles' from a file edited by hand is ACLED's 'Battles' (the model's clashes), not a type of its
    own with a zero model count beside it; a type ACLED does not have is kept as written."""
    path = tmp_path / "observed.csv"
    rows = ["Battles", "battles", " BATTLES ", "strategic  developments", "Explosions / remote violence", "Shelling"]
    path.write_text("event_date,event_type,fatalities,location\n" + "".join(f"2019-11-01,{t},1,X\n" for t in rows))
    assert list(read_observed(path)["event_type"]) == [
        "Battles", "Battles", "Battles", "Strategic developments", "Explosions/Remote violence", "Shelling",
    ]  # fmt: skip


def test_a_start_date_past_the_calendar_is_refused_and_so_are_older_results_with_one(toy_dir, tmp_path, capsys):
    # `--set start_date='"9999-12-31"'` validated, ran, then export-acled and compare-events said
    # "internal error: OverflowError: date value out of range".
    code, err = _main(capsys, "run", "toy_two_towns", "--steps", 40, "--set", 'start_date="9999-12-31"',
                      "--out", tmp_path / "never")
    assert code == 2 and err == "--set: start_date: must be a date from 1900-01-01 to 2199-12-31 (got '9999-12-31')\n"
    assert not (tmp_path / "never").exists()
    code, err = _main(capsys, "validate", "toy_two_towns", "--set", 'start_date="2199-12-31"', "--set", "steps=30000")
    assert code == 2 and err.startswith("--set: start_date: a run of 30000 steps from 2199-12-31 would end after "), err
    # A results directory written before the range existed (sealed as it was written): refused on one line.
    import hashlib
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(toy_dir, old)
    scenario = old / "scenario.yaml"
    text = scenario.read_text(encoding="utf-8")
    assert "start_date: '2019-11-01'" in text
    scenario.write_text(text.replace("start_date: '2019-11-01'", "start_date: '9999-12-31'"), encoding="utf-8")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["files"]["scenario.yaml"]["sha256"] = hashlib.sha256(scenario.read_bytes()).hexdigest()
    (old / "manifest.json").write_text(json.dumps(manifest))
    observed = tmp_path / "observed.csv"
    _write_observed(observed, OBSERVED_ROWS)
    for args in (["export-acled", old], ["compare-events", old, observed, "--out", tmp_path / "cmp"]):
        code, err = _main(capsys, *args)
        assert code == 2, err
        assert err.count("\n") == 1 and err.startswith(f"{scenario}:") and "start_date: must be a date from" in err, err
    assert not (tmp_path / "cmp").exists() and not (old / "acled_events.csv").exists()


def test_observed_events_outside_the_simulated_period_are_refused_or_said(toy_dir, tmp_path, capsys):
    # Events dated 1900 and 2099 against a 2019 run exited 0 with ~2,400 monthly rows of zeros.
    far = tmp_path / "far.csv"
    rows = [{**OBSERVED_ROWS[0], "event_date": "1900-01-05"}, {**OBSERVED_ROWS[1], "event_date": "2099-06-01"}]
    _write_observed(far, rows)
    out = tmp_path / "cmp-far"
    code, err = _main(capsys, "compare-events", toy_dir, far, "--out", out)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {far}: its events (1900-01-05 to 2099-06-01) and the simulated period of {toy_dir} "
                          "(2019-11-01 to 2019-12-31) do not overlap"), err
    assert not out.exists()
    # In part: compared as before (every month of either period), and said on one line.
    part = tmp_path / "part.csv"
    _write_observed(part, [OBSERVED_ROWS[0], {**OBSERVED_ROWS[1], "event_date": "2020-03-01"}])
    code, err = _main(capsys, "compare-events", toy_dir, part, "--out", tmp_path / "cmp-part")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[1] == (
        "periods overlap in part: 1 of 2 observed events (2019-11-03 to 2020-03-01) fall in the simulated period "
        "(2019-11-01 to 2019-12-31); months outside it have no model values"
    ), err
    table = pd.read_csv(tmp_path / "cmp-part" / "comparison.csv")
    assert table["month"].iloc[-1] == "2020-03"


def test_validate_refuses_steps_past_the_calendar_with_the_default_start_date(tmp_path, capsys):
    # `steps: 1e5` without a start_date: validate said ok (pydantic checks no default), run refused it.
    path = tmp_path / "long.yaml"
    path.write_text(f"extends: {PROJECT_SCENARIOS / 'toy_two_towns.yaml'}\nname: long\nsteps: 1e5\n")
    code, err = _main(capsys, "validate", path)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"{path}: start_date: a run of 100000 steps from 2019-11-01 would end after 2262-04-11")
    code, err = _main(capsys, "validate", "toy_two_towns", "--set", "steps=90000")
    assert code == 2 and "a run of 90000 steps from 2019-11-01 would end after 2262-04-11" in err


def test_steps_beyond_the_scenarios_that_end_past_the_calendar_are_refused(tmp_path, capsys):
    # The scenario's steps validate; --steps (priced by sim.limits.check_memory) went past 2262-04-11.
    from sim.limits import check_memory

    config = load_scenario("scenarios/toy_two_towns.yaml", ['start_date="2199-12-31"'])
    with pytest.raises(ScenarioError, match="a run of 30000 steps from 2199-12-31 would end after 2262-04-11"):
        check_memory(config, 30000)
    check_memory(config, 3000)
    out = tmp_path / "never"
    code, err = _main(capsys, "run", "toy_two_towns", "--set", 'start_date="2199-12-31"', "--steps", 30000,
                      "--out", out)
    assert code == 2 and err.startswith("toy_two_towns: start_date: a run of 30000 steps") and err.count("\n") == 1
    assert not out.exists()
