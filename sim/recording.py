"""What the model records each step: one column per figure.

`build_reporters` defines the figures as Mesa DataCollector reporters: module-level functions
bound to a faction, site or pair with `functools.partial` (so a collector pickles for worker
processes and Dask); Mesa's collector built from them still works (the explorer or a notebook
may use one). The model itself records with `Recorder`, which computes the same figures for
all factions, pairs, sites and tribes at once into preallocated arrays and reads like the
DataCollector (`get_model_vars_dataframe`, `model_vars`): the same table, value for value.
Column names are `figure.subject`: `fighters.IRGC`, `defections.NDF>IRGC`,
`tension.IRGC~NDF`, `control.albukamal`. Per-step counts (killed, defections, clashes) are
the step's own; plots and analyses take cumulative sums where they need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from sim.compiled import kernel
from sim.processes.mediation import compiled_calm
from sim.world import CONTESTED, FIT, RECORDED_TALLIES, WOUNDED

CONTROL_LABEL_CONTESTED = "contested"
CONTROL_LABEL_NONE = "none"


def fighters(model, f: int) -> int:
    """Fit fighters of faction f (insurgents: rounded insurgent cells)."""
    return model.n_fighters(f)


def wounded_now(model, f: int) -> int:
    """Members of faction f currently wounded."""
    r = model.recruits
    return int(np.count_nonzero((r.faction == f) & (r.status == WOUNDED)))


def territory_share(model, f: int) -> float:
    """Share of passable grid cells that faction f controls (0-1)."""
    passable = model.geo.passable
    return float(np.count_nonzero((model.control == f) & passable) / max(np.count_nonzero(passable), 1))


def contested_share(model) -> float:
    """Share of passable grid cells whose control is contested (0-1)."""
    passable = model.geo.passable
    return float(np.count_nonzero((model.control == CONTESTED) & passable) / max(np.count_nonzero(passable), 1))


def budget(model, f: int) -> float:
    """Cash of faction f (USD)."""
    return float(model.world.budget[f])


def arrears(model, f: int) -> float:
    """Salaries faction f owes (USD)."""
    return float(model.world.arrears[f])


def effective_salary(model, f: int) -> float:
    """Salary recruits expect from faction f: salary x pay ratio (USD/month)."""
    return float(model.world.salary[f] * model.world.pay_ratio[f])


def offered_salary(model, f: int) -> float:
    """Salary faction f offers today, after its strategy reviews (USD/month)."""
    return float(model.world.salary[f])


def hiring(model, f: int) -> float:
    """Share of applicants faction f takes today (graded hiring, 0-1)."""
    return float(model.world.hiring[f])


def joined(model, f: int) -> int:
    """Civilians who joined faction f today."""
    return int(model.today.joined[f])


def desertions(model, f: int) -> int:
    """Members who left faction f for civilian life today."""
    return int(model.today.desertions[f])


def defections(model, a: int, b: int) -> int:
    """Members who moved from faction a to faction b today."""
    return int(model.today.defections[a, b])


def killed(model, f: int) -> int:
    """Members of faction f killed today."""
    return int(model.today.killed[f])


def wounded(model, f: int) -> int:
    """Members of faction f wounded today."""
    return int(model.today.wounded[f])


def tension(model, a: int, b: int) -> float:
    """Tension between factions a and b (index, 0 = none)."""
    return float(model.tension[a, b])


def calm(model, a: int, b: int) -> float:
    """Calm left from the latest agreement of a and b (0-1)."""
    return model.calm(a, b)


def site_control(model, s: int) -> str:
    """Who controls site s: a faction name, 'contested' or 'none'."""
    holder = int(model.site_control[s])
    if holder >= 0:
        return model.faction_names[holder]
    return CONTROL_LABEL_CONTESTED if holder == CONTESTED else CONTROL_LABEL_NONE


def alignment(model, t: int, f: int) -> float:
    """Weight of faction f in the alignment of tribe t's leader (0-1)."""
    return float(model.world.alignment[t, f])


def tally(model, name: str) -> int:
    """Today's count of one daily tally (clashes, meetings, ...)."""
    return int(getattr(model.today, name))


