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


def char_net(cell, layers, seed, batch_first=True, V=7, E=3, H=5):
    """``nn.Embedding(V, E) -> nn.LSTM/nn.GRU(E, H, layers, batch_first) -> nn.Linear(H, V)``,
    initialised from torch seed ``seed``, in eval mode."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, E)
            self.rnn = getattr(torch.nn, cell)(E, H, layers, batch_first=batch_first)
            self.head = torch.nn.Linear(H, V)

        def forward(self, ids):
            return self.head(self.rnn(self.embed(ids))[0])

    return Net().eval()


def torch_export(tmp_path, cell, layers, T=6):
    torch = pytest.importorskip("torch")
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(char_net(cell, layers, layers), (torch.zeros(1, T, dtype=torch.long),), str(path),
                          dynamo=False)
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


# --- input arrangement: time-major graphs, Transposes, the layout attribute ---------------------------
def torch_export_arranged(tmp_path, cell, batch_first, T=6, B=2):
    """``char_net`` with 2 layers exported with ids of shape ``(B, T)`` (batch_first) or
    ``(T, B)``; returns the path and the torch module."""
    torch = pytest.importorskip("torch")
    net = char_net(cell, 2, 3, batch_first)
    path = tmp_path / f"{cell}_{batch_first}.onnx"
    shape = (B, T) if batch_first else (T, B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(*shape, dtype=torch.long),), str(path), dynamo=False)
    return path, net


def parity_numbers(report) -> list:
    line = next(line for line in report if line.startswith("parity with onnxruntime"))
    return [float(x) for x in re.findall(r"= ([0-9.e+-]+)", line)]


@pytest.mark.parametrize("cell", ("LSTM", "GRU"))
@pytest.mark.parametrize("batch_first", (False, True))
def test_torch_exports_batch_first_or_time_major_import_with_parity(tmp_path, cell, batch_first):
    torch = pytest.importorskip("torch")
    path, net = torch_export_arranged(tmp_path, cell, batch_first)
    result = import_model(path, vocab_chars="abcdefg")
    line = next(line for line in result.report if line.startswith("parity with onnxruntime"))
    assert ("[batch x time]" if batch_first else "[time x batch]") in line
    assert max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(4).integers(0, 7, (2, 6))  # (B, T)
    with torch.no_grad():
        source = torch.from_numpy(ids if batch_first else ids.T.copy())
        logits = net(source).numpy()  # (B, T, V) or (T, B, V)
    logits = logits if batch_first else logits.transpose(1, 0, 2)  # (B, T, V)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (B, T, V)
    np.testing.assert_allclose(result.model.forward(ids).outputs, probs, atol=1e-6)


def hand_built(tmp_path, layout, input_perm=None, name="hand.onnx", H=4, D=3, V=5, B=2, T=6, state_input=False):
    """An ``LSTM`` node with ``layout`` read from a dense graph input, then ``Squeeze`` of the
    direction axis and a ``MatMul`` + ``Add`` head; ``input_perm``: a ``Transpose`` between input and node.
    ``state_input``: ``initial_h`` is a graph input ``h0``. Returns the path and the
    ``SequenceModel`` whose weights it holds."""
    from engine.interop.layout import to_onnx

    model = SequenceModel(ModelConfig(D, V, hidden_size=H, input_kind="dense", head="linear"),
                          rng=np.random.default_rng(5))
    W, R, Bias = to_onnx("lstm", model.layer_params(0))
    inits = [onnx.numpy_helper.from_array(np.asarray(a, np.float32), n)
             for n, a in (("W", W), ("R", R), ("B", Bias), ("head.W", model.params["head.W"]),
                          ("head.b", model.params["head.b"]))]
    inits.append(onnx.numpy_helper.from_array(np.array([2 if layout == 1 else 1], np.int64), "dir_axis"))
    x, nodes = "x", []
    if input_perm is not None:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_t"], perm=input_perm, name="to_node"))
        x = "x_t"
    states = ["", "h0"] if state_input else []
    nodes += [helper.make_node("LSTM", [x, "W", "R", "B", *states], ["Y", "Y_h", "Y_c"], hidden_size=H,
                               layout=layout, name="lstm"),
              helper.make_node("Squeeze", ["Y", "dir_axis"], ["h"], name="drop_dirs"),
              helper.make_node("MatMul", ["h", "head.W"], ["scores"], name="head"),
              helper.make_node("Add", ["scores", "head.b"], ["out"], name="head_bias")]
    given = {0: ["T", "B", D], 1: ["B", "T", D]}[layout]
    if input_perm is not None:
        given = [given[input_perm.index(k)] for k in range(3)]
    graph_inputs = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, given)]
    if state_input:
        graph_inputs.append(helper.make_tensor_value_info("h0", onnx.TensorProto.FLOAT,
                                                          ["B", 1, H] if layout == 1 else [1, "B", H]))
    graph = helper.make_graph(nodes, "hand", graph_inputs,
                              [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, given[:2] + [V])],
                              initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return save(tmp_path, proto, name), model


@pytest.mark.parametrize("layout,perm,fed", [(1, None, "[batch x time x features]"),
                                             (0, None, "[time x batch x features]"),
                                             (0, [1, 0, 2], "[batch x time x features]"),
                                             (1, [1, 0, 2], "[time x batch x features]")])
def test_hand_built_graphs_with_layout_and_transposes(tmp_path, layout, perm, fed):
    path, model = hand_built(tmp_path, layout, perm)
    result = import_model(path)
    for name, value in model.params.items():
        np.testing.assert_array_equal(result.model.params[name], value)
    line = next(line for line in result.report if line.startswith("parity with onnxruntime"))
    assert fed in line and max(parity_numbers(result.report)) <= 1e-5
    if layout == 0:  # onnxruntime runs layout=0 nodes only (the parity line says how layout=1 was run)
        x = np.random.default_rng(6).standard_normal((2, 6, 3)).astype(np.float32)  # (B, T, D)
        out = run_onnx(path, x if perm else x.transpose(1, 0, 2))[0]  # (T, B, O)
        np.testing.assert_allclose(out.transpose(1, 0, 2), model.forward(x).outputs, atol=1e-6)
    else:
        assert "1 layout=1 node(s) run as their specified equivalent" in line


@pytest.mark.parametrize("edit,message", [
    ("layout=2", r"node 'lstm' \(LSTM\): layout=2 is not 0 or 1"),
    ("reshape", r"node 'to_node' \(Reshape\) before the recurrent layers is not supported"),
    ("squeeze without axes", r"node 'drop_dirs' \(Squeeze\): no axes given"),
])
def test_arrangements_that_cannot_be_established_are_refused(tmp_path, edit, message):
    path, _ = hand_built(tmp_path, 1)
    proto = onnx.load(str(path))
    lstm = first(proto, "LSTM")
    if edit == "layout=2":
        next(a for a in lstm.attribute if a.name == "layout").i = 2
    elif edit == "reshape":
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0, -1, 3], np.int64), "shape"))
        proto.graph.node.insert(0, helper.make_node("Reshape", ["x", "shape"], ["x_r"], name="to_node"))
        lstm.input[0] = "x_r"
    elif edit == "squeeze without axes":
        del first(proto, "Squeeze").input[1:]
    with pytest.raises(InteropError, match=message):
        import_model(save(tmp_path, proto, "edited.onnx"))


def with_reshape(tmp_path, shape, name):
    """``hand_built(layout=0)`` with its ``Squeeze`` of the direction axis replaced by a
    ``Reshape`` to the constant ``shape`` (as torch.onnx.export's default exporter writes it)."""
    path, model = hand_built(tmp_path, 0)
    proto = onnx.load(str(path))
    squeeze = first(proto, "Squeeze")
    proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array(shape, np.int64), "target"))
    reshape = helper.make_node("Reshape", [squeeze.input[0], "target"], list(squeeze.output), name="drop_dirs")
    nodes = [reshape if n is squeeze else n for n in proto.graph.node]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return save(tmp_path, proto, name), model


