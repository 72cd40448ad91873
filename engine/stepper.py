"""Stepper: the one-timestep-at-a-time cursor over one sequence, windowed for long texts.

``t`` is the number of steps taken (0..T). The cursor does not keep every step's record: it
keeps the recurrent state (h and c per layer, or h) at *checkpoints*, after every ``every``
steps (``CHECKPOINT_EVERY``), and computes the records of any window of steps on demand from
the nearest checkpoint before it. Steps are computed in *blocks* of ``every`` steps, block
``b`` = steps ``[b * every, (b + 1) * every)``: its records by one sequence forward
(``SequenceModel.trace``) from checkpoint ``b``, the latest blocks cached (least recently used
first out, at most ``cache_bytes``); the checkpoints alone, without records or head, by
``engine.analysis.stream.checkpoint_states`` (several times faster per step).

``computed`` is the number of steps whose checkpoints are known (a multiple of ``every``, or
T): everything at or before it can be read or moved to without new work beyond one block.
``run_pass`` extends it to the end in bounded, cancellable chunks (the first pass after a text or
model is loaded, restarted from the first changed step after an edit), ``run_to`` /
``seek`` / ``step`` extend it as far as they need; ``accept`` takes checkpoints computed
elsewhere (the first pass run in another thread on the same inputs, ``version`` telling
whether they still are). Another thread may wait for the checkpoints a pass fills in
(``filling``) with ``wait_known``; the writers (``accept``, ``adopt``, ``edit``) hold the lock
it reads under.

Exactness: a checkpoint, once known, is never written again (until an edit before it), and a
block is always computed by the same call on the same inputs from the same checkpoint, so
back-then-forward replays the same bits; every value equals the whole-sequence ``model.trace``
of the text to rounding (the forward is the same per-step recurrence; chunking only changes
where it pauses; the products may differ in the last bits). ``records_revision``, a number
unique in the process, is renewed whenever the records of a step read before may differ from
its records read now (an edit; a block stored again: computed after the cache dropped it, or
adopted over its records): while it stays the same, a view may keep the records it drew and
read only the steps it lacks.

Memory: the inputs (token ids: one byte per step for up to 256 tokens); checkpoints
``(T / every + 1) * L * S * H`` numbers (S = 2 for an LSTM, else 1: for
T = 1.1 M, H = 128, float32, ``every`` 256: 4.4 MB); the block cache ``cache_bytes``
(``CACHE_BYTES``, 64 MiB); a byte per block (for ``records_revision``); ``trace()`` (the first
t steps, for short texts) at most ``TRACE_BYTES`` (128 MiB). One step's records take ``step_bytes`` bytes
(``(L * (6H + 4H) + O) * itemsize`` for an LSTM).

All values are in the model's dtype: gates i, f, o in (0, 1), g and h in (-1, 1), c unbounded,
outputs are probabilities (softmax head) or predictions.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Callable

import numpy as np

from .analysis.stream import checkpoint_states, final_state
from .model import TOKEN_INPUTS, SequenceModel
from .trace import Trace

CHECKPOINT_EVERY = 256  # steps between two stored states (= steps per computed block)
CACHE_BYTES = 64 * 2**20  # bound of the cached blocks' records
TRACE_BYTES = 128 * 2**20  # bound of ``trace()`` / ``records()`` (the steps they may return at once)

_REVISIONS = itertools.count(1)  # ``Stepper.records_revision``: unique in the process


class Stepper:
    """Cursor over ``inputs`` (token ids ``(T,)`` or values ``(T, D)``) for ``model``; see the
    module docstring. ``every`` >= 1 steps per checkpoint, ``cache_bytes`` >= 0 (at least one
    block is always cached)."""

    def __init__(self, model: SequenceModel, inputs: np.ndarray, text: str | None = None,
                 every: int = CHECKPOINT_EVERY, cache_bytes: int = CACHE_BYTES):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model = model
        self.every = int(every)
        self.inputs = self._checked(inputs, text)
        self.text = text
        self.t = 0  # steps taken, 0..T
        self.computed = 0  # checkpoints at steps <= computed are known
        self.version = 0  # +1 whenever ``edit`` changes the inputs
        self.records_revision = next(_REVISIONS)  # renewed by ``_renew_records`` (module docstring)
        self._stored = self._no_blocks(self.steps)  # (blocks,) whose records were computed or adopted for these inputs
        self.filling = False  # a first pass is filling the checkpoints in (``set_filling``)
        self._known = threading.Condition()  # held while computed / checkpoints / version change
        self._shape = model.trace(self._one_input())  # one step: the records' names, widths and dtype
        self.step_bytes = int(sum(a[0].nbytes for layer in self._shape.layers for a in layer.values())
                              + self._shape.outputs[0].nbytes)
        self._state_names = ("h", "c") if len(model.zero_state(1)[0]) == 2 else ("h",)
        self._cache_blocks = max(1, int(cache_bytes) // max(1, self.step_bytes * self.every))
        self._blocks: OrderedDict[int, Trace] = OrderedDict()  # block index -> its records
        self._prefix: Trace | None = None  # records of steps [0, n) kept for ``trace()``
        self._checkpoints = self._new_checkpoints(self.steps)

    # --- set-up -------------------------------------------------------------------------------
    def _checked(self, inputs: np.ndarray, text: str | None) -> np.ndarray:
        """A copy of ``inputs`` checked against the model; token ids in the smallest unsigned
        type that holds the vocabulary (one byte per step for up to 256 tokens)."""
        inputs = np.asarray(inputs)
        batched = self.model.check_inputs(inputs[None], 2)[0]  # (T,) ids or (T, D) values
        if text is not None and len(text) != batched.shape[0]:
            raise ValueError(f"text has {len(text)} characters but inputs have {batched.shape[0]} steps")
        if self.model.config.input_kind in TOKEN_INPUTS:
            return batched.astype(np.min_scalar_type(self.model.config.input_size - 1))  # (T,)
        return batched.copy()

    def _one_input(self) -> np.ndarray:
        """A valid one-step sequence, used only to learn the record shapes."""
        if self.model.config.input_kind in TOKEN_INPUTS:
            return np.zeros((1,), np.int64)  # (1,)
        return np.zeros((1, self.model.config.input_size), self.model.dtype)  # (1, D)

    def _new_checkpoints(self, T: int) -> np.ndarray:
        """Zeroed checkpoint array ``(T // every + 1, L, S, H)``; row 0 is the zero state."""
        L, H = self.model.config.num_layers, self.model.config.hidden_size
        return np.zeros((T // self.every + 1, L, len(self._state_names), H), self.model.dtype)  # (N, L, S, H)

    @property
    def steps(self) -> int:
        """Sequence length T."""
        return int(self.inputs.shape[0])

    def _renew_records(self, b: int | None = None) -> None:
        """Block ``b``'s records are stored (None: the inputs changed). ``records_revision`` is
        renewed when records read before may differ from those read now: an edit, or a block
        stored again (computed after the cache dropped it, or adopted over its records: equal
        values, but a whole-sequence forward may round their last bits differently)."""
        if b is None or self._stored[b]:
            self.records_revision = next(_REVISIONS)
        if b is not None:
            self._stored[b] = True

    def _no_blocks(self, T: int) -> np.ndarray:
        """``(blocks,)`` bool, all False: one flag per block of a ``T``-step sequence."""
        return np.zeros(-(-T // self.every), bool)  # (blocks,)

    @property
    def done(self) -> bool:
        """True when every checkpoint is known (the first pass is over)."""
        return self.computed >= self.steps

    # --- checkpoints and blocks ---------------------------------------------------------------
    def _checkpoint(self, j: int) -> list:
        """The state after ``j * every`` steps, per layer a tuple of ``(1, H)`` arrays."""
        return [tuple(row[s][None].copy() for s in range(row.shape[0])) for row in self._checkpoints[j]]  # (1, H)

    def _store(self, t0: int, trace: Trace) -> None:
        """Keep the records of the block starting at ``t0`` and the checkpoint after it."""
        b = t0 // self.every
        self._renew_records(b)
        self._blocks[b] = trace
        self._blocks.move_to_end(b)
        while len(self._blocks) > self._cache_blocks:
            self._blocks.popitem(last=False)
        end = t0 + trace.steps
        with self._known:
            if end % self.every == 0 and end > self.computed:  # a known checkpoint keeps its bits
                state = final_state(trace)  # per layer ((1, H), ...)
                for k, layer in enumerate(state):
                    for s, a in enumerate(layer):
                        self._checkpoints[end // self.every, k, s] = a[0]  # (H,)
            self.computed = max(self.computed, end)
            self._known.notify_all()

    def _block(self, b: int) -> Trace:
        """Records of block ``b`` (cached, else computed from checkpoint ``b``, which must be known)."""
        trace = self._blocks.get(b)
        if trace is not None:
            self._blocks.move_to_end(b)
            return trace
        t0 = b * self.every
        self._extend(t0)
        trace = self.model.trace(self.inputs[t0 : min(self.steps, t0 + self.every)], self._checkpoint(b))
        self._store(t0, trace)
        return trace

    def _extend(self, n: int, deadline: float | None = None, progress: Callable | None = None,
                cancelled: Callable | None = None) -> bool:
        """Compute checkpoints until ``computed >= n``, one block (``checkpoint_states`` of
        ``every`` steps) at a time; stop early once ``deadline`` (``time.perf_counter()``) passes
        or ``cancelled()`` is true (checked after each block; at least one block is computed per
        call). ``progress(computed, T)`` after each block. Returns True when ``n`` is reached."""
        while self.computed < n:
            j = self.computed // self.every
            self.accept(j + 1, self.next_checkpoints(j, 1))
            if progress is not None:
                progress(self.computed, self.steps)
            if self.computed >= n:
                break
            if (deadline is not None and time.perf_counter() >= deadline) or (cancelled is not None and cancelled()):
                return False
        return True

    def next_checkpoints(self, j: int, n: int, state: list | None = None, cells: np.ndarray | None = None) -> np.ndarray:
        """Checkpoints ``j + 1 .. j + n`` (fewer at the end of the inputs), ``(n', L, S, H)``,
        computed from checkpoint ``j`` (``state``: its value, per layer ``((1, H), ...)``;
        None = read it, then it must be known) by ``checkpoint_states``, one block per call:
        the same bits whichever thread and chunking asks. ``cells`` (LSTM): an ``(n' every, L,
        H)`` array that receives the cell state after each of these steps. Reads only ``model``
        and ``inputs`` (both replaced, never changed in place), so another thread may call it."""
        inputs, every = self.inputs, self.every
        state = self._checkpoint(j) if state is None else state
        rows = []
        for b in range(j, min(j + n, inputs.shape[0] // every)):
            cs = None if cells is None else cells[(b - j) * every : (b - j + 1) * every]  # (every, L, H)
            row = checkpoint_states(self.model, inputs[b * every : (b + 1) * every], state, every, cs)[0]  # (L, S, H)
            rows.append(row)
            state = [tuple(a[None] for a in layer) for layer in row]  # (1, H) each
        L, S, H = self._checkpoints.shape[1:]
        return np.stack(rows) if rows else np.empty((0, L, S, H), self.model.dtype)  # (n', L, S, H)

    def accept(self, j: int, rows: np.ndarray) -> None:
        """Take checkpoints ``j, j + 1, ...`` = ``rows (n, L, S, H)`` (the states after ``j *
        every``, ... steps of these inputs) where they are not known yet and follow the known
        ones; ``computed`` moves past them (no rows when no checkpoint is left: to T).
        Known checkpoints are never overwritten."""
        first = self.computed // self.every + 1  # the first unknown checkpoint
        if self.computed >= self.steps or not j <= first <= j + len(rows):
            return
        new = rows[first - j :]  # (n', L, S, H)
        with self._known:
            self._checkpoints[first : first + len(new)] = new
            if len(new):
                self.computed = (first + len(new) - 1) * self.every
            elif first * self.every > self.steps:  # none left: only the last, partial block
                self.computed = self.steps
            self._known.notify_all()

    def run_pass(self, budget_s: float | None = None, progress: Callable | None = None,
                 cancelled: Callable | None = None) -> bool:
        """The first pass: compute the checkpoints up to the end, in chunks of ``every`` steps
        (one sequence forward each). Stops early once ``budget_s`` seconds are spent or
        ``cancelled()`` returns True; calling again continues where it stopped (after ``edit``:
        from the first changed step). ``progress(computed, T)`` is called after each chunk.
        Returns True when the pass is complete (``done``)."""
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        return self._extend(self.steps, deadline, progress, cancelled)

    def adopt(self, trace: Trace) -> None:
        """Take the checkpoints not yet known from a whole-sequence forward (``model.trace``)
        over this cursor's first ``trace.steps`` inputs from the zero state, and the records of
        the blocks it covers whole (views into ``trace``, cached as ``records`` computes them),
        so they need not be computed again. Raises ValueError on other inputs."""
        n = trace.steps
        if n > self.steps or not np.array_equal(trace.inputs, self.inputs[:n]):
            raise ValueError("the trace was not computed on this cursor's inputs")
        with self._known:
            for j in range(self.computed // self.every + 1, n // self.every + 1):
                row = j * self.every - 1
                for k, layer in enumerate(trace.layers):
                    for s, name in enumerate(self._state_names):
                        self._checkpoints[j, k, s] = layer[name][row]  # (H,)
            self.computed = max(self.computed, n if n == self.steps else n - n % self.every)
            self._known.notify_all()
        for b in range(min(-(-n // self.every), self._cache_blocks)):
            t0, t1 = b * self.every, min(n, (b + 1) * self.every)
            if t1 - t0 == self.every or t1 == self.steps:  # a whole block, or the sequence's last one
                self._renew_records(b)
                self._blocks[b] = replace(
                    trace, layers=[{name: a[t0:t1] for name, a in layer.items()} for layer in trace.layers],  # (n_b, H)
                    inputs=trace.inputs[t0:t1], outputs=trace.outputs[t0:t1],  # (n_b,) / (n_b, D), (n_b, O)
                    initial_state=[tuple(a.copy() for a in row) for row in self._checkpoints[b]], text=None)  # (H,) each

    def known_checkpoints(self) -> np.ndarray:
        """A copy of the known checkpoints, ``(J, L, S, H)``: row ``j`` the state after ``j *
        every`` steps, ``J = computed // every + 1`` (for ``engine.analysis.stream.iter_segments``)."""
        with self._known:
            return self._known_rows()

    def _known_rows(self) -> np.ndarray:
        """A copy of the known checkpoints ``(J, L, S, H)`` (the lock held)."""
        return self._checkpoints[: min(self.computed // self.every + 1, len(self._checkpoints))].copy()  # (J, L, S, H)

    def set_filling(self, on: bool) -> None:
        """Say whether a first pass is filling the checkpoints in (wakes ``wait_known``)."""
        with self._known:
            self.filling = bool(on)
            self._known.notify_all()

    def wait_known(self, n: int, version: int, timeout_s: float) -> tuple:
        """For another thread: wait at most ``timeout_s`` seconds until the checkpoints up to step
        ``n`` are known, or no pass is ``filling`` them in, or the inputs are no longer
        ``version``'s. Returns ``(ready, checkpoints)``: ``(False, None)`` while the wait goes on;
        once ready, ``known_checkpoints()`` (copied then only), or None when the inputs changed."""
        with self._known:
            waiting = lambda: self.version == version and self.filling and self.computed < n  # noqa: E731
            if waiting():
                self._known.wait(timeout_s)
            if waiting():
                return False, None
            return True, (self._known_rows() if self.version == version else None)

    def known_percent(self) -> int:
        """How far the checkpoints are known, in % of the steps, rounded down (100 once ``done``)."""
        return 100 if self.done else 100 * self.computed // self.steps

    # --- state --------------------------------------------------------------------------------
    def state(self, t: int | None = None) -> list:
        """The model state after ``t`` steps (default: the current ``t``), per layer
        ``((1, H), ...)`` in the cell's state order (copies)."""
        t = self.t if t is None else t
        j, r = divmod(t, self.every)
        if r == 0:
            self._extend(t)
            return self._checkpoint(j)
        block = self._block(j)
        return [tuple(layer[name][r - 1 : r].copy() for name in self._state_names) for layer in block.layers]  # (1, H)

    # --- moving -------------------------------------------------------------------------------
    def step(self) -> bool:
        """Take one step (computing its block if it is not known yet). False if already at the end."""
        if self.t >= self.steps:
            return False
        self._extend(self.t + 1)
        self.t += 1
        return True

    def back(self) -> bool:
        """Undo one step (the state comes back exactly). False if already at the start."""
        if self.t == 0:
            return False
        self.t -= 1
        return True

    def seek(self, t: int) -> None:
        """Move to ``t`` steps taken."""
        self.run_to(t)

    def run_to(self, t: int, budget_s: float | None = None) -> bool:
        """Move towards ``t``; stop early once ``budget_s`` seconds are spent (at least one block
        is computed per call), the cursor then at the last computed step. Returns True when
        ``t`` is reached. Raises ValueError outside ``[0, T]``."""
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= self.steps:
            raise ValueError(f"step must be an integer in [0, {self.steps}], got {t!r}")
        t = int(t)
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        reached = self._extend(t, deadline)
        self.t = t if reached else self.computed
        return reached

    def edit(self, new_inputs: np.ndarray, new_text: str | None = None, run: bool = True) -> int:
        """Replace the sequence; keep the checkpoints and blocks before the first changed position
        and, if ``run``, move back up to the previous ``t`` (clamped to the new length; without
        ``run`` the cursor stays at the first changed position, for the caller to move on).
        Returns that position."""
        new_inputs = self._checked(new_inputs, new_text)
        old_t = self.t
        n = min(self.steps, new_inputs.shape[0])
        differs = self.inputs[:n] != new_inputs[:n]  # (n,) or (n, D)
        if differs.ndim == 2:
            differs = differs.any(axis=1)  # (n,)
        first = int(np.argmax(differs)) if differs.any() else n
        if first == n and new_inputs.shape[0] == self.steps:
            self.text = new_text
            return first
        keep = min(self.computed, first - first % self.every)  # checkpoints at <= keep stay valid
        checkpoints = self._new_checkpoints(new_inputs.shape[0])
        rows = keep // self.every + 1
        checkpoints[:rows] = self._checkpoints[:rows]  # (rows, L, S, H)
        with self._known:
            self._checkpoints = checkpoints
            self.inputs, self.text = new_inputs, new_text
            self.version += 1
            self.computed = keep
            self._known.notify_all()
        for b in [b for b in self._blocks if (b + 1) * self.every > keep]:
            del self._blocks[b]
        stored, kept = self._no_blocks(new_inputs.shape[0]), keep // self.every  # blocks [0, kept) stay
        stored[:kept] = self._stored[:kept]  # (kept,)
        self._stored = stored
        self._renew_records()
        self._prefix = None
        self.t = min(self.t, first)
        self._extend(self.t)
        if run:
            self.run_to(min(old_t, self.steps))
        return first

    # --- reading ------------------------------------------------------------------------------
    def max_records(self) -> int:
        """Most steps ``records`` / ``trace`` return at once (``TRACE_BYTES`` / ``step_bytes``)."""
        return max(1, TRACE_BYTES // self.step_bytes)

    def records(self, lo: int, hi: int) -> Trace:
        """Records of steps ``[lo, hi)`` as a ``Trace`` indexed from 0 (row ``k`` is step
        ``lo + k``; ``initial_state`` is the state after ``lo`` steps; views into the cache
        when the range lies in one block: copy before keeping). Computes what is not known
        yet. Raises ValueError outside ``0 <= lo <= hi <= T`` or beyond ``max_records()`` steps."""
        if not 0 <= lo <= hi <= self.steps:
            raise ValueError(f"need 0 <= lo <= hi <= {self.steps}, got lo {lo}, hi {hi}")
        if hi - lo > self.max_records():
            raise ValueError(f"{hi - lo} steps of records need {(hi - lo) * self.step_bytes / 2**20:.0f} MiB, "
                             f"more than the {TRACE_BYTES / 2**20:.0f} MiB limit: read a window of at most "
                             f"{self.max_records()} steps")
        initial = [tuple(a[0] for a in layer) for layer in self.state(lo)]  # (H,) each
        if hi == lo:
            parts = [(self._shape, 0, 0)]
        else:
            parts = []
            for b in range(lo // self.every, (hi - 1) // self.every + 1):
                t0 = b * self.every
                parts.append((self._block(b), max(lo, t0) - t0, min(hi, t0 + self.every) - t0))
        return Trace(
            cell=self.model.config.cell,
            names=self._shape.names,
            layers=[{name: _joined([p.layers[k][name][a:z] for p, a, z in parts]) for name in layer}
                    for k, layer in enumerate(self._shape.layers)],  # (hi - lo, H) or (hi - lo, G)
            inputs=self.inputs[lo:hi].astype(self._shape.inputs.dtype),  # int64 ids or (hi - lo, D) values
            outputs=_joined([p.outputs[a:z] for p, a, z in parts]),  # (hi - lo, O)
            initial_state=initial,
            text=None if self.text is None else self.text[lo:hi],
            start=lo,
        )

    def trace(self) -> Trace:
        """The first ``t`` steps as a ``Trace`` (views into a kept prefix: copy before keeping),
        for short texts: raises ValueError when ``t`` exceeds ``max_records()`` (read a window
        with ``records``). Memory: at most ``TRACE_BYTES``."""
        t = self.t
        if self._prefix is None or self._prefix.steps < t:
            n = min(self.steps, max(t, 2 * (0 if self._prefix is None else self._prefix.steps), 1024))
            self._prefix = self.records(0, min(n, max(t, self.max_records())))
        p = self._prefix
        return Trace(cell=p.cell, names=p.names, layers=[{name: a[:t] for name, a in layer.items()} for layer in p.layers],
                     inputs=p.inputs[:t], outputs=p.outputs[:t], initial_state=p.initial_state,
                     text=None if p.text is None else p.text[:t])


def _joined(parts: list) -> np.ndarray:
    """One array from row slices: the slice itself (a view) if there is one, else a copy."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
