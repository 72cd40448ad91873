"""Interventions: clamp, zero or scale one unit's gate, cell state or hidden state while the
model runs, and measure what changes (the neuron-ablation test of what a unit causes).

An ``Intervention`` acts on unit ``u`` of quantity ``q`` in layer ``k`` at every step ``t`` in
``[start, end)``: ``x -> value`` (clamp), ``x -> 0`` (zero) or ``x -> value * x`` (scale). The
step is the cell's own (``step_projected``, equations in ``engine.cells``); an intervention
edits its record and the values downstream *within the step* are recomputed from the same
equations, in the order they are computed (``_STAGES``). LSTM (Hochreiter & Schmidhuber 1997
with forget gate)::

    gate i, f, g or o edited  ->  c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t)
    c edited                  ->  h_t = o_t * tanh(c_t)
    h edited                  ->  nothing else at step t (the head, the layer above and step t+1 read it)

GRU (PyTorch ``nn.GRU``: ``r = sigma(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``)::

    r edited      ->  n_t = tanh(W_in x + b_in + r_t * (W_hn h_{t-1} + b_hn)),   then h_t
    z or n edited ->  h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    h edited      ->  nothing else at step t

An RNN records h only. The edited state (``(h_t, c_t)`` or ``(h_t,)``) is carried to step
``t+1`` and ``h_t`` feeds the layer above and the head. Pre-activations (``pre``) are those
computed before the edit, except n's tanh argument after an edit of r (recomputed with it).

Zero cost when unused: the model's own forward and step (``SequenceModel.forward``/``step``)
are untouched. ``iter_intervened`` runs a text in chunks, both without and with the edits, each
run carrying its own state from any stored state (a ``Stepper`` checkpoint just before the first
edit): a chunk no edit touches is ``model.trace``; a touched chunk runs layer by layer, each
layer's input projected at once and its steps taken with ``cell.step_projected`` plus the edits
(the same arithmetic as the forward, so the unedited run equals ``model.trace`` bit for bit).
``loss_change`` reduces the chunks to running sums: memory two chunks whatever the length, a
cancel point after every chunk. ``intervene`` keeps the ``(T,)`` per-step losses (float64: 17.6
MB for a 1.1 MB text) and a window's traces. Time: about 60 us per step for both runs of the
demo model (H = 64), 17 s for its 150 k characters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..cells import GATES, make_cell, record_names
from ..data import CharVocab
from ..model import SequenceModel
from ..quantities import RECORDED_NAMES
from ..sample import sample, trace_from_records
from ..trace import Trace
from .stream import DEFAULT_CHUNK, check_range, final_state, iter_chunks
from .strip import log_softmax_head, next_char_loss

MODES = ("clamp", "zero", "scale")
WINDOW = 512  # steps of the window traces returned by default


@dataclass(frozen=True)
class Intervention:
    """Edit unit ``unit`` of ``quantity`` (LSTM h, c, i, f, g or o; GRU h, r, z or n; RNN h) in
    ``layer`` at steps ``[start, end)`` (``end`` None = to the end of the sequence). ``mode``:
    ``"clamp"`` to ``value``, ``"zero"``, or ``"scale"`` by ``value`` (see the module docstring)."""

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
        if self.quantity not in RECORDED_NAMES:
            raise ValueError(f"unknown quantity {self.quantity!r}; expected one of {', '.join(RECORDED_NAMES)}")
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


def editable(cell: str) -> tuple:
    """The quantities an intervention can edit in a layer of ``cell`` ("lstm", "gru" or "rnn"):
    its state (h, then c), then its gates in record order: LSTM h, c, i, f, g, o; GRU h, r, z,
    n; RNN h. Raises ValueError for another cell type."""
    states = make_cell(cell, 1, 1).state_names  # (h, c) or (h,)
    return (*states, *(name for name in record_names(cell) if name not in states))


def check_interventions(model: SequenceModel, interventions) -> tuple:
    """Validate against the model (layer, unit, quantity the cell has); returns a tuple."""
    interventions = tuple(interventions)
    L, H = model.config.num_layers, model.config.hidden_size
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise ValueError(f"expected Intervention objects, got {type(iv).__name__}")
        if iv.layer >= L or iv.unit >= H:
            raise ValueError(f"intervention on layer {iv.layer} unit {iv.unit}: the model has {L} layer(s) of {H} units")
        names = editable(model.config.cell)
        if iv.quantity not in names:
            raise ValueError(f"a {model.config.cell} model has only {', '.join(names)}; "
                             f"cannot intervene on {iv.quantity!r}")
    return interventions


def _lstm_c(cell, prep, xp: np.ndarray, state: tuple, rec: dict) -> None:
    rec["c"] = rec["f"] * state[1] + rec["i"] * rec["g"]  # (B, H) c_t


def _lstm_h(cell, prep, xp: np.ndarray, state: tuple, rec: dict) -> None:
    rec["h"] = rec["o"] * np.tanh(rec["c"])  # (B, H) h_t


def _gru_n(cell, prep, xp: np.ndarray, state: tuple, rec: dict) -> None:
    """n and its tanh argument from the (edited) r; ``W_hn h_{t-1} + b_hn`` is the cell's own
    (``GRUCell._gates``), so an identity edit of r gives equal bits."""
    acts = np.empty_like(rec["pre"])  # (B, 3H) r, z, n of the unedited step
    hn = np.empty_like(state[0])  # (B, H) W_hn h_{t-1} + b_hn
    cell._gates(prep, xp, state[0], acts, hn, None)
    pre_n = cell.gate_views(rec["pre"])["n"]  # (B, H) view
    np.multiply(rec["r"], hn, out=pre_n)  # (B, H) r * (W_hn h + b_hn)
    pre_n += cell.gate_views(xp)["n"]  # (B, H) + W_in x + b_in
    rec["n"] = np.tanh(pre_n)  # (B, H) n_t


def _gru_h(cell, prep, xp: np.ndarray, state: tuple, rec: dict) -> None:
    rec["h"] = rec["n"] + rec["z"] * (state[0] - rec["n"])  # (B, H) (1 - z) n + z h_{t-1}, as the cell computes it


# Per cell: the quantities edited at each stage of a step, in the order the step computes
# them, and what is recomputed from them before the next stage (None: nothing within the step).
_STAGES = {
    "lstm": ((GATES, _lstm_c), (("c",), _lstm_h), (("h",), None)),
    "gru": ((("r",), _gru_n), (("z", "n"), _gru_h), (("h",), None)),
    "rnn": ((("h",), None),),
}


def _edited(cell, prep, xp: np.ndarray, state: tuple, rec: dict, active: list) -> dict:
    """A copy of one layer's step record ``rec`` with the ``active`` interventions applied and
    the values downstream within the step recomputed (module docstring); ``xp (B, G)`` is the
    step's projected input and ``state`` the layer's state before it (``(B, H)`` arrays)."""
    rec = {name: a.copy() for name, a in rec.items()}  # (B, H) each, (B, G) pre
    edited = False
    for names, downstream in _STAGES[cell.kind]:
        for iv in active:
            if iv.quantity in names:
                iv.apply(rec[iv.quantity])
                edited = True
        if edited and downstream is not None:
            downstream(cell, prep, xp, state, rec)
    return rec


def _cell_step(cell, prep, xp: np.ndarray, state: tuple, t: int, interventions: tuple):
    """``cell.step_projected`` at step ``t`` from projected input ``xp (B, G)`` with this layer's
    active ``interventions`` applied; returns ``(new_state, record)``."""
    s, rec = cell.step_projected(prep, xp, state)
    active = [iv for iv in interventions if iv.active(t)]
    if active:
        rec = _edited(cell, prep, xp, state, rec, active)
        s = tuple(rec[name] for name in cell.state_names)  # (B, H) each
    return s, rec


def intervened_step(model: SequenceModel, x_t: np.ndarray, state, t: int, interventions: tuple):
    """``SequenceModel.step`` at step ``t`` with the active ``interventions`` applied (module
    docstring). Returns ``(output (B, O), new_state, records)`` like ``SequenceModel.step``;
    with no active intervention the result is bit for bit that of ``model.step``."""
    x_t = model.check_inputs(x_t, 1)
    state = model.zero_state(x_t.shape[0]) if state is None else state
    layer_in, records, new_state = _layer0_input(model, x_t), [], []
    for k, (cell, prep) in enumerate(zip(model.cells, model.prepared())):
        xp = model._project(k, prep, layer_in[None])[0]  # (B, G)
        s, rec = _cell_step(cell, prep, xp, state[k], t, tuple(iv for iv in interventions if iv.layer == k))
        new_state.append(s)
        records.append(rec)
        layer_in = rec["h"]  # (B, H)
    output, _, _ = model._head(model._scores(layer_in), None, x_t.shape[0], 1)  # (B, O)
    return output, new_state, records


def _layer0_input(model: SequenceModel, x: np.ndarray) -> np.ndarray:
    """What layer 0 reads from inputs ``x``: the ids themselves (one-hot, gathered by
    ``_project``), or their embedding / scaled index (``SequenceModel.encode_tokens``)."""
    return model.encode_tokens(x) if model.config.input_kind in ("embedding", "scaled_index") else x


def _touches(interventions: tuple, t0: int, t1: int) -> bool:
    """True when some intervention is active at a step of ``[t0, t1)``."""
    return any(iv.start < t1 and (iv.end is None or iv.end > t0) for iv in interventions)


def intervened_trace(model: SequenceModel, inputs: np.ndarray, interventions, state=None, t0: int = 0,
                     apply: bool = True) -> Trace:
    """``SequenceModel.trace`` of ``inputs (n,)`` (steps ``[t0, t0 + n)`` of a longer text) from
    ``state`` (per layer ``((1, H), ...)``; None = zeros) with the ``interventions`` active at
    those steps applied (module docstring); ``trace.start`` is ``t0``.

    Where no intervention is active the result is ``model.trace``'s. Otherwise each layer runs
    over the whole chunk (its input projected at once, as the model's forward does) and steps
    with ``cell.step_projected`` plus the edits; ``apply=False`` runs that same code without
    the edits (the baseline an edit is compared to: an edit that changes nothing, such as a
    scale by 1, then gives equal bits). Raises what ``model.trace`` raises for bad inputs."""
    interventions = tuple(interventions)
    inputs = np.asarray(inputs)
    n = inputs.shape[0]
    if n == 0 or not _touches(interventions, t0, t0 + n):
        trace = model.trace(inputs, state)
        trace.start = t0
        return trace
    x_tm = np.ascontiguousarray(model.check_inputs(inputs[None], 2).swapaxes(0, 1))  # (n, 1) or (n, 1, D)
    state = model._check_state(state, 1)
    layer_in, per_step = _layer0_input(model, x_tm), [[] for _ in range(n)]
    for k, (cell, prep) in enumerate(zip(model.cells, model.prepared())):
        xp = model._project(k, prep, layer_in)  # (n, 1, G)
        mine = tuple(iv for iv in interventions if iv.layer == k) if apply else ()
        hs = np.empty((n, 1, cell.hidden_size), model.dtype)  # (n, 1, H)
        s = state[k]
        for t in range(n):
            s, rec = _cell_step(cell, prep, xp[t], s, t0 + t, mine)
            per_step[t].append(rec)
            hs[t] = rec["h"]  # (1, H)
        layer_in = hs
    outputs, _, _ = model._head(model._scores(layer_in.reshape(n, -1)), None, 1, n)  # (n, O)
    initial = [tuple(a[0].copy() for a in layer) for layer in state]  # (H,) each
    trace = trace_from_records(model.config.cell, per_step, outputs, inputs, None, initial)
    trace.start = t0
    return trace


def iter_intervened(model: SequenceModel, inputs: np.ndarray, interventions, start: int = 0, state=None,
                    end: int | None = None, chunk: int = DEFAULT_CHUNK,
                    changed_state=None) -> Iterator[tuple[int, Trace, Trace]]:
    """Yield ``(t0, original, changed)`` for consecutive chunks of at most ``chunk`` steps
    covering ``[start, end)`` of token ids ``inputs (T,)``: the traces (``intervened_trace``
    with ``apply`` False / True) of steps ``[t0, t0 + steps)``, each run carrying its own state
    from ``state``, the model's state after ``start`` steps (None = zeros; e.g. a stored
    checkpoint ``Stepper.state(start)``), and ``changed_state``, the intervened run's state
    there (None = ``state``: no intervention acted before ``start``; e.g. one kept by
    ``loss_change``). Memory: two chunks. The loop pauses at every chunk: stop iterating to
    cancel. Raises ValueError for a bad range or chunk, or, without ``changed_state``, an
    intervention active before ``start`` (its effect would be missing from ``state``)."""
    interventions = check_interventions(model, interventions)
    inputs = np.asarray(inputs)
    start, end = check_range(inputs.shape[0], start, end)
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    if changed_state is None and _touches(interventions, 0, start):
        raise ValueError(f"an intervention is active before step {start}: start at or before its first step")
    runs = [state, state if changed_state is None else changed_state]  # the original and the changed run's
    for t0 in range(start, end, chunk):
        ids = inputs[t0 : min(end, t0 + chunk)]  # (m,)
        traces = [intervened_trace(model, ids, interventions, s, t0, apply) for s, apply in zip(runs, (False, True))]
        runs = [final_state(tr) for tr in traces]
        yield t0, traces[0], traces[1]


@dataclass(frozen=True)
class LossChange:
    """The next-character loss (nats) without / with interventions over the ``steps`` steps
    from ``start`` on that have a next character: their means ``before`` / ``after``; and over
    the ``where_steps`` of them a mask selects (``where_before`` / ``where_after``, NaN when
    none). ``text_steps``: the steps of the whole text that have a next character (T - 1)."""

    start: int
    steps: int
    before: float
    after: float
    text_steps: int
    where_steps: int = 0
    where_before: float = float("nan")
    where_after: float = float("nan")

    @property
    def delta(self) -> float:
        """``after - before``: the change per character over the steps measured."""
        return self.after - self.before

    @property
    def text_delta(self) -> float:
        """The change of the mean loss over the whole text: steps before ``start`` have the
        same loss in both runs, so it is the summed change over ``text_steps``."""
        return self.delta * self.steps / self.text_steps if self.text_steps else float("nan")


def loss_change(model: SequenceModel, inputs: np.ndarray, interventions, start: int | None = None, state=None,
                where: np.ndarray | None = None, chunk: int = DEFAULT_CHUNK, progress=None,
                cancelled=None, keep_states: dict | None = None) -> LossChange | None:
    """The loss without and with ``interventions`` over steps ``[start, T)`` of token ids
    ``inputs (T,)`` (``start`` None = the earliest intervention's start; ``state``: the model's
    state after ``start`` steps, None = zeros), by ``iter_intervened``; ``where (T,)``: an
    optional boolean mask of steps to report apart (e.g. those whose next character closes a
    bracket). ``keep_states``: a dict to fill with the intervened run's state after each
    chunk's last step (``{t: state}``, for ``iter_intervened``'s ``changed_state``: ``L * S * H``
    numbers per chunk). Memory: two chunks plus running sums, whatever T. After each chunk
    ``progress(done, total)`` (steps) is called and ``cancelled()`` checked: True stops the
    pass and returns None. Raises ValueError as ``iter_intervened`` does, or for a mask of
    another length."""
    inputs = np.asarray(inputs)
    interventions = check_interventions(model, interventions)
    if not interventions:
        raise ValueError("give at least one intervention")
    T = inputs.shape[0]
    start = min(iv.start for iv in interventions) if start is None else start
    if start >= T:
        raise ValueError(f"the interventions start at step {start}, after the text's {T} steps")
    if where is not None:
        where = np.asarray(where, bool)  # (T,)
        if where.shape != (T,):
            raise ValueError(f"the mask must have one entry per step ({T}), got shape {where.shape}")
    sums = np.zeros(6)  # before, after, count; the same where the mask is set
    for t0, original, changed in iter_intervened(model, inputs, interventions, start, state, chunk=chunk):
        m = original.steps
        nll = [next_char_loss(log_softmax_head(model, tr.gate("h", tr.num_layers - 1)), inputs, t0)
               for tr in (original, changed)]  # (m,) each, NaN at step T - 1
        ok = np.isfinite(nll[0])  # (m,) steps with a next character
        for offset, keep in ((0, ok), (3, ok & where[t0 : t0 + m] if where is not None else None)):
            if keep is not None:
                sums[offset : offset + 3] += (nll[0][keep].sum(), nll[1][keep].sum(), keep.sum())
        if keep_states is not None:
            keep_states[t0 + m] = final_state(changed)
        if progress is not None:
            progress(t0 + m - start, T - start)
        if cancelled is not None and cancelled():
            return None
    mean = lambda total, count: float(total / count) if count else float("nan")  # noqa: E731
    return LossChange(start, int(sums[2]), mean(sums[0], sums[2]), mean(sums[1], sums[2]), T - 1,
                      int(sums[5]), mean(sums[3], sums[5]), mean(sums[4], sums[5]))


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


def intervene(model: SequenceModel, inputs: np.ndarray, interventions, window: int = WINDOW,
              chunk: int = DEFAULT_CHUNK) -> InterventionResult:
    """Run token ids ``inputs (T,)`` with and without ``interventions`` (module docstring),
    keeping the per-step losses ``(T,)`` and the traces of ``window`` steps from the earliest
    intervention's start. Steps before that start run once (chunked forward), the rest by
    ``iter_intervened``, so an intervention that changes nothing (scale by 1) gives results
    equal bit for bit. For long texts ``loss_change`` gives the means in bounded memory.
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
    nll_before = np.empty(T)  # (T,)
    state = model.zero_state(1)
    if first:
        for t0, tr in iter_chunks(model, inputs, 0, first, chunk):
            nll_before[t0 : t0 + tr.steps] = next_char_loss(log_softmax_head(model, tr.gate("h", tr.num_layers - 1)),
                                                            inputs, t0)
            state = final_state(tr)
    nll_after = nll_before.copy()  # (T,) equal before ``first``
    kept = ([], [])  # window chunks of each run
    for t0, original, changed in iter_intervened(model, inputs, interventions, first, state, chunk=chunk):
        for nll, tr, keep in zip((nll_before, nll_after), (original, changed), kept):
            nll[t0 : t0 + tr.steps] = next_char_loss(log_softmax_head(model, tr.gate("h", tr.num_layers - 1)),
                                                     inputs, t0)
            if t0 < first + window:
                keep.append(tr)
    traces = [window_of(parts, first, min(T, first + window)) for parts in kept]
    mean = (lambda nll: float(np.nanmean(nll))) if T > 1 else (lambda nll: float("nan"))
    return InterventionResult(mean(nll_before), mean(nll_after), nll_before, nll_after, first, *traces)