def test_a_reshape_that_drops_the_direction_axis_imports_with_parity(tmp_path):
    path, model = with_reshape(tmp_path, [0, -1, 4], "reshape.onnx")  # Y (T, 1, B, 4) -> (T, B, 4)
    result = import_model(path)
    for name, value in model.params.items():
        np.testing.assert_array_equal(result.model.params[name], value)
    assert max(parity_numbers(result.report)) <= 1e-5
    x = np.random.default_rng(7).standard_normal((3, 5, 3)).astype(np.float32)  # (B, T, D)
    out = run_onnx(path, x.transpose(1, 0, 2))[0]  # (T, B, O)
    np.testing.assert_allclose(out.transpose(1, 0, 2), model.forward(x).outputs, atol=1e-6)


@pytest.mark.parametrize("shape,axes", [([-1, 4], "time, dirs, batch, hidden"),  # time and batch merged
                                        ([0, 4, -1], "time, dirs, batch, hidden")])  # hidden units moved
def test_a_reshape_that_does_more_than_drop_size_one_axes_is_refused(tmp_path, shape, axes):
    path, _ = with_reshape(tmp_path, shape, "merged.onnx")
    with pytest.raises(InteropError, match=re.escape(f"node 'drop_dirs' (Reshape): shape={shape} does more than "
                                                     f"drop the size-one axes of [{axes}]")):
        import_model(path)


