"""Optimizers and clipping against torch.optim / torch.nn.utils, plus state round trips."""

import math

import numpy as np
import pytest

from engine.optim import OPTIMIZERS, clip_grads, global_norm, make_optimizer, optimizer_from_state

SHAPES = {"W": (5, 7), "b": (7,), "v": (3,)}


def random_tensors(rng, scale=1.0):
    return {n: rng.normal(0.0, scale, size=s) for n, s in SHAPES.items()}  # float64


TORCH_CASES = [
    ("sgd", {}, lambda torch, ps: torch.optim.SGD(ps, lr=0.1)),
    ("sgd", {"momentum": 0.9}, lambda torch, ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("adagrad", {"eps": 1e-6}, lambda torch, ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-6)),
    ("rmsprop", {}, lambda torch, ps: torch.optim.RMSprop(ps, lr=0.01)),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-6}, lambda torch, ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6)),
    ("adam", {}, lambda torch, ps: torch.optim.Adam(ps, lr=0.01)),
    ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-4},
     lambda torch, ps: torch.optim.Adam(ps, lr=0.01, betas=(0.5, 0.9), eps=1e-4)),
]


@pytest.mark.parametrize("name, hyper, make_torch", TORCH_CASES)
def test_update_matches_torch(name, hyper, make_torch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    params = random_tensors(rng)
    tparams = {n: torch.tensor(p.copy(), requires_grad=True) for n, p in params.items()}
    lr = 0.01 if name in ("rmsprop", "adam") else 0.1
    opt = make_optimizer(name, lr, **hyper)
    topt = make_torch(torch, list(tparams.values()))
    for _ in range(6):
        grads = random_tensors(rng)
        for n, tp in tparams.items():
            tp.grad = torch.tensor(grads[n].copy())
        topt.step()
        opt.step(params, grads)
        for n in params:
            np.testing.assert_allclose(params[n], tparams[n].detach().numpy(), rtol=1e-12, atol=1e-14)
    assert opt.t == 6


def test_float32_update_stays_float32_in_place():
    rng = np.random.default_rng(2)
    params = {n: a.astype(np.float32) for n, a in random_tensors(rng).items()}
    grads = {n: a.astype(np.float32) for n, a in random_tensors(rng).items()}
    ids = {n: id(a) for n, a in params.items()}
    before = {n: a.copy() for n, a in params.items()}
    opt = make_optimizer("adam", 1e-2)
    opt.step(params, grads)
    for n, a in params.items():
        assert id(a) == ids[n] and a.dtype == np.float32
        assert not np.array_equal(a, before[n])
    # first Adam step moves every element by about lr in the direction of -sign(g)
    np.testing.assert_allclose(params["W"] - before["W"], -1e-2 * np.sign(grads["W"]), rtol=1e-3)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_round_trip_resumes_identically(name):
    rng = np.random.default_rng(3)
    params = random_tensors(rng)
    grad_seq = [random_tensors(rng) for _ in range(6)]
    hyper = {"momentum": 0.8} if name == "sgd" else {}
    straight = make_optimizer(name, 0.05, **hyper)
    p1 = {n: a.copy() for n, a in params.items()}
    for g in grad_seq:
        straight.step(p1, {n: a.copy() for n, a in g.items()})

    first = make_optimizer(name, 0.05, **hyper)
    p2 = {n: a.copy() for n, a in params.items()}
    for g in grad_seq[:3]:
        first.step(p2, {n: a.copy() for n, a in g.items()})
    state = first.state_dict()
    saved_params = {n: a.copy() for n, a in p2.items()}
    first.step(p2, grad_seq[0])  # mutating the original must not touch the saved copy
    second = optimizer_from_state(state)
    assert second.t == 3 and second.hyper == straight.hyper
    for g in grad_seq[3:]:
        second.step(saved_params, {n: a.copy() for n, a in g.items()})
    for n in params:
        np.testing.assert_array_equal(saved_params[n], p1[n])


def test_load_state_dict_refuses_mismatches():
    opt = make_optimizer("adam", 1e-3)
    params = {"W": np.zeros((2, 2))}
    opt.step(params, {"W": np.ones((2, 2))})
    state = opt.state_dict()
    with pytest.raises(ValueError, match="not 'sgd'"):
        make_optimizer("sgd", 0.1).load_state_dict(state)
    bad = opt.state_dict()
    bad["slots"]["m"]["W"] = np.full((2, 2), np.nan)
    with pytest.raises(ValueError, match="finite"):
        make_optimizer("adam", 1e-3).load_state_dict(bad)
    other = make_optimizer("adam", 1e-3)
    other.load_state_dict(state)
    with pytest.raises(ValueError, match="does not match"):
        other.step({"W": np.zeros((3, 3))}, {"W": np.ones((3, 3))})


@pytest.mark.parametrize("name, lr, hyper, message", [
    ("lbfgs", 0.1, {}, "unknown optimizer"),
    ("adam", 0.0, {}, "lr must be >"),
    ("adam", -1.0, {}, "lr must be >"),
    ("adam", float("nan"), {}, "lr must be finite"),
    ("adam", float("inf"), {}, "lr must be finite"),
    ("adam", "fast", {}, "lr must be a number"),
    ("sgd", 0.1, {"momentum": 1.0}, "momentum must be <"),
    ("sgd", 0.1, {"momentum": -0.1}, "momentum must be >="),
    ("rmsprop", 0.1, {"eps": 0.0}, "eps must be >"),
    ("adam", 0.1, {"beta1": 1.0}, "beta1 must be <"),
    ("adam", 0.1, {"momentum": 0.9}, "unknown adam hyperparameter"),
])
def test_bad_arguments_raise_value_error(name, lr, hyper, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(name, lr, **hyper)


def test_global_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(grads) == 5.0


@pytest.mark.parametrize("max_norm, max_value", [(1.0, None), (100.0, None), (None, 0.3), (0.5, 0.3)])
def test_clip_matches_torch(max_norm, max_value):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    grads = random_tensors(rng)
    tgrads = [torch.tensor(g.copy()) for g in grads.values()]
    expected_norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    norm = clip_grads(grads, max_norm=max_norm, max_value=max_value)
    assert norm == pytest.approx(expected_norm, rel=1e-12)
    tparams = [torch.zeros_like(g, requires_grad=True) for g in tgrads]
    for p, g in zip(tparams, tgrads):
        p.grad = g
    if max_value is not None:
        torch.nn.utils.clip_grad_value_(tparams, max_value)
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    for g, p in zip(grads.values(), tparams):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_clip_leaves_non_finite_gradients_alone_and_reports_them():
    grads = {"a": np.array([1.0, np.inf]), "b": np.array([2.0])}
    assert clip_grads(grads, max_norm=1.0) == math.inf
    np.testing.assert_array_equal(grads["b"], [2.0])
    assert math.isnan(clip_grads({"a": np.array([np.nan])}, max_norm=1.0))
    with pytest.raises(ValueError, match="max_norm"):
        clip_grads(grads, max_norm=0.0)
