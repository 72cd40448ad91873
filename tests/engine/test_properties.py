"""Property tests over random small shapes, seeds and weight scales (hypothesis).

Bounds asserted, in both float32 and float64, including fully saturated gates (weights x100):
``i, f, o in [0, 1]`` and ``g in [-1, 1]`` (closed: tanh rounds to +-1 when saturated), and
``|h| <= |tanh(c)| <= 1`` (h = o tanh(c) with o <= 1). Strictly ``|h| < 1`` holds in float64 at
the initial weight scale, where |c| stays far below the ~19.1 at which tanh(c) rounds to 1.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import check_model_gradients, make_problem

SMALL = st.integers(1, 4)


@st.composite
def problems(draw, dtype=None):
    cell = draw(st.sampled_from(("lstm", "rnn")))
    num_layers = draw(st.integers(1, 2))
    head = draw(st.sampled_from(("softmax", "linear", "tanh")))
    input_kind = draw(st.sampled_from(("onehot", "dense")))
    B, T, D, H = draw(SMALL), draw(SMALL), draw(SMALL), draw(SMALL)
    dtype = dtype or draw(st.sampled_from(("float32", "float64")))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_problem(cell, num_layers, head, input_kind, D=D, H=H, T=T, B=B, O=D, dtype=dtype, seed=seed)


@settings(max_examples=25, deadline=None)
@given(problems(), st.sampled_from((1.0, 100.0)))
def test_gates_and_states_stay_in_range(problem, scale):
    model, inputs, _, state, _ = problem
    model.set_params({k: v * scale for k, v in model.params.items()})
    s = state
    for t in range(inputs.shape[1]):
        _, s, records = model.step(inputs[:, t], s)
        for record in records:
            h = record["h"]  # (B, H)
            if "i" in record:
                for name in ("i", "f", "o"):
                    assert np.all((record[name] >= 0) & (record[name] <= 1)), name
                assert np.all(np.abs(record["g"]) <= 1)
                assert np.all(np.abs(h) <= np.abs(np.tanh(record["c"])))
            assert np.all(np.abs(h) <= 1)
            if scale == 1.0 and h.dtype == np.float64:
                assert np.all(np.abs(h) < 1)


@settings(max_examples=25, deadline=None)
@given(problems(dtype="float64"))
def test_stepping_equals_the_sequence(problem):
    model, inputs, _, state, _ = problem
    result = model.forward(inputs, state)
    s = state
    for t in range(inputs.shape[1]):
        output, s, _ = model.step(inputs[:, t], s)
        np.testing.assert_allclose(output, result.outputs[:, t], rtol=0, atol=1e-12)
    for layer, expected in zip(s, result.state):
        for a, b in zip(layer, expected):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(problems(dtype="float64"), st.integers(0, 2**32 - 1))
def test_gradcheck_on_a_random_subset_of_entries(problem, seed):
    model, inputs, targets, state, dstate = problem
    check_model_gradients(model, inputs, targets, state, dstate, subset=4, rng=np.random.default_rng(seed))