@pytest.mark.parametrize("cell,layers,B,dynamic", [("LSTM", 2, 2, True), ("GRU", 1, 1, False),
                                                   ("LSTM", 1, 2, False)])
def test_torch_default_exporter_graphs_import_with_parity(tmp_path, cell, layers, B, dynamic):
    """``torch.onnx.export``'s default exporter (``dynamo=True``, through onnxscript) writes the
    direction axis away with a ``Reshape``, computed from the data's shape when the batch and
    time are left open (``dynamic_shapes``)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    V, T = 7, 6
    net, path = char_net(cell, layers, layers), tmp_path / "dynamo.onnx"
    open_axes = {"dynamic_shapes": ({0: torch.export.Dim("batch"), 1: torch.export.Dim("time")},)} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(B, T, dtype=torch.long),), str(path), verbose=False, **open_axes)
    assert "Reshape" in {n.op_type for n in onnx.load(str(path)).graph.node}
    result = import_model(path, vocab_chars="abcdefg")
    assert max(parity_numbers(result.report)) <= 1e-5
    parity = next(line for line in result.report if line.startswith("parity with onnxruntime"))
    assert "do not output their final states (Y_h, Y_c): not compared" in parity  # the graph outputs Y only
    ids = np.random.default_rng(8).integers(0, V, (3, 4) if dynamic else (B, T))  # (B, T)
    with torch.no_grad():
        logits = net(torch.from_numpy(ids)).numpy()  # (B, T, V)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (B, T, V)
    np.testing.assert_allclose(result.model.forward(ids).outputs, probs, atol=1e-6)


@pytest.mark.parametrize("cell,dynamo", [("LSTM", True), ("LSTM", False), ("GRU", True)])
def test_a_torch_forward_taking_its_state_imports_with_zeros_fed_for_it(tmp_path, cell, dynamo):
    """``forward(ids, h0[, c0])`` of a 2-layer module: each layer's state is sliced out of one
    graph input; the parity check feeds it zeros, as the viewer starts."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    net = char_net(cell, 2, 7)
    states = ("h0", "c0") if cell == "LSTM" else ("h0",)

    class WithState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, ids, *state):
            hs, _ = self.net.rnn(self.net.embed(ids), state if cell == "LSTM" else state[0])
            return self.net.head(hs)

    B, T, H = 2, 6, 5
    zeros = tuple(torch.zeros(2, B, H) for _ in states)
    path = tmp_path / "stateful.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(WithState().eval(), (torch.zeros(B, T, dtype=torch.long), *zeros), str(path),
                          input_names=["ids", *states], dynamo=dynamo)
    result = import_model(path, vocab_chars="abcdefg")
    assert f"initial states from graph inputs, taken as zeros: {', '.join(states)}" in result.report
    assert max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(9).integers(0, 7, (B, T))  # (B, T)
    with torch.no_grad():
        logits = net(torch.from_numpy(ids)).numpy()  # (B, T, V) from zero states
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (B, T, V)
    np.testing.assert_allclose(result.model.forward(ids).outputs, probs, atol=1e-6)


