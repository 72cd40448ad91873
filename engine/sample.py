"""Sampling text from a character model, one timestep at a time, keeping the full trace.

The model is stepped with ``SequenceModel.step`` (a batch of one): first over the prime, then
over its own samples (without a trace, the prime runs in one chunked sequence forward instead).
At every step the next character is drawn from the model's distribution
``p`` sharpened or flattened by the temperature ``tau`` (``q ~ p ** (1 / tau)``, computed in log
space), optionally restricted to the ``top_k`` most likely characters; ``greedy`` takes the most
likely character instead. The returned ``Trace`` covers the whole text (prime + generated) and
its ``outputs`` are the model's own probabilities (temperature 1), so it equals
``model.trace(vocab.encode(text))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis.stream import final_state, iter_chunks
from .cells import make_cell
from .data import CharVocab
from .model import TOKEN_INPUTS, SequenceModel
from .trace import Trace

MAX_SAMPLE_LENGTH = 100_000  # characters generated per call, at most
START_CHAR = "\n"  # fed first when the prime is empty (the vocabulary's first char if absent)


@dataclass
class SampleResult:
    """``text`` = prime (or the start character) + ``generated``; ``trace`` covers ``text``
    (None when not kept)."""

    text: str
    generated: str
    trace: Trace | None


def start_char(vocab: CharVocab) -> str:
    """The character fed when the prime is empty: ``START_CHAR`` if in ``vocab``, else its first."""
    return START_CHAR if START_CHAR in vocab.chars else vocab.chars[0]


def trace_from_records(cell_kind: str, records_per_step: list, outputs, inputs, text: str | None,
                       initial_state: list | None = None) -> Trace:
    """Assemble a ``Trace`` from ``SequenceModel.step`` results on a batch of one.

    ``records_per_step[t][k]`` is layer ``k``'s record at step ``t`` (name -> ``(1, H)`` or
    ``(1, G)``); ``outputs``: per step ``(1, O)`` (or an array ``(T, O)``); ``inputs``: ``(T,)``
    ids or ``(T, D)`` values. ``initial_state`` per layer, a tuple of ``(H,)`` arrays; None =
    zeros. Needs at least one step.
    """
    if not records_per_step:
        raise ValueError("a trace needs at least one step")
    first = records_per_step[0]
    layers = [
        {name: np.stack([step[k][name][0] for step in records_per_step]) for name in first[k]}  # (T, H) / (T, G)
        for k in range(len(first))
    ]
    cell = make_cell(cell_kind, 1, 1)
    if initial_state is None:
        n_state = len(cell.state_names)  # (h, c) or (h,)
        initial_state = [tuple(np.zeros_like(layer["h"][0]) for _ in range(n_state)) for layer in layers]  # (H,) each
    return Trace(
        cell=cell_kind,
        names=cell.record_names,
        layers=layers,
        inputs=np.asarray(inputs).copy(),  # (T,) or (T, D)
        outputs=np.stack([np.asarray(o).reshape(-1) for o in outputs]),  # (T, O)
        initial_state=initial_state,
        text=text,
    )


def next_distribution(probs: np.ndarray, temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
    """Sampling distribution ``(V,)`` float64 from the model's probabilities ``probs (V,)``:
    ``softmax(log(probs) / temperature)`` over the ``top_k`` most likely ids (ties: lower id)."""
    with np.errstate(divide="ignore"):
        logits = np.log(probs.astype(np.float64)) / temperature  # (V,) log p / tau, -inf where p == 0
    if top_k is not None and top_k < logits.size:
        order = np.argsort(-logits, kind="stable")  # (V,) most likely first
        logits[order[top_k:]] = -np.inf  # (V,)
    logits -= logits.max()  # (V,) the best is 0: no overflow
    q = np.exp(logits)  # (V,)
    return q / q.sum()  # (V,)


def _check_options(model: SequenceModel, vocab: CharVocab, length, temperature, top_k, greedy, rng) -> None:
    config = model.config
    if config.head == "none":
        raise ValueError("this model has no output layer (head 'none'): there is no distribution to sample from")
    if config.input_kind not in TOKEN_INPUTS or config.head != "softmax":
        raise ValueError("sampling needs a character model (token input, softmax head)")
    if not (config.input_size == config.output_size == len(vocab)):
        raise ValueError(
            f"the vocabulary has {len(vocab)} characters but the model has input_size {config.input_size} "
            f"and output_size {config.output_size}"
        )
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 0 <= length <= MAX_SAMPLE_LENGTH:
        raise ValueError(f"length must be an integer in [0, {MAX_SAMPLE_LENGTH}], got {length!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)) \
            or not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                              or not 1 <= top_k <= len(vocab)):
        raise ValueError(f"top_k must be None or an integer in [1, {len(vocab)}], got {top_k!r}")
    if not greedy and not isinstance(rng, np.random.Generator):
        raise ValueError("sampling needs an np.random.Generator (rng) unless greedy=True")


def _choose(probs: np.ndarray, temperature: float, top_k: int | None, greedy: bool,
            rng: np.random.Generator | None) -> int:
    """The next id drawn from ``probs (V,)`` (``next_distribution``), or its argmax if ``greedy``."""
    if greedy:
        return int(np.argmax(probs))
    return int(rng.choice(probs.size, p=next_distribution(probs, temperature, top_k)))


def sample(model: SequenceModel, vocab: CharVocab, prime: str = "", length: int = 200,
           temperature: float = 1.0, top_k: int | None = None, greedy: bool = False,
           rng: np.random.Generator | None = None, keep_trace: bool = True) -> SampleResult:
    """Feed ``prime`` (or ``start_char(vocab)`` when empty), then generate ``length`` characters.

    ``temperature`` > 0 (below 1 concentrates, above 1 flattens), ``top_k`` in [1, V] or None,
    ``greedy`` = always the most likely character (no ``rng`` needed). Prime characters outside
    the vocabulary raise ``DataError``. The trace starts from the zero state.

    ``keep_trace=False`` keeps no records (``trace`` is None) and runs the prime in one sequence
    forward, in chunks (``engine.analysis.stream.iter_chunks``): memory independent of the
    prime's length (``model`` then needs ``trace`` as well as ``step``).
    """
    _check_options(model, vocab, length, temperature, top_k, greedy, rng)
    prime = prime or start_char(vocab)
    ids = vocab.encode(prime, source="the prime").tolist()
    n_prime = len(ids)
    if not keep_trace:
        for _, chunk in iter_chunks(model, np.array(ids, dtype=np.int64)):
            state, probs = final_state(chunk), chunk.outputs[-1]  # per layer ((1, H), ...), (V,)
        for _ in range(length):
            ids.append(_choose(probs, temperature, top_k, greedy, rng))
            out, state, _ = model.step(np.array(ids[-1:], dtype=np.int64), state)  # (1, V)
            probs = out[0]  # (V,)
        text = vocab.decode(np.array(ids, dtype=np.int64))
        return SampleResult(text=text, generated=text[len(prime):], trace=None)
    records, outputs, state = [], [], None
    for t in range(n_prime + length):
        if t >= n_prime:  # generate from the distribution after the previous character
            ids.append(_choose(outputs[-1][0], temperature, top_k, greedy, rng))
        out, state, rec = model.step(np.array(ids[t : t + 1], dtype=np.int64), state)  # (1, V)
        outputs.append(out)
        records.append(rec)
    text = vocab.decode(np.array(ids, dtype=np.int64))
    trace = trace_from_records(model.config.cell, records, outputs, np.array(ids, dtype=np.int64), text)
    return SampleResult(text=text, generated=text[len(prime):], trace=trace)
