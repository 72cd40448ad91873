"""engine.gradflow: per-step state gradients of the final step's loss, checked by finite
differences, and the vanishing-gradient story (RNN vs LSTM)."""

import numpy as np
import pytest

from engine.gradflow import gradient_flow
from engine.model import ModelConfig, SequenceModel


def make_model(cell, layers, head, input_kind="dense", D=2, H=3, O=2, seed=0, dtype="float64", forget_bias=1.0):
    config = ModelConfig(input_size=D, output_size=O, cell=cell, hidden_size=H, num_layers=layers,
                         input_kind=input_kind, head=head, dtype=dtype, forget_bias=forget_bias)
    return SequenceModel(config, rng=np.random.default_rng(seed))


def make_data(model, T, seed=1):
    rng = np.random.default_rng(seed)
    c = model.config
    if c.input_kind == "onehot":
        inputs = rng.integers(0, c.input_size, T)  # (T,)
    else:
        inputs = rng.normal(size=(T, c.input_size))  # (T, D)
    targets = rng.integers(0, c.output_size, T) if c.head == "softmax" else rng.uniform(-0.9, 0.9, (T, c.output_size))
    return inputs, targets


def final_step_loss(model, inputs, targets, bump=None):
    """Reference Loss_T by stepping each cell with ``cell.step``; ``bump = (layer, t, "h"|"c",
    unit, eps)`` adds eps to that state right after it is computed (a bumped c_t also changes
    h_t = o_t tanh(c_t), so dLoss/dc_t is the total derivative, as in BPTT)."""
    c = model.config
    state = [tuple(s.astype(np.float64) for s in layer) for layer in model.zero_state(1)]
    for t in range(len(inputs)):
        x = np.eye(c.input_size)[inputs[t]][None] if c.input_kind == "onehot" else inputs[t][None]  # (1, D)
        for k, cell in enumerate(model.cells):
            new_state, record = cell.step(model.layer_params(k), x, state[k])
            if bump is not None and bump[:2] == (k, t):
                _, _, which, unit, eps = bump
                if which == "h":
                    h = new_state[0].copy()
                    h[0, unit] += eps
                    new_state = (h,) + tuple(new_state[1:])
                else:
                    cc = new_state[1].copy()
                    cc[0, unit] += eps
                    new_state = (record["o"] * np.tanh(cc), cc)
            state[k] = new_state
            x = new_state[0]
    scores = x[0] @ model.params["head.W"] + model.params["head.b"]  # (O,)
    if c.head == "softmax":
        top = scores.max()
        return top + np.log(np.exp(scores - top).sum()) - scores[targets[-1]]
    out = np.tanh(scores) if c.head == "tanh" else scores  # (O,)
    return np.mean((out - targets[-1]) ** 2)


@pytest.mark.parametrize("cell, layers, head, input_kind", [
    ("lstm", 1, "linear", "dense"), ("lstm", 2, "softmax", "onehot"), ("lstm", 2, "tanh", "dense"),
    ("rnn", 1, "softmax", "onehot"), ("rnn", 2, "linear", "dense"),
])
def test_state_gradients_match_finite_differences(cell, layers, head, input_kind):
    """Central differences, eps 1e-6, float64: max |analytic - numeric| <= 1e-7 * (1 + max |analytic|)."""
    model = make_model(cell, layers, head, input_kind, D=3 if input_kind == "onehot" else 2, O=3)
    inputs, targets = make_data(model, T=5)
    flow = gradient_flow(model, inputs, targets)
    assert flow.loss == pytest.approx(final_step_loss(model, inputs, targets), abs=1e-12)
    eps = 1e-6
    kinds = ("h", "c") if cell == "lstm" else ("h",)
    L, T, H = flow.dh.shape
    assert (L, T, H) == (layers, 5, 3)
    for which in kinds:
        analytic = flow.dh if which == "h" else flow.dc
        numeric = np.empty_like(analytic)
        for k in range(L):
            for t in range(T):
                for u in range(H):
                    up = final_step_loss(model, inputs, targets, (k, t, which, u, eps))
                    down = final_step_loss(model, inputs, targets, (k, t, which, u, -eps))
                    numeric[k, t, u] = (up - down) / (2 * eps)
        assert np.max(np.abs(analytic - numeric)) <= 1e-7 * (1 + np.max(np.abs(analytic)))
        assert np.max(np.abs(analytic)) > 1e-3  # a real signal, not all zeros
    norms = flow.h_norms
    assert norms.shape == (L, T) and np.allclose(norms, np.sqrt((flow.dh ** 2).sum(axis=2)))
    assert (flow.c_norms is None) == (cell == "rnn")


def test_single_step_sequence_and_float32():
    """T = 1 works; a float32 model gives the float64 model's gradients (same weights) to 1e-5."""
    model = make_model("lstm", 2, "linear", dtype="float32")
    inputs, targets = make_data(model, T=1)
    flow = gradient_flow(model, inputs, targets)
    assert flow.dh.shape == (2, 1, 3) and flow.dh.dtype == np.float64
    ref = SequenceModel(ModelConfig(**{**model.config.to_dict(), "dtype": "float64"}), params=model.params)
    ref_flow = gradient_flow(ref, inputs, targets)
    assert np.allclose(flow.dh, ref_flow.dh, rtol=0, atol=1e-5)
    assert np.allclose(flow.dc, ref_flow.dc, rtol=0, atol=1e-5)
    assert flow.h_norms[1, 0] > 0


def test_bad_inputs_raise_value_error():
    model = make_model("lstm", 1, "linear")
    inputs, targets = make_data(model, T=4)
    with pytest.raises(ValueError, match="targets"):
        gradient_flow(model, inputs, targets[:, :1])
    with pytest.raises(ValueError, match="at least one"):
        gradient_flow(model, inputs[:0], targets[:0])


def vanishing_ratios(cell, seeds, T=50, H=32, D=8):
    """Per seed: ||dLoss_T/dh_0|| / ||dLoss_T/dh_{T-1}|| for a fresh model on a random sequence."""
    ratios = []
    for seed in seeds:
        model = make_model(cell, 1, "linear", D=D, H=H, O=1, seed=seed, forget_bias=1.0)
        inputs, targets = make_data(model, T, seed=100 + seed)
        norms = gradient_flow(model, inputs, targets).h_norms[0]  # (T,)
        ratios.append(norms[0] / norms[-1])
    return np.array(ratios)


def test_vanishing_gradient_rnn_versus_lstm():
    """Same size (H=32, D=8), same random sequences (T=50), PyTorch's default init, LSTM forget
    bias +1. Over 5 seeds the RNN's gradient at t=0 is below 1e-9 of its value at T-1 (median;
    measured 3.9e-14), and the LSTM's median ratio (measured 2.9e-5) is at least 1e4 times the RNN's."""
    seeds = range(5)
    rnn = vanishing_ratios("rnn", seeds)
    lstm = vanishing_ratios("lstm", seeds)
    print(f"\nratio ||dL_T/dh_0|| / ||dL_T/dh_T-1||  rnn median {np.median(rnn):.3g} {rnn}  "
          f"lstm median {np.median(lstm):.3g} {lstm}")
    assert np.median(rnn) < 1e-9
    assert np.median(lstm) > 1e4 * np.median(rnn)
