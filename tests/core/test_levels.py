"""Colour levels: fixed ranges for bounded quantities, a nice symmetric percentile for c."""

import numpy as np
import pytest

from lstmviz.core.levels import MIN_CELL_LEVEL, gate_levels, nice_ceil


@pytest.mark.parametrize("x, expected", [(0.3, 0.5), (1.0, 1.0), (1.01, 2.0), (2.2, 2.5), (7.0, 10.0),
                                         (0.0011, 0.002), (2500.0, 2500.0), (26.0, 50.0)])
def test_nice_ceil(x, expected):
    assert nice_ceil(x) == pytest.approx(expected)


def test_fixed_levels_of_bounded_quantities():
    assert gate_levels("f") == gate_levels("i") == gate_levels("o") == gate_levels("probs") == (0.0, 1.0)
    assert gate_levels("g") == gate_levels("h") == (-1.0, 1.0)
    assert gate_levels("h", np.full((3, 2), 7.0)) == (-1.0, 1.0)  # data never moves fixed levels


def test_cell_levels_are_a_nice_ninetieth_percentile():
    c = np.concatenate([np.linspace(-3.0, 3.0, 101), [80.0]])  # one saturated counter unit
    # 90 % of the 102 values of |c| are at most about 2.7; the next nice number above is 5
    peak = np.percentile(np.abs(c), 90)
    assert 2.5 < peak < 3.0
    assert gate_levels("c", c) == (-5.0, 5.0)
    assert gate_levels("c", c / 1000.0) == (-0.005, 0.005)
    assert gate_levels("c") == (-MIN_CELL_LEVEL, MIN_CELL_LEVEL)


def test_unknown_name_and_non_finite_cells_are_refused():
    with pytest.raises(ValueError, match="unknown quantity"):
        gate_levels("q")
    assert gate_levels("z") == (0.0, 1.0) and gate_levels("n") == (-1.0, 1.0)  # GRU: their ranges
    with pytest.raises(ValueError, match="non-finite"):
        gate_levels("c", np.array([np.inf, 1.0]))
