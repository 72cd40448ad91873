"""Model files holding two recurrent stacks, written by each framework itself (PyTorch
``torch.save``, Keras 3 ``model.save``, ``torch.onnx.export``): a character model whose
embedding feeds two branches, ``a`` (2 layers, 5 units) and ``b`` (1 layer, 3 units), each with
its own softmax/linear output over the vocabulary. The branch's hidden size tells which one was
imported. Shared by the CLI and app import tests."""

import os
import warnings

import pytest

BRANCH_UNITS = {"a": 5, "b": 3}


def torch_two_stacks(path, V: int):
    """A state_dict with modules ``embed``, ``rnn_a``, ``rnn_b``, ``head_a``, ``head_b``;
    returns the candidates the importer lists (module names)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.save(TorchTwo(torch, V).state_dict(), path)
    return ["rnn_a", "rnn_b"]


def TorchTwo(torch, V: int, E: int = 4):
    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, E)
            self.rnn_a = torch.nn.LSTM(E, BRANCH_UNITS["a"], 2, batch_first=True)
            self.rnn_b = torch.nn.LSTM(E, BRANCH_UNITS["b"], 1, batch_first=True)
            self.head_a = torch.nn.Linear(BRANCH_UNITS["a"], V)
            self.head_b = torch.nn.Linear(BRANCH_UNITS["b"], V)

        def forward(self, ids):
            e = self.embed(ids)
            return self.head_a(self.rnn_a(e)[0]), self.head_b(self.rnn_b(e)[0])

    return Two().eval()


def onnx_two_stacks(path, V: int, T: int = 6):
    """The same module exported by ``torch.onnx.export``; returns the candidates (first nodes)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TorchTwo(torch, V), (torch.zeros(1, T, dtype=torch.long),), str(path), dynamo=False)
    return ["/rnn_a/LSTM", "/rnn_b/LSTM"]


def keras_two_stacks(path, V: int):
    """A Keras 3 functional model: ids -> Embedding -> (LSTM a1 -> LSTM a2 -> Dense head_a) and
    (LSTM b -> Dense head_b); returns the candidates (each stack's last layer)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int32", name="ids")
    emb = keras.layers.Embedding(V, 4, name="emb")(ids)
    a = keras.layers.LSTM(BRANCH_UNITS["a"], return_sequences=True, name="a1")(emb)
    a = keras.layers.LSTM(BRANCH_UNITS["a"], return_sequences=True, name="a2")(a)
    b = keras.layers.LSTM(BRANCH_UNITS["b"], return_sequences=True, name="b")(emb)
    outputs = [keras.layers.Dense(V, activation="softmax", name=f"head_{k}")(x) for k, x in (("a", a), ("b", b))]
    keras.Model(ids, outputs).save(path)
    return ["a2", "b"]


BUILDERS = {"torch": (torch_two_stacks, ".pt"), "keras": (keras_two_stacks, ".keras"),
            "onnx": (onnx_two_stacks, ".onnx")}


def two_stacks(framework: str, directory, V: int) -> tuple:
    """``(path, candidates)`` of the two-stack file of ``framework``."""
    build, suffix = BUILDERS[framework]
    path = directory / f"two{suffix}"
    return path, build(path, V)