def window_of(parts: list, lo: int, hi: int) -> Trace:
    """Steps ``[lo, hi)`` of consecutive chunk traces ``parts`` (each with its ``start``) as one
    ``Trace`` (``start`` = ``lo``). Raises ValueError when the chunks do not cover the range."""
    parts = [p for p in parts if p.start < hi and p.start + p.steps > lo]
    if not parts or parts[0].start > lo or parts[-1].start + parts[-1].steps < hi:
        raise ValueError(f"the chunks do not cover steps [{lo}, {hi})")
    cut = [(p, max(lo, p.start) - p.start, min(hi, p.start + p.steps) - p.start) for p in parts]
    head, a0, _ = cut[0]
    states = ("h", "c") if head.cell == "lstm" else ("h",)
    initial = head.initial_state if a0 == 0 else [tuple(layer[n][a0 - 1] for n in states) for layer in head.layers]
    return Trace(
        cell=head.cell,
        names=head.names,
        layers=[{name: np.concatenate([p.layers[k][name][a:z] for p, a, z in cut]) for name in layer}
                for k, layer in enumerate(head.layers)],  # (hi - lo, H) or (hi - lo, G)
        inputs=np.concatenate([p.inputs[a:z] for p, a, z in cut]),  # (hi - lo,)
        outputs=np.concatenate([p.outputs[a:z] for p, a, z in cut]),  # (hi - lo, O)
        initial_state=[tuple(a.copy() for a in layer) for layer in initial],  # (H,) each
        start=lo,
    )


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
