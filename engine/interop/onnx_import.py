"""ONNX import through the ``onnx`` package: ``LSTM``/``GRU`` nodes with their initializers, a
``Gather`` embedding before them and a ``MatMul`` (+ ``Add``) or ``Gemm`` head after them, with
an optional ``Softmax`` or ``Tanh``.

The graph is read in node order. Shape plumbing that exporters emit around recurrent nodes
(``Shape``, ``Squeeze``, ``Transpose``, ``Concat``, ``Expand``, ...) carries no weights and is
passed over; any other computing node is refused, naming it. Per recurrent node the gate
blocks are reordered (LSTM i, o, f, c; GRU z, r, h) and ``B`` is split into its input and
recurrent halves (``layout.from_onnx``). Refused, one line naming the node and attribute:
``direction`` other than forward, non-default ``activations``, ``clip``, ``input_forget``,
peepholes ``P``, ``sequence_lens``, non-zero constant initial states, and GRU
``linear_before_reset=0`` (the candidate's recurrent term reset before the product, Keras
``reset_after=False``). A ``Gather`` from an identity matrix is a one-hot input; ``Cast`` +
``Div`` by a constant (lstmviz's own export) is a scaled index.
"""

from __future__ import annotations

import os

import numpy as np

from .layout import InteropError, Loaded, Recognised, from_onnx

