"""Trace: the record of one sequence's forward pass, step by step and layer by layer.

Every number the GUI draws comes from a ``Trace``. For an LSTM each layer holds
``i, f, g, o`` (gates, i/f/o in (0, 1), g in (-1, 1)), ``c`` (cell state, unbounded) and
``h`` (hidden state, in (-1, 1)), each ``(T, H)``, plus ``pre`` (pre-activations ``(T, 4H)``,
public gate order i, f, g, o). A vanilla RNN layer holds ``h`` and ``pre (T, H)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import record_names


@dataclass
class Trace:
    """Per-step, per-layer record of a forward pass over one sequence (batch of one).

    ``layers[k][name]`` is ``(T, H)`` (``pre`` is ``(T, G)``); ``inputs`` is ``(T,)`` token ids
    or ``(T, D)`` values; ``outputs`` is ``(T, O)`` next-token probabilities (softmax head) or
    predictions (regression head); ``initial_state[k]`` is the layer's state before step 0,
    a tuple of ``(H,)`` arrays (``(h0, c0)`` for an LSTM, ``(h0,)`` for an RNN). ``start``: the
    position in the whole sequence of row 0 (a window of a longer trace; 0 otherwise).
    """

    cell: str
    layers: list
    inputs: np.ndarray
    outputs: np.ndarray
    initial_state: list
    text: str | None = None
    names: tuple = field(default=())
    start: int = 0

    def __post_init__(self):
        if not self.names:
            self.names = record_names(self.cell)

    @property
    def steps(self) -> int:
        """Number of timesteps T."""
        return int(self.outputs.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.layers[0]["h"].shape[1])

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def gate(self, name: str, layer: int = 0) -> np.ndarray:
        """The ``(T, H)`` array of ``name`` (one of ``names`` or ``"pre"``) in ``layer``."""
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in [0, {self.num_layers - 1}], got {layer}")
        if name not in self.layers[layer]:
            raise ValueError(f"{self.cell} trace has no {name!r}; expected one of {self.names}")
        return self.layers[layer][name]

    def previous(self, name: str, layer: int, t: int) -> np.ndarray:
        """State ``name`` ("h" or "c") *before* step ``t``: the initial state for ``t = 0``."""
        if t == 0:
            index = 0 if name == "h" else 1
            return self.initial_state[layer][index]
        return self.layers[layer][name][t - 1]
