"""Trace files: exact round trip, layout, and one-line refusals of unreadable files."""

import numpy as np
import pytest

from engine.data import CharVocab
from engine.errors import DataError
from engine.model import ModelConfig, SequenceModel
from engine.trace_io import load_trace_npz, save_trace_npz


def model(cell="lstm", layers=2, input_kind="onehot", head="softmax", V=5):
    config = ModelConfig(V, V, cell=cell, hidden_size=6, num_layers=layers, input_kind=input_kind, head=head)
    return SequenceModel(config, rng=np.random.default_rng(0))


@pytest.mark.parametrize("cell, names", [("lstm", "ifgoch"), ("rnn", "h")])
def test_round_trip_equals_the_trace(tmp_path, cell, names):
    vocab = CharVocab.from_text("abcde")
    text = "abcdeedcba"
    trace = model(cell).trace(vocab.encode(text), text=text)
    path = tmp_path / "t.npz"
    save_trace_npz(path, trace, vocab)
    data = load_trace_npz(path)
    layer_keys = sorted(k for k in data if k.startswith("layer"))
    assert layer_keys == sorted(f"layer{k}_{n}" for k in range(2) for n in names)
    for k in range(2):
        for n in names:
            np.testing.assert_array_equal(data[f"layer{k}_{n}"], trace.gate(n, k))
    np.testing.assert_array_equal(data["probs"], trace.outputs)
    np.testing.assert_array_equal(data["inputs"], vocab.encode(text))
    assert "".join(data["chars"]) == text and "".join(data["vocab"]) == "abcde"
    assert str(data["cell"]) == cell
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_chars_from_vocab_when_trace_has_no_text(tmp_path):
    vocab = CharVocab.from_text("abcde")
    trace = model().trace(vocab.encode("cab"))
    save_trace_npz(tmp_path / "t.npz", trace, vocab)
    assert "".join(load_trace_npz(tmp_path / "t.npz")["chars"]) == "cab"


def test_dense_model_writes_outputs_not_probs(tmp_path):
    m = model(input_kind="dense", head="linear", V=3, layers=1)
    values = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)  # (T, D)
    save_trace_npz(tmp_path / "t.npz", m.trace(values))
    data = load_trace_npz(tmp_path / "t.npz")
    assert "probs" not in data and "chars" not in data and "vocab" not in data
    np.testing.assert_array_equal(data["outputs"], m.trace(values).outputs)


@pytest.mark.parametrize("content, message", [
    (None, "no such trace file"),
    (b"not a zip at all", "not a readable trace file"),
    ("npy", "single .npy array"),
])
def test_unreadable_files_raise_data_error(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.arange(3))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_trace_npz(path)
