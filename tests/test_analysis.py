"""Tests for sim.analysis: sweep summaries, Sobol indices, screening, and `analyze`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.analysis import analyze, saltelli_2010, screening, sobol_analysis, summarize
from sim.design import build_design
from sim.schema import Sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PI = math.pi


# --------------------------------------------------------------------------- helpers


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Exact first-order and total indices of the Ishigami function (inputs uniform on [-pi, pi])."""
    v1 = 0.5 * (1 + b * PI**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * PI**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


def expand(design: pd.DataFrame, replicates: int) -> pd.DataFrame:
    """design.csv rows: one per point and replicate."""
    frames = [design.assign(replicate=r, seed=1000 + r) for r in range(replicates)]
    full = pd.concat(frames).sort_values(["point", "replicate"]).reset_index(drop=True)
    front = ["point", "replicate", "seed"]
    return full[front + [c for c in full.columns if c not in front]]


def outcomes_frame(full: pd.DataFrame, parameters: list[str], values: dict, failed=frozenset()) -> pd.DataFrame:
    """outcomes.csv rows; runs in `failed` ((point, replicate) pairs or points) get status 'failed'.

    Failed runs keep absurd outcome values (1e9), so any analysis given them notices (`write_sweep`
    empties them, as a sweep writes them).
    """
    out = full[["point", "replicate", "seed"]].copy()
    bad = [(p, r) in failed or p in failed for p, r in zip(full["point"], full["replicate"])]
    out["status"] = np.where(bad, "failed", "ok")
    out["error"] = np.where(bad, "RuntimeError: boom", "")
    for p in parameters:
        out[p] = full[p].to_numpy()
    for name, v in values.items():
        out[name] = np.where(bad, 1e9, v)
    return out


def write_sweep(directory: Path, sweep: Sweep, make_outputs, failed=frozenset(), seed: int = 1) -> Path:
    """A sweep directory written by hand: design.csv, outcomes.csv, manifest.json."""
    directory.mkdir(parents=True, exist_ok=True)
    full = expand(build_design(sweep, seed), sweep.replicates)
    parameters = list(sweep.parameters)
    rng = np.random.default_rng(0)
    outcomes = outcomes_frame(full, parameters, make_outputs(full, rng), failed)
    # as a sweep writes them: a failed run records no outcomes (`sim.sweep.run_task`; analyze refuses one that does)
    outcomes.loc[outcomes["status"] == "failed", list(sweep.outputs)] = np.nan
    full.to_csv(directory / "design.csv", index=False)
    outcomes.to_csv(directory / "outcomes.csv", index=False)
    manifest = {
        "scenario": "toy",
        "design": sweep.design,
        "parameters": parameters,
        "outputs": list(sweep.outputs),
        "replicates": sweep.replicates,
        "root_seed": 7,
        # Without `files` or `format`: a sweep from before manifests recorded them (which
        # sim.results.manifest_format knows by its start), read with the checks that need none.
        "started_utc": "2026-12-01T10:00:00+00:00",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5_000


P_MAX, SALARY = "rules.clashes.p_max", "factions.NDF.salary_usd_month"
OUTS = ["killed_total", "defections.NDF>IRGC"]


def toy_outputs(full: pd.DataFrame, rng) -> dict:
    """Both outputs are counts of people: whole and >= 0, as readers require of these kinds (`sim.outcomes.KINDS`)."""
    x = full[P_MAX].to_numpy(dtype=float)
    y = full[SALARY].to_numpy(dtype=float) if SALARY in full else np.zeros(len(full))
    noise = rng.normal(0.0, 0.5, len(full))

    def count(values: np.ndarray) -> np.ndarray:
        return np.maximum(np.round(values), 0.0)

    return {"killed_total": count(1000 * x + 0.01 * y + noise), "defections.NDF>IRGC": count(5 + 0.02 * y + noise)}


# --------------------------------------------------------------------------- Sobol indices


@pytest.fixture(scope="module")
def ishigami_runs():
    n = 2**12
    s = Sweep(
        parameters={f"x{i}": {"low": -PI, "high": PI} for i in (1, 2, 3)}, design="sobol", samples=n, outputs=["f"]
    )
    design = build_design(s, seed=2024)
    full = expand(design, 1)
    outcomes = outcomes_frame(full, list(s.parameters), {"f": ishigami(full[list(s.parameters)].to_numpy())})
    return full, outcomes, list(s.parameters)


def test_sobol_indices_of_the_ishigami_function(ishigami_runs):
    full, outcomes, parameters = ishigami_runs
    table = sobol_analysis(outcomes, full, parameters, ["f"], n_resamples=500, seed=1)
    assert list(table["parameter"]) == parameters and set(table["outcome"]) == {"f"}
    first, total = ishigami_indices()
    np.testing.assert_allclose(first, [0.3139, 0.4424, 0.0], atol=1e-4)
    np.testing.assert_allclose(total, [0.5576, 0.4424, 0.2437], atol=1e-4)
    for key, truth in (("S1", first), ("ST", total)):
        est, low, high = (table[c].to_numpy() for c in (key, f"{key}_low", f"{key}_high"))
        # The bootstrap treats the base samples as i.i.d.; the scrambled Sobol points are more
        # even than that, so the intervals are if anything wide and must hold the true values.
        assert np.all((low <= truth) & (truth <= high)), (key, low, truth, high)
        assert np.all(np.abs(est - truth) < 0.05), (key, est, truth)
        assert np.all(high - low < 0.15), (key, high - low)  # and be informative
    assert (table["n_base"] == 2**12).all()


def test_sobol_estimator_matches_scipy_and_drops_failed_points(ishigami_runs):
    full, outcomes, parameters = ishigami_runs
    n, d = 2**12, 3
    f = outcomes["f"].to_numpy()
    f_a, f_b, f_ab = f[:n], f[n : 2 * n], f[2 * n :].reshape(d, n)
    res = stats.sobol_indices(func={"f_A": f_a, "f_B": f_b, "f_AB": f_ab}, n=n)
    centre = np.mean([f_a, f_b])
    mine = saltelli_2010(f_a - centre, f_b - centre, f_ab - centre)
    np.testing.assert_allclose(mine[0], res.first_order, rtol=1e-12)
    np.testing.assert_allclose(mine[1], res.total_order, rtol=1e-12)

    # point 10 (A block, base sample 10) and AB_1's base sample 20 failed (1 replicate: every replicate)
    failed = {10, (2 * n + n + 20, 0)}
    broken = outcomes_frame(full, parameters, {"f": f}, failed)
    with pytest.warns(UserWarning, match="dropping 2 of 4096 base samples"):
        table = sobol_analysis(broken, full, parameters, ["f"], n_resamples=200, seed=1, ci_method="percentile")
    assert (table["n_base"] == n - 2).all()
    np.testing.assert_allclose(table["S1"], res.first_order, atol=0.01)
    np.testing.assert_allclose(table["ST"], res.total_order, atol=0.01)


def test_sobol_analysis_averages_replicates_and_is_reproducible():
    s = Sweep(
        parameters={"u": {"low": 0.0, "high": 1.0}, "v": {"low": 0.0, "high": 1.0}},
        design="sobol",
        samples=64,
        replicates=3,
        outputs=["y", "flat"],
    )
    full = expand(build_design(s, seed=3), 3)
    noise = np.where(full["replicate"] == 0, -1.0, np.where(full["replicate"] == 1, 1.0, 0.0))  # mean 0 per point
    y = 4 * full["u"] + full["v"] + noise
    outcomes = outcomes_frame(full, ["u", "v"], {"y": y, "flat": np.ones(len(full))})
    with pytest.warns(UserWarning, match="'flat' is constant"):
        table = sobol_analysis(outcomes, full, ["u", "v"], ["y", "flat"], n_resamples=200, seed=4)
    with pytest.warns(UserWarning, match="'flat' is constant"):
        again = sobol_analysis(outcomes, full, ["u", "v"], ["y", "flat"], n_resamples=200, seed=4)
    pd.testing.assert_frame_equal(table, again)
    y_rows = table[table["outcome"] == "y"].set_index("parameter")
    # additive and noise-free after averaging: S1 = ST = 16/17 and 1/17
    np.testing.assert_allclose(y_rows["S1"], [16 / 17, 1 / 17], atol=0.05)
    np.testing.assert_allclose(y_rows["ST"], [16 / 17, 1 / 17], atol=0.05)
    assert table[table["outcome"] == "flat"][["S1", "ST"]].isna().all().all()


# --------------------------------------------------------------------------- summaries and screening


def test_summarize_median_and_quantiles_over_ok_replicates():
    rows = [
        *[(0, r, "ok", 0.1, v) for r, v in enumerate([5.0, 1.0, 4.0, 2.0, 3.0])],
        (1, 0, "ok", 0.2, 10.0),
        (1, 1, "failed", 0.2, 1000.0),
        (1, 2, "ok", 0.2, 20.0),
        (2, 0, "failed", 0.3, np.nan),
    ]
    outcomes = pd.DataFrame(rows, columns=["point", "replicate", "status", "p", "y"])
    summary = summarize(outcomes, ["p"], ["y"]).set_index("point")
    assert list(summary.columns) == ["p", "n_ok", "n_failed", "y.median", "y.q05", "y.q95"]
    assert summary["n_ok"].tolist() == [5, 2, 0] and summary["n_failed"].tolist() == [0, 1, 1]
    assert summary["p"].tolist() == [0.1, 0.2, 0.3]
    assert summary.loc[0, ["y.median", "y.q05", "y.q95"]].tolist() == pytest.approx([3.0, 1.2, 4.8])
    assert summary.loc[1, ["y.median", "y.q05", "y.q95"]].tolist() == pytest.approx([15.0, 10.5, 19.5])
    assert summary.loc[2, ["y.median", "y.q05", "y.q95"]].isna().all()


def test_screening_finds_monotone_relations_and_ignores_noise():
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame({"point": np.arange(n), "replicate": 0, "status": "ok"})
    frame["x"] = rng.uniform(0, 1, n)
    frame["noise"] = rng.uniform(0, 1, n)
    frame["flag"] = rng.random(n) < 0.5
    frame["label"] = rng.choice(["a", "b"], n)
    frame["up"] = np.exp(5 * frame["x"])  # monotone, far from linear
    frame["down"] = -(frame["x"] ** 3)
    frame.loc[:9, "status"] = "failed"
    frame.loc[:9, "up"] = -1e9  # would spoil rho if failed runs were used
    with pytest.warns(UserWarning, match="non-numeric parameter.*label"):
        table = screening(frame, ["x", "noise", "flag", "label"], ["up", "down"])
    rho = table.set_index(["outcome", "parameter"])["spearman_rho"]
    assert rho["up", "x"] == pytest.approx(1.0) and rho["down", "x"] == pytest.approx(-1.0)
    assert abs(rho["up", "noise"]) < 0.15 and abs(rho["up", "flag"]) < 0.15
    assert "label" not in set(table["parameter"])
    assert (table["n"] == n - 10).all()
    assert table.set_index(["outcome", "parameter"]).loc[("up", "x"), "p_value"] < 1e-10


# --------------------------------------------------------------------------- analyze


def no_temporaries(directory: Path) -> None:
    leftovers = [p.name for p in directory.rglob(".*")]
    assert not leftovers, leftovers


def test_analyze_one_parameter_grid(tmp_path):
    s = Sweep(parameters={P_MAX: {"low": 0.001, "high": 0.01}}, design="grid", samples=5, replicates=4, outputs=OUTS)
    directory = write_sweep(tmp_path / "sweep", s, toy_outputs, failed={(2, 1), 4})
    paths = analyze(directory)
    names = [p.relative_to(directory).as_posix() for p in paths]
    assert names == ["summary.csv", "screening.csv", f"plots/outcomes_vs_{P_MAX}.png"]
    assert_png(paths[-1])
    summary = pd.read_csv(directory / "summary.csv")
    assert summary["n_ok"].tolist() == [4, 4, 3, 4, 0]
    assert summary["killed_total.q95"].max() < 100
    assert summary.loc[4, "killed_total.median"] != summary.loc[4, "killed_total.median"]  # NaN
    screen = pd.read_csv(directory / "screening.csv")
    assert set(screen["outcome"]) == set(OUTS) and screen["n"].max() == 15
    no_temporaries(directory)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_an_analysis_cut_short_leaves_the_earlier_one_as_it_was(tmp_path, monkeypatch, interrupt):
    """Ctrl-C (or an error) while the plots are drawn: the summaries already made are not put
    beside the old plots; the directory holds the previous analysis whole, and no staging files."""
    import sim.analysis

    s = Sweep(parameters={P_MAX: {"low": 0.001, "high": 0.01}}, design="grid", samples=5, replicates=4, outputs=OUTS)
    directory = write_sweep(tmp_path / "sweep", s, toy_outputs)
    before = {p.relative_to(directory).as_posix(): p.read_bytes() for p in analyze(directory)}
    (directory / "summary.csv").write_text("an earlier analysis's summary\n")  # tells old from new
    before["summary.csv"] = (directory / "summary.csv").read_bytes()

    def cut_short(*args, **kwargs):
        raise interrupt()

    monkeypatch.setattr(sim.analysis, "plot_outcomes_vs", cut_short)
    with pytest.raises(interrupt):
        analyze(directory)
    after = {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    assert {name: after[name] for name in before} == before
    no_temporaries(directory)
    monkeypatch.undo()
    analyze(directory)  # and a whole analysis replaces it
    assert (directory / "summary.csv").read_bytes() != before["summary.csv"]
    no_temporaries(directory)


def test_analyze_two_parameter_grid(tmp_path):
    s = Sweep(
        parameters={P_MAX: {"low": 0.001, "high": 0.01, "log": True}, SALARY: [100, 200, 400]},
        design="grid",
        samples=3,
        replicates=2,
        outputs=OUTS,
    )
    directory = write_sweep(tmp_path / "sweep", s, toy_outputs, failed={0})
    paths = analyze(directory)
    names = sorted(p.relative_to(directory).as_posix() for p in paths)
    assert names == [
        "plots/heatmap_defections.NDF_IRGC.png",
        "plots/heatmap_killed_total.png",
        "screening.csv",
        "summary.csv",
    ]
    for path in paths:
        if path.suffix == ".png":
            assert_png(path)
    summary = pd.read_csv(directory / "summary.csv")
    assert len(summary) == 9 and summary["n_ok"].tolist() == [0] + [2] * 8
    no_temporaries(directory)


def test_analyze_sobol_design(tmp_path):
    s = Sweep(
        parameters={P_MAX: {"low": 0.001, "high": 0.01}, SALARY: {"low": 50.0, "high": 900.0}},
        design="sobol",
        samples=32,
        replicates=2,
        outputs=OUTS,
    )
    directory = write_sweep(tmp_path / "sweep", s, toy_outputs, failed={(3, 0)})
    paths = analyze(directory)
    assert [p.relative_to(directory).as_posix() for p in paths] == [
        "summary.csv",
        "sobol.csv",
        "plots/sobol_indices.png",
    ]
    assert_png(paths[-1])
    table = pd.read_csv(directory / "sobol.csv")
    assert list(table.columns[:8]) == ["outcome", "parameter", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]
    assert len(table) == 2 * 2 and (table["n_base"] == 32).all()  # point 3 still has one ok replicate
    defections = table[table["outcome"] == "defections.NDF>IRGC"].set_index("parameter")
    assert defections.loc[SALARY, "S1"] > 0.8 and defections.loc[P_MAX, "S1"] < 0.2
    summary = pd.read_csv(directory / "summary.csv")
    assert summary.loc[summary["point"] == 3, "n_ok"].item() == 1
    assert not (directory / "screening.csv").exists()
    no_temporaries(directory)


def test_analyze_other_designs_draw_a_tornado(tmp_path):
    s = Sweep(
        parameters={
            P_MAX: {"low": 0.001, "high": 0.01},
            SALARY: {"low": 50.0, "high": 900.0},
            "rules.mediation.venues": ["a", "b"],
        },
        design="lhs",
        samples=30,
        replicates=2,
        outputs=OUTS,
    )
    directory = write_sweep(tmp_path / "sweep", s, toy_outputs)
    with pytest.warns(UserWarning, match="rules.mediation.venues"):
        paths = analyze(directory)
    assert [p.relative_to(directory).as_posix() for p in paths] == [
        "summary.csv",
        "screening.csv",
        "plots/screening.png",
    ]
    assert_png(paths[-1])


def test_analyze_refuses_an_incomplete_directory(tmp_path):
    from sim.results import OutputError

    (tmp_path / "design.csv").write_text("point\n0\n")
    with pytest.raises(OutputError, match="outcomes.csv"):
        analyze(tmp_path)


def test_a_full_disk_during_an_analysis_names_the_file_as_it_was_to_be(tmp_path, monkeypatch):
    """ENOSPC while a figure is written named the hidden staging directory's copy
    (sweep/.analysis-x/plots/y.png), which is gone by the time the message is read."""
    import errno

    import sim.analysis

    s = Sweep(parameters={P_MAX: {"low": 0.001, "high": 0.01}}, design="grid", samples=5, replicates=4, outputs=OUTS)
    directory = write_sweep(tmp_path / "sweep", s, toy_outputs)

    def full(ctx, summary, ok, parameter, outputs, path):  # the kernel names the file it could not write
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sim.analysis, "plot_outcomes_vs", full)
    with pytest.raises(OSError) as raised:
        analyze(directory)
    named = Path(raised.value.filename)
    assert named.parent == directory / "plots" and named.suffix == ".png", named
    no_temporaries(directory)
