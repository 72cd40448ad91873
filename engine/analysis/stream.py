"""Streaming a long sequence through a model in chunks, carrying the recurrent state.

Every analysis that must work on a long text (1 MB and more) reads it through ``iter_chunks``:
the model's sequence forward (``SequenceModel.trace``) runs on ``chunk`` steps at a time from
the state the previous chunk ended in, so only one chunk's records are ever alive. The result
is bit for bit the whole-sequence trace (the forward is the same per-step recurrence; chunking
only changes where it pauses).

Memory bound: one chunk's ``Trace`` holds ``chunk * L * (6H + 4H) + chunk * O`` numbers of the
model's dtype (LSTM; ``2H`` per layer for an RNN) plus the forward's cache of similar size:
for ``chunk = 4096``, ``H = 128``, ``L = 1``, ``O = 100`` in float32 about 2 x 22 MB, whatever the
text length.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..cells import CELL_TYPES, record_names
from ..model import SequenceModel
from ..trace import Trace

DEFAULT_CHUNK = 4096  # steps per chunk
DEFAULT_SEGMENTS = 8  # checkpoint segments per batched forward (``iter_segments``)


def cell_quantities(cell: str) -> tuple:
    """The per-unit quantities one layer of ``cell`` records, h first: LSTM h, i, f, g, o, c;
    GRU h, r, z, n; vanilla RNN h. Raises ValueError for an unknown cell type."""
    names = record_names(cell)
    return ("h", *(n for n in names if n != "h"))


QUANTITIES = tuple(dict.fromkeys(n for cell in CELL_TYPES for n in cell_quantities(cell)))  # any cell's


def final_state(trace: Trace) -> list:
    """The state after the trace's last step, per layer a tuple of ``(1, H)`` arrays in the
    cell's state order (``(h, c)`` for an LSTM, ``(h,)`` for an RNN), ready for ``model.trace``."""
    names = ("h", "c") if trace.cell == "lstm" else ("h",)
    return [tuple(layer[name][-1:].copy() for name in names) for layer in trace.layers]  # (1, H) each


def check_range(T: int, start: int, end: int | None) -> tuple[int, int]:
    """Validate ``0 <= start < end <= T`` (``end`` None = ``T``); returns ``(start, end)``.
    Raises ValueError naming the bad bound."""
    end = T if end is None else end
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer step, got {value!r}")
    if not 0 <= start < end <= T:
        raise ValueError(f"need 0 <= start < end <= {T} steps, got start {start}, end {end}")
    return int(start), int(end)


def iter_chunks(model: SequenceModel, inputs: np.ndarray, start: int = 0, end: int | None = None,
                chunk: int = DEFAULT_CHUNK, state=None) -> Iterator[tuple[int, Trace]]:
    """Yield ``(t0, trace)`` for consecutive chunks covering steps ``[start, end)`` of ``inputs``
    (token ids ``(T,)`` or values ``(T, D)``): ``trace`` holds steps ``[t0, t0 + trace.steps)``,
    at most ``chunk`` of them, each computed from the true state at ``t0`` (steps before
    ``start`` are run, in chunks, but not yielded). ``state``: per-layer state before step 0
    (None = zeros). Memory: one chunk (module docstring). Raises ValueError on a bad range or
    a chunk < 1.
    """
    inputs = np.asarray(inputs)
    start, end = check_range(inputs.shape[0], start, end)
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    t = 0
    while t < end:
        stop = min(end, t + chunk, start if t < start else end)  # never straddle ``start``
        trace = model.trace(inputs[t:stop], state)  # (stop - t) steps
        state = final_state(trace)
        if t >= start:
            yield t, trace
        t = stop


def segments_trace(model: SequenceModel, inputs: np.ndarray, states: list, start: int = 0) -> Trace:
    """Records of ``B`` independent segments laid end to end, by one batched sequence forward:
    ``inputs`` token ids ``(B, n)`` or values ``(B, n, D)``, segment ``b`` starting from the state
    ``states[k]`` row ``b`` (per layer a tuple of ``(B, H)`` arrays). Returns the ``Trace`` of
    the ``B * n`` steps (segment ``b`` at rows ``[b n, (b + 1) n)``; ``initial_state`` segment
    0's, ``start`` as given) with ``model.trace``'s records; when the segments are consecutive
    and each starts from the true state, it equals ``model.trace`` of the whole stretch to
    rounding (one ``(B, H) @ (H, G)`` product per step instead of ``B`` one-row products).
    Memory: about twice one ``Trace`` of ``B * n`` steps."""
    B, n = inputs.shape[:2]
    result = model.forward(inputs, states, keep_pre=True)
    layers = []
    for cell, c in zip(model.cells, result.cache["caches"]):
        record = {"h": _laid(c["hs"][1:]), "pre": cell.pre_activations(_laid(c["pre"]))}  # (B n, H), (B n, G)
        if cell.kind != "rnn":
            record.update({name: np.ascontiguousarray(a) for name, a in cell.gate_views(_laid(c["acts"])).items()})  # (B n, H)
        if cell.kind == "lstm":
            record["c"] = _laid(c["cs"][1:])  # (B n, H)
        layers.append(record)
    return Trace(cell=model.config.cell, names=model.cells[0].record_names, layers=layers,
                 inputs=inputs.reshape(B * n, *inputs.shape[2:]),  # (B n,) or (B n, D)
                 outputs=result.outputs.reshape(B * n, -1),  # (B n, O)
                 initial_state=[tuple(a[0].copy() for a in layer) for layer in states], start=start)


