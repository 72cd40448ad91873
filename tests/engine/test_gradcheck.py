"""Finite-difference gradient checks (float64) of the model's and the cells' hand-written BPTT.

Every entry of every parameter, the dense inputs and the initial state (h0, c0) is checked on
tiny models; the objective adds ``<dstate, final state>`` to the loss, so the gradient carried in
from a later truncated-BPTT chunk is checked too. Error definition and tolerance: helpers.py.
"""

import itertools

import numpy as np
import pytest

from engine import LSTMCell, RNNCell

from .helpers import TOL, assert_gradients, check_cell_gradients, check_model_gradients, make_problem

CASES = list(itertools.product(("lstm", "rnn"), (1, 2), ("softmax", "linear", "tanh"), ("onehot", "dense")))


@pytest.mark.parametrize("cell,num_layers,head,input_kind", CASES)
def test_model_gradients_every_entry(cell, num_layers, head, input_kind):
    model, inputs, targets, state, dstate = make_problem(cell, num_layers, head, input_kind)
    errors = check_model_gradients(model, inputs, targets, state, dstate)
    expected = set(model.params) | {f"l{k}.{n}0" for k, c in enumerate(model.cells) for n in c.state_names}
    if input_kind == "dense":
        expected.add("inputs")
    assert set(errors) == expected
    assert max(errors.values()) <= TOL


@pytest.mark.parametrize("cell", ("lstm", "rnn"))
def test_model_gradients_with_fixed_dropout_mask(cell):
    model, inputs, targets, state, dstate = make_problem(cell, 2, "softmax", "dense", dropout=0.4, seed=3)
    masked = model.forward(inputs, state, targets, train=True, rng=np.random.default_rng(11)).loss
    assert masked != model.forward(inputs, state, targets).loss  # the mask really drops units
    check_model_gradients(model, inputs, targets, state, dstate, dropout_seed=11)


def test_model_gradients_without_dstate_match_zero_dstate():
    """``backward(result)`` with no dstate equals an explicit all-zero dstate."""
    model, inputs, targets, state, dstate = make_problem("lstm", 2, "linear", "dense", seed=4)
    result = model.forward(inputs, state, targets)
    zeros = [tuple(np.zeros_like(d) for d in layer) for layer in dstate]
    grads_none, dinputs_none, d0_none = model.backward(result)
    grads_zero, dinputs_zero, d0_zero = model.backward(result, dstate=zeros)
    for name in grads_none:
        np.testing.assert_array_equal(grads_none[name], grads_zero[name])
    np.testing.assert_array_equal(dinputs_none, dinputs_zero)
    for a, b in zip(itertools.chain(*d0_none), itertools.chain(*d0_zero)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell_class", (LSTMCell, RNNCell))
@pytest.mark.parametrize("with_dstate", (False, True))
def test_cell_backward_gradients(cell_class, with_dstate):
    D, H, T, B = 3, 4, 5, 2
    rng = np.random.default_rng(7)
    cell = cell_class(D, H)
    params = cell.init_params(rng, np.float64)
    x = rng.standard_normal((B, T, D))  # (B, T, D)
    state = tuple(0.5 * rng.standard_normal((B, H)) for _ in cell.state_names)  # (B, H) each
    dhs = rng.standard_normal((B, T, H))  # (B, T, H)
    if with_dstate:
        dstate = tuple(rng.standard_normal((B, H)) for _ in cell.state_names)  # (B, H) each
    else:
        dstate = tuple(np.zeros((B, H)) for _ in cell.state_names)  # (B, H) each
    errors = check_cell_gradients(cell, params, x, state, dhs, dstate)
    assert set(errors) == {"Wx", "Wh", "b", "x"} | {f"{n}0" for n in cell.state_names}


def test_cell_backward_does_not_mutate_inputs():
    rng = np.random.default_rng(8)
    cell = LSTMCell(3, 4)
    params = cell.init_params(rng, np.float64)
    x = rng.standard_normal((2, 5, 3))  # (B, T, D)
    _, _, cache = cell.forward(params, x)
    dhs = rng.standard_normal((2, 5, 4))  # (B, T, H)
    dstate = (rng.standard_normal((2, 4)), rng.standard_normal((2, 4)))  # (B, H) each
    before = [a.copy() for a in (dhs, *dstate, *params.values(), x)]
    first = cell.backward(params, cache, dhs, dstate)
    second = cell.backward(params, cache, dhs, dstate)
    for a, b in zip(before, (dhs, *dstate, *params.values(), x)):
        np.testing.assert_array_equal(a, b)
    for name in first[0]:
        np.testing.assert_array_equal(first[0][name], second[0][name])
    np.testing.assert_array_equal(first[1], second[1])


def test_checker_flags_a_gradient_off_by_ten_ppm():
    """The checker itself is not vacuous: a 1e-5 relative error (and a tiny absolute one on a
    zero gradient) must fail, the exact gradient must pass."""
    a = np.linspace(-2.0, 2.0, 7)  # (7,)
    unused = np.zeros(3)  # (3,) F does not depend on it

    def f():
        return float(np.sum(np.sin(a)))

    assert_gradients(f, {"a": a, "unused": unused}, {"a": np.cos(a), "unused": np.zeros(3)})
    with pytest.raises(AssertionError, match="'a'"):
        assert_gradients(f, {"a": a}, {"a": np.cos(a) * (1 + 1e-5)})
    with pytest.raises(AssertionError, match="'unused'"):
        assert_gradients(f, {"unused": unused}, {"unused": np.full(3, 1e-9)})
