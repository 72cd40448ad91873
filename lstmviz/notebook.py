"""``trace(...)``: a model's gates over a text as NumPy arrays, for scripts and notebooks (no Qt);
``show(...)``: the viewer window on a model, from a script or a Jupyter kernel.

    from lstmviz.notebook import trace
    t = trace("model.npz", "hello world")           # a checkpoint, or any file `lstmviz import` reads
    t = trace(torch_module, "hello", vocab="helo ")  # a PyTorch module (nn.Embedding/LSTM/GRU/Linear)
    t.gate("f", layer=0)                             # (T, H) forget gate; GRU: "r", "z", "n"; all: "h"
    t.outputs                                        # (T, V) next-character probabilities

In Jupyter, run ``%gui qt`` once (IPython's Qt event-loop integration), then::

    win = show(torch_module, text="hello world", vocab="helo wrd")   # returns at once; the kernel stays free
    win.session.seek(5)                                             # drive the viewer from code

From a plain script, ``show(..., block=True)`` runs the event loop until the window is closed.

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
from engine.model import TOKEN_INPUTS, SequenceModel
from engine.trace import Trace


def load_model(model, vocab: str | CharVocab | None = None) -> tuple:
    """``(SequenceModel, CharVocab | None)`` from any of the inputs ``trace`` accepts (``vocab``
    may also be the ``CharVocab`` of a ``SequenceModel``)."""
    if isinstance(model, SequenceModel):
        if isinstance(vocab, CharVocab):
            return model, vocab
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


_windows: list = []  # windows opened by ``show`` and still open (a notebook may drop the result)


def show(model, text: str | None = None, *, vocab: str | None = None, block: bool = False, settings=None):
    """Open the viewer window on ``model`` (anything ``trace`` accepts; a ``.npz`` checkpoint is
    opened as File > Open would) stepping ``text`` (None: no text yet; type it in the window);
    return the ``MainWindow`` (``window.session`` drives it from code). Closing the window deletes
    it (and its session): the returned object is then unusable (``RuntimeError``).

    Creates the ``QApplication`` when none exists. Returns at once: with a running event loop
    (Jupyter after ``%gui qt``, or an app already running) the window is live while the kernel
    stays free; ``block=True`` runs the event loop until the window is closed (plain scripts).
    ``settings``: a ``QSettings`` (default: the app's own, so the dock layout is shared).
    Errors: ``ValueError`` (e.g. no vocabulary for a model file without one, a model that does
    not read characters) before any window opens; ``CheckpointError``/``InteropError`` for bad files.
    """
    from PySide6 import QtCore, QtWidgets

    from .app import APPLICATION, ORGANIZATION, create_window
    from .session import Session

    path = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    if path is None or not path.endswith(".npz"):
        net, chars = load_model(model, vocab)
        if chars is None:
            raise ValueError("the viewer steps text: pass vocab='...' (the model's characters in id order)")
        if net.config.input_kind not in TOKEN_INPUTS:
            raise ValueError("the viewer steps text through character models; this model reads "
                             f"{net.config.input_size} numbers per step (use trace(..., inputs=...))")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([APPLICATION])
    if settings is None:
        settings = QtCore.QSettings(ORGANIZATION, APPLICATION)
    session = Session()
    window = create_window(session, settings)
    try:
        if path is not None and path.endswith(".npz"):
            session.load_model(path)
        else:
            session.set_model(net, chars)
        if text is not None:
            session.set_text(text)
    except Exception:
        window.close()
        window.deleteLater()
        raise
    # Deleted once closed (Qt deletes it only when every close guard accepted the close); the
    # window owns its session, so that frees everything it built.
    window.setAttribute(QtCore.Qt.WA_DeleteOnClose)
    _windows.append(window)
    window.destroyed.connect(lambda *_: _windows.remove(window))
    window.show()
    if block:
        app.exec()
    return window