def insurgent_cells(model) -> float:
    """Insurgent strength (insurgent cells)."""
    return float(model.insurgent_cells)


DAILY_TALLIES = RECORDED_TALLIES  # the tallies recorded, one column each, in `DailyTally.recorded`'s order


def build_reporters(model) -> dict:
    """The DataCollector's model reporters for this model's factions, sites, tribes and pairs."""
    names = model.faction_names
    reporters: dict = {}
    for f, name in enumerate(names):
        reporters[f"fighters.{name}"] = partial(fighters, f=f)
        if not model.is_militia[f]:
            continue
        reporters[f"wounded_now.{name}"] = partial(wounded_now, f=f)
        reporters[f"territory.{name}"] = partial(territory_share, f=f)
        reporters[f"budget.{name}"] = partial(budget, f=f)
        reporters[f"arrears.{name}"] = partial(arrears, f=f)
        reporters[f"salary.{name}"] = partial(effective_salary, f=f)
        reporters[f"salary_offered.{name}"] = partial(offered_salary, f=f)
        reporters[f"hiring.{name}"] = partial(hiring, f=f)
        reporters[f"joined.{name}"] = partial(joined, f=f)
        reporters[f"desertions.{name}"] = partial(desertions, f=f)
        reporters[f"killed.{name}"] = partial(killed, f=f)
        reporters[f"wounded.{name}"] = partial(wounded, f=f)
    reporters["territory.contested"] = contested_share
    militias = [f for f in range(len(names)) if model.is_militia[f]]
    for a in militias:
        for b in militias:
            if a != b:
                reporters[f"defections.{names[a]}>{names[b]}"] = partial(defections, a=a, b=b)
    for a, b in model.hostile_pairs:
        if model.is_militia[a] and model.is_militia[b]:
            reporters[f"tension.{names[a]}~{names[b]}"] = partial(tension, a=a, b=b)
            reporters[f"calm.{names[a]}~{names[b]}"] = partial(calm, a=a, b=b)
    for s, site in enumerate(model.geo.site_names):
        reporters[f"control.{site}"] = partial(site_control, s=s)
    for t, tribe in enumerate(model.tribe_names):
        for f in militias:
            reporters[f"alignment.{tribe}.{names[f]}"] = partial(alignment, t=t, f=f)
    for name in DAILY_TALLIES:
        reporters[name] = partial(tally, name=name)
    if model.insurgent is not None:
        reporters["insurgent_cells"] = insurgent_cells
    return reporters


class RecordedColumn(Sequence):
    """One recorded column as a read-only sequence of Python values (the DataCollector's `model_vars[name]`).

    Holds the rows recorded when it was made (later rows are not seen).
    """

    def __init__(self, recorder: Recorder, name: str):
        self._recorder = recorder
        self._block, self._index = recorder._where[name]
        self._n = recorder.n

    def __len__(self) -> int:
        return self._n

    def _value(self, row: int):
        rec = self._recorder
        if self._block == "int":
            return int(rec.ints[row, self._index])
        if self._block == "float":
            return float(rec.floats[row, self._index])
        return rec._label(int(rec.sites[row, self._index]))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._value(row) for row in range(self._n)[index]]
        return self._value(range(self._n)[index])


