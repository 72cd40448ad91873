"""Export a ``SequenceModel`` for PyTorch (``torch.save`` state_dict or ``.safetensors``) and
ONNX (a graph built with the ``onnx`` helper API, run by onnxruntime).

PyTorch module names (``torch_modules`` builds the matching module)::

    embed   nn.Embedding(V, E)                       input_kind "embedding" only
    rnn     nn.LSTM / nn.GRU / nn.RNN(D, H, L, batch_first=True)
    head    nn.Linear(H, O)                          absent for head "none"

    state_dict keys: embed.weight, rnn.weight_ih_l{k}, rnn.weight_hh_l{k}, rnn.bias_ih_l{k},
    rnn.bias_hh_l{k}, head.weight, head.bias

The recurrent input is ``embed(ids)`` (embedding), ``one_hot(ids, V)`` (one-hot),
``(ids / V)[..., None]`` (scaled index) or the values themselves (dense); the outputs are
``softmax(head(h))`` (softmax head), ``head(h)`` (linear), ``tanh(head(h))`` or ``h`` (none).
Biases: ours go to ``bias_ih``; ``bias_hh`` is zero except a GRU's n part (``bhn``), see
``layout.to_torch``.

ONNX graph (opset 17): input ``inputs`` int64 ``[B, T]`` token ids (float ``[B, T, D]`` for
dense input), outputs ``outputs [B, T, O]`` (as above), ``h_n [L, B, H]`` and, for an LSTM,
``c_n [L, B, H]``. One ``LSTM``/``GRU``/``RNN`` node per layer (``layout.to_onnx``; GRU with
``linear_before_reset=1``, PyTorch's and Keras ``reset_after`` equations).
"""

from __future__ import annotations

import os

import numpy as np

from ..atomic import atomic_writer
from ..model import SequenceModel
from .layout import InteropError, to_onnx, to_torch

FORMATS = ("torch", "safetensors", "onnx")
ONNX_OPSET = 17


def state_dict_arrays(model: SequenceModel) -> dict:
    """``{torch name: float32/float64 ndarray}`` in the module docstring's names."""
    out = {}
    if model.config.input_kind == "embedding":
        out["embed.weight"] = model.params["embed.E"]  # (V, E)
    for k, cell in enumerate(model.cells):
        w_ih, w_hh, b_ih, b_hh = to_torch(cell.kind, model.layer_params(k))
        out.update({f"rnn.weight_ih_l{k}": w_ih, f"rnn.weight_hh_l{k}": w_hh,
                    f"rnn.bias_ih_l{k}": b_ih, f"rnn.bias_hh_l{k}": b_hh})
    if model.config.head != "none":
        out["head.weight"] = model.params["head.W"].T  # (O, H)
        out["head.bias"] = model.params["head.b"]  # (O,)
    return {name: np.ascontiguousarray(value) for name, value in out.items()}


def torch_modules(model: SequenceModel):
    """An ``nn.Module`` with ``model``'s architecture and torch's default initialisation (load
    ``state_dict_arrays`` into it for the weights); ``forward(inputs)`` returns ``(outputs,
    finals)`` with ``finals`` ``(h_n,)`` or ``(h_n, c_n)``, each ``(L, B, H)``. Needs torch."""
    import torch

    cfg = model.config
    dtype = getattr(torch, cfg.dtype)

    class TorchModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if cfg.input_kind == "embedding":
                self.embed = torch.nn.Embedding(cfg.input_size, cfg.embed_size, dtype=dtype)
            rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cfg.cell]
            self.rnn = rnn_class(cfg.layer0_size, cfg.hidden_size, cfg.num_layers, batch_first=True, dtype=dtype)
            if cfg.head != "none":
                self.head = torch.nn.Linear(cfg.hidden_size, cfg.output_size, dtype=dtype)

        def forward(self, inputs):
            if cfg.input_kind == "embedding":
                x = self.embed(inputs)  # (B, T, E)
            elif cfg.input_kind == "onehot":
                x = torch.nn.functional.one_hot(inputs, cfg.input_size).to(dtype)  # (B, T, V)
            elif cfg.input_kind == "scaled_index":
                x = (inputs.to(torch.float64) / cfg.input_size).to(dtype)[..., None]  # (B, T, 1)
            else:
                x = inputs.to(dtype)  # (B, T, D)
            hs, finals = self.rnn(x)  # (B, T, H)
            finals = finals if isinstance(finals, tuple) else (finals,)
            if cfg.head == "none":
                return hs, finals
            scores = self.head(hs)  # (B, T, O)
            if cfg.head == "softmax":
                return torch.softmax(scores, dim=-1), finals
            return (torch.tanh(scores) if cfg.head == "tanh" else scores), finals

    return TorchModel().eval()


