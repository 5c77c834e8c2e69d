"""Experimental designs: the points of a sweep, drawn from a scenario's `sweep:` section.

    from sim.design import build_design, design_size, override_strings
    design = build_design(scenario.sweep, seed=12345)   # one row per design point
    for row in design.to_dict("records"):
        overrides = override_strings(row, scenario.sweep.parameters)  # for `--set`

`build_design` returns one row per design point: a `point` column (0..P-1), then one column
per swept key path, in the order of `sweep.parameters`; a Sobol design adds `sobol_block`
('A', 'B' or 'AB') and `sobol_column` (the parameter taken from B in an AB row, else -1).
Replicates are not expanded here: the executor runs each point `sweep.replicates` times.

The design depends only on (sweep, seed). Its seed is separate from the runs' seeds: the
same design can be run with other run seeds and vice versa.

Designs (`sweep.design`):

- `grid`    full factorial; a list gives its values, a range gives `samples` evenly spaced
            values (in log space when `log`; rounded and de-duplicated when `integer`).
- `random`  `samples` independent points, each parameter uniform in its range (log-uniform
            when `log`), a list parameter uniform among its values.
- `lhs`     Latin hypercube (`scipy.stats.qmc.LatinHypercube`) of `samples` points: each
            parameter's range is cut into `samples` equally likely strata with one point in each.
- `sobol`   Saltelli matrices for Sobol indices (`sim.analysis.sobol_analysis`): N = `samples`
            base points of a scrambled Sobol sequence in 2d dimensions (N is rounded up to a
            power of 2, with a warning), split into A (first d columns) and B (last d);
            AB_i is A with column i taken from B. Rows: A, then B, then AB_0 .. AB_{d-1};
            N * (d + 2) points in all.

Every sampler maps a unit coordinate u in [0, 1) to a value the same way (`scale_unit`):
linearly (or log-linearly) onto [low, high]; an integer range is cut into one equal bin per
whole number in [ceil(low), floor(high)] (every integer equally likely; with `log`, bins of
equal width in log space); a list into one equal bin per value. For Sobol designs an
integer range therefore makes the input discrete: the indices describe the model with that
parameter restricted to whole numbers, and the ties this creates bias the estimates
slightly (more so with few levels). Prefer float ranges for Sobol analyses where possible.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from scipy.stats import qmc

from sim.schema import Sweep, SweepRange
from sim.seeding import design_rng
from sim.yaml_source import ScenarioError, parse_value

__all__ = [
    "SOBOL_COLUMNS",
    "build_design",
    "design_size",
    "format_value",
    "grid_levels",
    "override_strings",
    "scale_unit",
    "sobol_base_samples",
]

SOBOL_COLUMNS = ("sobol_block", "sobol_column")

ParameterSpec = SweepRange | list


# --------------------------------------------------------------------------- one parameter


def _integer_bounds(spec: SweepRange) -> tuple[int, int]:
    """The smallest and largest whole numbers inside an integer range (`SweepRange.ends`)."""
    low, high = spec.ends
    if low > high:  # refused at validation (sim.scenario.range_problems); a section not validated so, here
        raise ValueError(f"integer range [{spec.low}, {spec.high}] contains no whole number")
    return low, high


def grid_levels(spec: ParameterSpec, samples: int | None) -> list:
    """The values a parameter takes in a grid: a list as given, a range `samples` points.

    Ranges: `numpy.linspace` (or `numpy.geomspace` when `log`) including both ends;
    integer ranges are rounded to whole numbers inside the range and de-duplicated, so they
    may give fewer than `samples` levels.
    """
    if not isinstance(spec, SweepRange):
        return list(spec)
    if samples is None:
        raise ValueError("a grid over a range needs `samples` (points per range)")
    space = np.geomspace if spec.log else np.linspace
    values = space(spec.low, spec.high, int(samples))
    if not spec.integer:
        return [float(v) for v in values]
    low, high = _integer_bounds(spec)
    return [int(v) for v in np.unique(np.clip(np.rint(values), low, high))]


def scale_unit(u: np.ndarray, spec: ParameterSpec) -> np.ndarray:
    """Map unit coordinates u in [0, 1) to values of one parameter (see the module notes).

    Returns float64 for float ranges, int64 for integer ranges, and for lists an object
    array holding the list's own values (an int64/float64 array when they are all ints or
    all floats).
    """
    u = np.clip(np.asarray(u, dtype=float), 0.0, np.nextafter(1.0, 0.0))
    if not isinstance(spec, SweepRange):
        index = np.minimum((u * len(spec)).astype(np.int64), len(spec) - 1)
        return _list_array(spec)[index]
    if spec.integer:
        low, high = _integer_bounds(spec)
        if spec.log:  # log-uniform over [low, high + 1), floored: P(k) ~ log((k + 1) / k)
            values = np.floor(np.exp(np.log(low) + u * (np.log(high + 1) - np.log(low))))
        else:  # one equal bin per whole number
            values = low + np.floor(u * (high - low + 1))
        return np.clip(values, low, high).astype(np.int64)
    if spec.log:
        values = np.exp(np.log(spec.low) + u * (np.log(spec.high) - np.log(spec.low)))
    else:
        values = spec.low + u * (spec.high - spec.low)
    return np.clip(values, spec.low, spec.high)


def _list_array(values: list) -> np.ndarray:
    """A list's values as an array that keeps their python types (ints stay ints, etc.)."""
    kinds = {type(v) for v in values}
    if kinds == {int}:
        return np.array(values, dtype=np.int64)
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    array = np.empty(len(values), dtype=object)  # strings, bools, or mixed types
    array[:] = values
    return array


