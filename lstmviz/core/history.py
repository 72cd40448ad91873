"""Loss histories: the per-step buffer a training worker fills between two payloads
(``StepLosses``), the growing, decimated history a loss curve draws (``LossHistory``), and
the readout line under a loss plot (``loss_readout``).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_MAX_BINS = 1000  # decimated curves hold at most 2 * DEFAULT_MAX_BINS points
BITS = {"nats/char": ("bits/char", math.log(2.0))}  # loss unit -> (its bits unit, nats per bit)


class StepLosses:
    """Per-step losses gathered between two payloads (the training worker's buffer)."""

    def __init__(self):
        self._clear()

    def _clear(self) -> None:
        self.steps, self.train, self.smooth, self.val_steps, self.val = [], [], [], [], []

    def add(self, progress) -> None:
        self.steps.append(progress.step)
        self.train.append(progress.train_loss)
        self.smooth.append(progress.smooth_loss)
        if progress.val_loss is not None:
            self.val_steps.append(progress.step)
            self.val.append(progress.val_loss)

    def take(self) -> tuple:
        """The gathered arrays (steps, train, smooth, val_steps, val); empties the buffer."""
        out = (
            np.asarray(self.steps, np.int64),  # (n,)
            np.asarray(self.train, np.float64),  # (n,)
            np.asarray(self.smooth, np.float64),  # (n,)
            np.asarray(self.val_steps, np.int64),  # (m,)
            np.asarray(self.val, np.float64),  # (m,)
        )
        self._clear()
        return out


class LossHistory:
    """Growing ``(steps, values)`` series with amortised O(1) appends."""

    def __init__(self):
        self._steps = np.empty(1024, np.int64)  # (capacity,)
        self._values = np.empty(1024, np.float64)  # (capacity,)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self._n = 0

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Append ``steps (k,)`` and their ``values (k,)``."""
        k = len(steps)
        if len(values) != k:
            raise ValueError(f"steps and values must have the same length, got {k} and {len(values)}")
        if self._n + k > len(self._steps):
            capacity = max(2 * len(self._steps), self._n + k)
            self._steps = np.resize(self._steps, capacity)  # (capacity,)
            self._values = np.resize(self._values, capacity)  # (capacity,)
        self._steps[self._n : self._n + k] = steps
        self._values[self._n : self._n + k] = values
        self._n += k

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of all ``(steps (n,), values (n,))``."""
        return self._steps[: self._n], self._values[: self._n]

    def decimated(self, max_bins: int = DEFAULT_MAX_BINS) -> tuple[np.ndarray, np.ndarray]:
        """At most ``2 * max_bins`` points: all of them when few enough, else per bin of
        consecutive steps its minimum (at the bin's first step) and maximum (at its last)."""
        steps, values = self.data()  # (n,), (n,)
        n = len(steps)
        if n <= 2 * max_bins:
            return steps.copy(), values.copy()
        edges = np.linspace(0, n, max_bins + 1).astype(np.int64)  # (bins + 1,) bin boundaries
        lows = np.minimum.reduceat(values, edges[:-1])  # (bins,)
        highs = np.maximum.reduceat(values, edges[:-1])  # (bins,)
        x = np.column_stack([steps[edges[:-1]], steps[edges[1:] - 1]]).ravel()  # (2 * bins,)
        y = np.column_stack([lows, highs]).ravel()  # (2 * bins,)
        return x, y


def loss_readout(step: int, smooth_loss: float, val_loss: float | None, unit: str) -> str:
    """One line: the smoothed training loss at ``step`` and the last validation loss (None:
    not evaluated yet), in ``unit``; a loss in nats/char also in bits/char
    (``nats / ln 2``), e.g. ``step 40: smoothed loss 1.2000, validation 1.3863 nats/char
    (2.000 bits/char)``."""
    text = f"step {step}: smoothed loss {smooth_loss:.4f}"
    if val_loss is not None:
        text += f", validation {val_loss:.4f} {unit}"
        if unit in BITS:
            bits_unit, per_bit = BITS[unit]
            text += f" ({val_loss / per_bit:.3f} {bits_unit})"
    return text
