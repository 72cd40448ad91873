"""The whole-text strip: per-character loss and top-k next-character predictions.

For a character model, step ``t`` reads character ``t`` and predicts character ``t + 1``; its
loss is ``-log p(x_{t+1} | x_0..x_t)`` in nats, the cross-entropy the trainer minimises. The
log-probabilities are recomputed in float64 from the top layer's ``h_t`` through the head with
log-sum-exp (``log p = s - max s - log sum exp(s - max s)``, ``s = h W + b``), so a tiny
probability gives a large finite loss rather than ``-log 0``. The last step of the text has no
next character: its loss is NaN. Top-k follows Karpathy et al. 2015 (Fig. 5, k = 5).

Memory: one chunk of the trace (``stream``) plus the returned ``(n,)`` losses and ``(n, k)``
predictions for the ``n`` steps asked for (for a 1 MB text: 8.8 MB of losses with ``k = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import SequenceModel
from .stream import DEFAULT_CHUNK, check_range, iter_chunks

TOP_K = 5


@dataclass(frozen=True)
class Strip:
    """Steps ``[start, start + n)``: ``loss (n,)`` nats (NaN at the text's last step),
    ``top_ids (n, k)`` most likely next ids, best first, and their ``top_probs (n, k)``."""

    start: int
    loss: np.ndarray  # (n,)
    top_ids: np.ndarray  # (n, k)
    top_probs: np.ndarray  # (n, k)


def log_softmax_head(model: SequenceModel, h_top: np.ndarray) -> np.ndarray:
    """``(n, V)`` float64 log-probabilities of the softmax head for top-layer states ``h_top (n, H)``.
    Raises ValueError for a model whose head is not a softmax."""
    if model.config.head != "softmax":
        raise ValueError(f"per-character loss needs a softmax head, not {model.config.head!r}")
    scores = np.asarray(h_top, np.float64) @ model.params["head.W"].astype(np.float64)  # (n, V)
    scores += model.params["head.b"]  # (n, V)
    scores -= scores.max(axis=1, keepdims=True)  # (n, V) max 0: no overflow
    scores -= np.log(np.exp(scores).sum(axis=1, keepdims=True))  # (n, V)
    return scores


def next_char_loss(logp: np.ndarray, inputs: np.ndarray, t0: int) -> np.ndarray:
    """``(n,)`` losses of steps ``[t0, t0 + n)`` from their log-probabilities ``logp (n, V)``,
    the next ids taken from ``inputs (T,)``; NaN for step ``T - 1``."""
    n = logp.shape[0]
    loss = np.full(n, np.nan)  # (n,)
    m = min(n, inputs.shape[0] - 1 - t0)  # steps that have a next character
    if m > 0:
        loss[:m] = -logp[np.arange(m), inputs[t0 + 1 : t0 + 1 + m]]  # (m,)
    return loss


def strip(model: SequenceModel, inputs: np.ndarray, start: int = 0, end: int | None = None, k: int = TOP_K,
          chunk: int = DEFAULT_CHUNK) -> Strip:
    """Losses and top-``k`` predictions (``k = 0``: none) for steps ``[start, end)`` of token ids
    ``inputs (T,)`` (module docstring). Raises ValueError for a bad range or ``k``."""
    inputs = np.asarray(inputs)
    start, end = check_range(inputs.shape[0], start, end)
    V = model.config.output_size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= V:
        raise ValueError(f"k must be a whole number in [0, {V}], got {k!r}")
    n = end - start
    loss = np.empty(n)  # (n,)
    top_ids = np.empty((n, k), np.int64)  # (n, k)
    top_probs = np.empty((n, k))  # (n, k)
    for t0, tr in iter_chunks(model, inputs, start, end, chunk):
        logp = log_softmax_head(model, tr.gate("h", tr.num_layers - 1))  # (m, V)
        rows = slice(t0 - start, t0 - start + tr.steps)
        loss[rows] = next_char_loss(logp, inputs, t0)
        if k:
            best = np.argsort(-logp, axis=1, kind="stable")[:, :k]  # (m, k) ties: lower id first
            top_ids[rows] = best
            top_probs[rows] = np.exp(np.take_along_axis(logp, best, axis=1))  # (m, k)
    return Strip(start, loss, top_ids, top_probs)