class Recorder:
    """What `build_reporters` records, written each step into preallocated arrays (one row per step).

    Mesa's DataCollector calls one Python reporter per column and deep-copies every value,
    each step (~80 calls a step for the baseline); this recorder computes the same figures
    for all factions, sites, pairs and tribes at once and stores them in three blocks: int64
    counts (T, n_int), float64 states (T, n_float) and site-control codes (T, S). It reads
    like the DataCollector: `get_model_vars_dataframe()` gives the same table (same columns,
    order, dtypes and values; tests/test_recording.py compares them) and `model_vars` maps
    each column to a read-only sequence of its values. It holds no reference to the model,
    so a model with its recorder pickles.
    """

    def __init__(self, model, capacity: int = 512):
        names = list(model.faction_names)
        n_f = len(names)
        militias = [f for f in range(n_f) if model.is_militia[f]]
        self.pairs = [(a, b) for a, b in model.hostile_pairs if model.is_militia[a] and model.is_militia[b]]
        self.pair_table = np.array(self.pairs, dtype=np.int64).reshape(-1, 2)
        self.insurgent = model.insurgent is not None
        self.faction_names = names
        self.n_passable = max(int(np.count_nonzero(model.geo.passable)), 1)
        self.passable = np.asarray(model.geo.passable, dtype=bool)
        # Each step gathers the int and the float figures from one vector each (`collect`):
        # ints  [fighters (F), wounded now (F), joined, desertions, killed, wounded (F each),
        #        defections (F x F, from x to), daily tallies]
        # floats [cells held by CONTESTED, NONE, 0..F-1 over passable cells (F + 2), budget,
        #        arrears, effective salary, offered salary, hiring (F each), tension (F x F),
        #        calm (one per pair), alignment (L x F), insurgent cells (if any)]
        # Column -> (block, position in its vector); the block's columns are stored in that order.
        where: dict[str, tuple[str, int]] = {}
        for f, name in enumerate(names):
            where[f"fighters.{name}"] = ("int", f)
        heads = ("wounded_now", "joined", "desertions", "killed", "wounded")
        for k, head in enumerate(heads, start=1):
            for f in militias:
                where[f"{head}.{names[f]}"] = ("int", k * n_f + f)
        for a in militias:
            for b in militias:
                if a != b:
                    where[f"defections.{names[a]}>{names[b]}"] = ("int", 6 * n_f + a * n_f + b)
        for i, name in enumerate(DAILY_TALLIES):
            where[name] = ("int", 6 * n_f + n_f * n_f + i)
        for f in militias:
            where[f"territory.{names[f]}"] = ("float", f + 2)
        where["territory.contested"] = ("float", CONTESTED + 2)
        for k, head in enumerate(("budget", "arrears", "salary", "salary_offered", "hiring")):
            for f in militias:
                where[f"{head}.{names[f]}"] = ("float", n_f + 2 + k * n_f + f)
        k = 6 * n_f + 2
        for a, b in self.pairs:
            where[f"tension.{names[a]}~{names[b]}"] = ("float", k + a * n_f + b)
        k += n_f * n_f
        for i, (a, b) in enumerate(self.pairs):
            where[f"calm.{names[a]}~{names[b]}"] = ("float", k + i)
        k += len(self.pairs)
        for t, tribe in enumerate(model.tribe_names):
            for f in militias:
                where[f"alignment.{tribe}.{names[f]}"] = ("float", k + t * n_f + f)
        k += len(model.tribe_names) * n_f
        if self.insurgent:
            where["insurgent_cells"] = ("float", k)
        for s, site in enumerate(model.geo.site_names):
            where[f"control.{site}"] = ("site", s)
        # Column order: that of build_reporters (the DataCollector's table).
        self.columns = list(build_reporters(model))
        if sorted(self.columns) != sorted(where):
            raise AssertionError("Recorder and build_reporters record different columns")  # a programming error
        self._gather = {}
        self._where = {}
        for block in ("int", "float", "site"):
            mine = [c for c in self.columns if where[c][0] == block]
            self._gather[block] = np.array([where[c][1] for c in mine], dtype=np.int64)
            self._where.update({c: (block, i) for i, c in enumerate(mine)})
        self.n = 0
        self.ints = np.zeros((capacity, len(self._gather["int"])), dtype=np.int64)
        self.floats = np.zeros((capacity, len(self._gather["float"])))
        self.sites = np.zeros((capacity, len(self._gather["site"])), dtype=np.int64)

    def compact(self) -> None:
        """Keep only the rows recorded so far (the arrays were sized for a whole run; e.g. once the run is over).

        A run shorter than its scenario's steps then keeps, and pickles, its own rows only.
        Recording more rows afterwards grows the arrays again.
        """
        for block in ("ints", "floats", "sites"):
            old = getattr(self, block)
            if len(old) > self.n:
                setattr(self, block, old[: self.n].copy())

    def _grow(self) -> None:
        for block in ("ints", "floats", "sites"):
            old = getattr(self, block)
            setattr(self, block, np.concatenate([old, np.zeros((max(len(old), 1), old.shape[1]), old.dtype)], axis=0))

    def collect(self, model) -> None:
        """Record the model's state and today's tallies as the next row."""
        if self.n == len(self.ints):
            self._grow()
        w = model.world
        today = w.today
        n_f = len(self.faction_names)
        # `World.fighters_by_faction`'s insurgent entry, their rounded cells (-1: no insurgents)
        insurgent, cells = (-1, 0) if w.insurgent is None else (w.insurgent, int(round(w.insurgent_cells)))
        census = w.recruits.census(n_f)
        if census.flags.writeable:  # day 0 (counted afresh); read-only when remembered during a day:
            census = census.view()  # one compiled signature for both, so a process loads one
            census.flags.writeable = False
        _record(
            census, insurgent, cells, today.joined, today.desertions, today.killed,
            today.wounded, today.defections, today.recorded,
            w.control, self.passable, self.n_passable, w.budget, w.arrears, w.salary, w.pay_ratio, w.hiring,
            w.tension, self.pair_table, w.day, w.last_agreement, 0.5, model.rules.mediation.calm_half_life_days,
            self.insurgent, w.insurgent_cells, w.alignment, w.site_control,
            self._gather["int"], self._gather["float"], self._gather["site"],
            self.ints[self.n], self.floats[self.n], self.sites[self.n],
        )  # fmt: skip
        self.n += 1

    def _label(self, code: int) -> str:
        if code >= 0:
            return self.faction_names[code]
        return CONTROL_LABEL_CONTESTED if code == CONTESTED else CONTROL_LABEL_NONE

    def column(self, name: str):
        """(T,) recorded values of one column: an int64 or float64 array, or a list of control labels."""
        values = self._column_array(name)
        return values.tolist() if values.dtype == object else values

    def _column_array(self, name: str) -> np.ndarray:
        """(T,) one column: a view of the int64 or float64 block, or an object array of control labels."""
        block, i = self._where[name]
        if block == "int":
            return self.ints[: self.n, i]
        if block == "float":
            return self.floats[: self.n, i]
        return self._site_labels()[self.sites[: self.n, i] - CONTESTED]

    def _site_labels(self) -> np.ndarray:
        """Object array of control labels indexed by code - CONTESTED: contested, none, the factions."""
        return np.array([self._label(code) for code in range(CONTESTED, len(self.faction_names))], dtype=object)

    @property
    def model_vars(self) -> dict[str, RecordedColumn]:
        """Column name -> its values so far, as the DataCollector's `model_vars` (read-only)."""
        return {name: RecordedColumn(self, name) for name in self.columns}

    def get_model_vars_dataframe(self, step_column: str | None = None, columns: Sequence[str] | None = None):
        """A pandas DataFrame, one row per recorded step (index 0..T-1) and column per figure, as Mesa's.

        With `step_column`, the step numbers 0..T-1 are also its first column, under that name
        (what `reset_index()` of the table with its index named so gives, made directly).
        With `columns`, only those columns, in the table's order: names, or prefixes ending
        in "." (`killed.` for every `killed.<militia>`); a name the recorder has not recorded
        is left out (a sweep's outcomes read a few columns: `sim.outcomes.columns_read`).

        The table is put together from the recorder's blocks (pandas' `create_dataframe_from_blocks`:
        one int64 and one float64 block, the control labels taken from one array of labels), because
        handing pandas ~80 separate columns cost a sweep more per run than everything else it
        does around a model; where that pandas API is missing (pandas < 3) it is built column by
        column. Either way the same table (tests/test_recording.py).
        """
        import pandas as pd  # only where a table is made: the model itself does not need pandas

        selected = self.columns if columns is None else self.matching(columns)
        try:
            from pandas.api.internals import create_dataframe_from_blocks
        except ImportError:  # pandas < 3
            return self._dataframe_by_column(step_column, selected)
        n = self.n
        names, parts, labels = self._layout(step_column, tuple(selected))
        blocks = []
        places, gather = parts["int"]
        if len(places):
            ints = self.ints[:n].T[gather]  # (k, T), each column's values contiguous
            if step_column is not None:
                ints = np.concatenate([np.arange(n, dtype=np.int64)[None], ints])
            blocks.append((ints, places))
        places, gather = parts["float"]
        if len(places):
            blocks.append((self.floats[:n].T[gather], places))
        places, gather = parts["site"]
        if len(places):
            codes = self.sites[:n].T[gather] - CONTESTED  # (S, T) indices into the labels
            if isinstance(labels.dtype, np.dtype):  # object (strings not inferred as str): one 2-D block
                blocks.append((labels.to_numpy()[codes], places))
            else:  # an extension array (pandas' str): every column's labels taken at once, one slice each
                taken = labels.array.take(codes.reshape(-1))
                blocks += [(taken[k * n : (k + 1) * n], places[k : k + 1]) for k in range(len(codes))]
        # A table's own Index (a shallow copy): renaming one table's columns leaves the others alone
        return create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n), columns=names.copy())

    def _layout(self, step_column: str | None, selected: tuple[str, ...]):
        """(column Index, each block's (placements, rows of the block) and control labels as pandas makes them).

        For a table of the `selected` columns (in the table's order) with `step_column` first
        if given. Kept across recorders (`_LAYOUTS`, a few entries: a sweep's runs share one),
        since making them anew took a sweep's run longer than the table itself. Tables share
        the labels (never changed in place); each gets its own shallow copy of the Index,
        which users rename in place. The labels' dtype
        is the one pandas inferred when the layout was made: with pandas' deprecated
        `future.infer_string` switched off before the first table (pandas < 3's default),
        object columns, as the DataCollector's then.
        """
        import pandas as pd

        key = (tuple(self.columns), selected, step_column, tuple(self.faction_names))  # the labels follow the names
        layout = _LAYOUTS.get(key)
        if layout is None:
            every = pd.Index(self.columns if step_column is None else [step_column, *self.columns])
            first = 0 if step_column is None else 1
            names = every[list(range(first)) + [first + self.columns.index(c) for c in selected]]
            where = [(k, self._where[c]) for k, c in enumerate(selected, start=first)]
            parts = {}
            for block in ("int", "float", "site"):
                mine = [(k, i) for k, (b, i) in where if b == block]
                if block == "int" and step_column is not None:
                    mine.insert(0, (0, -1))  # the step column, made apart
                places = np.array([k for k, _ in mine], dtype=np.intp)
                gather = np.array([i for k, i in mine if k or step_column is None], dtype=np.intp)
                places.flags.writeable = gather.flags.writeable = False
                parts[block] = (places, gather)
            layout = (names, parts, pd.Series(self._site_labels()))  # labels in the dtype pandas infers
            _LAYOUTS[key] = layout
            while len(_LAYOUTS) > 16:
                _LAYOUTS.pop(next(iter(_LAYOUTS)))
        return layout

    def arrays(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """`step` (0..T-1) and the recorded columns that `columns` names or prefixes, each a read-only (T,) array.

        Names, or prefixes ending in "."; a name not recorded is left out. Counts are int64,
        states float64, control labels object arrays of str. Views onto the recorder (no
        copies, no pandas): what a sweep's outcomes read (`sim.outcomes.COLUMNS_READ`).
        """
        table = {"step": np.arange(self.n, dtype=np.int64)}
        for name in self.matching(columns):
            values = self._column_array(name).view()
            values.flags.writeable = False
            table[name] = values
        table["step"].flags.writeable = False
        return table

    def matching(self, wanted: Sequence[str]) -> list[str]:
        """The recorded columns that `wanted` names or (ending in ".") prefixes, in the table's order."""
        names = {w for w in wanted if not w.endswith(".")}
        prefixes = tuple(w for w in wanted if w.endswith("."))
        return [c for c in self.columns if c in names or (prefixes and c.startswith(prefixes))]

    def _dataframe_by_column(self, step_column: str | None, columns: list[str]):
        """`get_model_vars_dataframe` of these columns made column by column (few columns, or pandas < 3)."""
        import pandas as pd

        data = {} if step_column is None else {step_column: np.arange(self.n, dtype=np.int64)}
        for name in columns:
            values = self.column(name)
            data[name] = values.copy() if isinstance(values, np.ndarray) else values
        return pd.DataFrame(data, index=pd.RangeIndex(self.n))  # the rows even without a column


_LAYOUTS: dict[tuple, tuple] = {}  # Recorder._layout's, oldest first


@kernel
def _record(
    census, insurgent, insurgent_fighters, joined, desertions, killed, wounded, defections, tallies, control,
    passable, n_passable, budget, arrears, salary, pay_ratio, hiring, tension, pairs, day, last_agreement, half,
    half_life, has_insurgents, insurgent_cells, alignment, site_control,
    gather_int, gather_float, gather_site, ints_out, floats_out, sites_out,
):  # fmt: skip  # pragma: no cover - compiled
    # The two vectors `Recorder.__init__` describes, then each block's columns gathered from them.
    # Fighters as `World.fighters_by_faction` counts them (fit ones from the census; the
    # insurgents' their rounded cells), each pair's calm as `mediation.calm` (`compiled_calm`).
    n_f = len(joined)
    n_pairs = len(pairs)
    ints = np.empty(6 * n_f + n_f * n_f + len(tallies), dtype=np.int64)
    for f in range(n_f):
        ints[f] = insurgent_fighters if f == insurgent else census[1 + f, FIT]
        ints[n_f + f] = census[1 + f, WOUNDED]
        ints[2 * n_f + f] = joined[f]
        ints[3 * n_f + f] = desertions[f]
        ints[4 * n_f + f] = killed[f]
        ints[5 * n_f + f] = wounded[f]
        for g in range(n_f):
            ints[6 * n_f + f * n_f + g] = defections[f, g]
    for i in range(len(tallies)):
        ints[6 * n_f + n_f * n_f + i] = tallies[i]
    for i in range(len(gather_int)):
        ints_out[i] = ints[gather_int[i]]
    # Passable cells by controller + 2 (CONTESTED, NONE, then factions), counted without a branch
    # into four partial counts (one per column modulo 4): neighbouring cells mostly share a
    # controller, and each addition to one count would otherwise wait for the one before it.
    partial = np.zeros((4, n_f + 2), dtype=np.int64)
    h_max, w_max = control.shape
    for h in range(h_max):
        for w in range(w_max):
            partial[w & 3, control[h, w] + 2] += passable[h, w]
    held = np.zeros(n_f + 2, dtype=np.int64)
    for j in range(4):
        for k in range(n_f + 2):
            held[k] += partial[j, k]
    n_l = alignment.shape[0]
    floats = np.empty(n_f + 2 + 5 * n_f + n_f * n_f + n_pairs + n_l * n_f + (1 if has_insurgents else 0))
    for k in range(n_f + 2):
        floats[k] = held[k] / n_passable
    k = n_f + 2
    for f in range(n_f):
        floats[k + f] = budget[f]
        floats[k + n_f + f] = arrears[f]
        floats[k + 2 * n_f + f] = salary[f] * pay_ratio[f]
        floats[k + 3 * n_f + f] = salary[f]
        floats[k + 4 * n_f + f] = hiring[f]
    k += 5 * n_f
    for f in range(n_f):
        for g in range(n_f):
            floats[k + f * n_f + g] = tension[f, g]
    k += n_f * n_f
    for i in range(n_pairs):
        floats[k + i] = compiled_calm(day - last_agreement[pairs[i, 0], pairs[i, 1]], half, half_life)
    k += n_pairs
    for t in range(n_l):
        for f in range(n_f):
            floats[k + t * n_f + f] = alignment[t, f]
    k += n_l * n_f
    if has_insurgents:
        floats[k] = insurgent_cells
    for i in range(len(gather_float)):
        floats_out[i] = floats[gather_float[i]]
    for i in range(len(gather_site)):
        sites_out[i] = site_control[gather_site[i]]
