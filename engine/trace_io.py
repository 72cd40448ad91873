"""Trace files: a ``Trace`` as a pickle-free ``.npz`` (used by ``lstmviz trace`` and the app's
NPZ export).

Layout (every entry a plain array; ``np.load(path, allow_pickle=False)`` reads it)::

    "layer{k}_{name}"  (T, H)  per layer k and recorded quantity: i, f, g, o, c, h for an LSTM
                               (gates i, f, o in (0, 1); g, h in (-1, 1); c unbounded), h for an RNN
    "inputs"           (T,) token ids, or (T, D) values
    "probs"            (T, V) next-character probabilities (token inputs), or
    "outputs"          (T, O) predictions (value inputs)
    "chars"            (T,) unicode, one character per step (when the text is known)
    "vocab"            (V,) unicode, the characters of the probability columns (when given)
    "cell"             () unicode, "lstm" or "rnn"
"""

from __future__ import annotations

import os
import re

import numpy as np

from .atomic import atomic_writer
from .data import CharVocab
from .memory import check_fits
from .safe_read import open_npz, read_entries
from .trace import Trace

MAX_TRACE_FILE_BYTES = 64 * 1024 ** 3  # refuse larger trace files (also bounded by free memory)
_TRACE_ENTRY = re.compile(r"layer\d+_\w+|inputs|probs|outputs|chars|vocab|cell")


def trace_arrays(trace: Trace, vocab: CharVocab | None = None) -> dict:
    """The arrays ``save_trace_npz`` writes (see the module docstring), by entry name."""
    arrays = {}
    for k in range(trace.num_layers):
        for name in trace.names:
            arrays[f"layer{k}_{name}"] = np.ascontiguousarray(trace.gate(name, k))  # (T, H)
    inputs = np.asarray(trace.inputs)  # (T,) or (T, D)
    arrays["inputs"] = inputs
    tokens = np.issubdtype(inputs.dtype, np.integer)
    arrays["probs" if tokens else "outputs"] = np.asarray(trace.outputs)  # (T, V) or (T, O)
    text = trace.text
    if text is None and tokens and vocab is not None:
        text = vocab.decode(inputs)
    if text is not None:
        arrays["chars"] = np.array(list(text), dtype="<U1")  # (T,)
    if vocab is not None:
        arrays["vocab"] = np.array(vocab.chars, dtype="<U1")  # (V,)
    arrays["cell"] = np.array(trace.cell)  # () unicode
    return arrays


def save_trace_npz(path, trace: Trace, vocab: CharVocab | None = None) -> None:
    """Write ``trace`` (and ``vocab``, if given) to ``path`` atomically; see the module docstring.
    File-system errors propagate as OSError and leave any existing file untouched."""
    arrays = trace_arrays(trace, vocab)
    with atomic_writer(path, "wb") as f:
        np.savez(f, **arrays)


def load_trace_npz(path) -> dict:
    """Read a trace file into ``{entry name: ndarray}`` (never unpickles).

    The file is read as an untrusted archive (``engine.safe_read``): a regular file, only the
    entries of the layout above (other members are never read), each a ``.npy`` of a plain
    dtype, their total checked against the memory available first. Raises ``DataError`` (one
    line naming the file) if it is missing, unreadable, a special file or not a readable ``.npz``.
    """
    name = os.fspath(path)
    with open_npz(name, MAX_TRACE_FILE_BYTES, "trace file") as (z, entries):
        keys = [key for key in entries if _TRACE_ENTRY.fullmatch(key)]
        check_fits(f"loading {name}", sum(entries[key].file_size for key in keys))
        return read_entries(z, entries, keys, name, MAX_TRACE_FILE_BYTES)
