"""Every seed the project derives, in one place.

All randomness comes from numpy `SeedSequence`s rooted at a run's integer seed, so a run's
numbers depend only on (scenario, seed), never on which worker or executor ran it.

- `named_streams(seed, names)`: a model's independent Generators, one per mechanism,
  keyed by name (`SeedSequence(seed, spawn_key=(crc32(name),))`), so adding draws to one
  mechanism does not shift the others.
- `replicate_seeds(root, n)`: seeds of n replicates (common random numbers across the
  points of a design: replicate k has the same seed at every point).
- `run_seed(root, point, replicate)`: an independent seed for every (point, replicate),
  e.g. the draws of a calibration, where common numbers would correlate the draws.
- `design_rng(root)`: the Generator that places a sweep's or calibration's design points.
- `stage_root(root, name)`: the root seed of a named later stage of a command (e.g. the
  posterior predictive runs of a calibration), so its runs share no seed with the first stage.

A sweep chooses between the last two with `sweep.seeds: common | independent`
(`sim.sweep.design_with_replicates`); a calibration uses independent seeds.
"""

from __future__ import annotations

import zlib

import numpy as np


def _to_int(sequence: np.random.SeedSequence) -> int:
    """A non-negative 63-bit integer seed drawn from a SeedSequence (fits int64 columns)."""
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def replicate_seeds(root_seed: int, n_replicates: int) -> list[int]:
    """Seeds for replicates 0..n-1.

    One run uses the root seed itself, so `--seed N` means "seed N". Several replicates get
    seeds derived from the root with SeedSequence: replicate k's seed depends only on
    (root_seed, k), so adding replicates never changes the earlier ones, and the streams of
    different replicates are independent. Any replicate re-runs alone with its own seed.
    """
    if n_replicates == 1:
        return [int(root_seed)]
    return [_to_int(child) for child in np.random.SeedSequence(root_seed).spawn(n_replicates)]


def run_seed(root_seed: int, point: int, replicate: int) -> int:
    """An independent seed for one run of a design: depends only on (root, point, replicate)."""
    return _to_int(np.random.SeedSequence(int(root_seed), spawn_key=(int(point), int(replicate))))


def design_rng(root_seed: int) -> np.random.Generator:
    """The Generator that draws a design's points (random, Latin hypercube, Sobol scrambling).

    It is `default_rng(root_seed)`, separate in use from the runs' seeds: the same design can
    be run with other run seeds and vice versa.
    """
    return np.random.default_rng(int(root_seed))


def stage_root(root_seed: int, name: str) -> int:
    """The root seed of a named stage that follows a first one rooted at `root_seed`.

    `SeedSequence(root_seed, spawn_key=(crc32(name),))` as an integer: it depends only on
    (root, name), and its one-element spawn key can never equal the two-element keys of
    `run_seed`, so a stage's runs never repeat a seed of the first stage's runs.
    """
    return _to_int(np.random.SeedSequence(int(root_seed), spawn_key=(zlib.crc32(name.encode()),)))


def named_stream(seed: int, name: str) -> np.random.Generator:
    """The Generator of one named mechanism stream of the run with this seed."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(name.encode()),)))


class RandomStreams:
    """Independent numpy Generators keyed by name, all derived from one seed."""

    def __init__(self, seed: int, names: tuple[str, ...]):
        self.seed = int(seed)
        self._streams = {name: named_stream(self.seed, name) for name in names}

    def __iter__(self):
        """The stream names, in the order they were made."""
        return iter(self._streams)

    def __len__(self) -> int:
        """Number of streams."""
        return len(self._streams)

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._streams[name]
