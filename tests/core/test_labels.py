"""The one step-naming convention (lstmviz.core.labels)."""

import pytest

from lstmviz.core.labels import position_label, step_label, step_number


def test_trace_index_149_is_step_150_and_the_cursor_after_150_steps_says_the_same():
    assert step_number(149) == 150
    assert step_label(149) == "step 150"
    assert step_label(149, 562) == "step 150 of 562"
    assert position_label(150, 562) == step_label(149, 562)


def test_before_the_first_step_and_bad_indices():
    assert position_label(0, 562) == "before step 1 of 562"
    with pytest.raises(ValueError, match="-1"):
        step_number(-1)
