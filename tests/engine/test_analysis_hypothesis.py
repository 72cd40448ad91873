"""engine.analysis.hypothesis: LSTMVis selection and matches on a hand-worked example."""

import numpy as np
import pytest

from engine.analysis.hypothesis import (Match, MatchFinder, Selection, find_matches, find_matches_stream,
                                        select_units, select_units_stream)
from engine.analysis.stream import quantity

from .analysis_helpers import tiny_inputs, tiny_model

# 10 steps x 4 units; "on" means >= 0.3. The span [5, 7) is brushed.
A = np.array([
    [0.0, 0.0, 0.5, 0.0],  # 0
    [0.5, 0.5, 0.5, 0.0],  # 1  all of {0, 1, 2} on
    [0.5, 0.5, 0.0, 0.5],  # 2  {0, 1} + 3
    [0.0, 0.0, 0.0, 0.0],  # 3
    [0.0, 0.0, 0.0, 0.0],  # 4  the lead step: everything off
    [0.5, 0.5, 0.5, 0.0],  # 5  span
    [0.5, 0.5, 0.5, 0.4],  # 6  span (unit 3 on only here)
    [0.0, 0.0, 0.0, 0.0],  # 7
    [0.5, 0.0, 0.5, 0.5],  # 8  {0, 2} + 3
    [0.5, 0.5, 0.5, 0.5],  # 9  all of {0, 1, 2} + 3
])


def test_selection_on_over_the_span_and_off_before():
    assert select_units(A, 5, 7, 0.3, lead=1).units == (0, 1, 2)  # unit 3 is off at step 5
    assert select_units(A, 5, 7, 0.3, lead=3).units == (2,)  # units 0, 1 are on at step 2
    assert select_units(A, 5, 7, 0.3, lead=4).units == ()  # unit 2 is on at step 1
    assert select_units(A, 6, 7, 0.3, lead=0).units == (0, 1, 2, 3)
    assert select_units(A, 6, 7, 0.45, lead=0).units == (0, 1, 2)  # 0.4 < 0.45


def test_matches_ranked_by_overlap_then_extra():
    sel = select_units(A, 5, 7, 0.3, lead=1)
    # all three on: steps 1 and 9 (5, 6 are the selection itself); step 9 has unit 3 extra
    assert find_matches(A, sel) == [Match(1, 2, 3, 0), Match(9, 10, 3, 1)]
    # at least 2 of 3 on: runs [1, 3) (on throughout: {0, 1}) and [8, 10) (on throughout: {0, 2, 3})
    assert find_matches(A, sel, min_overlap=2 / 3) == [Match(1, 3, 2, 0), Match(8, 10, 2, 1)]


def test_equal_overlap_and_extra_ranked_by_length_then_start():
    a = np.array([[1.0], [0], [1], [1], [0], [1], [1], [1], [0], [1], [0], [1]])  # (12, 1)
    sel = Selection(0, 1, 0.3, 0, (0,))
    assert [(m.start, m.end) for m in find_matches(a, sel)] == [(5, 8), (2, 4), (9, 10), (11, 12)]
    assert [(m.start, m.end) for m in find_matches(a, sel, min_length=2)] == [(5, 8), (2, 4)]
    assert [(m.start, m.end) for m in find_matches(a, sel, limit=2)] == [(5, 8), (2, 4)]


def test_streaming_matches_equal_the_one_shot_search():
    rng = np.random.default_rng(3)
    a = rng.random((400, 8))  # (T, H)
    sel = Selection(100, 103, 0.3, 0, (1, 4, 6))
    expected = find_matches(a, sel, min_overlap=0.6, limit=None)
    assert len(expected) > 20
    for splits in ([1, 2, 3], [37, 38, 200], list(range(5, 400, 11))):
        finder = MatchFinder(sel, 8, min_overlap=0.6, limit=None)
        for part in np.split(a, splits):
            finder.feed(part)
        assert finder.matches() == expected


def test_empty_selection_has_no_matches():
    assert find_matches(A, Selection(5, 7, 0.3, 4, ())) == []


def test_model_streaming_versions_equal_the_array_versions():
    model, ids = tiny_model(), tiny_inputs(120)
    a = quantity(model.trace(ids), "tanh_c", 1)  # (T, H)
    start = next(s for s in range(2, 100) if select_units(a, s, s + 3, 0.0, lead=2).units)  # a non-empty selection
    sel = select_units(a, start, start + 3, 0.0, lead=2)
    assert select_units_stream(model, ids, start, start + 3, layer=1, name="tanh_c", threshold=0.0, lead=2,
                               chunk=9) == sel
    expected = find_matches(a, sel, min_overlap=0.5)
    assert expected and find_matches_stream(model, ids, sel, layer=1, name="tanh_c", min_overlap=0.5, chunk=9) == expected


@pytest.mark.parametrize("kwargs", [dict(threshold=float("nan")), dict(lead=-1), dict(start=7, end=7), dict(end=11)])
def test_bad_selection_arguments_raise(kwargs):
    args = dict(start=5, end=7, threshold=0.3, lead=1) | kwargs
    with pytest.raises(ValueError):
        select_units(A, **args)


@pytest.mark.parametrize("kwargs", [dict(min_overlap=0), dict(min_overlap=1.5), dict(min_length=0), dict(limit=0)])
def test_bad_match_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        find_matches(A, Selection(5, 7, 0.3, 1, (0,)), **kwargs)
