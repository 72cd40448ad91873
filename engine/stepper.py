"""Stepper: the one-timestep-at-a-time cursor over one sequence, with exact history.

``t`` is the number of steps taken (0..T). ``step()`` runs ``SequenceModel.step`` on the state
after ``t`` steps (the engine's one-step API) and writes the cell's record into preallocated per-layer ``(T, H)`` arrays
(``pre`` is ``(T, G)``, outputs ``(T, O)``). The state after ``t`` steps is read back from those
arrays (``h[t-1]``, ``c[t-1]``; the zero state at ``t = 0``), so ``back()`` restores it exactly
and stepping forward again replays the same bits. Rows ``[0, computed)`` stay valid while the
inputs and weights do: ``seek`` forward through them is free. ``edit`` keeps the rows before the
first changed input and recomputes from there.

All values are in the model's dtype: gates i, f, o in (0, 1), g and h in (-1, 1), c unbounded,
outputs are probabilities (softmax head) or predictions.
"""

from __future__ import annotations

import time

import numpy as np

from .model import TOKEN_INPUTS, SequenceModel
from .trace import Trace


class Stepper:
    """Cursor over ``inputs`` (token ids ``(T,)`` or values ``(T, D)``) for ``model``."""

    def __init__(self, model: SequenceModel, inputs: np.ndarray, text: str | None = None):
        self.model = model
        self.inputs = self._checked(inputs, text)
        self.text = text
        self.t = 0  # steps taken, 0..T
        self.computed = 0  # rows [0, computed) hold valid results
        self._allocate(self.steps)

    # --- set-up -------------------------------------------------------------------------------
    def _checked(self, inputs: np.ndarray, text: str | None) -> np.ndarray:
        inputs = np.asarray(inputs)
        batched = self.model.check_inputs(inputs[None], 2)[0]  # (T,) ids or (T, D) values
        if text is not None and len(text) != batched.shape[0]:
            raise ValueError(f"text has {len(text)} characters but inputs have {batched.shape[0]} steps")
        return batched.copy()

    def _allocate(self, T: int) -> None:
        """Zeroed result arrays for ``T`` steps, shaped like one step's record."""
        _, state, records = self.model.step(self._input_at_or_zero(), self.model.zero_state(1))
        self.layers = [{name: np.zeros((T, a.shape[1]), self.model.dtype) for name, a in rec.items()}
                       for rec in records]  # per layer (T, H) each, pre (T, G)
        self.outputs = np.zeros((T, self.model.config.output_size), self.model.dtype)  # (T, O)
        self._state_names = ("h", "c") if len(state[0]) == 2 else ("h",)
        self._zero_state = self.model.zero_state(1)  # per layer ((1, H), ...)

    def _input_at_or_zero(self) -> np.ndarray:
        """A valid one-step input, used only to learn the record shapes."""
        if self.model.config.input_kind in TOKEN_INPUTS:
            return np.zeros((1,), np.int64)  # (1,)
        return np.zeros((1, self.model.config.input_size), self.model.dtype)  # (1, D)

    @property
    def steps(self) -> int:
        """Sequence length T."""
        return int(self.inputs.shape[0])

    # --- state --------------------------------------------------------------------------------
    def state(self, t: int | None = None) -> list:
        """The model state after ``t`` steps (default: the current ``t``), per layer
        ``((1, H), ...)``, read from the stored arrays."""
        t = self.t if t is None else t
        if t == 0:
            return [tuple(s.copy() for s in layer) for layer in self._zero_state]
        return [tuple(layer[name][t - 1 : t].copy() for name in self._state_names) for layer in self.layers]  # (1, H)

    def adopt(self, trace: Trace) -> None:
        """Fill the rows not yet valid, ``[computed, trace.steps)``, from a whole-sequence forward
        (``model.trace``) over the same inputs and weights from the zero state, so a fresh or
        edited cursor need not re-step them one at a time; valid rows are kept as they are.
        Raises ValueError on other inputs."""
        n = trace.steps
        if n > self.steps or not np.array_equal(trace.inputs, self.inputs[:n]):
            raise ValueError("the trace was not computed on this cursor's inputs")
        lo = self.computed
        if lo >= n:
            return
        for stored, recorded in zip(self.layers, trace.layers):
            for name, a in stored.items():
                a[lo:n] = recorded[name][lo:n]  # (n - lo, H) or (n - lo, G)
        self.outputs[lo:n] = trace.outputs[lo:n]  # (n - lo, O)
        self.computed = n

    # --- moving -------------------------------------------------------------------------------
    def step(self) -> bool:
        """Take one step: replayed from the history if row ``t`` is already valid, else computed
        by ``SequenceModel.step`` from the stored state. False if already at the end."""
        t = self.t
        if t >= self.steps:
            return False
        if t < self.computed:
            self.t = t + 1
            return True
        output, _, records = self.model.step(self.inputs[t : t + 1], self.state(t))  # (1, O)
        for stored, rec in zip(self.layers, records):
            for name, a in rec.items():
                stored[name][t] = a[0]  # (H,) or (G,)
        self.outputs[t] = output[0]  # (O,)
        self.t = t + 1
        self.computed = max(self.computed, self.t)
        return True

    def back(self) -> bool:
        """Undo one step (the state comes back exactly). False if already at the start."""
        if self.t == 0:
            return False
        self.t -= 1
        return True

    def seek(self, t: int) -> None:
        """Move to ``t`` steps taken: backwards via the history, forwards by stepping."""
        self.run_to(t)

    def run_to(self, t: int, budget_s: float | None = None) -> bool:
        """Move towards ``t``; stop early once ``budget_s`` seconds are spent (at least one step
        is taken per call). Returns True when ``t`` is reached."""
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= self.steps:
            raise ValueError(f"step must be an integer in [0, {self.steps}], got {t!r}")
        t = int(t)
        if t <= self.computed:
            self.t = t
            return True
        self.t = self.computed
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        while self.t < t:
            self.step()
            if deadline is not None and self.t < t and time.perf_counter() >= deadline:
                return False
        return True

    def edit(self, new_inputs: np.ndarray, new_text: str | None = None, run: bool = True) -> int:
        """Replace the sequence; keep results before the first changed position and, if ``run``,
        recompute from there up to the previous ``t`` (clamped to the new length; without
        ``run`` the cursor stays at the first changed position, for the caller to move on, e.g.
        after ``adopt``). Returns that position."""
        new_inputs = self._checked(new_inputs, new_text)
        old_t = self.t
        n = min(self.steps, new_inputs.shape[0])
        differs = self.inputs[:n] != new_inputs[:n]  # (n,) or (n, D)
        if differs.ndim == 2:
            differs = differs.any(axis=1)  # (n,)
        first = int(np.argmax(differs)) if differs.any() else n
        keep = min(self.computed, first)
        if new_inputs.shape[0] != self.steps:
            old_layers, old_outputs = self.layers, self.outputs
            self._allocate(new_inputs.shape[0])
            for stored, old in zip(self.layers, old_layers):
                for name, a in stored.items():
                    a[:keep] = old[name][:keep]  # (keep, H)
            self.outputs[:keep] = old_outputs[:keep]  # (keep, O)
        self.inputs, self.text = new_inputs, new_text
        self.computed = keep
        self.t = min(self.t, keep)
        if run:
            self.run_to(min(old_t, self.steps))
        return first

    # --- reading ------------------------------------------------------------------------------
    def trace(self) -> Trace:
        """The first ``t`` steps as a ``Trace`` (views into the stored arrays, no copy)."""
        t = self.t
        return Trace(
            cell=self.model.config.cell,
            names=self.model.cells[0].record_names,
            layers=[{name: a[:t] for name, a in layer.items()} for layer in self.layers],
            inputs=self.inputs[:t],
            outputs=self.outputs[:t],
            initial_state=[tuple(s[0] for s in layer) for layer in self._zero_state],
            text=None if self.text is None else self.text[:t],
        )
