"""Colour levels of the recorded quantities (DESIGN.md §3; the table is ``engine.quantities``).

Bounded quantities get their range as fixed levels: i, f, o and probabilities (0, 1); g and h
(-1, 1), so zero is the diverging colormap's neutral middle. The raw cell state c is
unbounded: symmetric levels taken from the whole sequence (``gate_levels`` with data), so they
stay put while stepping.
"""

from __future__ import annotations

import math

import numpy as np

from engine.quantities import quantity

MIN_CELL_LEVEL = 1e-6  # smallest half-range of the cell-state levels
CELL_LEVEL_PERCENTILE = 90.0  # |c| percentile that sets the cell-state half-range (see gate_levels)


def nice_ceil(x: float, mantissas: tuple = (1.0, 2.0, 2.5, 5.0)) -> float:
    """Smallest number of the form m x 10^k, m one of ``mantissas`` (in [1, 10), ascending),
    that is >= ``x`` (``x`` > 0); by default m is 1, 2, 2.5 or 5."""
    exponent = math.floor(math.log10(x))
    for mantissa in (*mantissas, 10.0):
        value = mantissa * 10.0**exponent
        if value >= x * (1 - 1e-12):  # log10 of a power of ten may round below it
            return value
    return 10.0 ** (exponent + 1)


def gate_levels(name: str, data: np.ndarray | None = None) -> tuple:
    """Colour levels ``(lo, hi)`` for quantity ``name``.

    Bounded quantities: their range. Unbounded ones (c): symmetric ``(-m, m)`` with ``m`` the
    ``CELL_LEVEL_PERCENTILE``-th percentile of |c| over ``data`` (pass the whole sequence's trace
    so the levels stay put while stepping), at least ``MIN_CELL_LEVEL``, rounded up to a nice
    number. A percentile rather than the maximum: a few saturated "counter" units reach |c| of
    50 or more and would wash every other unit out to white; the colour bar's ends then mean
    "this much or more". Raises ValueError for an unknown name or non-finite data.
    """
    fixed = quantity(name).range
    if fixed is not None:
        return fixed
    with np.errstate(invalid="ignore"):  # inf - inf while interpolating: refused just below
        peak = float(np.percentile(np.abs(data), CELL_LEVEL_PERCENTILE)) if data is not None and np.size(data) else 0.0
    if not np.isfinite(peak):
        raise ValueError(f"{name} holds non-finite values")
    m = nice_ceil(max(peak, MIN_CELL_LEVEL))
    return (-m, m)