def _laid(a: np.ndarray) -> np.ndarray:
    """Time-major ``(n, B, W)`` -> segments end to end ``(B n, W)`` (a copy)."""
    return np.swapaxes(a, 0, 1).reshape(-1, a.shape[-1])  # (B n, W)


def iter_segments(model: SequenceModel, inputs: np.ndarray, checkpoints: np.ndarray, every: int,
                  start: int = 0, end: int | None = None,
                  segments: int = DEFAULT_SEGMENTS) -> Iterator[tuple[int, Trace]]:
    """``iter_chunks`` from known checkpoints: yields ``(t0, trace)`` covering steps ``[start,
    end)`` of ``inputs`` in time order, at most ``segments * every`` steps each, ``trace.start``
    = ``t0``.
    ``checkpoints (J, L, S, H)``: row ``j`` the state after ``j * every`` steps (row 0 the
    initial state; ``Stepper.known_checkpoints``). The blocks ``[j every, (j + 1) every)`` with
    ``j < J`` are computed ``segments`` at a time by ``segments_trace`` (independent segments
    in one batched forward); the steps after the last whole known block sequentially
    (``iter_chunks``) from its end. Values equal ``iter_chunks`` to rounding. Memory: one
    yielded trace (``segments * every`` steps) and its forward's cache. Raises ValueError on a
    bad range, ``every`` or ``segments`` < 1, or no checkpoint."""
    inputs = np.asarray(inputs)
    start, end = check_range(inputs.shape[0], start, end)
    for name, value in (("every", every), ("segments", segments)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if len(checkpoints) < 1:
        raise ValueError("iter_segments needs at least the initial state (checkpoint 0)")
    whole = min(len(checkpoints), end // every)  # blocks [0, whole) start at a known checkpoint
    j = start // every
    while j < whole:
        stop = min(whole, j + segments)
        ids = inputs[j * every : stop * every].reshape(stop - j, every, *inputs.shape[1:])  # (B, every) or (B, every, D)
        rows = checkpoints[j:stop]  # (B, L, S, H)
        states = [tuple(np.ascontiguousarray(rows[:, k, s]) for s in range(rows.shape[2]))
                  for k in range(rows.shape[1])]  # per layer (B, H) each
        trace = segments_trace(model, ids, states, j * every)  # (B every) steps
        lo, hi = max(start, j * every), min(end, stop * every)
        yield lo, trace if (lo, hi) == (j * every, stop * every) else _rows(trace, lo - j * every, hi - j * every)
        j = stop
    t = max(start, whole * every)
    if t < end:
        j = min(len(checkpoints) - 1, t // every)  # the last known checkpoint at or before t
        state = [tuple(a[None] for a in layer) for layer in checkpoints[j]]  # (1, H) each
        for t0, trace in iter_chunks(model, inputs[j * every : end], t - j * every, chunk=segments * every, state=state):
            trace.start = j * every + t0  # a fresh trace: its position in the whole sequence
            yield trace.start, trace


def _rows(trace: Trace, lo: int, hi: int) -> Trace:
    """Rows ``[lo, hi)`` of ``trace`` (views), with the state before row ``lo``."""
    initial = trace.initial_state if lo == 0 else [tuple(a[0] for a in layer) for layer in final_state(_rows(trace, 0, lo))]
    return Trace(cell=trace.cell, names=trace.names,
                 layers=[{name: a[lo:hi] for name, a in layer.items()} for layer in trace.layers],
                 inputs=trace.inputs[lo:hi], outputs=trace.outputs[lo:hi], initial_state=initial,
                 text=None, start=trace.start + lo)


def checkpoint_states(model: SequenceModel, inputs: np.ndarray, state=None, every: int = 256,
                      cells: np.ndarray | None = None) -> np.ndarray:
    """The recurrent state after every ``every``-th step of ``inputs`` (token ids ``(T,)`` or
    values ``(T, D)``, already checked by ``model.check_inputs``) from ``state`` (per layer a
    tuple of ``(1, H)`` arrays; None = zeros): ``(T // every, L, S, H)`` in the model's dtype,
    row ``j`` the state after ``(j + 1) * every`` steps, ``S`` the cell's state arrays (LSTM
    h, c; GRU and RNN h). No records and no head: the first pass's forward. ``cells``: an LSTM's
    optional ``(T // every * every, L, H)`` array that receives the cell state c after every
    step (the sample the cell-state colour levels come from, without a second forward).

    The recurrence is ``model.forward``'s (``engine.cells``; same prepared weights and
    operations, layer by layer over the whole input, each layer's input projection one gather
    or product for all steps); an LSTM layer runs a loop of ten NumPy calls per step on
    preallocated one-row buffers. Values equal ``model.trace``'s states to rounding (the one-row
    products may round differently from ``forward``'s). Memory: ``T * (G + 2H)`` numbers.
    Raises ValueError for ``cells`` of another shape or with another cell than the LSTM.
    """
    T = inputs.shape[0]
    n = T // every
    if cells is not None and (model.config.cell != "lstm" or cells.shape != (n * every, model.config.num_layers,
                                                                               model.config.hidden_size)):
        raise ValueError(f"cells must be ({n * every}, L, H) for an LSTM, got {cells.shape} for {model.config.cell}")
    layers = model.cells
    H = model.config.hidden_size
    state = model.zero_state(1) if state is None else state
    S = len(state[0])
    out = np.empty((n, len(layers), S, H), model.dtype)  # (n, L, S, H)
    layer_in = inputs[: n * every]  # (n every,) ids or (n every, D)
    if model.config.input_kind in ("embedding", "scaled_index"):
        layer_in = model.encode_tokens(layer_in)  # (n every, E) or (n every, 1)
    for k, (cell, prep) in enumerate(zip(layers, model.prepared())):
        xp = model._project(k, prep, layer_in[:, None])[:, 0]  # (n every, G)
        if cell.kind == "lstm":
            cs = None if cells is None else cells[:, k]  # (n every, H)
            hs = _lstm_states(prep, xp, state[k], every, out[:, k], cs)  # (n every + 1, H)
        else:
            hs = cell.forward_tm(prep, xp[:, None], state[k])[0][:, 0]  # (n every, H)
            out[:, k, 0] = hs[every - 1 :: every]  # (n, H)
            hs = np.concatenate([state[k][0], hs])  # (n every + 1, H)
        layer_in = hs[1:]  # (n every, H)
    return out


def _lstm_states(prep, xp: np.ndarray, state: tuple, every: int, out: np.ndarray,
                 cs: np.ndarray | None = None) -> np.ndarray:
    """LSTM layer over ``xp (T, 4H)`` (scaled internal order g, i, f, o; ``engine.cells``)
    from ``state`` ``((1, H), (1, H))``; writes ``(h, c)`` after every ``every``-th step into
    ``out (T // every, 2, H)`` (and c after every step into ``cs (T, H)`` when given); returns
    every h, ``(T + 1, H)`` with row 0 the initial h."""
    T, G = xp.shape
    H = G // 4
    hs = np.empty((T + 1, H), xp.dtype)  # (T+1, H)
    hs[0] = state[0][0]
    c = state[1][0].copy()  # (H,)
    a = np.empty(G, xp.dtype)  # (G,) pre-activations, then activations
    ig = np.empty(H, xp.dtype)  # (H,) i * g
    tc = np.empty(H, xp.dtype)  # (H,) tanh(c)
    g, i, f, o, s = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :], a[H:]  # (H,) views; s (3H,)
    Wh = prep.Wh_s  # (H, G)
    dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh
    for t in range(T):
        dot(hs[t], Wh, out=a)  # (G,)
        add(a, xp[t], out=a)  # (G,) scaled pre-activation
        tanh(a, out=a)  # (G,)
        mul(s, 0.5, out=s)
        add(s, 0.5, out=s)  # (3H,) i, f, o = sigmoid
        mul(f, c, out=c)  # (H,) f * c_prev
        mul(i, g, out=ig)  # (H,)
        add(c, ig, out=c)  # (H,)
        tanh(c, out=tc)  # (H,)
        mul(o, tc, out=hs[t + 1])  # (H,) o * tanh(c)
        if cs is not None:
            cs[t] = c  # (H,)
        if (t + 1) % every == 0:
            row = out[t // every]  # (2, H)
            row[0] = hs[t + 1]
            row[1] = c
    return hs


def quantity(trace: Trace, name: str, layer: int = 0) -> np.ndarray:
    """``(T, H)`` values of ``name`` in ``layer``: a record name (``cell_quantities``) or
    ``"tanh_c"`` (tanh of the cell state, in (-1, 1), LSTMVis's view of c).
    Raises ValueError for a name the cell does not record or a bad layer."""
    if name == "tanh_c":
        return np.tanh(trace.gate("c", layer))  # (T, H)
    return trace.gate(name, layer)  # (T, H)
