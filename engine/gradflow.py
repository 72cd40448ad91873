"""Gradient flow through time: how strongly the loss at the LAST step reaches back to each step.

For one sequence of T steps and the loss at the final step only, ``Loss_T``, this computes for
every layer k and step t the total derivatives (every path: through time and through the
layers above)::

    dh[k, t] = dLoss_T / dh^k_t        c: dc[k, t] = dLoss_T / dc^k_t   (LSTM only)

and their L2 norms over the units. In a vanilla RNN the norm typically shrinks geometrically
as t moves away from T-1 (each step multiplies by Wh^T diag(1 - h^2)): the vanishing gradient.
The LSTM's additive cell path (dc_{t-1} = f_t * dc_t) decays more slowly when f is near 1.

One backward pass: the cells' ``backward_tm`` records dh_t and dc_t while it runs (``record``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GradientFlow:
    """Per-step state gradients of the final step's loss (float64; see module docstring)."""

    dh: np.ndarray  # (L, T, H) dLoss_T/dh_t
    dc: np.ndarray | None  # (L, T, H) dLoss_T/dc_t; None for a vanilla RNN
    loss: float  # Loss_T: nats (softmax head) or mean squared error over the O outputs

    @property
    def h_norms(self) -> np.ndarray:
        """``(L, T)`` L2 norm over units of dLoss_T/dh_t, >= 0."""
        return np.linalg.norm(self.dh, axis=2)  # (L, T)

    @property
    def c_norms(self) -> np.ndarray | None:
        """``(L, T)`` L2 norm over units of dLoss_T/dc_t (None for a vanilla RNN)."""
        return None if self.dc is None else np.linalg.norm(self.dc, axis=2)  # (L, T)


def gradient_flow(model, inputs, targets) -> GradientFlow:
    """State gradients of the loss at the final step of one sequence.

    ``inputs``: token ids ``(T,)`` or values ``(T, D)``; ``targets``: ids ``(T,)`` (softmax
    head) or values ``(T, O)``; only ``targets[-1]`` enters ``Loss_T``, the others are checked
    for shape only. No dropout (evaluation mode), zero initial state.
    """
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim < 1 or len(inputs) < 1:
        raise ValueError(f"inputs must hold at least one timestep, got shape {inputs.shape}")
    T = len(inputs)
    full = model.forward(inputs[None], targets=targets[None])  # the caches of every layer
    # The state after T - 1 steps is in those caches: hs/cs[t] hold h_t/c_t after t steps.
    before_last = [tuple(c[key][T - 1] for key in ("hs", "cs") if key in c) for c in full.cache["caches"]]
    last = model.forward(inputs[None, T - 1:], before_last, targets[None, T - 1:])  # Loss_T and its dscores
    dscores = last.cache["dscores"]  # (1, O) dLoss_T/dscores_T
    cache = full.cache
    H = model.config.hidden_size
    dhs = np.zeros((T, 1, H), model.dtype)  # (T, 1, H) dLoss_T/dh_t from the head: the last step only
    dhs[T - 1] = dscores @ model.params["head.W"].T  # (1, H)
    L = len(model.cells)
    dh = np.empty((L, T, H))  # (L, T, H)
    dc = np.empty((L, T, H)) if model.config.cell == "lstm" else None  # (L, T, H)
    for k in range(L - 1, -1, -1):
        cell, prep = model.cells[k], cache["preps"][k]
        record = {}
        dz, _, _ = cell.backward_tm(prep, cache["caches"][k], dhs, record=record)  # (T, 1, G)
        dh[k] = record["dh"][:, 0]  # (T, H)
        if dc is not None:
            dc[k] = record["dc"][:, 0]  # (T, H)
        if k > 0:  # into the layer below through its h_t = this layer's input (no dropout here)
            dhs = dz @ prep.Wx_u.T  # (T, 1, H)
    return GradientFlow(dh=dh, dc=dc, loss=float(last.loss))