def _column(values) -> pd.Series | np.ndarray:
    """A design column with the dtype its values call for (bool lists stay bool)."""
    array = values if isinstance(values, np.ndarray) else _list_array(list(values))
    if array.dtype == object and len(array) and all(type(v) is bool for v in array):
        return array.astype(bool)
    return array


# --------------------------------------------------------------------------- designs


def sobol_base_samples(samples: int) -> int:
    """N for a Sobol design: `samples` rounded up to a power of 2."""
    samples = int(samples)
    if samples < 1:
        raise ValueError("a sobol design needs samples >= 1")
    return 1 << (samples - 1).bit_length()


def design_size(sweep: Sweep) -> int:
    """Number of design points `build_design(sweep, seed)` returns (replicates not counted)."""
    d = len(sweep.parameters)
    if sweep.design == "grid":
        return math.prod(len(grid_levels(spec, sweep.samples)) for spec in sweep.parameters.values())
    if sweep.design in ("random", "lhs"):
        return int(sweep.samples)
    if sweep.design == "sobol":
        return sobol_base_samples(sweep.samples) * (d + 2)
    raise ValueError(f"unknown design '{sweep.design}'")


def build_design(sweep: Sweep, seed: int) -> pd.DataFrame:
    """The design points of a sweep: `point`, one column per parameter (+ Sobol columns).

    Deterministic given (sweep, seed); see the module notes for each design.
    """
    seed = int(seed)
    names = list(sweep.parameters)
    specs = list(sweep.parameters.values())
    if sweep.design == "grid":
        levels = [grid_levels(spec, sweep.samples) for spec in specs]
        rows = list(itertools.product(*levels))  # first parameter varies slowest
        columns = {name: _column([row[i] for row in rows]) for i, name in enumerate(names)}
        return _frame(len(rows), columns)
    if sweep.design == "random":
        unit = design_rng(seed).random((int(sweep.samples), len(specs)))
        return _frame(len(unit), _scaled(unit, names, specs))
    if sweep.design == "lhs":
        engine = qmc.LatinHypercube(len(specs), rng=design_rng(seed))
        unit = engine.random(int(sweep.samples))
        return _frame(len(unit), _scaled(unit, names, specs))
    if sweep.design == "sobol":
        return _sobol_design(sweep, names, specs, seed)
    raise ValueError(f"unknown design '{sweep.design}'")


def _scaled(unit: np.ndarray, names: list[str], specs: list) -> dict:
    return {name: _column(scale_unit(unit[:, i], spec)) for i, (name, spec) in enumerate(zip(names, specs))}


