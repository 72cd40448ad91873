"""GRU cell: finite-difference gradients (float64), step == sequence, float64 parity with
``torch.nn.GRU`` (1 and 2 layers), and the paths that read a model's records (trace, stepper,
sampling, trace files, equations)."""

import numpy as np
import pytest

from engine import CharVocab, ModelConfig, SequenceModel
from engine.cells import GRUCell, sigmoid
from engine.sample import sample
from engine.stepper import Stepper
from engine.trace_io import load_trace_npz, save_trace_npz

from .helpers import check_cell_gradients, check_model_gradients, make_problem


def reference_step(params, x, h):
    """One GRU step written straight from PyTorch's nn.GRU documentation (float64)."""
    H = h.shape[1]
    gx = x @ params["Wx"] + params["b"]  # (B, 3H)
    gh = h @ params["Wh"]  # (B, 3H)
    r = 1 / (1 + np.exp(-(gx[:, :H] + gh[:, :H])))  # (B, H)
    z = 1 / (1 + np.exp(-(gx[:, H:2 * H] + gh[:, H:2 * H])))  # (B, H)
    n = np.tanh(gx[:, 2 * H:] + r * (gh[:, 2 * H:] + params["bhn"]))  # (B, H)
    return (1 - z) * n + z * h, r, z, n


def test_step_matches_the_documented_equations_and_the_sequence_forward():
    rng = np.random.default_rng(0)
    cell = GRUCell(3, 4)
    params = cell.init_params(rng, np.float64)
    x = rng.standard_normal((2, 6, 3))  # (B, T, D)
    h = 0.5 * rng.standard_normal((2, 4))  # (B, H)
    hs, (h_last,), _ = cell.forward(params, x, (h,))
    state = (h,)
    for t in range(6):
        expected, r, z, n = reference_step(params, x[:, t], state[0])
        state, record = cell.step(params, x[:, t], state)
        np.testing.assert_allclose(record["h"], expected, atol=1e-14)
        np.testing.assert_allclose(record["r"], r, atol=1e-14)
        np.testing.assert_allclose(record["z"], z, atol=1e-14)
        np.testing.assert_allclose(record["n"], n, atol=1e-14)
        np.testing.assert_allclose(hs[:, t], expected, atol=1e-14)
        assert sorted(record) == ["h", "n", "pre", "r", "z"]
        np.testing.assert_allclose(sigmoid(record["pre"][:, :4]), r, atol=1e-14)
    np.testing.assert_allclose(h_last, state[0], atol=1e-14)


@pytest.mark.parametrize("with_dstate", (False, True))
def test_cell_gradients(with_dstate):
    rng = np.random.default_rng(1)
    cell = GRUCell(3, 4)
    params = cell.init_params(rng, np.float64)
    x = rng.standard_normal((2, 5, 3))  # (B, T, D)
    state = (0.5 * rng.standard_normal((2, 4)),)  # (B, H)
    dhs = rng.standard_normal((2, 5, 4))  # (B, T, H)
    dstate = (rng.standard_normal((2, 4)) if with_dstate else np.zeros((2, 4)),)  # (B, H)
    errors = check_cell_gradients(cell, params, x, state, dhs, dstate)
    assert set(errors) == {"Wx", "Wh", "b", "bhn", "x", "h0"}


@pytest.mark.parametrize("num_layers,head,input_kind", [(1, "softmax", "onehot"), (2, "linear", "dense"),
                                                        (2, "tanh", "onehot")])
def test_model_gradients_every_entry(num_layers, head, input_kind):
    model, inputs, targets, state, dstate = make_problem("gru", num_layers, head, input_kind, seed=num_layers)
    errors = check_model_gradients(model, inputs, targets, state, dstate)
    assert {f"l{k}.bhn" for k in range(num_layers)} <= set(errors)


def test_model_gradients_with_dropout():
    model, inputs, targets, state, dstate = make_problem("gru", 2, "softmax", "dense", dropout=0.4, seed=3)
    check_model_gradients(model, inputs, targets, state, dstate, dropout_seed=5)


