"""``trace(...)``: a model's gates over a text as NumPy arrays, for scripts and notebooks (no Qt).

    from lstmviz.notebook import trace
    t = trace("model.npz", "hello world")           # a checkpoint, or any file `lstmviz import` reads
    t = trace(torch_module, "hello", vocab="helo ")  # a PyTorch module (nn.Embedding/LSTM/GRU/Linear)
    t.gate("f", layer=0)                             # (T, H) forget gate; GRU: "r", "z", "n"; all: "h"
    t.outputs                                        # (T, V) next-character probabilities

The model may be a ``SequenceModel`` (then ``vocab`` is needed for text), an lstmviz checkpoint
path (``.npz``, its vocabulary used), a PyTorch, Keras or ONNX file, or an ``nn.Module`` (both
converted exactly by ``engine.interop``; ``vocab`` gives the characters in the source's id
order). Errors: ``ValueError`` subclasses with one-line messages.
"""

from __future__ import annotations

import os

import numpy as np

from engine.checkpoint import load_checkpoint
from engine.data import CharVocab
from engine.interop import import_model, import_state_dict
from engine.model import SequenceModel
from engine.trace import Trace


def load_model(model, vocab: str | None = None) -> tuple:
    """``(SequenceModel, CharVocab | None)`` from any of the inputs ``trace`` accepts."""
    if isinstance(model, SequenceModel):
        return model, None if vocab is None else CharVocab(sorted(vocab))
    if isinstance(model, (str, os.PathLike)):
        if os.fspath(model).endswith(".npz"):
            ckpt = load_checkpoint(model)
            return ckpt.model, ckpt.vocab
        result = import_model(model, vocab_chars=vocab, check_parity=False)
        return result.model, result.vocab
    state_dict = getattr(model, "state_dict", None)
    if callable(state_dict):  # a torch nn.Module
        tensors = {k: v.detach().cpu().numpy() for k, v in state_dict().items()}
        result = import_state_dict(tensors, vocab_chars=vocab, source=type(model).__name__, check_parity=False)
        return result.model, result.vocab
    raise TypeError(f"expected a SequenceModel, a model file path or a torch nn.Module, got {type(model).__name__}")


def trace(model, text: str | None = None, *, inputs=None, vocab: str | None = None) -> Trace:
    """Run ``text`` (characters, needs a vocabulary) or ``inputs`` (token ids ``(T,)`` or values
    ``(T, D)``) through ``model`` from the zero state; return the ``Trace``: per layer ``(T, H)``
    arrays of every gate and state (``gate(name, layer)``), ``outputs (T, O)``. The arrays are
    the model's dtype (float32 for imports)."""
    if (text is None) == (inputs is None):
        raise ValueError("give exactly one of text or inputs")
    net, chars = load_model(model, vocab)
    if text is not None:
        if chars is None:
            raise ValueError("a text needs the model's vocabulary: pass vocab='...' (characters in id order)")
        return net.trace(chars.encode(text, source="the text"), text=text)
    return net.trace(np.asarray(inputs))