PLUMBING = {"Shape", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Concat", "Constant", "ConstantOfShape",
            "Expand", "Slice", "Cast", "Identity", "Dropout", "Flatten", "Gather"}
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def read_onnx(source: str):
    """The ``ModelProto`` at ``source``; ``InteropError`` when onnx is missing or the file is bad."""
    try:
        import onnx
    except ImportError:
        raise InteropError(f"{source}: reading ONNX needs the 'onnx' package (pip install 'lstmviz[import]')") from None
    if not os.path.isfile(source):
        raise InteropError(f"{source}: no such file")
    try:
        proto = onnx.load(source)
    except Exception as e:  # protobuf DecodeError, ValueError, OSError for bad or truncated files
        raise InteropError(f"{source}: not a readable ONNX model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not proto.graph.node:
        raise InteropError(f"{source}: not a readable ONNX model (the graph has no nodes)")
    return proto


def load(source: str, prefixes=()) -> Loaded:
    """Read and recognise ``source``; parity runs onnxruntime when installed (``prefixes`` unused)."""
    proto = read_onnx(source)
    found, recurrent = recognise(proto.graph, source)

    def check(model, rng) -> str:
        return parity(proto, recurrent, found, model, rng)

    return Loaded(found, check)


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def recognise(graph, source: str) -> tuple:
    """``(Recognised, recurrent nodes)`` for an ONNX graph (module docstring)."""
    from onnx import numpy_helper

    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    found, recurrent, cell = None, [], None
    embed = onehot_size = scale = None
    head_W = head_b = activation = None
    for node in graph.node:
        op, label = node.op_type, f"node {node.name or node.output[0]!r} ({node.op_type})"
        if op in ("LSTM", "GRU"):
            if head_W is not None:
                raise InteropError(f"{source}: {label} comes after the output layer")
            kind = op.lower()
            if cell is not None and kind != cell:
                raise InteropError(f"{source}: {label}: mixed LSTM and GRU layers are not supported")
            cell = kind
            recurrent.append(node)
            layer = _recurrent_layer(node, consts, source, label)
            found = found or Recognised(cell=cell, layers=[])
            found.layers.append(layer)
        elif op == "Gather" and node.input[0] in consts and consts[node.input[0]].ndim == 2:
            if recurrent:
                raise InteropError(f"{source}: {label}: a table lookup after the recurrent layers is not supported")
            table = consts[node.input[0]]
            if table.shape[0] == table.shape[1] and np.array_equal(table, np.eye(table.shape[0])):
                onehot_size = table.shape[0]
            else:
                embed = table.copy()  # (V, E)
        elif op == "Div" and not recurrent and node.input[1] in consts and consts[node.input[1]].size == 1:
            scale = float(consts[node.input[1]].reshape(()))
        elif op in ("MatMul", "Gemm") and recurrent and head_W is None:
            head_W, head_b = _head(node, consts, source, label)
        elif op == "Add" and head_W is not None and head_b is None and any(i in consts for i in node.input):
            head_b = np.asarray(consts[next(i for i in node.input if i in consts)]).reshape(-1)  # (O,)
        elif op in ("Softmax", "Tanh") and head_W is not None and activation is None:
            activation = "softmax" if op == "Softmax" else "tanh"
        elif op in PLUMBING:
            continue
        else:
            where = "after the output layer" if head_W is not None else (
                "between or after the recurrent layers" if recurrent else "before the recurrent layers")
            raise InteropError(f"{source}: {label} {where} is not supported; only LSTM/GRU, a Gather embedding "
                               "and a MatMul/Gemm head can be stepped exactly")
    if found is None:
        raise InteropError(f"{source}: no ONNX LSTM or GRU node found")
    found.embed = embed
    found.scaled_index = scale is not None
    found.index_scale = scale
    if head_W is not None:
        if head_b is None:
            head_b = np.zeros(head_W.shape[1], head_W.dtype)  # (O,)
        found.head = (head_W, head_b)
        found.head_activation = activation or ("softmax" if embed is not None or onehot_size else "linear")
    found.names = {"recurrent": [n.name or n.output[0] for n in recurrent]}
    return found, recurrent


def _recurrent_layer(node, consts: dict, source: str, label: str) -> dict:
    attrs = _attrs(node)
    op = node.op_type
    if attrs.get("direction", b"forward") not in (b"forward", "forward"):
        raise InteropError(f"{source}: {label}: direction={attrs['direction']!r} (bidirectional or reverse) "
                           "is not supported")
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    if acts and acts != DEFAULT_ACTIVATIONS[op]:
        raise InteropError(f"{source}: {label}: activations={acts} are not the default {DEFAULT_ACTIVATIONS[op]}")
    for name in ("clip", "activation_alpha", "activation_beta"):
        if name in attrs:
            raise InteropError(f"{source}: {label}: attribute {name} is not supported")
    if attrs.get("input_forget", 0):
        raise InteropError(f"{source}: {label}: input_forget=1 (coupled input and forget gates) is not supported")
    if op == "GRU" and attrs.get("linear_before_reset", 0) != 1:
        raise InteropError(f"{source}: {label}: linear_before_reset=0 (Keras reset_after=False) is not supported; "
                           "only the PyTorch form, linear_before_reset=1, can be stepped exactly")
    inputs = list(node.input) + [""] * (8 - len(node.input))
    if inputs[4]:
        raise InteropError(f"{source}: {label}: sequence_lens is not supported (every sequence runs to its end)")
    if op == "LSTM" and inputs[7]:
        raise InteropError(f"{source}: {label}: peepholes (input P) are not supported")
    for slot in (5, 6):
        if inputs[slot] in consts and np.any(consts[inputs[slot]]):
            raise InteropError(f"{source}: {label}: a non-zero constant initial state is not supported")
    for slot, name in ((1, "W"), (2, "R")):
        if inputs[slot] not in consts:
            raise InteropError(f"{source}: {label}: weight {name} is not a constant initializer")
    W, R = consts[inputs[1]], consts[inputs[2]]
    if W.shape[0] != 1:
        raise InteropError(f"{source}: {label}: {W.shape[0]} directions (bidirectional) are not supported")
    B = consts.get(inputs[3]) if inputs[3] else None
    return from_onnx(op.lower(), W, R, B)


def _head(node, consts: dict, source: str, label: str) -> tuple:
    """``(W (H, O), b (O,) or None)`` from a MatMul or Gemm node whose weight is a constant."""
    if node.input[1] not in consts:
        raise InteropError(f"{source}: {label}: the output layer's weight is not a constant initializer")
    W = np.asarray(consts[node.input[1]])  # (H, O) or (O, H)
    if node.op_type == "MatMul":
        return W.copy(), None
    attrs = _attrs(node)
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        raise InteropError(f"{source}: {label}: Gemm with alpha, beta or transA is not supported")
    W = W.T.copy() if attrs.get("transB", 0) else W.copy()
    b = np.asarray(consts[node.input[2]]).reshape(-1) if len(node.input) > 2 and node.input[2] in consts else None
    return W, b


def parity(proto, recurrent: list, found: Recognised, model, rng: np.random.Generator) -> str:
    """Run the ONNX graph in onnxruntime and ``model`` on the same random input; one line."""
    try:
        import onnxruntime
    except ImportError:
        return ("parity: onnxruntime is not installed, so the source was not run; checked instead: every "
                "node, attribute and initializer shape of the graph")
    import onnx
    from onnx import helper

    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # a copy to add outputs to
    init_names = {i.name for i in proto.graph.initializer}
    graph_input = next(i for i in proto.graph.input if i.name not in init_names)
    dims = [d.dim_value if d.dim_value > 0 else None for d in graph_input.type.tensor_type.shape.dim]
    B, T = dims[0] or 2, dims[1] or 7
    cfg = model.config
    if cfg.input_kind == "dense":
        inputs = rng.standard_normal((B, T, cfg.input_size)).astype(np.float32)  # (B, T, D)
    else:
        inputs = rng.integers(0, cfg.input_size, (B, T))  # (B, T)
    elem = graph_input.type.tensor_type.elem_type
    feed = inputs.astype(helper.tensor_dtype_to_np_dtype(elem))
    finals = {(k, j): node.output[j + 1] for k, node in enumerate(recurrent) for j in (0, 1)
              if len(node.output) > j + 1 and node.output[j + 1]}  # (layer, state index) -> Y_h / Y_c
    existing = {o.name for o in proto.graph.output}
    for name in finals.values():
        if name not in existing:
            proto.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, {graph_input.name: feed})))
    out = np.asarray(results[proto.graph.output[0].name], np.float64)
    if cfg.head == "softmax" and found.head_activation == "softmax" and not any(
            n.op_type == "Softmax" for n in proto.graph.node):
        out = np.exp(out - out.max(-1, keepdims=True))
        out /= out.sum(-1, keepdims=True)  # the graph ends in logits: compare probabilities
    ours = model.forward(inputs)
    if out.shape != ours.outputs.shape:
        return (f"parity with onnxruntime {onnxruntime.__version__}: the graph's first output has shape {out.shape}, "
                f"ours {ours.outputs.shape}: outputs not compared")
    d_out = float(np.abs(ours.outputs - out).max())
    d_state = max(float(np.abs(ours.state[k][j] - results[name].reshape(B, -1)).max())
                  for (k, j), name in finals.items())
    return (f"parity with onnxruntime {onnxruntime.__version__} (float32, {B}x{T} random inputs): "
            f"max |d outputs| = {d_out:.2e}, max |d final state| = {d_state:.2e}")
