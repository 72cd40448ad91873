"""Finite-difference gradient checking, shared by the engine tests (written once, here).

Numerical derivative, one entry at a time, in float64: the fourth-order central difference
(Richardson extrapolation of two plain central differences ``D(h) = (f(a+h) - f(a-h)) / 2h``)::

    n = (4 D(h) - D(2h)) / 3 = (8 (f(a+h) - f(a-h)) - (f(a+2h) - f(a-2h))) / 12h,   h = 1e-4

Why not the plain ``D(1e-6)``: measured on these tiny models its error is ~1e-9 absolute
(round-off ``2.2e-16 * sum|terms of f| / 2h``), i.e. up to 2e-6 relative on gradient entries near
1e-4, so it cannot certify 1e-6. The extrapolated stencil has truncation error
``h**4 f^(5) / 30 ~ 1e-17`` and round-off ~1e-12..1e-11: measured worst 2.2e-8 relative.

Relative error of an analytic gradient entry ``a`` against its numerical estimate ``n``::

    rel(a, n) = |a - n| / max(|a| + |n|, FLOOR),   FLOOR = 1e-4

so entries with gradients above the floor are held to ``rel <= TOL = 1e-6`` and entries below
it (including exact zeros, e.g. rows of unused tokens) to an absolute error ``<= TOL * FLOOR =
1e-10``, about 7x the estimator's own measured worst absolute error (1.5e-11).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from engine import ModelConfig, SequenceModel

STEP = 1e-4
FLOOR = 1e-4
TOL = 1e-6


def numerical_gradient(f: Callable[[], float], a: np.ndarray, indices=None, h: float = STEP) -> np.ndarray:
    """Fourth-order central-difference dF/da at the flat ``indices`` of ``a`` (all if None).

    ``f`` reads ``a``, which is perturbed in place and restored exactly. Returns ``(len(indices),)``.
    """
    flat = a.reshape(-1)  # (N,) view: perturbing it perturbs a
    if not np.shares_memory(flat, a):
        raise ValueError("a must be contiguous so it can be perturbed in place")
    indices = np.arange(flat.size) if indices is None else np.asarray(indices)  # (K,)
    out = np.empty(indices.size, np.float64)  # (K,)
    for n, j in enumerate(indices):
        original = flat[j]
        values = []
        for k in (1, -1, 2, -2):
            flat[j] = original + k * h
            values.append(f())
        flat[j] = original
        f1, fm1, f2, fm2 = values
        out[n] = (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * h)
    return out


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """Elementwise ``|a - n| / max(|a| + |n|, floor)`` (see the module docstring)."""
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), floor)


def gradient_errors(f: Callable[[], float], arrays: dict, analytic: dict, indices: dict | None = None) -> dict:
    """Max relative error per name of ``analytic[name]`` vs the numerical gradient of ``f``
    with respect to ``arrays[name]`` (at ``indices[name]``, flat, or every entry)."""
    errors = {}
    for name, a in arrays.items():
        assert a.dtype == np.float64, f"{name}: gradient checks run in float64, got {a.dtype}"
        assert analytic[name].shape == a.shape, f"{name}: gradient shape {analytic[name].shape} != {a.shape}"
        idx = None if indices is None else indices[name]
        numeric = numerical_gradient(f, a, idx)  # (K,)
        exact = analytic[name].reshape(-1)  # (N,)
        exact = exact if idx is None else exact[idx]  # (K,)
        errors[name] = float(relative_error(exact, numeric).max(initial=0.0))
    return errors


def assert_gradients(f: Callable[[], float], arrays: dict, analytic: dict, indices: dict | None = None,
                     tol: float = TOL) -> dict:
    """Assert every max relative error from ``gradient_errors`` is <= ``tol``; return them."""
    errors = gradient_errors(f, arrays, analytic, indices)
    bad = {name: err for name, err in errors.items() if not err <= tol}
    assert not bad, f"gradient check failed (max relative error > {tol}): {bad}"
    return errors


def state_arrays(state: list) -> dict:
    """Name each per-layer state array ``l{k}.h0`` / ``l{k}.c0`` (LSTM) for the checks."""
    names = ("h0", "c0")
    return {f"l{k}.{names[j]}": s for k, layer in enumerate(state) for j, s in enumerate(layer)}


def model_objective(model, inputs, targets, state: list, dstate: list, dropout_seed: int | None = None):
    """``F = loss + sum_k <dstate_k, final_state_k>`` as a closure over the arrays it reads.

    With ``dropout_seed`` the forward runs in training mode with a fresh
    ``default_rng(dropout_seed)`` on every call, so every evaluation uses the same dropout mask.
    """

    def run():
        rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
        return model.forward(inputs, state, targets, train=dropout_seed is not None, rng=rng)

    def f() -> float:
        result = run()
        carry = sum(float(np.sum(d * s)) for dl, sl in zip(dstate, result.state) for d, s in zip(dl, sl))
        return result.loss + carry

    return run, f


def check_model_gradients(model, inputs, targets, state: list, dstate: list, *, dropout_seed: int | None = None,
                          subset: int | None = None, rng: np.random.Generator | None = None) -> dict:
    """Gradient-check every parameter, the dense inputs and the initial state of ``model``.

    ``subset``: check only this many random entries per array (drawn with ``rng``); None = all.
    Returns the max relative error per name (asserted <= ``TOL``).
    """
    run, f = model_objective(model, inputs, targets, state, dstate, dropout_seed)
    grads, dinputs, dstate0 = model.backward(run(), dstate=dstate)
    arrays = dict(model.params)
    analytic = dict(grads)
    for (name, s), ds in zip(state_arrays(state).items(), [d for layer in dstate0 for d in layer]):
        arrays[name], analytic[name] = s, ds
    if model.config.input_kind == "dense":
        arrays["inputs"], analytic["inputs"] = inputs, dinputs
    else:
        assert dinputs is None, "token inputs have no input gradient"
    indices = None
    if subset is not None:
        indices = {name: rng.choice(a.size, size=min(subset, a.size), replace=False) for name, a in arrays.items()}
    assert set(analytic) == set(arrays), f"gradients for {sorted(set(analytic) ^ set(arrays))} missing"
    return assert_gradients(f, arrays, analytic, indices)


def check_cell_gradients(cell, params: dict, x: np.ndarray, state: tuple, dhs: np.ndarray, dstate: tuple) -> dict:
    """Gradient-check ``cell.backward`` for ``F = <dhs, hs> + <dstate, final_state>``: the
    parameters, ``x`` and the initial state (truncated-BPTT carry through ``dstate``)."""

    def f() -> float:
        hs, final, _ = cell.forward(params, x, state)
        return float(np.sum(dhs * hs)) + sum(float(np.sum(d * s)) for d, s in zip(dstate, final))

    _, _, cache = cell.forward(params, x, state)
    grads, dx, dstate0 = cell.backward(params, cache, dhs, dstate)
    arrays = dict(params, x=x, **{f"{n}0": s for n, s in zip(cell.state_names, state)})
    analytic = dict(grads, x=dx, **{f"{n}0": d for n, d in zip(cell.state_names, dstate0)})
    return assert_gradients(f, arrays, analytic)


def make_problem(cell="lstm", num_layers=1, head="softmax", input_kind="dense", *, D=3, H=4, T=5, B=2, O=3,
                 dropout=0.0, dtype="float64", seed=0):
    """A tiny model with random inputs, targets, initial state and final-state gradient.

    Returns ``(model, inputs, targets, state, dstate)``: inputs are token ids ``(B, T)`` in
    [0, D) or standard-normal values ``(B, T, D)``; targets ids in [0, O) or values in
    (-0.9, 0.9) ``(B, T, O)``; ``state``/``dstate`` per layer, tuples of ``(B, H)`` arrays.
    """
    config = ModelConfig(input_size=D, output_size=O, cell=cell, hidden_size=H, num_layers=num_layers,
                         input_kind=input_kind, head=head, dropout=dropout, dtype=dtype)
    rng = np.random.default_rng(seed)
    model = SequenceModel(config, rng=rng)
    inputs = rng.integers(0, D, (B, T)) if input_kind == "onehot" else rng.standard_normal((B, T, D))  # (B, T[, D])
    if head == "softmax":
        targets = rng.integers(0, O, (B, T))  # (B, T)
    else:
        targets = rng.uniform(-0.9, 0.9, (B, T, O))  # (B, T, O)
    state = [tuple(0.5 * rng.standard_normal((B, H)) for _ in c.state_names) for c in model.cells]  # (B, H) each
    dstate = [tuple(rng.standard_normal((B, H)) for _ in c.state_names) for c in model.cells]  # (B, H) each
    if input_kind == "dense":
        inputs = inputs.astype(dtype)
    state = [tuple(s.astype(dtype) for s in layer) for layer in state]
    dstate = [tuple(d.astype(dtype) for d in layer) for layer in dstate]
    return model, inputs, targets, state, dstate
