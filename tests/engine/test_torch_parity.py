"""Parity with PyTorch: same weights -> same outputs, final state, loss and every gradient.

Mapping under test (DESIGN.md §2): ``Wx = weight_ih_l{k}.T``, ``Wh = weight_hh_l{k}.T``,
``b = bias_ih_l{k} + bias_hh_l{k}`` (b is split at a random point between the two torch biases,
which only the sum mapping survives), head ``W = Linear.weight.T``. Losses: CrossEntropyLoss
(softmax head) and MSELoss (linear head; tanh head = MSELoss of tanh(Linear)), both mean. The
objective also adds ``<dstate, final (h, c)>`` so the gradient of the carried state is compared.
"""

import itertools

import numpy as np
import pytest

from .helpers import make_problem

torch = pytest.importorskip("torch")

CASES = list(itertools.product(("lstm", "rnn"), (1, 2), ("softmax", "linear", "tanh"), ("dense", "onehot")))
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


def torch_twin(model, rng):
    """The torch modules holding ``model``'s weights: ``(recurrent, head)``."""
    cfg = model.config
    dtype = getattr(torch, cfg.dtype)
    if cfg.cell == "lstm":
        rnn = torch.nn.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers, batch_first=True, dtype=dtype)
    else:
        rnn = torch.nn.RNN(cfg.input_size, cfg.hidden_size, cfg.num_layers, nonlinearity="tanh",
                           batch_first=True, dtype=dtype)
    head = torch.nn.Linear(cfg.hidden_size, cfg.output_size, dtype=dtype)
    with torch.no_grad():
        for k in range(cfg.num_layers):
            p = model.layer_params(k)
            split = rng.standard_normal(p["b"].shape).astype(cfg.dtype)  # (G,) arbitrary share
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(p["Wx"].T.copy()))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(p["Wh"].T.copy()))
            getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(split))
            getattr(rnn, f"bias_hh_l{k}").copy_(torch.from_numpy(p["b"] - split))
        head.weight.copy_(torch.from_numpy(model.params["head.W"].T.copy()))
        head.bias.copy_(torch.from_numpy(model.params["head.b"].copy()))
    return rnn, head


def leaf(a):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)


@pytest.mark.parametrize("dtype", ("float64", "float32"))
@pytest.mark.parametrize("cell,num_layers,head_kind,input_kind", CASES)
def test_matches_torch(cell, num_layers, head_kind, input_kind, dtype):
    model, inputs, targets, state, dstate = make_problem(cell, num_layers, head_kind, input_kind, D=3, H=5, T=6,
                                                         B=3, O=4, dtype=dtype, seed=num_layers)
    rnn, head = torch_twin(model, np.random.default_rng(9))
    tol = TOLERANCE[dtype]

    # --- ours
    result = model.forward(inputs, state, targets)
    grads, dinputs, dstate0 = model.backward(result, dstate=dstate)

    # --- torch
    if input_kind == "dense":
        x = leaf(inputs)  # (B, T, D)
    else:
        x = torch.nn.functional.one_hot(torch.from_numpy(inputs), model.config.input_size).to(rnn.weight_hh_l0.dtype)
    h0 = leaf(np.stack([s[0] for s in state]))  # (L, B, H)
    if cell == "lstm":
        c0 = leaf(np.stack([s[1] for s in state]))  # (L, B, H)
        hs, (hn, cn) = rnn(x, (h0, c0))
        finals = (hn, cn)
    else:
        hs, hn = rnn(x, h0)
        finals = (hn,)
    scores = head(hs)  # (B, T, O)
    if head_kind == "softmax":
        outputs = torch.softmax(scores, dim=-1)
        loss = torch.nn.CrossEntropyLoss()(scores.reshape(-1, scores.shape[-1]), torch.from_numpy(targets).reshape(-1))
    else:
        outputs = torch.tanh(scores) if head_kind == "tanh" else scores
        loss = torch.nn.MSELoss()(outputs, torch.from_numpy(targets))
    carry = sum((torch.from_numpy(np.stack([d[j] for d in dstate])) * final).sum() for j, final in enumerate(finals))
    (loss + carry).backward()

    def same(ours, theirs, what):
        theirs = theirs.detach().numpy()
        assert ours.dtype == theirs.dtype, what
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol, err_msg=what)

    same(result.outputs, outputs, "outputs")
    assert result.loss == pytest.approx(loss.item(), abs=tol)
    for k in range(num_layers):
        for j, final in enumerate(finals):
            same(result.state[k][j], final[k], f"final state {j} of layer {k}")
        same(grads[f"l{k}.Wx"], getattr(rnn, f"weight_ih_l{k}").grad.T, f"l{k}.Wx")
        same(grads[f"l{k}.Wh"], getattr(rnn, f"weight_hh_l{k}").grad.T, f"l{k}.Wh")
        same(grads[f"l{k}.b"], getattr(rnn, f"bias_ih_l{k}").grad, f"l{k}.b vs bias_ih")
        same(grads[f"l{k}.b"], getattr(rnn, f"bias_hh_l{k}").grad, f"l{k}.b vs bias_hh")
        same(dstate0[k][0], h0.grad[k], f"h0 of layer {k}")
        if cell == "lstm":
            same(dstate0[k][1], c0.grad[k], f"c0 of layer {k}")
    same(grads["head.W"], head.weight.grad.T, "head.W")
    same(grads["head.b"], head.bias.grad, "head.b")
    if input_kind == "dense":
        same(dinputs, x.grad, "inputs")
