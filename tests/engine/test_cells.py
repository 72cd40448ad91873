"""engine.cells: initialisation, one step vs the sequence, the equations, and bad input."""

import warnings

import numpy as np
import pytest

from engine import LSTMCell, RNNCell, make_cell

CELLS = (LSTMCell, RNNCell)


def reference_lstm_step(params, x, h, c):
    """DESIGN.md §2 equations written out directly (public layout, logistic as 1/(1+e^-z))."""
    H = h.shape[1]
    z = x @ params["Wx"] + h @ params["Wh"] + params["b"]  # (B, 4H)
    i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))  # (B, H) each
    i, f, o = (1.0 / (1.0 + np.exp(-a)) for a in (i, f, o))  # (B, H) each
    g = np.tanh(g)  # (B, H)
    c_new = f * c + i * g  # (B, H)
    return {"pre": z, "i": i, "f": f, "g": g, "o": o, "c": c_new, "h": o * np.tanh(c_new)}


def random_case(cell_class, dtype=np.float64, D=3, H=4, T=6, B=2, seed=0):
    rng = np.random.default_rng(seed)
    cell = cell_class(D, H)
    params = cell.init_params(rng, dtype)
    x = rng.standard_normal((B, T, D)).astype(dtype)  # (B, T, D)
    state = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in cell.state_names)  # (B, H) each
    return cell, params, x, state


# --- initialisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("cell_class", CELLS)
def test_init_uniform_within_one_over_sqrt_h(cell_class):
    D, H = 20, 64
    cell = cell_class(D, H)
    params = cell.init_params(np.random.default_rng(0), forget_bias=0.0)
    k = 1.0 / np.sqrt(H)
    G = cell.gate_count * H
    assert params["Wx"].shape == (D, G) and params["Wh"].shape == (H, G) and params["b"].shape == (G,)
    for name in ("Wx", "Wh"):
        w = params[name]
        assert np.abs(w).max() <= k
        # a uniform sample this large fills the interval: its extremes near +-k, mean near 0
        assert w.max() > 0.99 * k and w.min() < -0.99 * k
        assert abs(float(w.mean())) < 0.05 * k
        # uniform, not bell-shaped: a quarter of the mass in each quarter of the interval
        counts = np.histogram(w, bins=4, range=(-k, k))[0] / w.size
        np.testing.assert_allclose(counts, 0.25, atol=0.03)
    assert np.abs(params["b"]).max() <= k


def test_lstm_forget_bias_shift_default_and_switchable():
    H = 8
    cell = LSTMCell(5, H)
    k = 1.0 / np.sqrt(H)
    shifted = cell.init_params(np.random.default_rng(1))["b"]  # (4H,) default forget_bias=1
    plain = cell.init_params(np.random.default_rng(1), forget_bias=0.0)["b"]  # (4H,)
    forget = slice(H, 2 * H)  # public gate order i, f, g, o
    np.testing.assert_allclose(shifted[forget], plain[forget] + 1.0, rtol=0, atol=1e-6)
    others = np.r_[0:H, 2 * H : 4 * H]
    np.testing.assert_array_equal(shifted[others], plain[others])
    assert np.all(np.abs(plain) <= k)
    assert np.all(np.abs(shifted[forget] - 1.0) <= k + 1e-6)


def test_rnn_has_no_forget_bias():
    cell = RNNCell(3, 6)
    a = cell.init_params(np.random.default_rng(2))["b"]  # (H,)
    b = cell.init_params(np.random.default_rng(2), forget_bias=0.0)["b"]  # (H,)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell_class", CELLS)