def export_weights(model: SequenceModel, path, fmt: str) -> None:
    """Write ``model`` to ``path`` atomically as ``fmt`` ("torch", "safetensors" or "onnx").
    ``InteropError`` when the needed package is missing or ``fmt`` is unknown."""
    name = os.fspath(path)
    if fmt == "torch":
        try:
            import torch
        except ImportError:
            raise InteropError(f"{name}: writing a torch.save file needs PyTorch; use --format safetensors") from None
        state = {k: torch.from_numpy(v.copy()) for k, v in state_dict_arrays(model).items()}
        with atomic_writer(name, "wb") as f:
            torch.save(state, f)
    elif fmt == "safetensors":
        try:
            from safetensors.numpy import save
        except ImportError:
            raise InteropError(f"{name}: writing .safetensors needs the 'safetensors' package") from None
        data = save(state_dict_arrays(model), metadata={"format": "pt", "lstmviz": model.config.cell})
        with atomic_writer(name, "wb") as f:
            f.write(data)
    elif fmt == "onnx":
        graph = onnx_model(model)
        with atomic_writer(name, "wb") as f:
            f.write(graph.SerializeToString())
    else:
        raise InteropError(f"unknown export format {fmt!r}; expected one of {FORMATS}")


def onnx_model(model: SequenceModel):
    """The ONNX ``ModelProto`` of ``model`` (module docstring), checked by ``onnx.checker``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise InteropError("writing ONNX needs the 'onnx' package (pip install 'lstmviz[import]')") from None
    cfg = model.config
    elem = TensorProto.FLOAT if cfg.dtype == "float32" else TensorProto.DOUBLE
    H, L = cfg.hidden_size, cfg.num_layers
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, outputs, **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0]

    if cfg.input_kind == "dense":
        graph_input = helper.make_tensor_value_info("inputs", elem, ["B", "T", cfg.input_size])
        x = "inputs"
    else:
        graph_input = helper.make_tensor_value_info("inputs", TensorProto.INT64, ["B", "T"])
        if cfg.input_kind == "embedding":
            x = node("Gather", [const("embed.weight", model.params["embed.E"]), "inputs"], ["embedded"])
        elif cfg.input_kind == "onehot":
            x = node("Gather", [const("onehot", np.eye(cfg.input_size, dtype=cfg.dtype)), "inputs"], ["onehot_x"])
        else:
            ids = node("Cast", ["inputs"], ["ids_f64"], to=TensorProto.DOUBLE)
            scaled = node("Div", [ids, const("vocab_size", np.array(float(cfg.input_size)))], ["scaled_f64"])
            scaled = node("Cast", [scaled], ["scaled"], to=elem)
            x = node("Unsqueeze", [scaled, const("last_axis", np.array([2], np.int64))], ["scaled_x"])
    x = node("Transpose", [x], ["x_tm"], perm=[1, 0, 2])  # (T, B, D)
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cfg.cell]
    axis1 = const("axis1", np.array([1], np.int64))
    finals = {"h": [], "c": []}
    for k, cell in enumerate(model.cells):
        W, R, B = to_onnx(cell.kind, model.layer_params(k)) if cell.kind != "rnn" else _rnn_onnx(model.layer_params(k))
        ins = [x, const(f"W{k}", W), const(f"R{k}", R), const(f"B{k}", B)]
        outs = [f"Y{k}", f"Y_h{k}"] + ([f"Y_c{k}"] if cell.kind == "lstm" else [])
        attrs = {"hidden_size": H}
        if cell.kind == "gru":
            attrs["linear_before_reset"] = 1
        node(op, ins, outs, **attrs)
        finals["h"].append(f"Y_h{k}")
        if cell.kind == "lstm":
            finals["c"].append(f"Y_c{k}")
        x = node("Squeeze", [f"Y{k}", axis1], [f"h{k}"])  # (T, B, H)
    hs = node("Transpose", [x], ["hs"], perm=[1, 0, 2])  # (B, T, H)
    if cfg.head == "none":
        node("Identity", [hs], ["outputs"])
    else:
        scores = node("MatMul", [hs, const("head.W", model.params["head.W"])], ["head_mm"])
        scores = node("Add", [scores, const("head.b", model.params["head.b"])], ["scores"])
        activation = {"softmax": "Softmax", "tanh": "Tanh", "linear": "Identity"}[cfg.head]
        node(activation, [scores], ["outputs"], **({"axis": -1} if activation == "Softmax" else {}))
    outputs = [helper.make_tensor_value_info("outputs", elem, ["B", "T", cfg.output_size])]
    for name in ("h", "c"):
        if finals[name]:
            node("Concat", finals[name], [f"{name}_n"], axis=0)
            outputs.append(helper.make_tensor_value_info(f"{name}_n", elem, [L, "B", H]))
    graph = helper.make_graph(nodes, "lstmviz", [graph_input], outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="lstmviz")
    proto.ir_version = 8  # readable by onnxruntime releases since 1.11
    onnx.checker.check_model(proto)
    return proto


def _rnn_onnx(params: dict) -> tuple:
    """``(W [1, H, D], R [1, H, H], B [1, 2H])`` of a vanilla RNN layer (one tanh block)."""
    b = params["b"]  # (H,)
    return params["Wx"].T[None].copy(), params["Wh"].T[None].copy(), np.concatenate([b, np.zeros_like(b)])[None]
