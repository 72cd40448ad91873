"""engine.model: stepping vs the sequence and the trace, chunked BPTT, init, dropout, bad input."""

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel, load_checkpoint

from .helpers import make_problem

ROOT = Path(__file__).resolve().parents[2]

STACKS = list(itertools.product(("lstm", "rnn"), (1, 2), ("onehot", "dense")))


def config(**changes):
    base = dict(input_size=3, output_size=3, hidden_size=4)
    return ModelConfig(**{**base, **changes})


# --- stepping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,num_layers,input_kind", STACKS)
def test_step_equals_forward_and_trace(cell, num_layers, input_kind):
    """``step`` one timestep at a time == ``forward`` (outputs, states) == ``trace`` (every
    recorded gate, state and pre-activation), to 1e-12 in float64."""
    model, inputs, _, state, _ = make_problem(cell, num_layers, "softmax", input_kind, T=7, B=1, seed=1)
    result = model.forward(inputs, state)
    trace = model.trace(inputs[0], state)
    np.testing.assert_allclose(trace.outputs, result.outputs[0], rtol=0, atol=1e-12)
    s = state
    for t in range(inputs.shape[1]):
        output, s, records = model.step(inputs[:, t], s)
        np.testing.assert_allclose(output, result.outputs[:, t], rtol=0, atol=1e-12)
        for k, record in enumerate(records):
            assert set(record) == set(trace.names) | {"pre"}
            for name, value in record.items():
                np.testing.assert_allclose(value[0], trace.gate(name, k)[t], rtol=0, atol=1e-12,
                                           err_msg=f"layer {k} {name} step {t}")
    for k in range(num_layers):
        for a, b in zip(s[k], result.state[k]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_step_sees_in_place_parameter_edits_after_params_changed():
    model, inputs, _, _, _ = make_problem("lstm", 1, "softmax", "onehot", B=1)
    before, _, _ = model.step(inputs[:, 0])
    model.params["head.b"][0] += 1.0  # (a shift of every logit would not change softmax)
    model.params["l0.Wx"] *= 2.0
    model.params_changed()
    after, _, _ = model.step(inputs[:, 0])
    expected = model.forward(inputs[:, :1]).outputs[:, 0]
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell,num_layers,input_kind", STACKS)
def test_chunked_forward_and_backward_equal_the_full_sequence(cell, num_layers, input_kind):
    """Forward over two chunks carrying the state == one forward; backward over chunk 2, then
    chunk 1 with chunk 2's dstate0 carried in == one backward (sum of the chunks' gradients)."""
    T, split = 8, 3
    model, inputs, _, state, dstate = make_problem(cell, num_layers, "linear", input_kind, T=T, seed=2)
    dout = np.random.default_rng(3).standard_normal((2, T, 3))  # (B, T, O)
    full = model.forward(inputs, state)
    first = model.forward(inputs[:, :split], state)
    second = model.forward(inputs[:, split:], first.state)
    np.testing.assert_allclose(np.concatenate([first.outputs, second.outputs], axis=1), full.outputs,
                               rtol=0, atol=1e-12)
    for a, b in zip(itertools.chain(*second.state), itertools.chain(*full.state)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)

    grads, dinputs, dstate0 = model.backward(full, dstate=dstate, doutputs=dout)
    grads2, dinputs2, carry = model.backward(second, dstate=dstate, doutputs=dout[:, split:])
    grads1, dinputs1, dstate0_chunked = model.backward(first, dstate=carry, doutputs=dout[:, :split])
    assert set(grads) == set(model.params)
    for name in grads:
        np.testing.assert_allclose(grads1[name] + grads2[name], grads[name], rtol=0, atol=1e-12, err_msg=name)
    if input_kind == "dense":
        np.testing.assert_allclose(np.concatenate([dinputs1, dinputs2], axis=1), dinputs, rtol=0, atol=1e-12)
    for a, b in zip(itertools.chain(*dstate0_chunked), itertools.chain(*dstate0)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_loss_and_grads_equals_forward_backward():
    model, inputs, targets, state, _ = make_problem("lstm", 2, "softmax", "onehot", seed=4)
    loss, grads, final = model.loss_and_grads(inputs, targets, state)
    result = model.forward(inputs, state, targets)
    expected, _, _ = model.backward(result)
    assert loss == result.loss
    for name in expected:
        np.testing.assert_array_equal(grads[name], expected[name])
    for a, b in zip(itertools.chain(*final), itertools.chain(*result.state)):
        np.testing.assert_array_equal(a, b)


def test_softmax_outputs_are_distributions_and_loss_is_mean_nll():
    model, inputs, targets, _, _ = make_problem("lstm", 1, "softmax", "onehot", O=5, T=4, seed=5)
    result = model.forward(inputs, None, targets)
    np.testing.assert_allclose(result.outputs.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    picked = np.take_along_axis(result.outputs, targets[..., None], axis=-1)  # (B, T, 1)
    assert result.loss == pytest.approx(float(-np.log(picked).mean()), rel=1e-12)


# --- initialisation ------------------------------------------------------------------------------


def test_model_init_ranges_dtype_and_reproducibility():
    cfg = config(hidden_size=16, num_layers=2, output_size=7, forget_bias=1.0)
    model = SequenceModel(cfg, rng=np.random.default_rng(0))
    k = 1.0 / np.sqrt(16)
    assert {p.dtype for p in model.params.values()} == {np.dtype(np.float32)}
    for name, p in model.params.items():
        if name.endswith(".b") and name.startswith("l"):
            f = p[16:32]  # (H,) forget block, shifted by forget_bias 1.0
            assert np.all(np.abs(f - 1.0) <= k + 1e-6), name
            p = np.r_[p[:16], p[32:]]
        assert np.all(np.abs(p) <= k), name
    again = SequenceModel(cfg, rng=np.random.default_rng(0))
    other = SequenceModel(cfg, rng=np.random.default_rng(1))
    no_shift = SequenceModel(config(hidden_size=16, num_layers=2, output_size=7, forget_bias=0.0),
                             rng=np.random.default_rng(0))
    double = SequenceModel(config(hidden_size=16, num_layers=2, output_size=7, dtype="float64", forget_bias=1.0),
                           rng=np.random.default_rng(0))
    for name in model.params:
        np.testing.assert_array_equal(model.params[name], again.params[name])
        assert not np.array_equal(model.params[name], other.params[name])
        assert double.params[name].dtype == np.float64
        np.testing.assert_allclose(double.params[name], model.params[name], rtol=0, atol=1e-6)
    for layer in ("l0.b", "l1.b"):
        np.testing.assert_allclose(model.params[layer][16:32] - no_shift.params[layer][16:32], 1.0, atol=1e-6)
        assert np.all(np.abs(no_shift.params[layer]) <= k)


def test_compute_dtype_follows_config():
    for dtype in ("float32", "float64"):
        model = SequenceModel(config(dtype=dtype, input_kind="dense", head="linear"), rng=np.random.default_rng(0))
        out = model.forward(np.zeros((1, 2, 3), np.float64))
        assert out.outputs.dtype == np.dtype(dtype)
        assert all(s.dtype == np.dtype(dtype) for s in out.state[0])


# --- dropout -------------------------------------------------------------------------------------


def dropout_model(p=0.5, H=200, seed=0):
    cfg = config(hidden_size=H, num_layers=2, dropout=p, dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(seed))


def test_dropout_is_inverted_and_preserves_the_expected_activation():
    """Layer 1's input is layer 0's output times a mask of 0 or 1/(1-p), zero with probability p."""
    p = 0.3
    model = dropout_model(p)
    inputs = np.random.default_rng(1).integers(0, 3, (4, 50))  # (B, T)
    result = model.forward(inputs, train=True, rng=np.random.default_rng(2))
    layer0 = model.forward(inputs).cache["caches"][0]["hs"][1:]  # (T, B, H) no dropout at layer 0
    layer1_in = result.cache["caches"][1]["input"]  # (T, B, H)
    ratio = layer1_in / layer0  # (T, B, H)
    dropped = ratio == 0.0
    np.testing.assert_allclose(ratio[~dropped], 1.0 / (1.0 - p), rtol=1e-12)
    n = ratio.size  # 40000 draws: the dropped fraction is within 5 standard deviations of p
    assert abs(dropped.mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    # inverted: the masked activation has the same mean as the unmasked one
    assert abs(ratio.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)


def test_dropout_only_in_training_and_reproducible():
    model = dropout_model(0.5, H=8)
    plain = SequenceModel(config(hidden_size=8, num_layers=2, dtype="float64"), params=model.params)
    inputs = np.array([[0, 1, 2, 1, 0]])  # (B, T)
    eval_out = model.forward(inputs).outputs
    np.testing.assert_array_equal(eval_out, plain.forward(inputs).outputs)
    np.testing.assert_array_equal(model.forward(inputs, train=False, rng=np.random.default_rng(0)).outputs, eval_out)
    a = model.forward(inputs, train=True, rng=np.random.default_rng(7)).outputs
    b = model.forward(inputs, train=True, rng=np.random.default_rng(7)).outputs
    c = model.forward(inputs, train=True, rng=np.random.default_rng(8)).outputs
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, eval_out)
    assert not np.allclose(a, c)
    # training without dropout needs no rng and equals evaluation
    np.testing.assert_array_equal(plain.forward(inputs, train=True).outputs, eval_out)


def test_dropout_needs_an_rng_when_training():
    model = dropout_model(0.5, H=4)
    with pytest.raises(ValueError, match="dropout while training needs an np.random.Generator"):
        model.forward(np.array([[0, 1]]), train=True)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("changes,match", [
    (dict(hidden_size=0), "hidden_size must be a positive integer, got 0"),
    (dict(hidden_size=-2), "hidden_size must be a positive integer, got -2"),
    (dict(hidden_size=2.5), "hidden_size must be a positive integer"),
    (dict(num_layers=0), "num_layers must be a positive integer"),
    (dict(input_size=True), "input_size must be a positive integer"),
    (dict(cell="mgu"), r"unknown cell 'mgu'; expected one of \('lstm', 'rnn', 'gru'\)"),
    (dict(head="sigmoid"), "unknown head 'sigmoid'"),
    (dict(input_kind="sparse"), "unknown input_kind"),
    (dict(dtype="float16"), "unknown dtype 'float16'"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
    (dict(dropout=float("nan")), r"dropout must be in \[0, 1\)"),
    (dict(dropout="0.5"), "dropout must be a real number"),
    (dict(forget_bias=float("inf")), "forget_bias must be finite"),
    (dict(forget_bias="one"), "forget_bias must be a real number"),
])
def test_bad_config_raises(changes, match):
    with pytest.raises(ValueError, match=match):
        config(**changes)


def test_config_saved_by_earlier_versions_loads_unchanged():
    saved = {"input_size": 51, "output_size": 51, "cell": "lstm", "hidden_size": 64, "num_layers": 1,
             "input_kind": "onehot", "head": "softmax", "dropout": 0.0, "forget_bias": 1.0,
             "dtype": "float32"}  # assets/demo.npz's model config
    assert ModelConfig.from_dict(saved).to_dict() == {**saved, "embed_size": 0, "init": "default", "init_range": 0.08}  # fields added since: defaults
    assert load_checkpoint(ROOT / "assets" / "demo.npz").model.config == ModelConfig.from_dict(saved)


def test_bad_params_raise():
    good = SequenceModel(config(), rng=np.random.default_rng(0)).params
    with pytest.raises(ValueError, match="pass params or an np.random.Generator"):
        SequenceModel(config())
    with pytest.raises(ValueError, match=r"missing \['head.b'\]"):
        SequenceModel(config(), params={k: v for k, v in good.items() if k != "head.b"})
    with pytest.raises(ValueError, match=r"unexpected \['l1.b'\]"):
        SequenceModel(config(), params={**good, "l1.b": good["l0.b"]})
    with pytest.raises(ValueError, match=r"parameter l0.Wh must have shape \(4, 16\), got \(16, 4\)"):
        SequenceModel(config(), params={**good, "l0.Wh": good["l0.Wh"].T})
    for bad in (np.nan, np.inf):
        broken = {**good, "head.W": good["head.W"].copy()}
        broken["head.W"][0, 0] = bad
        with pytest.raises(ValueError, match="parameter head.W contains NaN or infinity"):
            SequenceModel(config(), params=broken)
        with pytest.raises(ValueError, match="parameter head.W contains NaN or infinity"):
            SequenceModel(config(), rng=np.random.default_rng(0)).set_params(broken)


def test_bad_token_inputs_raise():
    model = SequenceModel(config(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 2\]"):
        model.forward(np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 2\]"):
        model.forward(np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 2\]"):
        model.step(np.array([5]))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 2\]"):
        model.trace(np.array([0, 9]))
    with pytest.raises(ValueError, match=r"integer array of shape \(B, T\), got float64"):
        model.forward(np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"integer array of shape \(B, T\), got bool"):
        model.forward(np.array([[True, False]]))
    with pytest.raises(ValueError, match=r"integer array of shape \(B, T\), got int64 \(3,\)"):
        model.forward(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"integer array of shape \(B,\), got int64 \(1, 2\)"):
        model.step(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="at least one timestep"):
        model.forward(np.zeros((1, 0), np.int64))
    with pytest.raises(ValueError, match=r"target ids must be in \[0, 2\]"):
        model.forward(np.array([[0, 1]]), targets=np.array([[0, 3]]))
    with pytest.raises(ValueError, match=r"targets must be integer token ids of shape \(1, 2\), got float64"):
        model.forward(np.array([[0, 1]]), targets=np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"targets must be integer token ids of shape \(1, 2\), got int64 \(1, 3\)"):
        model.forward(np.array([[0, 1]]), targets=np.array([[0, 1, 2]]))


def test_bad_dense_inputs_raise():
    model = SequenceModel(config(input_kind="dense", head="linear", output_size=2), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dense inputs must have shape \(B, T, D\) with D=3, got \(1, 2, 4\)"):
        model.forward(np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match=r"dense inputs must have shape \(B, D\) with D=3, got \(1, 2, 3\)"):
        model.step(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="dense inputs must be real numbers"):
        model.forward(np.zeros((1, 2, 3), np.complex128))
    with pytest.raises(ValueError, match="dense inputs must be real numbers"):
        model.forward(np.full((1, 2, 3), "a"))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((1, 2, 3))
        x[0, 1, 2] = bad
        with pytest.raises(ValueError, match="inputs contains NaN or infinity"):
            model.forward(x)
    with pytest.raises(ValueError, match=r"targets must have shape \(1, 2, 2\), got \(1, 2, 3\)"):
        model.forward(np.zeros((1, 2, 3)), targets=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="targets contains NaN"):
        model.forward(np.zeros((1, 2, 3)), targets=np.full((1, 2, 2), np.nan))


def test_bad_state_raises():
    model = SequenceModel(config(num_layers=2), rng=np.random.default_rng(0))
    tokens = np.array([[0, 1]])
    with pytest.raises(ValueError, match=r"one entry per layer \(2\), got 1"):
        model.forward(tokens, model.zero_state(1)[:1])
    state = model.zero_state(2)  # batch 2 for a batch-1 input
    with pytest.raises(ValueError, match=r"state h0 must have shape \(1, 4\), got \(2, 4\)"):
        model.forward(tokens, state)
    state = model.zero_state(1)
    state[1] = (state[1][0], state[1][1].astype(np.float64))
    with pytest.raises(ValueError, match="state c0 must have dtype float32, got float64"):
        model.step(np.array([0]), state)
    state = model.zero_state(1)
    state[0] = (np.full((1, 4), np.nan, np.float32), state[0][1])
    with pytest.raises(ValueError, match="state h0 contains NaN"):
        model.forward(tokens, state)


def test_backward_without_a_loss_raises():
    model = SequenceModel(config(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="backward needs targets in forward or doutputs"):
        model.backward(model.forward(np.array([[0, 1]])))


def test_bad_backward_gradients_raise():
    model, inputs, targets, state, dstate = make_problem("lstm", 2, "linear", "dense", B=2, T=5, O=3)
    result = model.forward(inputs, state, targets)
    with pytest.raises(ValueError, match=r"dstate must hold one entry per layer \(2\), got 1"):
        model.backward(result, dstate=dstate[:1])
    with pytest.raises(ValueError, match=r"dstate must be a tuple \('h', 'c'\)"):
        model.backward(result, dstate=[dstate[0], dstate[1][:1]])
    with pytest.raises(ValueError, match=r"dstate h0 must have shape \(2, 4\), got \(1, 4\)"):
        model.backward(result, dstate=[(np.zeros((1, 4)), np.zeros((1, 4))), dstate[1]])
    with pytest.raises(ValueError, match=r"doutputs must have shape \(2, 5, 3\), got \(2, 4, 3\)"):
        model.backward(result, doutputs=np.zeros((2, 4, 3)))


@pytest.mark.parametrize("head", ("softmax", "linear", "tanh"))
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_huge_inputs_raise_no_floating_point_warnings(head, dtype):
    """Inputs of 1e4 (and 100x weights) saturate every gate: no overflow / invalid / divide
    warning in forward, loss or backward. (Underflow is not an error: exp of a very negative
    logit correctly rounds to 0 inside the softmax.)"""
    model, inputs, targets, state, _ = make_problem("lstm", 2, head, "dense", dtype=dtype, seed=6)
    model.set_params({k: v * 100 for k, v in model.params.items()})
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        result = model.forward(inputs * 1e4, state, targets)
        grads, dinputs, _ = model.backward(result)
    assert np.isfinite(result.loss)
    assert all(np.all(np.isfinite(g)) for g in (*grads.values(), dinputs, result.outputs))


def test_uniform_init_draws_every_parameter_within_its_range():
    cfg = ModelConfig(20, 20, hidden_size=64, num_layers=2, init="uniform", init_range=0.08, forget_bias=1.0)
    params = SequenceModel(cfg, rng=np.random.default_rng(0)).params
    H = 64
    for name, value in params.items():
        free = value.copy()
        if name.endswith(".b"):
            free[H : 2 * H] -= 1.0  # the LSTM forget block (internal order g, i, f, o) carries the forget bias
        assert np.abs(free).max() <= 0.08 and np.abs(free).max() > 0.07, name  # U(-0.08, 0.08), head included


def test_pytorch_init_sums_two_uniform_biases_and_leaves_gru_bhn_single():
    H = 1000
    k = 1 / np.sqrt(H)
    lstm = SequenceModel(ModelConfig(5, 5, hidden_size=H, init="pytorch", forget_bias=0.0),
                         rng=np.random.default_rng(0)).params
    # the sum of two independent U(-k, k) has variance 2 k^2 / 3 (one U(-k, k): k^2 / 3) and range (-2k, 2k)
    assert lstm["l0.b"].var() == pytest.approx(2 * k * k / 3, rel=0.05)
    assert np.abs(lstm["l0.b"]).max() > 1.5 * k
    assert lstm["l0.Wh"].var() == pytest.approx(k * k / 3, rel=0.05)
    gru = SequenceModel(ModelConfig(5, 5, cell="gru", hidden_size=H, init="pytorch"),
                        rng=np.random.default_rng(0)).params
    assert gru["l0.b"][: 2 * H].var() == pytest.approx(2 * k * k / 3, rel=0.08)  # r, z: b_ih + b_hh
    assert np.abs(gru["l0.b"][2 * H :]).max() <= k and np.abs(gru["l0.bhn"]).max() <= k  # n: b_in, b_hn apart
