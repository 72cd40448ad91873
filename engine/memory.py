"""Memory estimates: refuse work that cannot fit before allocating it.

Each ``*_bytes`` function estimates, from sizes alone (nothing is allocated), the peak bytes a
piece of work needs; ``check_fits`` compares an estimate with the memory available now and
raises ``NotEnoughMemory`` (a ``ValueError``) with one line naming both, e.g.
``a model with hidden size 100000 needs about 298 GiB (parameters and Adam state); this machine
has 21 GiB available``. Estimates count the large NumPy arrays of the engine's code paths
(``engine.cells`` forward caches, ``engine.model`` head, ``engine.train.Trainer``'s last-good
copies); they are within a small factor of the real peak, which is all a refusal needs.

Qt-free: the app calls the same functions (``export_image_bytes`` for pictures).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from .cells import make_cell, record_names
from .errors import NotEnoughMemory
from .evaluation import eval_chunk_length
from .model import SequenceModel
from .optim import make_optimizer
from .safe_read import format_size

SAMPLE_STEP_OVERHEAD = 600  # bytes of Python objects (dicts, array headers) per layer and sampled step
ARRAY_OVERHEAD = 112  # bytes of one small ndarray object


def available_bytes() -> int | None:
    """Memory available to a new allocation now, in bytes: ``MemAvailable`` of /proc/meminfo
    (Linux, counts reclaimable cache), else free physical pages (``SC_AVPHYS_PAGES``), else
    None when the platform tells neither."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file gives kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(what: str, need: int, available: int | None = None, detail: str = "") -> None:
    """Raise ``NotEnoughMemory`` if ``need`` bytes exceed the available memory (``available``,
    default ``available_bytes()``; unknown = no check). The message is
    ``"{what} needs about {need} ({detail}); this machine has {available} available"``."""
    available = available_bytes() if available is None else available
    if available is not None and need > available:
        detail = f" ({detail})" if detail else ""
        raise NotEnoughMemory(f"{what} needs about {format_size(need)}{detail}; this machine has "
                              f"{format_size(available)} available")


def param_shapes(config) -> dict:
    """Shape of every parameter of a ``SequenceModel`` built from ``config`` (a ``ModelConfig``),
    without allocating it: ``SequenceModel.param_shapes`` run on the config's cells."""
    H = config.hidden_size
    cells = [make_cell(config.cell, config.layer0_size if k == 0 else H, H) for k in range(config.num_layers)]
    return SequenceModel.param_shapes(SimpleNamespace(cells=cells, config=config))


def param_count(config) -> int:
    """Number of parameters of a model built from ``config``."""
    return sum(int(np.prod(shape, dtype=object)) for shape in param_shapes(config).values())


def _itemsize(config) -> int:
    return np.dtype(config.dtype).itemsize


def model_bytes(config) -> int:
    """The parameters alone, in the config's dtype."""
    return param_count(config) * _itemsize(config)


def training_state_bytes(config, slots: int = 2) -> int:
    """Parameters, gradients, ``slots`` optimizer slots per parameter (Adam: m and v = 2) and
    the trainer's last-good copies of parameters and slots, plus the float64 temporary of the
    largest parameter at initialisation."""
    largest = max(int(np.prod(shape, dtype=object)) for shape in param_shapes(config).values())
    return model_bytes(config) * (3 + 2 * slots) + largest * 8


def _cache_per_step(config) -> int:
    """Values one layer's forward keeps per stream and timestep (``engine.cells`` caches):
    the projected inputs ``G`` plus, for an RNN, h; for an LSTM (and any other gated cell)
    the gate activations ``G`` and h, c, tanh(c)."""
    H = config.hidden_size
    G = make_cell(config.cell, H, H).width
    return G + H if config.cell == "rnn" else 2 * G + 3 * H


def _recorded_per_step(config) -> int:
    """Values one layer records per timestep in a ``Trace``: the pre-activations ``G`` and h,
    plus i, f, g, o and c for an LSTM (``SequenceModel.trace``, ``engine.sample``)."""
    H = config.hidden_size
    G = make_cell(config.cell, H, H).width
    return G + H if config.cell == "rnn" else G + 6 * H


