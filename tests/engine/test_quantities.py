"""The table of gates and states agrees with the cells' equations and the display order."""

import numpy as np
import pytest

from engine.cells import GATES
from engine.model import ModelConfig, SequenceModel
from engine.quantities import QUANTITIES, display_order, quantity


def test_every_recorded_quantity_is_in_the_table_in_display_order():
    for cell in ("lstm", "gru", "rnn"):
        model = SequenceModel(ModelConfig(4, 4, cell=cell, hidden_size=3), rng=np.random.default_rng(0))
        recorded = set(model.trace(np.array([0, 1, 2])).layers[0]) - {"pre"}
        assert set(display_order(cell)) == recorded
    assert display_order("lstm") == ("f", "i", "o", "g", "c", "h") and display_order("rnn") == ("h",)
    assert display_order("gru") == ("r", "z", "n", "h")
    with pytest.raises(ValueError, match="unknown cell"):
        display_order("lstm2")


def test_ranges_hold_for_a_traced_lstm():
    """Every bounded quantity stays inside its range on a model with large weights (saturation)."""
    model = SequenceModel(ModelConfig(5, 5, hidden_size=8), rng=np.random.default_rng(1))
    for name in model.params:
        model.params[name] *= 6.0
    model.params_changed()
    trace = model.trace(np.random.default_rng(2).integers(0, 5, size=300))
    for name in (*GATES, "c", "h"):
        values = trace.gate(name, 0)  # (T, H)
        bounds = quantity(name).range
        if bounds is None:
            assert np.abs(values).max() > 1.0  # c is unbounded: it leaves (-1, 1) here
        else:
            assert bounds[0] <= values.min() and values.max() <= bounds[1], name
    assert QUANTITIES["probs"].range == (0.0, 1.0)


def test_activations_colormaps_and_labels():
    assert {n: quantity(n).activation for n in GATES} == {"i": "sigmoid", "f": "sigmoid", "g": "tanh",
                                                          "o": "sigmoid"}
    assert {n for n, q in QUANTITIES.items() if q.colormap == "sequential"} == {"i", "f", "o", "r", "z", "probs"}
    assert {n: quantity(n).activation for n in ("r", "z", "n")} == {"r": "sigmoid", "z": "sigmoid", "n": "tanh"}
    assert quantity("f").label == "forget gate f" and quantity("probs").label == "probabilities"
    with pytest.raises(ValueError, match="unknown quantity"):
        quantity("x")


def test_ranges_hold_for_a_traced_gru():
    """r, z in (0, 1), n and h in (-1, 1) on a saturated GRU; the table lists exactly what it records."""
    model = SequenceModel(ModelConfig(5, 5, cell="gru", hidden_size=8), rng=np.random.default_rng(1))
    for name in model.params:
        model.params[name] *= 6.0
    model.params_changed()
    trace = model.trace(np.random.default_rng(2).integers(0, 5, size=300))
    for name in display_order("gru"):
        values = trace.gate(name, 0)  # (T, H)
        lo, hi = quantity(name).range
        assert lo <= values.min() and values.max() <= hi, name
        assert values.max() - values.min() > 0.9 * (hi - lo), name  # saturated: the range is used
