"""Gate saturation (Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent
Networks", 2015, Fig. 3): for each sigmoid gate (i, f, o) of each layer and each unit, the
fraction of steps at which the gate is *left-saturated* (``< 0.1``) and *right-saturated*
(``> 0.9``). A unit near (0, 1) is almost always open, near (1, 0) almost always closed, and one
at the origin is a gate that really switches with the input.

Streaming: counts are accumulated chunk by chunk (``stream.iter_chunks``), so the memory is one
chunk's trace plus ``2 * L * 3 * H`` counters, whatever the text length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cells import record_names
from ..model import SequenceModel
from ..quantities import quantity
from .stream import DEFAULT_CHUNK, iter_chunks

LEFT, RIGHT = 0.1, 0.9  # saturation thresholds of Karpathy et al. 2015


@dataclass(frozen=True)
class Saturation:
    """One gate of one layer over ``steps`` steps: per unit the fractions ``left (H,)`` of steps
    with the gate ``< 0.1`` and ``right (H,)`` with it ``> 0.9``, each in [0, 1]."""

    layer: int
    gate: str
    steps: int
    left: np.ndarray  # (H,)
    right: np.ndarray  # (H,)


def saturation_counts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(left (H,), right (H,))`` counts of steps of ``a (T, H)`` below 0.1 and above 0.9."""
    a = np.asarray(a)
    return np.count_nonzero(a < LEFT, axis=0), np.count_nonzero(a > RIGHT, axis=0)  # (H,), (H,)


def sigmoid_gates(cell: str) -> tuple:
    """The sigmoid gates of ``cell`` in record order (activations from ``engine.quantities``):
    LSTM i, f, o; GRU r, z; none for a vanilla RNN. Raises ValueError for an unknown cell type."""
    return tuple(n for n in record_names(cell) if quantity(n).activation == "sigmoid")


def trace_saturation(traces) -> list[Saturation]:
    """Saturation fractions of every sigmoid gate (``sigmoid_gates``) of every layer over
    consecutive ``Trace`` chunks (an iterable; one whole ``Trace`` works too), in layer then gate
    order. Raises ValueError for a trace without gates (vanilla RNN) or no steps."""
    left = right = gates = None
    T = 0
    for tr in traces:
        if left is None:
            gates = sigmoid_gates(tr.cell)
            if not gates:
                raise ValueError(f"saturation needs gates; a {tr.cell} model has none")
            left = np.zeros((tr.num_layers, len(gates), tr.hidden_size), np.int64)  # (L, G, H)
            right = np.zeros_like(left)  # (L, G, H)
        T += tr.steps
        for k in range(tr.num_layers):
            for j, gate in enumerate(gates):
                lo, hi = saturation_counts(tr.gate(gate, k))  # (H,), (H,)
                left[k, j] += lo
                right[k, j] += hi
    if not T:
        raise ValueError("saturation needs at least one step")
    return [Saturation(k, gate, T, left[k, j] / T, right[k, j] / T)
            for k in range(left.shape[0]) for j, gate in enumerate(gates)]


def saturation(model: SequenceModel, inputs: np.ndarray, chunk: int = DEFAULT_CHUNK) -> list[Saturation]:
    """``trace_saturation`` over ``inputs`` (``(T,)`` ids) run through ``model`` in chunks.
    Raises ValueError for a model without gates (vanilla RNN)."""
    if not sigmoid_gates(model.config.cell):
        raise ValueError(f"saturation needs gates; a {model.config.cell} model has none")
    return trace_saturation(tr for _, tr in iter_chunks(model, inputs, chunk=chunk))
