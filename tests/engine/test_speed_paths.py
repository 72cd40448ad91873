"""The engine's speed paths equal a plain reference, in float64, to 1e-12.

The reference below is a deliberately naive LSTM written from the equations in the public gate
order (i, f, g, o), one timestep at a time, with textbook BPTT. The engine's hot loops reorder
the gates (g, i, f, o) by block copies, pre-scale the sigmoid columns, compute local derivatives
in cache-sized blocks of timesteps and run the recurrent backward product transposed; none of
that may change a single number beyond round-off.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import LSTMCell, ModelConfig, RNNCell, SequenceModel
from engine import cells as cells_module

TOL = 1e-12


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_lstm(params, x, h0, c0, dhs, dhT, dcT):
    """Naive forward + BPTT in public order. ``x (T, B, D)``, ``dhs (T, B, H)``.

    Returns grads dict, per-step total dL/dh_t and dL/dc_t ``(T, B, H)``, and (dh0, dc0).
    """
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    T, B, _ = x.shape
    H = h0.shape[1]
    hs, cs, gates = [h0], [c0], []
    for t in range(T):
        z = x[t] @ Wx + hs[-1] @ Wh + b  # (B, 4H)
        i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
        c = f * cs[-1] + i * g
        gates.append((i, f, g, o))
        cs.append(c)
        hs.append(o * np.tanh(c))
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next, dc_next = dhT.copy(), dcT.copy()
    dh_all, dc_all = np.zeros((T, B, H)), np.zeros((T, B, H))
    for t in reversed(range(T)):
        i, f, g, o = gates[t]
        dh = dhs[t] + dh_next
        tc = np.tanh(cs[t + 1])
        dc = dc_next + dh * o * (1 - tc ** 2)
        dh_all[t], dc_all[t] = dh, dc
        dz = np.concatenate([dc * g * i * (1 - i), dc * cs[t] * f * (1 - f), dc * i * (1 - g ** 2),
                             dh * tc * o * (1 - o)], axis=1)  # (B, 4H) public order
        grads["Wx"] += x[t].T @ dz
        grads["Wh"] += hs[t].T @ dz
        grads["b"] += dz.sum(axis=0)
        dh_next, dc_next = dz @ Wh.T, dc * f
    return grads, dh_all, dc_all, (dh_next, dc_next)


def problem(T=7, B=3, D=4, H=5, seed=0):
    rng = np.random.default_rng(seed)
    cell = LSTMCell(D, H)
    params = cell.init_params(rng, np.float64)
    x = rng.standard_normal((T, B, D))  # (T, B, D)
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))  # (B, H)
    dhs = rng.standard_normal((T, B, H))  # (T, B, H)
    dhT, dcT = rng.standard_normal((B, H)), rng.standard_normal((B, H))  # (B, H)
    return cell, params, x, (h0, c0), dhs, (dhT, dcT)


@pytest.mark.parametrize("block_steps", [1, 2, 3, 7, 100])
def test_blocked_bptt_equals_naive_reference(monkeypatch, block_steps):
    """Every block size (one step, blocks that do not divide T, one block) gives the reference."""
    cell, params, x, state, dhs, dstate = problem()
    T, B, _ = x.shape
    monkeypatch.setattr(cells_module, "_CACHE_BLOCK", block_steps * 5 * B * cell.hidden_size)
    prep = cell.prepare(params)
    xp = x @ prep.Wx_s + prep.b_s  # (T, B, G)
    _, _, cache = cell.forward_tm(prep, xp, state)
    record = {}
    dz, dWh, (dh0, dc0) = cell.backward_tm(prep, cache, dhs, dstate, record=record)
    ref, dh_all, dc_all, (rdh0, rdc0) = reference_lstm(params, x, *state, dhs, *dstate)
    dz2 = dz.reshape(T * B, -1)  # (T*B, G)
    assert np.abs(dWh - ref["Wh"]).max() < TOL
    assert np.abs(cell.to_public(x.reshape(T * B, -1).T @ dz2) - ref["Wx"]).max() < TOL
    assert np.abs(cell.to_public(dz2.sum(axis=0)) - ref["b"]).max() < TOL
    assert np.abs(dh0 - rdh0).max() < TOL and np.abs(dc0 - rdc0).max() < TOL
    assert np.abs(record["dh"] - dh_all).max() < TOL
    assert np.abs(record["dc"] - dc_all).max() < TOL


def test_recording_does_not_change_the_gradients():
    cell, params, x, state, dhs, dstate = problem(seed=1)
    prep = cell.prepare(params)
    _, _, cache = cell.forward_tm(prep, x @ prep.Wx_s + prep.b_s, state)
    plain = cell.backward_tm(prep, cache, dhs, dstate)
    recorded = cell.backward_tm(prep, cache, dhs, dstate, record={})
    assert np.array_equal(plain[0], recorded[0]) and np.array_equal(plain[1], recorded[1])
    assert all(np.array_equal(a, b) for a, b in zip(plain[2], recorded[2]))


def test_forward_activations_equal_the_equations():
    cell, params, x, (h0, c0), _, _ = problem(seed=2)
    H = cell.hidden_size
    prep = cell.prepare(params)
    _, _, cache = cell.forward_tm(prep, x @ prep.Wx_s + prep.b_s, (h0, c0), keep_pre=True)
    z = x[0] @ params["Wx"] + h0 @ params["Wh"] + params["b"]  # (B, 4H) public
    gates = cell.gate_views(cache["acts"][0])
    expected = {"i": sig(z[:, :H]), "f": sig(z[:, H:2 * H]), "g": np.tanh(z[:, 2 * H:3 * H]), "o": sig(z[:, 3 * H:])}
    for name, value in expected.items():
        assert np.abs(gates[name] - value).max() < TOL, name
    assert np.abs(cell.pre_activations(cache["pre"][0]) - z).max() < TOL


def test_prepared_weights_are_the_reordered_and_scaled_public_ones():
    cell = LSTMCell(3, 6)
    H = cell.hidden_size
    params = cell.init_params(np.random.default_rng(3), np.float32)
    prep = cell.prepare(params)
    public = {name: slice(k * H, (k + 1) * H) for k, name in enumerate("ifgo")}
    columns = np.concatenate([np.arange(4 * H)[public[n]] for n in cell.internal_gates])  # (G,)
    scale = np.array([1.0 if n == "g" else 0.5 for n in cell.internal_gates for _ in range(H)], np.float32)
    assert np.array_equal(prep.Wh_u, params["Wh"][:, columns])
    assert np.array_equal(prep.Wx_u, params["Wx"][:, columns])
    assert np.array_equal(prep.Wh_s, params["Wh"][:, columns] * scale)
    assert np.array_equal(prep.b_s, params["b"][columns] * scale)
    assert np.array_equal(cell.to_public(prep.Wh_u), params["Wh"])


@pytest.mark.parametrize("make", [lambda: LSTMCell(3, 6), lambda: RNNCell(3, 6)])
def test_backward_leaves_dstate_untouched_and_returns_contiguous_state_grads(make):
    cell, rng = make(), np.random.default_rng(8)
    params = cell.init_params(rng, np.float64)
    x, dhs = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 6))  # (B, T, D), (B, T, H)
    _, _, cache = cell.forward(params, x)
    dstate = tuple(rng.standard_normal((2, 6)) for _ in cell.state_names)
    kept = tuple(s.copy() for s in dstate)
    _, _, dstate0 = cell.backward(params, cache, dhs, dstate)
    assert all(np.array_equal(a, b) for a, b in zip(dstate, kept))
    assert all(s.flags.c_contiguous and s.shape == (2, 6) for s in dstate0)


def test_float32_training_stays_float32():
    """No silent float64 upcast anywhere in forward, backward or stepping."""
    config = ModelConfig(input_size=11, output_size=11, hidden_size=8, num_layers=2, dropout=0.25)
    model = SequenceModel(config, rng=np.random.default_rng(4))
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 11, (3, 9)), rng.integers(0, 11, (3, 9))
    result = model.forward(x, None, y, train=True, rng=rng)
    grads, _, dstate0 = model.backward(result)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(s.dtype == np.float32 for layer in dstate0 for s in layer)
    assert result.outputs.dtype == np.float32
    cache = result.cache["caches"][0]
    assert all(cache[k].dtype == np.float32 for k in ("acts", "hs", "cs", "tc"))
    output, state, records = model.step(x[:, 0], None)
    assert output.dtype == np.float32 and all(a.dtype == np.float32 for r in records for a in r.values())


def test_one_hot_layer_gradients_equal_the_dense_input_model():
    """The one-hot path (row gather forward, its own dWx and db) equals feeding one-hot vectors."""
    V, rng = 7, np.random.default_rng(6)
    onehot = SequenceModel(ModelConfig(input_size=V, output_size=V, hidden_size=5, dtype="float64"), rng=rng)
    dense = SequenceModel(ModelConfig(input_size=V, output_size=V, hidden_size=5, input_kind="dense",
                                      dtype="float64"), params=onehot.params)
    ids, y = rng.integers(0, V, (4, 6)), rng.integers(0, V, (4, 6))
    g1, _, _ = onehot.backward(onehot.forward(ids, None, y))
    g2, _, _ = dense.backward(dense.forward(np.eye(V)[ids], None, y))
    for name in g1:
        assert np.abs(g1[name] - g2[name]).max() < TOL, name


def test_step_validation_still_refuses_bad_input():
    model = SequenceModel(ModelConfig(input_size=5, output_size=5, hidden_size=4), rng=np.random.default_rng(7))
    state = model.zero_state(1)
    with pytest.raises(ValueError, match="token ids"):
        model.step(np.array([5]), state)
    with pytest.raises(ValueError, match="integer"):
        model.step(np.array([True]), state)
    bad = [(state[0][0].copy(), state[0][1].copy())]
    bad[0][1][0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.step(np.array([1]), bad)
