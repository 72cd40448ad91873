"""Interventions: clamp, zero or scale one unit's gate, cell state or hidden state while the
model runs, and measure what changes (the neuron-ablation test of what a unit causes).

An ``Intervention`` acts on unit ``u`` of quantity ``q`` in layer ``k`` at every step ``t`` in
``[start, end)``: ``x -> value`` (clamp), ``x -> 0`` (zero) or ``x -> value * x`` (scale). The
LSTM step is the cell's own (``step_projected``, equations in ``engine.cells``); an intervention
edits its record and the values downstream *within the step* are recomputed from the same
equations (Hochreiter & Schmidhuber 1997 with forget gate)::

    gate i, f, g or o edited  ->  c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t)
    c edited                  ->  h_t = o_t * tanh(c_t)
    h edited                  ->  nothing else at step t (the head, the layer above and step t+1 read it)

The edited ``(h_t, c_t)`` is the state carried to step ``t+1`` and ``h_t`` feeds the layer above
and the head. Pre-activations (``pre``) are those computed before the edit.

Zero cost when unused: the model's own forward and step (``SequenceModel.forward``/``step``)
are untouched; interventions run in this module's separate stepping loop, and only over the
steps ``[first start, last end)``: before that the baseline state is used, after it the model's
chunked sequence forward continues from the edited state. Memory: one chunk (``stream``), the
two ``(T,)`` per-step loss arrays (float64: 17.6 MB for a 1.1 MB text) and the two window traces.
Time: the stepping loop costs one ``SequenceModel.step``-like call per intervened step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..cells import GATES
from ..data import CharVocab
from ..model import SequenceModel
from ..sample import sample, trace_from_records
from ..trace import Trace
from .stream import DEFAULT_CHUNK, final_state, iter_chunks
from .strip import log_softmax_head, next_char_loss

MODES = ("clamp", "zero", "scale")
WINDOW = 512  # steps of the window traces returned by default


@dataclass(frozen=True)
class Intervention:
    """Edit unit ``unit`` of ``quantity`` (h, c, i, f, g or o; h only for an RNN) in ``layer`` at
    steps ``[start, end)`` (``end`` None = to the end of the sequence). ``mode``: ``"clamp"`` to
    ``value``, ``"zero"``, or ``"scale"`` by ``value`` (see the module docstring)."""

    layer: int
    quantity: str
    unit: int
    mode: str = "zero"
    value: float = 0.0
    start: int = 0
    end: int | None = None

    def __post_init__(self):
        for name in ("layer", "unit", "start"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {v!r}")
        if self.end is not None and (isinstance(self.end, bool) or not isinstance(self.end, (int, np.integer))
                                     or self.end <= self.start):
            raise ValueError(f"end must be None or a whole number > start ({self.start}), got {self.end!r}")
        if self.quantity not in ("h", "c", *GATES):
            raise ValueError(f"unknown quantity {self.quantity!r}; expected h, c, i, f, g or o")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float, np.floating)) \
                or not math.isfinite(self.value):
            raise ValueError(f"value must be a finite number, got {self.value!r}")

    def active(self, t: int) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def apply(self, x: np.ndarray) -> None:
        """Edit column ``unit`` of ``x (B, H)`` in place."""
        column = x[:, self.unit]  # (B,) view
        if self.mode == "scale":
            column *= x.dtype.type(self.value)
        else:
            column[...] = 0.0 if self.mode == "zero" else self.value


def check_interventions(model: SequenceModel, interventions) -> tuple:
    """Validate against the model (layer, unit, quantity the cell has); returns a tuple."""
    interventions = tuple(interventions)
    L, H = model.config.num_layers, model.config.hidden_size
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise ValueError(f"expected Intervention objects, got {type(iv).__name__}")
        if iv.layer >= L or iv.unit >= H:
            raise ValueError(f"intervention on layer {iv.layer} unit {iv.unit}: the model has {L} layer(s) of {H} units")
        if model.config.cell != "lstm" and iv.quantity != "h":
            raise ValueError(f"a {model.config.cell} model has only h; cannot intervene on {iv.quantity!r}")
    return interventions


def intervened_step(model: SequenceModel, x_t: np.ndarray, state, t: int, interventions: tuple):
    """``SequenceModel.step`` at step ``t`` with the active ``interventions`` applied (module
    docstring). Returns ``(output (B, O), new_state, records)`` like ``SequenceModel.step``;
    with no active intervention the result is bit for bit that of ``model.step``."""
    x_t = model.check_inputs(x_t, 1)
    state = model.zero_state(x_t.shape[0]) if state is None else state
    layer_in, records, new_state = x_t, [], []
    for k, (cell, prep) in enumerate(zip(model.cells, model.prepared())):
        xp = model._project(k, prep, layer_in[None])[0]  # (B, G)
        s, rec = cell.step_projected(prep, xp, state[k])
        active = [iv for iv in interventions if iv.layer == k and iv.active(t)]
        if active:
            rec = {name: a.copy() for name, a in rec.items()}  # (B, H) each, (B, G) pre
            for iv in active:
                if iv.quantity in GATES:
                    iv.apply(rec[iv.quantity])
            if any(iv.quantity in GATES for iv in active):
                rec["c"] = rec["f"] * state[k][1] + rec["i"] * rec["g"]  # (B, H) c_t
            for iv in active:
                if iv.quantity == "c":
                    iv.apply(rec["c"])
            if any(iv.quantity != "h" for iv in active):
                rec["h"] = rec["o"] * np.tanh(rec["c"])  # (B, H) h_t
            for iv in active:
                if iv.quantity == "h":
                    iv.apply(rec["h"])
            s = (rec["h"], rec["c"]) if cell.kind == "lstm" else (rec["h"],)
        new_state.append(s)
        records.append(rec)
        layer_in = rec["h"]  # (B, H)
    scores = layer_in @ model.params["head.W"] + model.params["head.b"]  # (B, O)
    output, _, _ = model._head(scores, None, x_t.shape[0], 1)
    return output, new_state, records


@dataclass
class InterventionResult:
    """``loss_before`` / ``loss_after``: mean next-character loss (nats) over the whole text
    without / with the interventions; ``nll_before`` / ``nll_after`` ``(T,)`` per step (NaN at
    the last step); ``original`` / ``changed``: traces (probabilities in ``outputs``) of the
    window ``[window_start, window_start + steps)``."""

    loss_before: float
    loss_after: float
    nll_before: np.ndarray  # (T,)
    nll_after: np.ndarray  # (T,)
    window_start: int
    original: Trace
    changed: Trace

    @property
    def delta(self) -> float:
        """``loss_after - loss_before`` in nats per character."""
        return self.loss_after - self.loss_before

    def delta_where(self, mask: np.ndarray) -> float:
        """Mean change of the per-step loss over the steps where ``mask (T,)`` is True (NaN steps skipped)."""
        diff = (self.nll_after - self.nll_before)[np.asarray(mask, bool)]  # (m,)
        return float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")


def _chunked(model: SequenceModel, inputs: np.ndarray, start: int, end: int, state, nll: np.ndarray,
             chunk: int) -> list:
    """Fill ``nll[start:end]`` by the chunked sequence forward from ``state`` (the state before
    step ``start``); returns the state before step ``end``."""
    if start >= end:
        return state
    for t0, tr in iter_chunks(model, inputs[start:end], chunk=chunk, state=state):
        logp = log_softmax_head(model, tr.gate("h", tr.num_layers - 1))  # (m, V)
        nll[start + t0 : start + t0 + tr.steps] = next_char_loss(logp, inputs, start + t0)
        state = final_state(tr)
    return state


def _stepped(model: SequenceModel, inputs: np.ndarray, start: int, end: int, state, interventions: tuple,
             nll: np.ndarray, keep: int):
    """Step ``[start, end)`` with ``intervened_step`` from ``state``, filling ``nll[start:end]``;
    returns ``(state before end, trace of the first keep steps)``."""
    records, outputs, logps = [], [], []
    initial = [tuple(s[0].copy() for s in layer) for layer in state]  # (H,) each
    for t in range(start, end):
        out, state, rec = intervened_step(model, inputs[t : t + 1], state, t, interventions)  # (1, O)
        logps.append(log_softmax_head(model, rec[-1]["h"]))  # (1, V)
        if t < start + keep:
            records.append(rec)
            outputs.append(out)
    nll[start:end] = next_char_loss(np.concatenate(logps), inputs, start)  # (end - start,)
    trace = trace_from_records(model.config.cell, records, outputs, inputs[start : start + keep], None, initial)
    return state, trace


def intervene(model: SequenceModel, inputs: np.ndarray, interventions, window: int = WINDOW,
              chunk: int = DEFAULT_CHUNK) -> InterventionResult:
    """Run token ids ``inputs (T,)`` with and without ``interventions`` (module docstring); the
    window traces cover ``window`` steps from the earliest intervention's start.

    Steps before the earliest start run once (chunked forward). From there both runs use the
    same code: the stepping loop (``intervened_step``, with and without the interventions) up
    to the last end (and at least the window), then the chunked forward from each run's own
    state. So an intervention that changes nothing (scale by 1) gives results equal bit for bit.
    Raises ValueError for no interventions, one that starts at or after ``T``, or a bad window.
    """
    inputs = np.asarray(inputs)
    T = inputs.shape[0]
    interventions = check_interventions(model, interventions)
    if not interventions:
        raise ValueError("give at least one intervention")
    first = min(iv.start for iv in interventions)
    if first >= T:
        raise ValueError(f"the interventions start at step {first}, after the text's {T} steps")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive whole number of steps, got {window!r}")
    keep = min(T, first + window) - first
    loop_end = min(T, max(first + keep, *(T if iv.end is None else iv.end for iv in interventions)))
    nll_before = np.empty(T)  # (T,)
    state = _chunked(model, inputs, 0, first, model.zero_state(1), nll_before, chunk)
    nll_after = nll_before.copy()  # (T,) equal before ``first``
    runs = []
    for nll, ivs in ((nll_before, ()), (nll_after, interventions)):
        end_state, trace = _stepped(model, inputs, first, loop_end, state, ivs, nll, keep)
        _chunked(model, inputs, loop_end, T, end_state, nll, chunk)
        runs.append(trace)
    mean = (lambda nll: float(np.nanmean(nll))) if T > 1 else (lambda nll: float("nan"))
    return InterventionResult(mean(nll_before), mean(nll_after), nll_before, nll_after, first, *runs)


class _IntervenedModel:
    """A ``SequenceModel`` stand-in for ``engine.sample.sample``: its ``step`` is
    ``intervened_step`` at the count of steps taken so far."""

    def __init__(self, model: SequenceModel, interventions: tuple):
        self.config = model.config
        self._model, self._interventions, self._t = model, interventions, 0

    def step(self, x_t, state=None):
        result = intervened_step(self._model, x_t, state, self._t, self._interventions)
        self._t += 1
        return result


def sample_pair(model: SequenceModel, vocab: CharVocab, interventions, prime: str = "", length: int = 200,
                seed: int = 0, temperature: float = 1.0, top_k: int | None = None) -> tuple[str, str]:
    """``(without, with)``: text sampled by ``engine.sample.sample`` from the same ``seed``
    without and with ``interventions`` (their steps count from the first prime character).
    Both include the prime. Raises what ``sample`` raises for bad options."""
    interventions = check_interventions(model, interventions)
    without = sample(model, vocab, prime, length, temperature, top_k, rng=np.random.default_rng(seed))
    with_ = sample(_IntervenedModel(model, interventions), vocab, prime, length, temperature, top_k,
                   rng=np.random.default_rng(seed))
    return without.text, with_.text