def forward_bytes(config, batch: int, steps: int, backward: bool = False) -> int:
    """One forward pass of ``batch`` streams over ``steps`` timesteps: per layer the forward
    caches (``_cache_per_step``); the head's scores, exponentials, probabilities and their
    gradient ``(T, B, O)``; twice as much with ``backward``."""
    cells = config.num_layers * _cache_per_step(config)
    head = 5 * config.output_size
    total = batch * steps * (cells + head) * _itemsize(config)
    return 2 * total if backward else total


def training_bytes(config, batch: int, seq_len: int, corpus_chars: int = 0, slots: int = 2,
                   eval_chunk: int = 1) -> int:
    """Peak of training: the training state (``training_state_bytes``), the larger of one
    training step (forward + backward of ``batch x seq_len``) and one evaluation chunk
    (``batch x eval_chunk``, forward only; ``engine.train.eval_chunk_length``), and the corpus
    as int64 token ids."""
    step = forward_bytes(config, batch, seq_len, backward=True)
    evaluation = forward_bytes(config, batch, eval_chunk)
    return training_state_bytes(config, slots) + max(step, evaluation) + 8 * corpus_chars


def check_training(model_config, train_config, corpus_chars: int, loaded: int = 0) -> None:
    """Raise ``NotEnoughMemory`` if training ``model_config`` (a ``ModelConfig``) with
    ``train_config`` (a ``TrainConfig``: optimizer, batch size, sequence length) on
    ``corpus_chars`` characters cannot fit: first the model state alone (parameters and
    optimizer slots), then the whole run (``training_bytes``). ``loaded``: bytes already
    allocated (a resumed model's parameters), not counted again."""
    optimizer = make_optimizer(train_config.optimizer, train_config.lr, **train_config.optimizer_hyper())
    slots = len(optimizer.slot_names)
    H, L = model_config.hidden_size, model_config.num_layers
    model = f"a model with hidden size {H}" + (f" and {L} layers" if L > 1 else "")
    check_fits(model, training_state_bytes(model_config, slots) - loaded,
               detail=f"parameters and {train_config.optimizer} state")
    eval_chunk = eval_chunk_length(model_config, train_config.batch_size)
    need = training_bytes(model_config, train_config.batch_size, train_config.seq_len, corpus_chars, slots,
                          eval_chunk) - loaded
    check_fits(f"training {model} on {corpus_chars} characters in batches of {train_config.batch_size} x "
               f"{train_config.seq_len}", need, detail="model, optimizer, activations and the encoded text")


def trace_bytes(config, steps: int) -> int:
    """Recording a ``Trace`` of ``steps`` timesteps (``SequenceModel.trace``): the forward
    caches with pre-activations, then per layer copies of every gate, c, h ``(T, H)`` and the
    pre-activations ``(T, G)``, and the outputs ``(T, O)``."""
    G = make_cell(config.cell, config.hidden_size, config.hidden_size).width
    per_step = config.num_layers * (_cache_per_step(config) + G + _recorded_per_step(config)) + 6 * config.output_size
    return steps * per_step * _itemsize(config)


def trace_file_bytes(config, steps: int, itemsize: int | None = None) -> int:
    """Bytes of a trace file (``engine.trace_io``'s layout) of ``steps`` steps of a model with
    ``config`` (``ModelConfig``): per step every recorded quantity ``(L * R * H)`` and the
    outputs ``O`` in ``itemsize`` bytes (None: the model's dtype), the input id (8 bytes) and
    the character (4 bytes)."""
    size = np.dtype(config.dtype).itemsize if itemsize is None else int(itemsize)
    per_layer = len(record_names(config.cell)) * config.hidden_size
    return int(steps) * ((config.num_layers * per_layer + config.output_size) * size + 12)


def sample_bytes(config, length: int) -> int:
    """Sampling ``length`` characters (``engine.sample``): one small record per layer and step
    (gates, c, h, pre-activations as separate arrays), the outputs, then the stacked trace."""
    size = _itemsize(config)
    per_step = (config.num_layers * (SAMPLE_STEP_OVERHEAD + _recorded_per_step(config) * size)
                + config.output_size * size + ARRAY_OVERHEAD)
    return length * per_step + trace_bytes(config, length)


def export_image_bytes(width: int, height: int, frames: int = 1) -> int:
    """Rendering ``frames`` images of ``width x height`` pixels: a 32-bit image per frame plus
    the painter's and encoder's working copies (about three images at once)."""
    return int(width) * int(height) * 4 * (int(frames) + 2)
