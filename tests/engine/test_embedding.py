"""Token encodings beside one-hot (an embedding table, a scaled index) and models without a head:
finite-difference gradients (float64), parity with ``nn.Embedding`` + ``nn.LSTM``, checkpoints,
stepping, and the clear refusals."""

import numpy as np
import pytest

from engine import CharVocab, ModelConfig, SequenceModel
from engine.checkpoint import load_char_checkpoint, load_checkpoint, save_checkpoint
from engine.equations import decompose
from engine.sample import sample
from engine.stepper import Stepper

from .helpers import check_model_gradients


def problem(cell="lstm", num_layers=1, head="softmax", input_kind="embedding", *, V=5, E=3, H=4, T=5, B=2,
            seed=0):
    """A tiny float64 model on token ids, with targets, initial state and final-state gradient."""
    config = ModelConfig(input_size=V, output_size=H if head == "none" else V, cell=cell, hidden_size=H,
                         num_layers=num_layers, input_kind=input_kind, head=head, dtype="float64",
                         embed_size=E if input_kind == "embedding" else 0)
    rng = np.random.default_rng(seed)
    model = SequenceModel(config, rng=rng)
    inputs = rng.integers(0, V, (B, T))  # (B, T)
    targets = rng.integers(0, V, (B, T))  # (B, T)
    state = [tuple(0.5 * rng.standard_normal((B, H)) for _ in c.state_names) for c in model.cells]  # (B, H) each
    dstate = [tuple(rng.standard_normal((B, H)) for _ in c.state_names) for c in model.cells]  # (B, H) each
    return model, inputs, targets, state, dstate


@pytest.mark.parametrize("cell,num_layers,input_kind", [("lstm", 1, "embedding"), ("gru", 2, "embedding"),
                                                        ("rnn", 1, "embedding"), ("lstm", 2, "scaled_index")])
def test_gradients_every_entry(cell, num_layers, input_kind):
    model, inputs, targets, state, dstate = problem(cell, num_layers, input_kind=input_kind, seed=num_layers)
    errors = check_model_gradients(model, inputs, targets, state, dstate)
    assert ("embed.E" in errors) == (input_kind == "embedding")
    assert model.params["l0.Wx"].shape[0] == (3 if input_kind == "embedding" else 1)


def test_embedding_gradient_rows_of_unused_tokens_are_zero():
    model, inputs, targets, state, _ = problem(V=6)
    inputs[:] = 2  # only token 2 is ever read
    grads, dinputs, _ = model.backward(model.forward(inputs, state, targets))
    assert dinputs is None
    assert np.abs(grads["embed.E"][2]).sum() > 0
    assert not np.delete(grads["embed.E"], 2, axis=0).any()


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    model, inputs, targets, state, _ = problem("lstm", 2, V=7, E=3, H=5, T=6, B=3, seed=4)
    emb = torch.nn.Embedding(7, 3, dtype=torch.float64)
    rnn = torch.nn.LSTM(3, 5, 2, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(5, 7, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(model.params["embed.E"]))
        for k in range(2):
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(model.params[f"l{k}.Wx"].T.copy()))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(model.params[f"l{k}.Wh"].T.copy()))
            getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(model.params[f"l{k}.b"]))
            getattr(rnn, f"bias_hh_l{k}").zero_()
        head.weight.copy_(torch.from_numpy(model.params["head.W"].T.copy()))
        head.bias.copy_(torch.from_numpy(model.params["head.b"]))
    result = model.forward(inputs, state, targets)
    grads, _, _ = model.backward(result)
    h0 = torch.from_numpy(np.stack([s[0] for s in state]))  # (L, B, H)
    c0 = torch.from_numpy(np.stack([s[1] for s in state]))  # (L, B, H)
    scores = head(rnn(emb(torch.from_numpy(inputs)), (h0, c0))[0])  # (B, T, V)
    loss = torch.nn.CrossEntropyLoss()(scores.reshape(-1, 7), torch.from_numpy(targets).reshape(-1))
    loss.backward()
    np.testing.assert_allclose(result.outputs, torch.softmax(scores, -1).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["embed.E"], emb.weight.grad.numpy(), atol=1e-12)