def _frame(n_points: int, columns: dict) -> pd.DataFrame:
    frame = pd.DataFrame({"point": np.arange(n_points, dtype=np.int64)})
    for name, values in columns.items():
        frame[name] = pd.Series(values, dtype=values.dtype if len(values) else object)
    return frame


def _sobol_design(sweep: Sweep, names: list[str], specs: list, seed: int) -> pd.DataFrame:
    lists = [name for name, spec in zip(names, specs) if not isinstance(spec, SweepRange)]
    if lists:
        raise ValueError(f"a sobol design needs ranges, not lists ({', '.join(lists)})")
    d = len(specs)
    n = sobol_base_samples(sweep.samples)
    if n != sweep.samples:
        warnings.warn(
            f"sobol design: samples={sweep.samples} is not a power of 2; using N={n} base samples "
            f"({n * (d + 2)} points) to keep the balance properties of the Sobol sequence",
            stacklevel=3,
        )
    engine = qmc.Sobol(2 * d, scramble=True, rng=design_rng(seed))
    base = engine.random_base2(int(math.log2(n)))
    a, b = base[:, :d], base[:, d:]
    blocks = [a, b]
    for i in range(d):
        ab = a.copy()
        ab[:, i] = b[:, i]
        blocks.append(ab)
    unit = np.vstack(blocks)
    frame = _frame(len(unit), _scaled(unit, names, specs))
    frame["sobol_block"] = np.array(["A"] * n + ["B"] * n + ["AB"] * (n * d), dtype=object)
    frame["sobol_column"] = np.concatenate([np.full(2 * n, -1), np.repeat(np.arange(d), n)]).astype(np.int64)
    return frame


# --------------------------------------------------------------------------- `--set` strings


_PLAIN_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./]*$")


def format_value(value) -> str:
    """A value as YAML text that reads back as exactly the same value (`--set key=<text>`).

    Floats use `repr` (shortest exact form), with `.0` added before an exponent because
    YAML 1.1 (PyYAML) reads `1e-05` as a string and `sim.yaml_source` reads `1e5` as an int;
    bools are `true`/`false`; strings that would not read back as themselves are single-quoted.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        if _PLAIN_STRING.match(value) and _reads_back(value):
            return value
        if "\n" in value or "\r" in value or not value.isprintable():
            return yaml.safe_dump(value, default_style='"', width=2**31).strip().removesuffix("...").strip()
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as a --set value")


def _reads_back(text: str) -> bool:
    try:
        return parse_value(text) == text  # as `--set` reads it (sim.yaml_source)
    except ScenarioError:
        return False


def _typed(value, spec: ParameterSpec | None):
    """`value` as the type the parameter spec calls for (undoes pandas' int -> float upcasts)."""
    if isinstance(value, np.generic):
        value = value.item()
    if spec is None:
        return value
    if isinstance(spec, Mapping):  # a range written as a plain dict
        spec = SweepRange.model_validate(spec)
    if isinstance(spec, SweepRange):
        if spec.integer:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value!r} is not a whole number")
            return int(value)
        return float(value)
    for option in spec:  # the list's own value, same type first (True == 1 in python)
        if type(option) is type(value) and option == value:
            return option
    for option in spec:
        if option == value and not isinstance(option, bool) and not isinstance(value, bool):
            return option
    return value


def override_strings(row: Mapping | pd.Series, parameters: Mapping[str, ParameterSpec] | Sequence[str]) -> list[str]:
    """`key.path=value` strings (as `run.py --set` takes) for one design row.

    `parameters` is `sweep.parameters` (values are then given the type the spec calls for:
    ints for integer ranges even if pandas turned them into floats, a list's own values) or
    just the key paths. Floats round-trip exactly through YAML (see `format_value`).
    """
    specs = parameters if isinstance(parameters, Mapping) else dict.fromkeys(parameters)
    out = []
    for key, spec in specs.items():
        value = row[key]
        try:
            value = _typed(value, spec)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{key}: {error}") from None
        out.append(f"{key}={format_value(value)}")
    return out
