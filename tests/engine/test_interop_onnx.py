"""ONNX import (graphs exported by ``torch.onnx.export``, run by onnxruntime), ONNX export (run
by onnxruntime), and every refusal of a graph that cannot be stepped exactly."""

import re
import warnings

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.interop import InteropError, import_model
from engine.interop.export import export_weights

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402


def run_onnx(path, inputs) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})


def torch_export(tmp_path, cell, layers, V=7, E=3, H=5, T=6):
    torch = pytest.importorskip("torch")
    torch.manual_seed(layers)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, E)
            self.rnn = getattr(torch.nn, cell)(E, H, layers, batch_first=True)
            self.head = torch.nn.Linear(H, V)

        def forward(self, ids):
            return self.head(self.rnn(self.embed(ids))[0])

    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().eval(), (torch.zeros(1, T, dtype=torch.long),), str(path), dynamo=False)
    return path


@pytest.mark.parametrize("cell", ("LSTM", "GRU"))
@pytest.mark.parametrize("layers", (1, 2))
def test_import_of_a_torch_onnx_export_matches_onnxruntime(tmp_path, cell, layers):
    path = torch_export(tmp_path, cell, layers)
    result = import_model(path, vocab_chars="abcdefg")
    cfg = result.model.config
    assert (cfg.cell, cfg.num_layers, cfg.input_kind, cfg.head) == (cell.lower(), layers, "embedding", "softmax")
    parity = next(line for line in result.report if line.startswith("parity with onnxruntime"))
    assert max(float(x) for x in re.findall(r"= ([0-9.e+-]+)", parity)) <= 1e-5
    ids = np.random.default_rng(0).integers(0, 7, (1, 6))  # (B, T) the exported fixed shape
    logits = run_onnx(path, ids)[0]  # (B, T, V)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (B, T, V)
    np.testing.assert_allclose(result.model.forward(ids).outputs, probs, atol=1e-6)


@pytest.mark.parametrize("cell", ("lstm", "gru", "rnn"))
@pytest.mark.parametrize("input_kind,head", [("embedding", "softmax"), ("onehot", "tanh"),
                                             ("scaled_index", "none"), ("dense", "linear")])
def test_export_runs_in_onnxruntime_with_the_same_outputs(tmp_path, cell, input_kind, head):
    config = ModelConfig(6, 4 if head == "none" else 6, cell=cell, hidden_size=4, num_layers=2,
                         input_kind=input_kind, head=head, embed_size=3 if input_kind == "embedding" else 0)
    model = SequenceModel(config, rng=np.random.default_rng(1))
    export_weights(model, tmp_path / "m.onnx", "onnx")
    rng = np.random.default_rng(2)
    inputs = rng.standard_normal((3, 5, 6)).astype(np.float32) if input_kind == "dense" else rng.integers(0, 6, (3, 5))
    outputs, h_n, *c_n = run_onnx(tmp_path / "m.onnx", inputs)
    ours = model.forward(inputs)
    np.testing.assert_allclose(outputs, ours.outputs, atol=1e-6)
    np.testing.assert_allclose(h_n, np.stack([s[0] for s in ours.state]), atol=1e-6)
    if cell == "lstm":
        np.testing.assert_allclose(c_n[0], np.stack([s[1] for s in ours.state]), atol=1e-6)
    if cell != "rnn":  # ONNX RNN nodes are export-only
        back = import_model(tmp_path / "m.onnx", vocab_chars=None if input_kind == "dense" else "abcdef")
        for name, value in model.params.items():
            np.testing.assert_allclose(back.model.params[name], value, atol=1e-7)


def exported(tmp_path, cell="lstm"):
    model = SequenceModel(ModelConfig(5, 5, cell=cell, hidden_size=3, num_layers=2), rng=np.random.default_rng(0))
    export_weights(model, tmp_path / "ok.onnx", "onnx")
    return onnx.load(str(tmp_path / "ok.onnx"))


def save(tmp_path, proto, name="bad.onnx"):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


def first(proto, op):
    return next(n for n in proto.graph.node if n.op_type == op)


@pytest.mark.parametrize("cell,attribute,value,message", [
    ("lstm", "direction", "bidirectional", "direction=.*bidirectional"),
    ("lstm", "activations", ["HardSigmoid", "Tanh", "Tanh"], "activations=.*HardSigmoid"),
    ("lstm", "clip", 3.0, "attribute clip"),
    ("lstm", "input_forget", 1, "input_forget=1"),
    ("gru", "linear_before_reset", 0, "linear_before_reset=0"),
])
def test_attribute_refusals_name_the_node(tmp_path, cell, attribute, value, message):
    proto = exported(tmp_path, cell)
    node = first(proto, cell.upper())
    kept = [a for a in node.attribute if a.name != attribute]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute(attribute, value)])
    with pytest.raises(InteropError, match=rf"node 'Y0' \({cell.upper()}\): {message}"):
        import_model(save(tmp_path, proto))


def test_peepholes_are_refused(tmp_path):
    proto = exported(tmp_path)
    node = first(proto, "LSTM")
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros((1, 9), np.float32), "P0"))
    node.input.extend(["", "", "", "P0"])
    with pytest.raises(InteropError, match="peepholes"):
        import_model(save(tmp_path, proto))


def test_a_layer_between_the_recurrent_ones_is_refused(tmp_path):
    proto = exported(tmp_path)
    nodes = list(proto.graph.node)
    k = next(i for i, n in enumerate(nodes) if n.output[0] == "h0")
    nodes.insert(k + 1, helper.make_node("Relu", ["h0"], ["h0_relu"], name="extra_relu"))
    for n in nodes[k + 2:]:
        n.input[:] = ["h0_relu" if i == "h0" else i for i in n.input]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    with pytest.raises(InteropError, match=r"node 'extra_relu' \(Relu\) between or after the recurrent layers"):
        import_model(save(tmp_path, proto))


def test_broken_files_are_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage that is not protobuf \xff\xff")
    with pytest.raises(InteropError, match="junk.onnx: not a readable ONNX model"):
        import_model(tmp_path / "junk.onnx")
    data = exported(tmp_path).SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(InteropError, match="cut.onnx"):
        import_model(tmp_path / "cut.onnx")
