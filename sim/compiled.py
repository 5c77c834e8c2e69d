"""Compiled kernels of the day's inner loops (numba), bit for bit what numpy and scipy compute.

A process whose work is a chain of many small numpy calls spends most of its time in the
calls themselves (a few microseconds each, about 220 a day before this module); a kernel does
the same arithmetic in one call. Kernels are compiled on first use and kept on disk
(`cache=True`: next to the source in `__pycache__`, or in the user's cache directory when that
is read-only), so only the first run on a machine pays the compile time;
`benchmarks/bench_model.py` reports it separately.

Rules every kernel here follows, so that the regression pin (tests/regression/pinned.json)
stays the same and a seed gives the same run with or without compiled code paths:

- the same operations in the same order as the numpy/scipy code it stands for (floating-point
  addition is not associative): scipy's symmetric correlation adds the outermost taps first;
  a reduction over a faction axis adds faction 0, then 1, ...; `np.sum` over a contiguous row
  of 8 or more values adds pairwise (numpy's `pairwise_sum`), so kernels take such sums from
  numpy rather than loop over them;
- no fast-math (no fused multiply-add, no reassociation): `error_model="numpy"` also keeps
  numpy's behaviour for a division by zero (inf or nan, no exception);
- random numbers are drawn outside, by the model's own generators, and passed in.

Each kernel is tested against the plain numpy/scipy computation on many random inputs and
on models in the middle of a run (tests/test_fast_paths.py).
"""

from __future__ import annotations

from numba import njit


def kernel(function):
    """Compile `function` with numba for the model's step (cached on disk, numpy's float rules)."""
    return njit(cache=True, error_model="numpy", boundscheck=False, nogil=True)(function)
