"""Trace files: a ``Trace`` as a pickle-free ``.npz`` (used by ``lstmviz trace`` and the app's
NPZ export), written whole (``save_trace_npz``) or streamed chunk by chunk
(``save_trace_chunks``: memory one chunk, whatever the number of steps).

Layout (every entry a plain array; ``np.load(path, allow_pickle=False)`` reads it)::

    "layer{k}_{name}"  (T, H)  per layer k and recorded quantity: i, f, g, o, c, h for an LSTM
                               (gates i, f, o in (0, 1); g, h in (-1, 1); c unbounded), h for an RNN
    "inputs"           (T,) token ids, or (T, D) values
    "probs"            (T, V) next-character probabilities (token inputs), or
    "outputs"          (T, O) predictions (value inputs)
    "chars"            (T,) unicode, one character per step (when the text is known)
    "vocab"            (V,) unicode, the characters of the probability columns (when given)
    "cell"             () unicode, "lstm" or "rnn"
    "start"            () int64, the step of row 0 in the whole text (0 unless a range was written)

Size per step: ``(L * R * H + O) * itemsize + 8 (inputs) + 4 (chars)`` bytes, R = 6 recorded
quantities for an LSTM (4 for a GRU, 1 for an RNN): for 1 layer x H = 128, V = 65 in float32
3.3 kB per character (3.7 GB for a 1.1 MB text), half that in float16
(``engine.memory.trace_file_bytes``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from typing import Iterable

import numpy as np

from .atomic import atomic_writer, write_error
from .data import CharVocab
from .errors import FileWriteError
from .memory import check_fits
from .safe_read import open_npz, read_entries
from .trace import Trace

MAX_TRACE_FILE_BYTES = 64 * 1024 ** 3  # refuse larger trace files (also bounded by free memory)
_TRACE_ENTRY = re.compile(r"layer\d+_\w+|inputs|probs|outputs|chars|vocab|cell|start")


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
    arrays["start"] = np.array(trace.start, np.int64)  # ()
    return arrays


def save_trace_npz(path, trace: Trace, vocab: CharVocab | None = None) -> None:
    """Write ``trace`` (and ``vocab``, if given) to ``path`` atomically; see the module docstring.
    File-system errors propagate as OSError and leave any existing file untouched."""
    arrays = trace_arrays(trace, vocab)
    with atomic_writer(path, "wb") as f:
        np.savez(f, **arrays)


CONSTANT_ENTRIES = ("vocab", "cell", "start")  # entries without a step axis


def save_trace_chunks(path, chunks: Iterable[Trace], steps: int, vocab: CharVocab | None = None,
                      dtype=None, compress: bool = False, start: int = 0) -> None:
    """Write consecutive ``chunks`` (``Trace`` s of consecutive steps, ``steps`` in all, e.g.
    from ``engine.analysis.stream.iter_chunks``) as one trace file in the module's layout, holding
    one chunk in memory at a time: each entry is streamed to a ``.npy`` in a temporary folder next
    to ``path``, then copied into the archive (atomically; needs about twice the file's size of
    disk meanwhile). ``dtype``: float entries cast to it (e.g. ``float16``; None keeps the
    model's); ``compress``: deflate the archive. ``start``: the step of the first row.
    Raises ValueError when the chunks do not hold ``steps`` steps; OSError on a write failure
    (any existing ``path`` is left untouched)."""
    try:
        _save_chunks(path, chunks, steps, vocab, dtype, compress, start)
    except FileWriteError:
        raise
    except OSError as e:  # the temporary folder's files: name the file the user asked for
        raise write_error(os.fspath(path), e) from None


def _save_chunks(path, chunks, steps, vocab, dtype, compress, start) -> None:
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".trace-") as tmp:
        files, constant, written = {}, {}, 0
        try:
            for chunk in chunks:
                arrays = trace_arrays(chunk, vocab)
                constant = {name: arrays.pop(name) for name in CONSTANT_ENTRIES if name in arrays}
                for name, a in arrays.items():
                    if dtype is not None and a.dtype.kind == "f":
                        a = a.astype(dtype)  # (n, ...)
                    if name not in files:
                        files[name] = open(os.path.join(tmp, name + ".npy"), "wb")
                        header = np.lib.format.header_data_from_array_1_0(a)
                        header["shape"] = (steps,) + a.shape[1:]
                        np.lib.format.write_array_header_2_0(files[name], header)
                    files[name].write(np.ascontiguousarray(a).tobytes())
                written += chunk.steps
                del arrays, a, chunk  # one chunk alive at a time: the next is made after this
        finally:
            for f in files.values():
                f.close()
        if written != steps:
            raise ValueError(f"the chunks hold {written} steps, not {steps}")
        constant["start"] = np.array(start, np.int64)  # ()
        mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with atomic_writer(path, "wb") as out, zipfile.ZipFile(out, "w", mode, allowZip64=True) as archive:
            for name in files:
                with open(os.path.join(tmp, name + ".npy"), "rb") as src, \
                        archive.open(name + ".npy", "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            for name, a in constant.items():
                with archive.open(name + ".npy", "w") as dst:
                    np.lib.format.write_array(dst, a, allow_pickle=False)


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
