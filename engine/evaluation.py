"""Evaluating a character model on a whole token sequence (the validation loss of a text).

``evaluate`` runs the sequence as ``S`` side-by-side streams from a zero state, in chunks of at
most ``EVAL_CHUNK`` timesteps (memory stays bounded however long the text is; a stop event is
checked between chunks), and returns the mean cross-entropy in nats per character. ``engine.data.TextCorpus.validation_loss`` calls it.
"""

from __future__ import annotations

import threading

import numpy as np

EVAL_CHUNK = 256  # timesteps per forward call when evaluating (bounds memory)
EVAL_CHUNK_WORK = 5 * 10 ** 8  # multiply-adds per evaluation chunk at most (~0.1 s here: bounds the wait for stop)


def eval_chunk_length(config, streams: int, chunk: int = EVAL_CHUNK) -> int:
    """Timesteps per forward call of ``evaluate`` for ``streams`` side-by-side streams: at most
    ``chunk``, and at most what costs about EVAL_CHUNK_WORK multiply-adds (the recurrent and
    input matrix products of every layer and the head), at least 1."""
    H = config.hidden_size
    per_step = streams * (config.num_layers * (H + config.input_size) * 4 * H + H * config.output_size)
    return max(1, min(int(chunk), EVAL_CHUNK_WORK // max(1, per_step)))


def evaluate(model, ids: np.ndarray, batch_size: int = 32, chunk: int = EVAL_CHUNK,
             stop: threading.Event | None = None) -> float | None:
    """Mean cross-entropy, nats per character, of predicting ``ids[1:]`` from ``ids[:-1]``.

    Every character after the first is predicted exactly once. The ``N = M - 1`` predictions
    are cut into ``S = min(batch_size, N)`` contiguous streams of ``L = N // S`` positions, run
    side by side from a zero state in chunks of at most ``chunk`` timesteps (fewer for a large
    model, so that a chunk costs at most about EVAL_CHUNK_WORK multiply-adds) with the state
    carried between chunks; the ``N - S * L`` leftover positions continue the last stream's
    state. ``ids (M,)`` int token ids, M >= 2. Streams start from a zero state, so the result
    depends (slightly) on ``batch_size``; ``batch_size=1`` is the exact single-stream loss.

    ``stop``: checked before every chunk; once it is set the evaluation ends and returns None
    (so closing the app or stopping training never waits for a whole validation pass).
    """
    ids = np.asarray(ids)  # (M,)
    if ids.ndim != 1 or ids.size < 2:
        raise ValueError(f"evaluation needs a 1-D array of at least 2 token ids, got shape {ids.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    N = ids.size - 1
    S = min(int(batch_size), N)
    L = N // S
    chunk = eval_chunk_length(model.config, S, chunk)
    x = ids[: S * L].reshape(S, L)  # (S, L) inputs, one stream per row
    y = ids[1 : S * L + 1].reshape(S, L)  # (S, L) targets
    total, state = 0.0, None
    for j in range(0, L, chunk):
        if stop is not None and stop.is_set():
            return None
        result = model.forward(x[:, j : j + chunk], state, y[:, j : j + chunk])
        total += result.loss * result.outputs.shape[0] * result.outputs.shape[1]  # mean -> sum
        state = result.state
    rest = N - S * L
    if rest:
        last = [tuple(s[S - 1 : S] for s in layer) for layer in state]  # per layer (1, H)
        for j in range(S * L, N, chunk):
            if stop is not None and stop.is_set():
                return None
            end = min(j + chunk, N)
            result = model.forward(ids[None, j:end], last, ids[None, j + 1 : end + 1])
            total += result.loss * (end - j)
            last = result.state
    return total / N