def test_init_dtype_and_reproducibility(cell_class):
    cell = cell_class(3, 5)
    default = cell.init_params(np.random.default_rng(3))
    assert {p.dtype for p in default.values()} == {np.dtype(np.float32)}
    double = cell.init_params(np.random.default_rng(3), np.float64)
    assert {p.dtype for p in double.values()} == {np.dtype(np.float64)}
    again = cell.init_params(np.random.default_rng(3))
    other = cell.init_params(np.random.default_rng(4))
    for name in default:
        np.testing.assert_array_equal(default[name], again[name])
        np.testing.assert_allclose(default[name], double[name], rtol=0, atol=1e-6)
        assert not np.array_equal(default[name], other[name])


# --- stepping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_class", CELLS)
def test_step_by_step_equals_sequence_forward(cell_class):
    cell, params, x, state = random_case(cell_class)
    hs, final, _ = cell.forward(params, x, state)  # (B, T, H)
    s = state
    for t in range(x.shape[1]):
        s, record = cell.step(params, x[:, t], s)
        np.testing.assert_allclose(record["h"], hs[:, t], rtol=0, atol=1e-12)
        np.testing.assert_allclose(s[0], hs[:, t], rtol=0, atol=1e-12)
    for a, b in zip(s, final):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_lstm_step_record_matches_the_equations():
    cell, params, x, (h, c) = random_case(LSTMCell, seed=5)
    for t in range(x.shape[1]):
        expected = reference_lstm_step(params, x[:, t], h, c)
        (h, c), record = cell.step(params, x[:, t], (h, c))
        for name in ("pre", "i", "f", "g", "o", "c", "h"):
            np.testing.assert_allclose(record[name], expected[name], rtol=0, atol=1e-12, err_msg=name)


