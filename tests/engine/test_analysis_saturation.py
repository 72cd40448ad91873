"""engine.analysis.saturation: streamed fractions equal a direct count on the whole trace."""

import numpy as np
import pytest

from engine.analysis.saturation import saturation, trace_saturation

from .analysis_helpers import tiny_inputs, tiny_model


def test_fractions_equal_a_direct_count():
    model = tiny_model(hidden=8)
    for name in ("l0.b", "l1.b"):  # push some gates into saturation
        model.params[name] *= 8
    model.params_changed()
    ids = tiny_inputs(300)
    tr = model.trace(ids)
    result = saturation(model, ids, chunk=17)
    assert [(s.layer, s.gate) for s in result] == [(k, g) for k in range(2) for g in "ifo"]
    saturated = 0
    for s in result:
        a = tr.gate(s.gate, s.layer)  # (T, H)
        left = np.array([sum(1 for t in range(300) if a[t, u] < 0.1) for u in range(8)]) / 300
        right = np.array([sum(1 for t in range(300) if a[t, u] > 0.9) for u in range(8)]) / 300
        assert s.steps == 300
        assert np.array_equal(s.left, left) and np.array_equal(s.right, right)
        saturated += int((left > 0.5).sum() + (right > 0.5).sum())
    assert saturated > 0
    for whole, streamed in zip(trace_saturation([tr]), result):
        assert np.array_equal(whole.left, streamed.left) and np.array_equal(whole.right, streamed.right)


def test_rnn_has_no_gates():
    with pytest.raises(ValueError, match="gates"):
        saturation(tiny_model("rnn"), tiny_inputs(10))
    with pytest.raises(ValueError, match="gates"):
        trace_saturation([tiny_model("rnn").trace(tiny_inputs(10))])
    with pytest.raises(ValueError, match="at least one step"):
        trace_saturation([])


def test_a_gru_saturates_through_its_reset_and_update_gates():
    model = tiny_model("gru", hidden=8)
    ids = tiny_inputs(200)
    tr = model.trace(ids)
    result = saturation(model, ids, chunk=31)
    assert [(s.layer, s.gate) for s in result] == [(k, g) for k in range(2) for g in "rz"]
    for s in result:
        a = tr.gate(s.gate, s.layer)  # (T, H)
        left = np.array([sum(1 for t in range(200) if a[t, u] < 0.1) for u in range(8)]) / 200
        right = np.array([sum(1 for t in range(200) if a[t, u] > 0.9) for u in range(8)]) / 200
        assert np.array_equal(s.left, left) and np.array_equal(s.right, right)