def test_a_graph_reading_one_hot_vectors_imports_with_a_vocabulary_as_a_softmax_model(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(11)
    V, H = 7, 5
    rnn, head = torch.nn.LSTM(V, H, batch_first=True), torch.nn.Linear(H, V)

    class FloatIn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = rnn, head

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    path = tmp_path / "float_in.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(FloatIn().eval(), (torch.zeros(2, 6, V),), str(path), dynamo=False)
    result = import_model(path, vocab_chars="abcdefg")
    cfg = result.model.config
    assert (cfg.input_kind, cfg.head) == ("onehot", "softmax")
    assert "fed as [batch x time x features]" in next(l for l in result.report if l.startswith("parity"))
    assert max(parity_numbers(result.report)) <= 1e-5
    ids = np.random.default_rng(12).integers(0, V, (2, 6))  # (B, T)
    with torch.no_grad():
        logits = FloatIn()(torch.nn.functional.one_hot(torch.from_numpy(ids), V).float()).numpy()  # (B, T, V)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (B, T, V)
    np.testing.assert_allclose(result.model.forward(ids).outputs, probs, atol=1e-6)


@pytest.mark.parametrize("layout", (0, 1))
def test_an_initial_state_fed_as_a_graph_input_is_taken_as_zeros(tmp_path, layout):
    path, model = hand_built(tmp_path, layout, state_input=True)
    result = import_model(path)
    assert "initial states from graph inputs, taken as zeros: h0" in result.report
    assert max(parity_numbers(result.report)) <= 1e-5


def test_a_graph_onnxruntime_cannot_run_is_reported_not_compared(tmp_path):
    path, _ = hand_built(tmp_path, 0)
    proto = onnx.load(str(path))
    proto.graph.input.append(helper.make_tensor_value_info("unused_flag", onnx.TensorProto.FLOAT, [1]))
    proto.graph.node.append(helper.make_node("Identity", ["unused_flag"], ["flag_out"], name="flag"))
    proto.graph.output.append(helper.make_tensor_value_info("flag_out", onnx.TensorProto.FLOAT, [1]))
    result = import_model(save(tmp_path, proto, "extra_input.onnx"))
    line = next(line for line in result.report if line.startswith("parity"))
    assert line.startswith("parity: onnxruntime") and "could not run the graph" in line
    assert line.endswith("not compared")


def test_a_transpose_that_moves_the_features_onto_the_batch_axis_is_refused(tmp_path):
    proto = exported(tmp_path)  # Gather (one-hot) -> Transpose [1, 0, 2] -> LSTM layout 0
    transpose = first(proto, "Transpose")
    next(a for a in transpose.attribute if a.name == "perm").ints[:] = [0, 2, 1]
    with pytest.raises(InteropError, match=r"node 'Y0' \(LSTM\): layout=0 reads axis 1 of X as the batch axis, "
                                           r"but it is the features axis"):
        import_model(save(tmp_path, proto), vocab_chars="abcde")


def test_a_model_that_differs_from_its_source_is_refused(tmp_path, monkeypatch):
    from engine.interop import onnx_import
    from engine.interop.layout import Parity

    path, _ = hand_built(tmp_path, 1)
    monkeypatch.setattr(onnx_import, "parity", lambda *args: Parity("parity with onnxruntime: max |d| = 3e-01", 0.3))
    with pytest.raises(InteropError, match=r"hand.onnx: refused: the imported model differs from the source by "
                                           r"3.00e-01 \(more than 0.0001\)"):
        import_model(path)


# --- several recurrent stacks -----------------------------------------------------------------------
def two_branches(tmp_path, H=4, D=3):
    """Two LSTM nodes reading the same input, not fed by one another, each with its own output;
    returns the path and the two ``SequenceModel``s (headless, dense input) they hold."""
    from engine.interop.layout import to_onnx

    models, inits, nodes, outputs = [], [], [], []
    for k, branch in enumerate(("enc", "aux")):
        model = SequenceModel(ModelConfig(D, H, hidden_size=H, input_kind="dense", head="none"),
                              rng=np.random.default_rng(10 + k))
        models.append(model)
        W, R, Bias = to_onnx("lstm", model.layer_params(0))
        inits += [onnx.numpy_helper.from_array(np.asarray(a, np.float32), f"{branch}.{n}")
                  for n, a in (("W", W), ("R", R), ("B", Bias))]
        nodes.append(helper.make_node("LSTM", ["x", f"{branch}.W", f"{branch}.R", f"{branch}.B"],
                                      [f"{branch}_Y", f"{branch}_h"], hidden_size=H, layout=1, name=f"/{branch}/LSTM"))
        outputs.append(helper.make_tensor_value_info(f"{branch}_Y", onnx.TensorProto.FLOAT, ["B", "T", 1, H]))
    graph = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["B", "T", D])],
                              outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return save(tmp_path, proto, "two.onnx"), models


def test_several_recurrent_stacks_are_listed_and_chosen_by_prefix(tmp_path):
    from engine.interop import AmbiguousModules

    path, models = two_branches(tmp_path)
    with pytest.raises(AmbiguousModules, match=r"several recurrent stacks.*'/enc/LSTM', '/aux/LSTM'.*--layer-prefix") \
            as e:
        import_model(path)
    assert (e.value.role, e.value.candidates, e.value.several) == ("recurrent", ["/enc/LSTM", "/aux/LSTM"], False)
    for prefix, model in (("/aux/LSTM", models[1]), ("enc", models[0]), ("aux.W", models[1])):
        result = import_model(path, prefixes=[prefix])
        for name, value in model.params.items():
            np.testing.assert_array_equal(result.model.params[name], value)
        assert result.model.config.head == "none" and max(parity_numbers(result.report)) <= 1e-5
