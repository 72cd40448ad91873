"""engine.analysis.strip: per-character loss and top-k against the trace's probabilities."""

import numpy as np
import pytest

from engine.analysis.strip import strip

from .analysis_helpers import tiny_inputs, tiny_model


def test_loss_and_top_k_equal_the_trace_probabilities():
    model, ids = tiny_model(), tiny_inputs(60)
    probs = model.trace(ids).outputs  # (T, V) float64
    s = strip(model, ids, k=3, chunk=11)
    expected = -np.log(probs[np.arange(59), ids[1:]])  # (T-1,)
    np.testing.assert_allclose(s.loss[:59], expected, rtol=1e-12)
    assert np.isnan(s.loss[59])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :3]  # (T, 3)
    assert np.array_equal(s.top_ids, order)
    np.testing.assert_allclose(s.top_probs, np.take_along_axis(probs, order, axis=1), rtol=1e-12)
    assert np.all(np.diff(s.top_probs, axis=1) <= 0)


def test_a_range_equals_the_slice_of_the_whole():
    model, ids = tiny_model(), tiny_inputs(60)
    whole = strip(model, ids, k=2)
    part = strip(model, ids, 17, 45, k=2, chunk=5)
    assert part.start == 17 and part.loss.shape == (28,) and part.top_ids.shape == (28, 2)
    np.testing.assert_allclose(part.loss, whole.loss[17:45], rtol=1e-13)
    assert np.array_equal(part.top_ids, whole.top_ids[17:45])


def test_a_loss_too_small_for_float32_stays_finite():
    model = tiny_model(dtype="float32", vocab=3)
    model.params["head.W"][:, 0] = 0
    model.params["head.b"][:] = [0, 200, 0]  # p(0) ~ exp(-200): 0 in float32
    ids = np.array([1, 0, 1])
    s = strip(model, ids, k=0)
    assert s.top_ids.shape == (3, 0)
    assert np.isfinite(s.loss[0]) and s.loss[0] > 150


@pytest.mark.parametrize("kwargs", [dict(k=-1), dict(k=8), dict(start=5, end=5)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        strip(tiny_model(), tiny_inputs(10), **kwargs)