def test_scaled_index_feeds_id_over_vocabulary_size():
    model, *_ = problem("rnn", input_kind="scaled_index", V=8)
    ids = np.array([0, 3, 7])  # (T,)
    trace = model.trace(ids)
    p = model.layer_params(0)
    x = (ids / 8.0)[:, None]  # (T, 1) as the Keras tutorial scales them
    h = np.zeros(4)
    for t in range(3):
        h = np.tanh(x[t] @ p["Wx"] + h @ p["Wh"] + p["b"])  # (H,)
        np.testing.assert_allclose(trace.gate("h")[t], h, atol=1e-14)


@pytest.mark.parametrize("input_kind", ("embedding", "scaled_index"))
def test_checkpoint_round_trip_stepping_sampling_and_equations(tmp_path, input_kind):
    vocab = CharVocab.from_text("abcd\n")
    config = ModelConfig(5, 5, hidden_size=6, input_kind=input_kind, embed_size=4 if input_kind == "embedding" else 0)
    model = SequenceModel(config, rng=np.random.default_rng(1))
    save_checkpoint(tmp_path / "m.npz", model, vocab=vocab)
    loaded = load_char_checkpoint(tmp_path / "m.npz")
    assert loaded.model.config == config
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.model.params[name], value)
    ids = vocab.encode("abcab")
    trace = model.trace(ids)
    stepper = Stepper(loaded.model, ids)
    stepper.seek(5)
    np.testing.assert_allclose(stepper.trace().gate("c"), trace.gate("c"), atol=1e-6)
    result = sample(model, vocab, prime="ab", length=4, greedy=True)
    np.testing.assert_allclose(result.trace.outputs, model.trace(vocab.encode(result.text)).outputs, atol=1e-6)
    breakdown = decompose(model, trace, 0, 2, 1)
    assert breakdown.h == pytest.approx(float(trace.gate("h")[2, 1]), abs=1e-6)


def test_checkpoint_refuses_a_vocabulary_of_the_wrong_size(tmp_path):
    model, *_ = problem(V=5)
    save_checkpoint(tmp_path / "m.npz", model, vocab=CharVocab.from_text("abc"))
    with pytest.raises(ValueError, match="vocabulary has 3 characters but the model's input_size is 5"):
        load_checkpoint(tmp_path / "m.npz")


def test_model_without_head_outputs_h_and_refuses_loss_and_sampling():
    model, inputs, targets, state, dstate = problem("gru", 2, head="none")
    assert not any(name.startswith("head.") for name in model.params)
    result = model.forward(inputs, state)
    np.testing.assert_array_equal(result.outputs, np.swapaxes(result.cache["caches"][1]["hs"][1:], 0, 1))
    trace = model.trace(inputs[0])
    np.testing.assert_array_equal(trace.outputs, trace.gate("h", 1))
    output, _, _ = model.step(inputs[:, 0], state)
    np.testing.assert_allclose(output, result.outputs[:, 0], atol=1e-14)
    with pytest.raises(ValueError, match="no output layer"):
        model.forward(inputs, state, targets)
    with pytest.raises(ValueError, match="no output layer"):
        model.loss_and_grads(inputs, targets)
    with pytest.raises(ValueError, match="no output layer"):
        sample(model, CharVocab.from_text("abcde"), length=3, greedy=True)


def test_model_without_head_gradients_of_its_outputs():
    """With ``doutputs`` the objective is ``<doutputs, h_top>``: gradient-checked by finite differences."""
    from .helpers import assert_gradients

    model, inputs, _, state, _ = problem("lstm", 2, head="none")
    dout = np.random.default_rng(3).standard_normal((2, 5, 4))  # (B, T, H)
    grads, _, _ = model.backward(model.forward(inputs, state), doutputs=dout)
    assert_gradients(lambda: float(np.sum(dout * model.forward(inputs, state).outputs)), model.params, grads)


@pytest.mark.parametrize("kwargs,message", [
    (dict(input_kind="embedding"), "embed_size must be a positive integer"),
    (dict(input_kind="onehot", embed_size=3), "embed_size is for input_kind 'embedding' only"),
    (dict(head="none", output_size=5), "output_size must equal hidden_size"),
])
def test_config_refusals(kwargs, message):
    base = dict(input_size=5, output_size=4, hidden_size=4)
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{**base, **kwargs})