@pytest.mark.parametrize("num_layers", (1, 2))
def test_matches_torch_gru_in_float64(num_layers):
    torch = pytest.importorskip("torch")
    model, inputs, targets, state, dstate = make_problem("gru", num_layers, "softmax", "dense", D=3, H=5, T=6,
                                                         B=3, O=4, seed=num_layers)
    rnn = torch.nn.GRU(3, 5, num_layers, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(5, 4, dtype=torch.float64)
    rng_split = np.random.default_rng(9)
    with torch.no_grad():
        for k in range(num_layers):
            p = model.layer_params(k)
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(p["Wx"].T.copy()))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(p["Wh"].T.copy()))
            split = np.concatenate([rng_split.standard_normal(10), np.zeros(5)])  # (3H,) r, z shares; n none
            getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(p["b"] - split))
            getattr(rnn, f"bias_hh_l{k}").copy_(torch.from_numpy(np.concatenate([split[:10], p["bhn"]])))
        head.weight.copy_(torch.from_numpy(model.params["head.W"].T.copy()))
        head.bias.copy_(torch.from_numpy(model.params["head.b"].copy()))
    result = model.forward(inputs, state, targets)
    grads, dinputs, dstate0 = model.backward(result, dstate=dstate)

    x = torch.from_numpy(inputs).requires_grad_(True)
    h0 = torch.from_numpy(np.stack([s[0] for s in state])).requires_grad_(True)  # (L, B, H)
    hs, hn = rnn(x, h0)
    scores = head(hs)  # (B, T, O)
    loss = torch.nn.CrossEntropyLoss()(scores.reshape(-1, 4), torch.from_numpy(targets).reshape(-1))
    objective = loss + (hn * torch.from_numpy(np.stack([d[0] for d in dstate]))).sum()
    objective.backward()

    np.testing.assert_allclose(result.outputs, torch.softmax(scores, -1).detach().numpy(), atol=1e-12)
    assert abs(result.loss - loss.item()) < 1e-12
    np.testing.assert_allclose(np.stack([s[0] for s in result.state]), hn.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dinputs, x.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(np.stack([d[0] for d in dstate0]), h0.grad.numpy(), atol=1e-10)
    for k in range(num_layers):
        np.testing.assert_allclose(grads[f"l{k}.Wx"], getattr(rnn, f"weight_ih_l{k}").grad.numpy().T, atol=1e-10)
        np.testing.assert_allclose(grads[f"l{k}.Wh"], getattr(rnn, f"weight_hh_l{k}").grad.numpy().T, atol=1e-10)
        # every bias gets the same gradient from either side except n's, which splits
        np.testing.assert_allclose(grads[f"l{k}.b"], getattr(rnn, f"bias_ih_l{k}").grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(grads[f"l{k}.bhn"], getattr(rnn, f"bias_hh_l{k}").grad.numpy()[10:], atol=1e-10)


@pytest.fixture
def char_gru():
    vocab = CharVocab.from_text("abcde\n")
    config = ModelConfig(len(vocab), len(vocab), cell="gru", hidden_size=6, num_layers=2)
    return SequenceModel(config, rng=np.random.default_rng(4)), vocab


def test_trace_stepper_and_sampling_record_r_z_n_h(char_gru):
    model, vocab = char_gru
    ids = vocab.encode("abcabd")
    trace = model.trace(ids, text="abcabd")
    assert trace.names == ("r", "z", "n", "h")
    stepper = Stepper(model, ids, text="abcabd")
    stepper.seek(6)
    stepped = stepper.trace()
    assert stepped.names == trace.names
    for k in range(2):
        for name in ("r", "z", "n", "h", "pre"):
            np.testing.assert_allclose(stepped.gate(name, k), trace.gate(name, k), atol=1e-6)
    stepper.back()
    stepper.step()  # replays row 5 from the stored state (h only)
    np.testing.assert_array_equal(stepper.trace().gate("h", 1), stepped.gate("h", 1))
    result = sample(model, vocab, prime="ab", length=5, rng=np.random.default_rng(0))
    again = model.trace(vocab.encode(result.text))
    np.testing.assert_allclose(result.trace.gate("z", 1), again.gate("z", 1), atol=1e-6)


def test_trace_file_holds_the_gru_quantities(char_gru, tmp_path):
    model, vocab = char_gru
    trace = model.trace(vocab.encode("abc"), text="abc")
    save_trace_npz(tmp_path / "t.npz", trace, vocab)
    arrays = load_trace_npz(tmp_path / "t.npz")
    assert str(arrays["cell"]) == "gru"
    np.testing.assert_array_equal(arrays["layer1_n"], trace.gate("n", 1))
    assert "layer0_c" not in arrays


def test_cli_trains_and_traces_a_gru(tmp_path, capsys):
    from lstmviz.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("abcd abce xyz\n" * 20, encoding="utf-8")
    model, out, text = tmp_path / "gru.npz", tmp_path / "t.npz", tmp_path / "text.txt"
    text.write_text("abc", encoding="utf-8")
    assert main(["train", str(corpus), "--out", str(model), "--steps", "3", "--cell", "gru", "--hidden", "8",
                 "--seq-len", "8", "--batch", "4", "--eval-every", "5"]) == 0
    assert main(["trace", str(model), "--text-file", str(text), "--out", str(out)]) == 0
    capsys.readouterr()
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(k for k in npz.files if k.startswith("layer")) == ["layer0_h", "layer0_n", "layer0_r", "layer0_z"]


def test_gradient_flow_runs_on_a_gru(char_gru):
    """dLoss_T/dh at the last step is the head's gradient alone (no later step feeds back)."""
    from engine.gradflow import gradient_flow

    model, vocab = char_gru
    ids = vocab.encode("abcab")
    flow = gradient_flow(model, ids, np.roll(ids, -1))
    assert flow.dc is None and flow.dh.shape == (2, 5, 6)
    probs = model.trace(ids).outputs[-1].astype(np.float64)  # (V,)
    dscores = probs - np.eye(len(vocab))[np.roll(ids, -1)[-1]]  # (V,) softmax cross-entropy gradient
    np.testing.assert_allclose(flow.dh[1, -1], dscores @ model.params["head.W"].T, atol=1e-5)
