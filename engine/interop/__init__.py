"""Import recurrent models trained elsewhere (PyTorch, Keras, ONNX) and export ours back.

Never imports Qt. Each reader turns a file into a ``layout.Recognised`` (our layout, exact),
``layout.build_model`` makes the ``SequenceModel`` (float32), and a parity check runs the source
framework, where it is installed, on the same random input::

    result = import_model("char_lstm.safetensors", vocab_chars="abc...")
    result.model, result.vocab, result.report   # SequenceModel, CharVocab | None, lines of text

Errors: ``layout.InteropError`` (a ``ValueError``), one line naming the file and the layer or
attribute at fault; nothing is written by an import that fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..data import CharVocab
from ..errors import NotEnoughMemory
from ..memory import check_fits
from ..model import SequenceModel
from ..safe_read import check_regular_file
from .layout import AmbiguousModules, InteropError, Loaded, Recognised, build_model
from .vocab import check_chars, chars_from_file, sort_ids

__all__ = ["AmbiguousModules", "ImportResult", "InteropError", "SOURCE_KINDS", "import_model", "import_state_dict",
           "source_kind"]

PARITY_SEED = 1234
PARITY_LIMIT = 1e-4  # float32 imports agree to ~1e-6; a larger difference means a wrong mapping
IMPORT_BYTES_PER_FILE_BYTE = 4  # peak memory of an import per byte of the file: the framework's arrays, our
#                                 reordered copies, the model built from them and the parity check's modules
MAX_MODEL_FILE_BYTES = 1 << 36  # 64 GiB: a bound for the stat check; the memory check decides below it


@dataclass
class ImportResult:
    """An imported model, its vocabulary (None without one) and the report lines to print."""

    model: SequenceModel
    vocab: CharVocab | None
    report: list = field(default_factory=list)


SOURCE_KINDS = {".pt": "torch", ".pth": "torch", ".bin": "torch", ".ckpt": "torch", ".safetensors": "torch",
                ".keras": "keras", ".h5": "keras", ".hdf5": "keras", ".onnx": "onnx"}  # importable extension -> reader


def source_kind(path) -> str:
    """"torch", "keras" or "onnx" from the file name's extension (``SOURCE_KINDS``);
    ``InteropError`` otherwise."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in SOURCE_KINDS:
        raise InteropError(f"{os.fspath(path)}: unknown model file type {ext or '(no extension)'!r}; expected "
                           ".pt/.pth/.bin/.ckpt (torch.save state_dict or training checkpoint), .safetensors, .keras, .h5 or .onnx")
    return SOURCE_KINDS[ext]


def check_model_file(source: str) -> None:
    """``InteropError`` (one line) unless ``source`` is a regular file (not missing, a folder, a
    FIFO or a device: ``engine.safe_read``) whose import fits in the memory available now
    (``IMPORT_BYTES_PER_FILE_BYTE`` times its size, ``engine.memory.check_fits``)."""
    check_regular_file(source, MAX_MODEL_FILE_BYTES, "model file", InteropError)
    try:
        check_fits(f"importing {source}", IMPORT_BYTES_PER_FILE_BYTE * os.path.getsize(source),
                   detail=f"{IMPORT_BYTES_PER_FILE_BYTE} times the file's size")
    except NotEnoughMemory as e:
        raise InteropError(str(e)) from None


def import_model(path, *, vocab_file=None, vocab_chars: str | None = None, prefixes=(),
                 check_parity: bool = True) -> ImportResult:
    """Read the model at ``path`` (kind from ``source_kind``) with an optional vocabulary
    (``vocab_file`` or ``vocab_chars``, characters in the source's id order; see ``vocab``) and
    ``prefixes`` choosing among several candidates (PyTorch module names, Keras layer names,
    ONNX node or initializer prefixes; ``AmbiguousModules`` lists them when needed). Returns the model, the
    sorted ``CharVocab`` (ids renumbered to match, exactly) and a report; ``check_parity`` runs
    the source framework when installed."""
    source = os.fspath(path)
    if vocab_file is not None and vocab_chars is not None:
        raise InteropError("give the vocabulary once: --vocab FILE or --vocab-chars STRING")
    chars = None
    if vocab_file is not None:
        chars = chars_from_file(vocab_file)
    elif vocab_chars is not None:
        chars = check_chars(list(vocab_chars), "--vocab-chars")
    kind = source_kind(source)
    check_model_file(source)
    if kind == "torch":
        from . import torch_import as reader
    elif kind == "keras":
        from . import keras_import as reader
    else:
        from . import onnx_import as reader
    return finish_import(reader.load(source, prefixes), source, chars, check_parity)


def import_state_dict(tensors: dict, *, vocab_chars: str | None = None, prefixes=(), source: str = "state_dict",
                      check_parity: bool = True) -> ImportResult:
    """``import_model`` for a PyTorch state_dict already in memory (``{name: ndarray}``), e.g.
    ``{k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}``."""
    chars = None if vocab_chars is None else check_chars(list(vocab_chars), "the vocabulary")
    from .torch_import import load_tensors

    return finish_import(load_tensors(tensors, source, prefixes), source, chars, check_parity)


def finish_import(loaded: Loaded, source: str, chars: list | None, check_parity: bool) -> ImportResult:
    """Build the model from a reader's result, run its parity check (``InteropError`` when the
    source and the model differ by more than ``PARITY_LIMIT``), renumber ids to the sorted
    vocabulary (``vocab.sort_ids``) and collect the report."""
    found: Recognised = loaded.found
    V = None if chars is None else len(chars)
    raw = build_model(found, V, source)
    report = [f"read {source}: {describe(raw)}"]
    report += [f"{role}: {names if isinstance(names, str) else ', '.join(names)}"
               for role, names in found.names.items() if names]
    if check_parity:
        parity = loaded.parity(raw, np.random.default_rng(PARITY_SEED))
        if parity.worst is not None and not parity.worst <= PARITY_LIMIT:
            raise InteropError(f"{source}: refused: the imported model differs from the source by "
                               f"{parity.worst:.2e} (more than {PARITY_LIMIT:g}): {parity.line}")
        report.append(parity.line)
    vocab = None if chars is None else sort_ids(found, chars, source)
    model = raw if vocab is None or list(vocab.chars) == chars else build_model(found, V, source)
    if vocab is not None and list(vocab.chars) != chars:
        report.append("renumbered the token ids to the sorted vocabulary order (rows and columns permuted)")
    return ImportResult(model=model, vocab=vocab, report=report)


def describe(model: SequenceModel) -> str:
    """One line: cell, layers, sizes, input kind and head."""
    c = model.config
    inputs = {"embedding": f"embedding {c.input_size}x{c.embed_size}", "onehot": f"one-hot over {c.input_size}",
              "scaled_index": f"scaled index (id / {c.input_size})", "dense": f"{c.input_size} values"}[c.input_kind]
    head = "no output layer" if c.head == "none" else f"{c.head} head of {c.output_size}"
    return f"{c.num_layers} x {c.cell.upper()}({c.hidden_size}), input {inputs}, {head}"
