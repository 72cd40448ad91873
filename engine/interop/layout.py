"""Weight layouts of other frameworks and the one neutral description every importer builds.

Our layout (``engine.cells``): ``Wx (D, G)``, ``Wh (H, G)``, ``b (G,)`` and, for a GRU,
``bhn (H,)``; gate blocks LSTM i, f, g, o and GRU r, z, n. The others (gate blocks of H rows or
columns each):

=========  ==========================================  ==================  =========================
framework  LSTM weights                                LSTM gate order     GRU gate order / biases
=========  ==========================================  ==================  =========================
PyTorch    ``weight_ih (G, D)``, ``weight_hh (G, H)``,  i, f, g, o          r, z, n; ``bias_hh`` n part
           ``bias_ih (G,)``, ``bias_hh (G,)``                               is inside r * (...)
Keras      ``kernel (D, G)``, ``recurrent_kernel        i, f, c, o          z, r, h; ``reset_after``:
           (H, G)``, ``bias (G,)`` (CuDNN: ``(2G,)``)                       ``bias (2, G)`` input, recurrent
ONNX       ``W [1, G, D]``, ``R [1, G, H]``,            i, o, f, c          z, r, h; ``B [1, 2G]``,
           ``B [1, 2G]`` input then recurrent biases                        ``linear_before_reset=1``
=========  ==========================================  ==================  =========================

Sources: PyTorch ``torch/nn/modules/rnn.py`` docstrings; Keras ``keras/src/layers/rnn/lstm.py``
and ``gru.py``; the ONNX operator specification of ``LSTM`` and ``GRU``. A GRU's recurrent r and
z biases simply add to the input ones; its recurrent n bias is multiplied by r, so it is kept
apart (``bhn``), which keeps every layout exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..cells import GATES, GRU_GATES
from ..model import ModelConfig, SequenceModel

KERAS_LSTM = ("i", "f", "g", "o")  # Keras calls g "c"
KERAS_GRU = ("z", "r", "n")  # Keras calls n "h"
ONNX_LSTM = ("i", "o", "f", "g")  # ONNX calls g "c"
ONNX_GRU = ("z", "r", "n")  # ONNX calls n "h"


class InteropError(ValueError):
    """A model file that cannot be imported exactly, or an export that cannot be written: the
    message is one line naming the file and the layer or attribute at fault."""


class AmbiguousModules(InteropError):
    """Several modules of the file fit one role: ``role`` (e.g. "recurrent", "output layer
    (nn.Linear)"), ``candidates``, the module, layer or node names to choose from (``prefixes``),
    and ``several``, whether more than one may be chosen."""

    def __init__(self, message: str, role: str, candidates, several: bool = False):
        super().__init__(message)
        self.role = role
        self.candidates = list(candidates)
        self.several = several  # True: several candidates may be chosen (stacked in the order given)


def choose_stack(stacks: list, candidates: list, prefixes, source: str, what: str) -> int:
    """The index of the stack ``prefixes`` name among ``stacks`` (each a list of names: layers,
    nodes, initializers), with ``candidates`` naming each stack for the user. A stack is named
    when one of its names equals a prefix (leading "/" ignored) or, failing that, starts with
    one. The only stack is chosen without prefixes; otherwise ``AmbiguousModules`` lists the
    candidates still in question (``what`` describes them in the message)."""
    wanted = [p.lstrip("/") for p in prefixes if p]
    names = [[n.lstrip("/") for n in stack] for stack in stacks]
    chosen = [k for k, stack in enumerate(names) if any(n == p for n in stack for p in wanted)] or \
        [k for k, stack in enumerate(names) if any(n.startswith(p) for n in stack for p in wanted)]
    if len(chosen) == 1:
        return chosen[0]
    if len(stacks) == 1 and not chosen:
        return 0
    listing = ", ".join(repr(candidates[k]) for k in (chosen or range(len(stacks))))
    raise AmbiguousModules(f"{source}: several recurrent stacks ({what}): {listing}; choose one with --layer-prefix "
                           "NAME", "recurrent", [candidates[k] for k in (chosen or range(len(stacks)))])


def reorder(a: np.ndarray, source: tuple, target: tuple, axis: int = -1) -> np.ndarray:
    """Copy of ``a`` with its gate blocks along ``axis`` moved from ``source`` to ``target`` order."""
    a = np.asarray(a)
    blocks = dict(zip(source, np.split(a, len(source), axis=axis)))  # name -> (..., H, ...)
    return np.concatenate([blocks[name] for name in target], axis=axis)


def public_order(cell: str) -> tuple:
    """Our gate order for ``cell``: i, f, g, o (LSTM), r, z, n (GRU), h (RNN)."""
    return {"lstm": GATES, "gru": GRU_GATES, "rnn": ("h",)}[cell]


# --- PyTorch ------------------------------------------------------------------------------------
def from_torch(cell: str, w_ih, w_hh, b_ih=None, b_hh=None) -> dict:
    """Our layer parameters from ``nn.LSTM``/``nn.GRU``/``nn.RNN`` tensors of one layer
    (``weight_ih (G, D)``, ``weight_hh (G, H)``, biases ``(G,)`` or None = zeros)."""
    w_ih, w_hh = np.asarray(w_ih), np.asarray(w_hh)  # (G, D), (G, H)
    G, H = w_hh.shape
    b_ih = np.zeros(G, w_hh.dtype) if b_ih is None else np.asarray(b_ih)  # (G,)
    b_hh = np.zeros(G, w_hh.dtype) if b_hh is None else np.asarray(b_hh)  # (G,)
    params = {"Wx": w_ih.T.copy(), "Wh": w_hh.T.copy()}  # (D, G), (H, G)
    if cell == "gru":
        params["b"] = b_ih + np.concatenate([b_hh[: 2 * H], np.zeros(H, b_hh.dtype)])  # (3H,)
        params["bhn"] = b_hh[2 * H :].copy()  # (H,)
    else:
        params["b"] = b_ih + b_hh  # (G,)
    return params


def to_torch(cell: str, params: dict) -> tuple:
    """``(weight_ih (G, D), weight_hh (G, H), bias_ih (G,), bias_hh (G,))`` for our layer
    parameters: the whole bias goes to ``bias_ih``, except a GRU's ``bhn`` (``bias_hh``'s n part)."""
    H = params["Wh"].shape[0]
    b_hh = np.zeros_like(params["b"])  # (G,)
    if cell == "gru":
        b_hh[2 * H :] = params["bhn"]  # (H,)
    return params["Wx"].T.copy(), params["Wh"].T.copy(), params["b"].copy(), b_hh


# --- Keras ----------------------------------------------------------------------------------------
def from_keras(cell: str, kernel, recurrent_kernel, bias=None) -> dict:
    """Our layer parameters from a Keras ``LSTM`` or ``GRU`` (``reset_after=True``) layer:
    ``kernel (D, G)``, ``recurrent_kernel (H, G)``, ``bias`` LSTM ``(G,)`` or CuDNN-style
    ``(2G,)`` (halves summed), GRU ``(2, G)`` (input row, recurrent row); None = no bias."""
    kernel, rk = np.asarray(kernel), np.asarray(recurrent_kernel)  # (D, G), (H, G)
    H, G = rk.shape
    if cell == "lstm":
        b = np.zeros(G, rk.dtype) if bias is None else np.asarray(bias)  # (G,) or (2G,)
        if b.shape == (2 * G,):
            b = b[:G] + b[G:]  # (G,)
        return {"Wx": kernel.copy(), "Wh": rk.copy(), "b": b.copy()}
    b = np.zeros((2, G), rk.dtype) if bias is None else np.asarray(bias)  # (2, G)
    b_in, b_rec = b[0], b[1]  # (G,) each, order z, r, n
    recurrent_rz = np.concatenate([b_rec[: 2 * H], np.zeros(H, b.dtype)])  # (G,) z, r only
    return {
        "Wx": reorder(kernel, KERAS_GRU, GRU_GATES),  # (D, G)
        "Wh": reorder(rk, KERAS_GRU, GRU_GATES),  # (H, G)
        "b": reorder(b_in + recurrent_rz, KERAS_GRU, GRU_GATES),  # (G,)
        "bhn": b_rec[2 * H :].copy(),  # (H,)
    }


# --- ONNX -----------------------------------------------------------------------------------------
def from_onnx(cell: str, W, R, B=None) -> dict:
    """Our layer parameters from an ONNX ``LSTM``/``GRU`` node's ``W [1, G, D]``, ``R [1, G, H]``
    and ``B [1, 2G]`` (input then recurrent biases; None = zeros; GRU needs ``linear_before_reset=1``)."""
    W, R = np.asarray(W)[0], np.asarray(R)[0]  # (G, D), (G, H)
    G, H = R.shape
    B = np.zeros(2 * G, R.dtype) if B is None else np.asarray(B)[0]  # (2G,)
    b_in, b_rec = B[:G], B[G:]  # (G,) each
    order = ONNX_LSTM if cell == "lstm" else ONNX_GRU
    params = {"Wx": reorder(W.T, order, public_order(cell)), "Wh": reorder(R.T, order, public_order(cell))}
    if cell == "lstm":
        params["b"] = reorder(b_in + b_rec, order, GATES)  # (G,)
    else:
        rz = np.concatenate([b_rec[: 2 * H], np.zeros(H, B.dtype)])  # (G,) z, r recurrent biases
        params["b"] = reorder(b_in + rz, order, GRU_GATES)  # (G,)
        params["bhn"] = b_rec[2 * H :].copy()  # (H,)
    return params


def to_onnx(cell: str, params: dict) -> tuple:
    """``(W [1, G, D], R [1, G, H], B [1, 2G])`` for our layer parameters (the inverse of
    ``from_onnx``: the bias goes to the input half, a GRU's ``bhn`` to the recurrent n part)."""
    order = ONNX_LSTM if cell == "lstm" else ONNX_GRU
    H = params["Wh"].shape[0]
    W = reorder(params["Wx"], public_order(cell), order).T  # (G, D)
    R = reorder(params["Wh"], public_order(cell), order).T  # (G, H)
    b_rec = np.zeros_like(params["b"])  # (G,)
    if cell == "gru":
        b_rec[2 * H :] = params["bhn"]  # (H,) n is last in z, r, n
    B = np.concatenate([reorder(params["b"], public_order(cell), order), b_rec])  # (2G,)
    return W[None].copy(), R[None].copy(), B[None]


# --- the neutral description ------------------------------------------------------------------------
@dataclass
class Recognised:
    """What an importer found, in our layout (float arrays).

    ``cell`` "lstm" or "gru"; ``layers`` per layer ``{"Wx", "Wh", "b"[, "bhn"]}``; ``embed`` the
    ``(V, E)`` table or None; ``head`` ``(W (H, O), b (O,))`` or None; ``head_activation``
    "softmax", "linear", "tanh" or None (decide from the input: tokens -> softmax);
    ``scaled_index`` True when the first layer may read one number per step, ``id / V`` (it
    does when a vocabulary is given, or always when the source states V as ``index_scale``);
    ``names`` what each part was called in the source (for the report).
    """

    cell: str
    layers: list
    embed: np.ndarray | None = None
    head: tuple | None = None
    head_activation: str | None = None
    scaled_index: bool = False
    index_scale: float | None = None
    names: dict = field(default_factory=dict)


def logits_to_probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a source's output-layer logits ``(..., O)``, to compare
    with a model built with a softmax head (``build_model`` makes a linear output layer over
    the vocabulary one)."""
    shifted = np.exp(scores - scores.max(-1, keepdims=True))  # (..., O)
    return shifted / shifted.sum(-1, keepdims=True)  # (..., O)


@dataclass(frozen=True)
class Parity:
    """A parity check's report ``line`` and ``worst``, the largest absolute difference measured
    between the source framework and the imported model (None when they were not compared)."""

    line: str
    worst: float | None = None


@dataclass
class Loaded:
    """A reader's result: what it recognised and ``parity(model, rng) -> Parity``, comparing the
    source framework's outputs with ``model``'s (or saying what was checked)."""

    found: Recognised
    parity: Callable


def build_model(found: Recognised, vocab_size: int | None, source: str, dtype: str = "float32") -> SequenceModel:
    """The ``SequenceModel`` for ``found``; raise ``InteropError`` naming ``source`` when the
    vocabulary's size (None: no vocabulary) does not fit the embedding, the one-hot or scaled-index input or the
    softmax head, or when the layers do not chain.

    Input kind: an embedding table -> "embedding"; ``scaled_index`` with a vocabulary ->
    "scaled_index"; else "onehot" when a vocabulary of the input width is given, "dense"
    without one.
    """
    D0 = found.layers[0]["Wx"].shape[0]
    H = found.layers[0]["Wh"].shape[0]
    for k, layer in enumerate(found.layers[1:], 1):
        below = found.layers[k - 1]["Wh"].shape[0]  # units of the layer feeding this one
        if layer["Wx"].shape[0] != below:
            raise InteropError(f"{source}: recurrent layer {k} does not take layer {k - 1}'s output "
                               f"({layer['Wx'].shape[0]} inputs, {below} expected)")
        if layer["Wh"].shape[0] != H:
            raise InteropError(f"{source}: recurrent layer {k} has {layer['Wh'].shape[0]} units and layer 0 has {H}; "
                               "an lstmviz model has one hidden size for all its layers")
    V = vocab_size
    embed_size = 0
    if found.embed is not None:
        input_kind, input_size, embed_size = "embedding", found.embed.shape[0], found.embed.shape[1]
        if embed_size != D0:
            raise InteropError(f"{source}: the embedding has {embed_size} columns but the first recurrent "
                               f"layer takes {D0} inputs")
        if V is not None and V != input_size:
            raise InteropError(f"{source}: the vocabulary has {V} characters but the embedding has {input_size} rows")
    elif found.scaled_index and (V is not None or found.index_scale is not None):
        if V is None:
            raise InteropError(f"{source}: the input is one scaled index per step (id / V): give the vocabulary "
                               "with --vocab or --vocab-chars")
        if found.index_scale is not None and found.index_scale != V:
            raise InteropError(f"{source}: the vocabulary has {V} characters but the input is scaled by "
                               f"1/{found.index_scale:g}")
        input_kind, input_size = "scaled_index", V
    elif V is not None:
        if V != D0:
            raise InteropError(f"{source}: the vocabulary has {V} characters but the first recurrent layer "
                               f"takes {D0} inputs (one-hot)")
        input_kind, input_size = "onehot", V
    else:
        input_kind, input_size = "dense", D0
    tokens = input_kind != "dense"
    if found.head is None:
        head, output_size = "none", H
    else:
        head = found.head_activation or ("softmax" if tokens else "linear")
        output_size = found.head[0].shape[1]
        if found.head[0].shape[0] != H:
            raise InteropError(f"{source}: the output layer takes {found.head[0].shape[0]} inputs but the last "
                               f"recurrent layer has {H} units")
        if head == "softmax" and V is not None and output_size != V:
            raise InteropError(f"{source}: the vocabulary has {V} characters but the output layer has {output_size}")
    config = ModelConfig(input_size=input_size, output_size=output_size, cell=found.cell, hidden_size=H,
                         num_layers=len(found.layers), input_kind=input_kind, head=head, dtype=dtype,
                         embed_size=embed_size)
    params = {f"l{k}.{name}": value for k, layer in enumerate(found.layers) for name, value in layer.items()}
    if found.head is not None:
        params["head.W"], params["head.b"] = found.head
    if found.embed is not None:
        params["embed.E"] = found.embed
    try:
        return SequenceModel(config, params=params)
    except ValueError as e:
        raise InteropError(f"{source}: {e}") from None
