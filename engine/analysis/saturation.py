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

from ..model import SequenceModel
from .stream import DEFAULT_CHUNK, iter_chunks

SIGMOID_GATES = ("i", "f", "o")
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


def saturation(model: SequenceModel, inputs: np.ndarray, chunk: int = DEFAULT_CHUNK) -> list[Saturation]:
    """Saturation fractions of every sigmoid gate (i, f, o) of every layer over ``inputs`` (``(T,)``
    ids), in layer then gate order. Raises ValueError for a model without gates (vanilla RNN)."""
    if model.config.cell != "lstm":
        raise ValueError(f"saturation needs gates; a {model.config.cell} model has none")
    L, H = model.config.num_layers, model.config.hidden_size
    left = np.zeros((L, len(SIGMOID_GATES), H), np.int64)  # (L, 3, H)
    right = np.zeros((L, len(SIGMOID_GATES), H), np.int64)  # (L, 3, H)
    T = 0
    for _, tr in iter_chunks(model, inputs, chunk=chunk):
        T += tr.steps
        for k in range(L):
            for j, gate in enumerate(SIGMOID_GATES):
                lo, hi = saturation_counts(tr.gate(gate, k))  # (H,), (H,)
                left[k, j] += lo
                right[k, j] += hi
    return [Saturation(k, gate, T, left[k, j] / T, right[k, j] / T)
            for k in range(L) for j, gate in enumerate(SIGMOID_GATES)]