def test_rnn_step_record_matches_the_equation():
    cell, params, x, (h,) = random_case(RNNCell, seed=6)
    for t in range(x.shape[1]):
        z = x[:, t] @ params["Wx"] + h @ params["Wh"] + params["b"]  # (B, H)
        (h,), record = cell.step(params, x[:, t], (h,))
        np.testing.assert_allclose(record["pre"], z, rtol=0, atol=1e-12)
        np.testing.assert_allclose(h, np.tanh(z), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell_class", CELLS)
def test_none_state_is_zero_state(cell_class):
    cell, params, x, _ = random_case(cell_class)
    a = cell.forward(params, x)[0]  # (B, T, H)
    b = cell.forward(params, x, cell.zero_state(x.shape[0], np.float64))[0]  # (B, T, H)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell_class", CELLS)
def test_float32_matches_float64(cell_class):
    cell, params, x, state = random_case(cell_class)
    hs64, _, _ = cell.forward(params, x, state)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    hs32, _, _ = cell.forward(p32, x.astype(np.float32), tuple(s.astype(np.float32) for s in state))
    assert hs32.dtype == np.float32
    np.testing.assert_allclose(hs32, hs64, rtol=0, atol=1e-5)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", (0, -3, 2.0, True, None))
def test_bad_sizes_raise(hidden):
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LSTMCell(3, hidden)
    with pytest.raises(ValueError, match="input_size must be a positive integer"):
        RNNCell(hidden, 3)


def test_unknown_cell_type_raises():
    assert isinstance(make_cell("lstm", 2, 3), LSTMCell)
    with pytest.raises(ValueError, match=r"unknown cell type 'mgu'.*\('lstm', 'rnn', 'gru'\)"):
        make_cell("mgu", 2, 3)


def test_bad_x_raises_naming_the_shape_and_dtype():
    cell, params, x, state = random_case(LSTMCell)
    with pytest.raises(ValueError, match=r"x must have shape \(\?, 3\), got \(2, 4\)"):
        cell.step(params, np.zeros((2, 4)), state)
    with pytest.raises(ValueError, match=r"x must have shape \(\?, \?, 3\), got \(2, 3\)"):
        cell.forward(params, np.zeros((2, 3)), state)
    with pytest.raises(ValueError, match="x must be a NumPy array"):
        cell.step(params, [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="x must have dtype float64, got int64"):
        cell.step(params, np.zeros((2, 3), np.int64), state)
    with pytest.raises(ValueError, match="x must have dtype float64, got float32"):
        cell.forward(params, x.astype(np.float32), state)
    with pytest.raises(ValueError, match=r"at least one timestep"):
        cell.forward(params, np.zeros((2, 0, 3)), state)


@pytest.mark.parametrize("bad", (np.nan, np.inf, -np.inf))
def test_non_finite_values_raise(bad):
    cell, params, x, state = random_case(LSTMCell)
    x_bad = x.copy()
    x_bad[1, 2, 0] = bad
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        cell.forward(params, x_bad, state)
    for name in params:
        p_bad = dict(params, **{name: params[name].copy()})
        p_bad[name].reshape(-1)[3] = bad
        with pytest.raises(ValueError, match=f"{name} contains NaN or infinity"):
            cell.step(params=p_bad, x=x[:, 0], state=state)
    with pytest.raises(ValueError, match="state c0 contains NaN"):
        cell.forward(params, x, (state[0], np.full_like(state[1], bad)))


def test_bad_params_raise():
    cell, params, x, state = random_case(LSTMCell)
    with pytest.raises(ValueError, match=r"missing parameter 'b' of shape \(16,\)"):
        cell.forward({"Wx": params["Wx"], "Wh": params["Wh"]}, x, state)
    with pytest.raises(ValueError, match=r"Wh must have shape \(4, 16\), got \(4, 12\)"):
        cell.forward(dict(params, Wh=params["Wh"][:, :12].copy()), x, state)
    with pytest.raises(ValueError, match="parameters must be float32 or float64, got int64"):
        cell.forward({k: v.astype(np.int64) for k, v in params.items()}, x, state)
    with pytest.raises(ValueError, match="Wx must have dtype float64, got float32"):
        cell.forward(dict(params, Wx=params["Wx"].astype(np.float32)), x, state)


def test_bad_state_raises():
    cell, params, x, (h, c) = random_case(LSTMCell)
    with pytest.raises(ValueError, match=r"state must be a tuple \('h', 'c'\)"):
        cell.forward(params, x, (h,))
    with pytest.raises(ValueError, match=r"state h0 must have shape \(2, 4\), got \(3, 4\)"):
        cell.forward(params, x, (np.zeros((3, 4)), c))
    with pytest.raises(ValueError, match="state c0 must have dtype float64, got float32"):
        cell.step(params, x[:, 0], (h, c.astype(np.float32)))


def test_bad_backward_gradients_raise():
    cell, params, x, state = random_case(LSTMCell)
    _, _, cache = cell.forward(params, x, state)
    with pytest.raises(ValueError, match=r"dhs must have shape \(2, 6, 4\), got \(2, 5, 4\)"):
        cell.backward(params, cache, np.zeros((2, 5, 4)))
    dhs = np.zeros((2, 6, 4))  # (B, T, H)
    with pytest.raises(ValueError, match=r"dstate c0 must have shape \(2, 4\), got \(1, 4\)"):
        cell.backward(params, cache, dhs, (np.zeros((2, 4)), np.zeros((1, 4))))
    with pytest.raises(ValueError, match=r"dstate must be a tuple \('h', 'c'\)"):
        cell.backward(params, cache, dhs, (np.zeros((2, 4)),))


@pytest.mark.parametrize("cell_class", CELLS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_huge_inputs_and_weights_do_not_overflow(cell_class, dtype):
    """Saturating pre-activations (|z| ~ 1e4..1e6) raise no floating-point warning or error
    (overflow, invalid, divide) and stay in range."""
    cell, params, x, state = random_case(cell_class, dtype)
    big = {k: v * dtype(100.0) for k, v in params.items()}
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        hs, final, cache = cell.forward(big, x * dtype(1e4), state)
        grads, dx, _ = cell.backward(big, cache, np.ones_like(hs))
    assert np.all(np.abs(hs) <= 1)
    for a in (hs, dx, *final, *grads.values()):
        assert np.all(np.isfinite(a))
