"""Session: the viewer's state (model, vocabulary, sequence, stepper, selection) and its signals.

Two kinds of sequence are stepped: text through a character model (``set_model`` /
``set_text`` / ``load_text``: one-hot input, softmax head, a ``CharVocab``), or a numeric
series through a forecaster (``set_series``: dense input windows ``(T, W)``, linear/tanh head,
no vocabulary). ``sequence`` is a ``core.sequence.TextSequence`` or ``SeriesSequence``: panels
ask it (labels, captions, targets, original units, editable or not) instead of telling the two
apart.

The stepper keeps checkpoints of the recurrent state, not every step's records: after a text
or model is loaded the *first pass* computes them up to the end in a worker thread
(``lstmviz.threads``; ``Stepper.next_checkpoints`` on the stepper's inputs, which are replaced,
never changed, by an edit), handing them to the GUI thread after at most ``PASS_BUDGET_S`` of
work each time (``Stepper.accept``; progress through ``pass_progress`` and ``message``;
``cancel_pass``; after an edit the pass restarts from the first changed step; a far seek
meanwhile waits for it, and the worker computes the cell-state colour levels). Panels read the
records of the window they show with ``records(lo, hi)``.

Panels read the Session and its ``Trace`` and write through its methods; they never talk to the
engine or to each other: the engine work they show goes through named methods
(``equation_breakdown``, ``gradient_flow``). Every signal is emitted on the GUI thread. Loading refuses bad files
with the engine's error (``DataError`` / ``CheckpointError``) *before* any state changes.
"""

from __future__ import annotations

import os
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6 import QtCore

from engine.analysis.stream import checkpoint_states
from engine.checkpoint import load_char_checkpoint, save_checkpoint
from engine.data import CharVocab, load_text
from engine.equations import GateBreakdown, decompose
from engine.errors import DataError
from engine.gradflow import GradientFlow, gradient_flow
from engine.model import SequenceModel
from engine.quantities import display_order
from engine.stepper import CHECKPOINT_EVERY, Stepper
from engine.trace import Trace

from . import threads
from .core.levels import gate_levels
from .core.sequence import KnownText, SeriesSequence, TextSequence, dropped_message, known_text, split_known
from .crash_handler import one_line

LEVEL_STEPS_MAX = 4096  # cell-state colour levels come from the first this many steps (the pass worker's forward)
PASS_BUDGET_S = 0.05  # longest stretch of first-pass work between two hand-overs to the GUI thread
PASS_REPORT_S = 0.25  # least time between two progress messages of the first pass
CATCHUP_BUDGET_S = 0.03  # longest stretch of stepping between two GUI updates while seeking
SYNC_STEPS = 300  # seeks that compute at most this many new steps finish before returning
GRADFLOW_STEPS = 200  # inputs of the sequence ``gradient_flow`` analyses (the text's last ones + 1)


class Session(QtCore.QObject):
    """State of one viewer window. See the module docstring."""

    model_changed = QtCore.Signal()
    text_changed = QtCore.Signal()
    stepped = QtCore.Signal(int)
    selection_changed = QtCore.Signal(int, int, int)  # layer, unit, step (-1: none)
    colormap_changed = QtCore.Signal(bool)  # colour-blind maps on/off
    levels_changed = QtCore.Signal()  # the cell-state levels (``levels("c", layer)``) arrived from the pass
    brushed = QtCore.Signal(int, int)  # the brushed span [start, end) of steps; (0, 0): none
    quantity_requested = QtCore.Signal(str)  # colour the text by this quantity (h, c or a gate)
    message = QtCore.Signal(str)  # information for the status bar
    pass_progress = QtCore.Signal(int, int)  # first pass: steps done, total (done == total: over)
    text_opened = QtCore.Signal(str)  # a text file read in the background is shown (its path)
    open_failed = QtCore.Signal(str)  # a text file read in the background is refused (one line: why)
    error = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model: SequenceModel | None = None
        self.vocab: CharVocab | None = None
        self.sequence: TextSequence | SeriesSequence = TextSequence()
        self.stepper: Stepper | None = None
        self._one_step = None  # (weakref to the stepper, its version, step, records of that one step): the last read
        self.model_path: str | None = None
        self.text_path: str | None = None
        self.model_step = 0  # training step stored with the model
        self.layer, self.unit, self.selected_step = 0, -1, -1
        self.colorblind = False
        self.brush_span = (0, 0)  # steps [start, end) the user brushed (hypothesis selection); (0, 0): none
        self.cell_levels: list = []  # per layer: symmetric (lo, hi) for the raw cell state
        self._levels_pending = False  # the pass worker is to compute ``cell_levels`` for the inputs
        self._target: int | None = None  # a seek's target while it catches up or waits
        self._waiting = False  # the seek waits for the first pass to reach ``_target``
        self._catchup = QtCore.QTimer(self)
        self._catchup.setInterval(0)
        self._catchup.timeout.connect(self._continue_seek)
        self._pass: _PassWorker | None = None  # the running first pass
        self._reader: threads.Call | None = None  # the text file being read in the background
        self._pass_reported, self._pass_shown = 0.0, False  # last progress report; any shown
        # Asked before a text read from a file is shown without characters the model lacks:
        # ``confirm_dropped(file name, what is left out)``, False keeps everything (None: never asked).
        self.confirm_dropped: Callable[[str, KnownText], bool] | None = None

    # --- reading ------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.stepper is not None

    @property
    def t(self) -> int:
        """Steps taken (0..T)."""
        return 0 if self.stepper is None else self.stepper.t

    @property
    def steps(self) -> int:
        return 0 if self.stepper is None else self.stepper.steps

    @property
    def num_layers(self) -> int:
        return 0 if self.model is None else self.model.config.num_layers

    @property
    def hidden_size(self) -> int:
        return 0 if self.model is None else self.model.config.hidden_size

    @property
    def names(self) -> tuple:
        """Quantities each layer records, in display order."""
        if self.model is None:
            return ()
        return display_order(self.model.config.cell)

    @property
    def text(self) -> str:
        """The text being stepped ("" while a series is)."""
        return self.sequence.text

    def label(self, t: int) -> str:
        """What step ``t`` (0-based) shows: its character, or the series label given to
        ``set_series``. Raises IndexError outside ``[0, steps)``."""
        return self.sequence.label(self._step(t))

    def caption(self, t: int) -> str:
        """``label(t)`` named for a status line: ``char 'a'`` or ``next 12.35``."""
        return self.sequence.caption(self._step(t))

    def _step(self, t: int) -> int:
        if not 0 <= t < self.steps:
            raise IndexError(f"no step {t}: the sequence has {self.steps} steps")
        return t

    @property
    def seeking(self) -> bool:
        """True while a long seek is being caught up in chunks."""
        return self._target is not None

    @property
    def passing(self) -> bool:
        """True while the first pass (the checkpoints up to the end) runs in its worker thread."""
        return self._pass is not None

    def trace(self) -> Trace:
        """The first ``t`` steps (views: copy before keeping). Raises ValueError without a model
        or beyond ``Stepper.max_records()`` steps (long texts: read windows with ``records``)."""
        if self.stepper is None:
            raise ValueError("no model loaded")
        return self.stepper.trace()

    def records(self, lo: int, hi: int) -> Trace:
        """Records of steps ``[lo, hi)`` (``Stepper.records``: row k is step lo + k; views:
        copy before keeping). Raises ValueError without a model or outside ``[0, steps]``."""
        stepper = self.stepper
        if stepper is None:
            raise ValueError("no model loaded")
        if hi - lo != 1:
            return stepper.records(lo, hi)
        cached = self._one_step  # a step's panels read its one-step records in turn: read once
        if cached is None or cached[0]() is not stepper or cached[1:3] != (stepper.version, lo):
            cached = self._one_step = (weakref.ref(stepper), stepper.version, lo, stepper.records(lo, hi))
        return cached[3]

    @property
    def records_revision(self) -> int | None:
        """``Stepper.records_revision`` of the stepper (None without a model): a number unique in
        the process that stays the same while every step's records read before are still its
        records (same model, inputs and values), so a view may keep what it drew from them
        and read only the steps it lacks."""
        return None if self.stepper is None else self.stepper.records_revision

    def levels(self, name: str, layer: int) -> tuple:
        """Colour levels of ``name`` in ``layer`` (the cell state's come from the text's first
        LEVEL_STEPS_MAX steps, computed by the pass worker after a load or an edit of them;
        ``colormap_changed`` when they arrive)."""
        return self.cell_levels[layer] if name == "c" else gate_levels(name)

    # --- engine work for the panels -----------------------------------------------------------
    def equation_breakdown(self, layer: int, step: int, unit: int) -> GateBreakdown:
        """Every term of ``unit``'s update in ``layer`` at ``step`` under the viewed model
        (``engine.equations.decompose`` of the current trace). Raises ValueError outside the
        steps taken, the layers or the units."""
        if self.model is None:
            raise ValueError("no model loaded")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step < self.t:
            raise ValueError(f"step must be one of the {self.t} steps taken, got {step!r}")
        window = self.records(step, step + 1)  # row 0 is ``step``, with the state before it
        return replace(decompose(self.model, window, layer, 0, unit), step=int(step))

    def gradient_flow(self, model: SequenceModel | None = None, vocab: CharVocab | None = None,
                      max_steps: int = GRADFLOW_STEPS) -> GradientFlow | None:
        """``engine.gradflow.gradient_flow`` of the loss at the last of the text's last
        ``max_steps + 1`` known characters (each predicting the next) under ``model`` / ``vocab``
        (default: the viewed ones). None without a character model or with fewer than two
        known characters."""
        model, vocab = (self.model, self.vocab) if model is None else (model, vocab)
        if model is None or vocab is None:
            return None
        tail = max_steps + 1  # the text's end, grown until it holds enough known characters
        known = known_text(self.text[-tail:], vocab)
        while len(known) < max_steps + 1 and tail < len(self.text):
            tail *= 4
            known = known_text(self.text[-tail:], vocab)
        known = known[-(max_steps + 1):]
        if len(known) < 2:
            return None
        ids = vocab.encode(known, "the text")  # (T + 1,)
        return gradient_flow(model, ids[:-1], ids[1:])

    # --- loading ------------------------------------------------------------------------------
    def load_model(self, path) -> None:
        """Open a checkpoint. Raises ``CheckpointError`` (nothing changes) if it is unusable."""
        self.open_checkpoint(load_char_checkpoint(path), path)

    def open_checkpoint(self, ckpt, path) -> None:
        """Show ``ckpt`` (a loaded ``engine.checkpoint.Checkpoint``), read from ``path``."""
        self.model_path = str(path)
        self.model_step = int(ckpt.step)
        self.set_model(ckpt.model, ckpt.vocab)

    def save_model(self, path) -> None:
        """Save the current model (and vocabulary) as a checkpoint, atomically."""
        if self.model is None:
            raise ValueError("no model to save")
        save_checkpoint(path, self.model, vocab=self.vocab, step=self.model_step)
        self.model_path = str(path)

    def load_text(self, path) -> bool:
        """Open a text file; False when ``confirm_dropped`` declined it (nothing changes).
        Raises ``DataError`` (nothing changes) if it is unusable."""
        self._refuse_text_for_series()
        return self._show_read(str(path), *read_text(path, self.vocab))

    def open_text(self, path) -> bool:
        """Open a text file as ``load_text`` does; one larger than ``threads.BACKGROUND_BYTES`` is
        read, decoded and encoded in a worker thread (progress through ``message``,
        ``cancel_open``), then shown (``text_opened``) or refused (``open_failed``, nothing
        changes). Returns True when the text is shown already, False when it is being read
        (``opening``) or was declined (``confirm_dropped``). Raises ``DataError`` for a file
        refused at once."""
        self._refuse_text_for_series()
        self.cancel_open()
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0  # load_text names the problem
        if size <= threads.BACKGROUND_BYTES:
            return self.load_text(path)
        vocab = self.vocab
        reader = threads.Call(lambda: read_text(path, vocab), (str(path), vocab))
        threads.Relay(reader, self, done=self._on_read, failed=self._on_read_failed)
        self._reader = reader
        self.message.emit(f"Opening {Path(path).name} ({size / 2**20:,.1f} MiB)…")
        threads.start(reader, "open-text")
        return False

    @property
    def opening(self) -> bool:
        """True while ``open_text`` reads a file in the background."""
        return self._reader is not None

    def cancel_open(self) -> None:
        """Stop reading a text in the background (the shown text stays)."""
        if self._reader is not None:
            self._reader.stop_requested.set()
            self._reader = None
            self.message.emit("Opening the text was cancelled")

    def _on_read(self, reader: threads.Call, read: tuple) -> None:
        if reader is self._reader:  # shown from a timer, out of the relay's slot: its question is modal
            QtCore.QTimer.singleShot(0, self, lambda: self._show_opened(reader, read))

    def _show_opened(self, reader: threads.Call, read: tuple) -> None:
        if reader is not self._reader:  # cancelled meanwhile
            return
        self._reader = None
        path, vocab = reader.tag
        try:
            if vocab is not self.vocab:  # the model changed meanwhile: read it for this one
                shown = self.load_text(path)
            else:
                self._refuse_text_for_series()
                shown = self._show_read(path, *read)
        except DataError as exc:
            self.open_failed.emit(one_line(exc))
            return
        if shown:
            self.text_opened.emit(path)

    def _on_read_failed(self, reader: threads.Call, message: str) -> None:
        if reader is self._reader:
            self._reader = None
            self.open_failed.emit(message)

    def _show_read(self, path: str, text: str, known: KnownText | None, ids) -> bool:
        """Show a text read from ``path`` (``read_text``'s) unless it loses characters and
        ``confirm_dropped`` declines; True when shown."""
        if known is not None and known.dropped and self.confirm_dropped is not None:
            if not self.confirm_dropped(Path(path).name, known):
                self.message.emit(f"{Path(path).name} was not opened: the text stays")
                return False
        self.text_path = path
        self.set_text(text, known, ids)
        return True

    def set_model(self, model: SequenceModel, vocab: CharVocab, whole: Trace | None = None,
                  first_pass: bool = True) -> None:
        """Swap in a model (e.g. new weights from training): re-run the current text up to the
        current step. Characters of the text outside the new vocabulary are dropped. After a
        series, the text stepped before it comes back, from the start.

        ``whole``: the trace of ``trace_inputs()`` under ``model``, already computed (e.g. by the
        training thread); used when its inputs are the text's, else the text is traced here.
        ``first_pass``: False starts no first pass beyond the steps ``whole`` covers (a live
        refresh while training: a pass restarted on every swap would never reach the end of a
        long text and would take CPU from training; steps beyond are computed when moved to,
        analysis jobs compute them sequentially); the cell-state levels are still computed when
        ``whole`` does not give them.
        """
        t = self.t if self.sequence.kind == TextSequence.kind else 0
        known = split_known(self.sequence.parked_text, vocab)
        text = known.kept
        stepper = Stepper(model, vocab.encode(text, "the text"), text, every=CHECKPOINT_EVERY)
        if whole is not None and np.array_equal(whole.inputs, self._traced(stepper.inputs)) and whole.steps:
            cells = np.stack([layer["c"] for layer in whole.layers], axis=1) if "c" in whole.names else None  # (T', L, H)
            levels, pending = self._cell_levels(model, cells), False
            stepper.adopt(whole)  # the checkpoints the levels' forward passed
        else:
            levels, pending = self._interim_levels(model), True
        self._stop_seek()
        self.model, self.vocab, self.stepper, self.cell_levels = model, vocab, stepper, levels
        self._levels_pending = pending
        self.sequence = TextSequence(text, vocab.chars)
        if self.layer >= model.config.num_layers or self.unit >= model.config.hidden_size:
            self.layer, self.unit, self.selected_step = 0, -1, -1
        self._start_pass(first_pass)  # before the signals: a job they start waits for this pass
        self.model_changed.emit()
        self.text_changed.emit()
        self._report_dropped(known)
        self.seek(min(t, stepper.steps))

    def set_series(self, model: SequenceModel, values: np.ndarray, labels: list,
                   inverse: Callable | None = None, targets: np.ndarray | None = None) -> None:
        """Step a numeric series through a forecaster instead of text.

        ``model``: dense input (``input_kind="dense"``), ``input_size`` W, ``output_size`` K.
        ``values (T, W)``: the scaled input window of every step (e.g. ``SeriesDataset.inputs``).
        ``labels``: T strings, what step t shows (e.g. the value it forecasts, original units).
        ``inverse``: maps scaled values to original units (e.g. ``scaler.inverse_transform``);
        None shows predictions scaled. ``targets (T, K)``: the actual next values, scaled, shown
        against the predictions (None: predictions only). Raises ValueError (nothing changes) on
        a character model or mismatched shapes. Keeps the step when replacing a series (e.g.
        retrained weights), else starts at step 0; the text stepped before is put aside.
        """
        if model.config.input_kind != "dense":
            raise ValueError("set_series needs a model with dense (numeric) input; "
                             "step text through a character model with set_model")
        stepper = Stepper(model, values, every=CHECKPOINT_EVERY)  # (T, W) checked against the model
        T = stepper.steps
        if len(labels) != T:
            raise ValueError(f"labels has {len(labels)} entries but the series has {T} steps")
        if targets is not None and np.shape(targets) != (T, model.config.output_size):
            raise ValueError(f"targets must have shape ({T}, {model.config.output_size}), got {np.shape(targets)}")
        sequence = SeriesSequence(labels, targets, inverse, parked_text=self.sequence.parked_text)
        t = self.t if self.sequence.kind == sequence.kind else 0
        levels = self._interim_levels(model)
        self._stop_seek()
        self.model, self.vocab, self.stepper, self.cell_levels = model, None, stepper, levels
        self._levels_pending = True
        self.sequence = sequence
        self.model_path, self.text_path = None, None
        if self.layer >= model.config.num_layers or self.unit >= model.config.hidden_size or self.selected_step >= T:
            self.layer, self.unit, self.selected_step = 0, -1, -1
        self._start_pass()  # before the signals: a job they start waits for this pass
        self.model_changed.emit()
        self.text_changed.emit()
        self.seek(min(t, T))

    def _refuse_text_for_series(self) -> None:
        if not self.sequence.editable:
            raise DataError("a numeric series is being stepped: open or train a character model to step text")

    def set_text(self, text: str, known: KnownText | None = None, ids: np.ndarray | None = None) -> str:
        """Step through ``text`` instead; keeps results before the first changed character.

        Characters outside the vocabulary are not accepted: they are removed, reported through
        ``message``, and the accepted text is returned. ``known``: ``split_known(text, vocab)``
        and ``ids``: the token ids of its ``kept`` text ``(T,)``, when the caller has them already
        (None: computed here).
        """
        if not isinstance(text, str):
            raise DataError(f"text must be a str, got {type(text).__name__}")
        self._refuse_text_for_series()
        if self.vocab is None:
            self.sequence = TextSequence(text)
            self.text_changed.emit()
            return text
        known = split_known(text, self.vocab) if known is None else known
        kept = known.kept
        ids = self.vocab.encode(kept, "the text") if ids is None else ids
        self._stop_seek()
        old_t = self.stepper.t
        if not np.array_equal(self._traced(self.stepper.inputs), self._traced(ids)):
            self._levels_pending = True  # the levels' sample changed: the pass worker computes them
        first_change = self.stepper.edit(ids, kept, run=False)  # rows before the first change stay as they were
        self.sequence = TextSequence(kept, self.vocab.chars)
        if self.selected_step >= len(kept):
            self.selected_step = -1
        self._start_pass()  # from the first changed character; before the signal: a job it starts waits for it
        self.text_changed.emit()
        if first_change < self.brush_span[1]:
            self.brush(0, 0)  # the brushed steps are no longer the characters brushed
        self._report_dropped(known)
        self.seek(min(old_t, self.stepper.steps))  # chunked beyond the adopted rows: never freezes
        return kept

    def _report_dropped(self, known: KnownText) -> None:
        if known.dropped:
            self.message.emit(dropped_message(known.unknown))

    def trace_inputs(self) -> np.ndarray | None:
        """What ``set_model``'s ``whole`` must be a trace of: the first LEVEL_STEPS_MAX token ids
        (or series inputs) being stepped, ``(T',)`` or ``(T', D)``; None without a model."""
        return None if self.stepper is None else self._traced(self.stepper.inputs)

    @staticmethod
    def _traced(inputs: np.ndarray) -> np.ndarray:
        """The part of the stepped inputs that the whole-text trace covers: the first
        LEVEL_STEPS_MAX, ``(T',)`` or ``(T', D)`` (a view)."""
        return inputs[:LEVEL_STEPS_MAX]

    def _interim_levels(self, model: SequenceModel) -> list:
        """Cell-state levels shown until the pass worker has computed ``model``'s: the current
        ones when they have the layers, else the defaults."""
        if len(self.cell_levels) == model.config.num_layers:
            return self.cell_levels
        return self._cell_levels(model, None)

    @staticmethod
    def _cell_levels(model: SequenceModel, cells: np.ndarray | None) -> list:
        """Per layer, symmetric cell-state levels from ``cells``, the cell states of the text's
        first LEVEL_STEPS_MAX steps ``(T', L, H)`` (None: the defaults; not read for a cell
        without a cell state)."""
        if model.config.cell != "lstm":
            return [(-1.0, 1.0)] * model.config.num_layers
        if cells is None:
            return [gate_levels("c")] * model.config.num_layers
        return [gate_levels("c", cells[:, k]) for k in range(model.config.num_layers)]

    # --- moving -------------------------------------------------------------------------------
    def step(self) -> bool:
        """One step forward; False at the end (or without a model)."""
        self._stop_seek()
        if self.stepper is None or not self.stepper.step():
            return False
        self.stepped.emit(self.stepper.t)
        return True

    def back(self) -> bool:
        """One step back; False at the start."""
        self._stop_seek()
        if self.stepper is None or not self.stepper.back():
            return False
        self.stepped.emit(self.stepper.t)
        return True

    def seek(self, t: int) -> None:
        """Move to ``t`` steps taken. A seek computing at most ``SYNC_STEPS`` new steps finishes
        before returning. A longer one waits for the first pass while it runs (the cursor stays;
        ``target`` is ``t``; it lands exactly on ``t`` when the pass gets there), else continues
        in timer-driven chunks (the GUI stays responsive; ``stepped`` after each chunk).
        ``seeking`` is True meanwhile; a later seek or step replaces it."""
        if self.stepper is None:
            return
        self._stop_seek()
        far = t - self.stepper.computed > SYNC_STEPS
        if far and self.passing and t <= self.stepper.steps:  # beyond the end: run_to refuses it
            self._target, self._waiting = int(t), True
            self.stepped.emit(self.stepper.t)
            self._report_wait()
            return
        if self.stepper.run_to(t, budget_s=CATCHUP_BUDGET_S if far else None):
            self.stepped.emit(self.stepper.t)
            return
        self._target = int(t)
        self.stepped.emit(self.stepper.t)
        self._catchup.start()

    @property
    def target(self) -> int:
        """The step the cursor is going to: a pending seek's, else ``t``."""
        return self.t if self._target is None else self._target

    @property
    def waiting(self) -> bool:
        """True while a seek waits for the first pass to reach its target."""
        return self._waiting

    def pass_percent(self) -> int:
        """How far the first pass is, in % of the steps (100 when over or without a model)."""
        return 100 if self.stepper is None else self.stepper.known_percent()

    def _report_wait(self) -> None:
        self.message.emit(f"Going to step {self._target:,}: waiting for the first pass ({self.pass_percent()} %)")

    def _land(self) -> None:
        """A waiting seek whose target the pass has reached lands there (GUI thread, no new checkpoint)."""
        if self._waiting and self._target <= self.stepper.computed:
            target = self._target
            self._stop_seek()
            self.stepper.run_to(target)
            self.stepped.emit(self.stepper.t)

    def _continue_seek(self) -> None:
        done = self.stepper.run_to(self._target, budget_s=CATCHUP_BUDGET_S)
        if done:
            self._stop_seek()
        self.stepped.emit(self.stepper.t)

    def _stop_seek(self) -> None:
        self._catchup.stop()
        self._target, self._waiting = None, False

    def _wait_without_pass(self) -> None:
        """The pass ended before the waiting seek's target: catch up in chunks instead."""
        if self._waiting:
            self._waiting = False
            self._catchup.start()

    # --- the first pass -----------------------------------------------------------------------
    def _start_pass(self, whole_text: bool = True) -> None:
        """Start the first pass in a worker thread from the checkpoints known (after an edit:
        the first changed step); a pass already running stops (its inputs are gone).
        ``whole_text`` False: only when the cell-state levels are pending (``set_model``)."""
        stepper = self.stepper
        starts = stepper is not None and ((whole_text and not stepper.done) or self._levels_pending)
        self._stop_pass(filling=starts)  # jobs waiting for the checkpoints wait on for the new pass
        if starts:
            self._pass_reported, self._pass_shown = time.perf_counter(), False
            worker = _PassWorker(stepper, self._levels_pending)
            threads.Relay(worker, self, done=self._on_pass_rows, failed=self._on_pass_failed,
                          finished=self._on_pass_finished)
            self._pass = worker
            stepper.set_filling(True)
            threads.start(worker, "first-pass")
        else:
            self._land()  # nothing left to wait for

    def _stop_pass(self, filling: bool = False) -> None:
        """Stop the running pass; ``filling``: another starts at once (waiters keep waiting)."""
        if self._pass is not None:
            self._pass.stop_requested.set()
            if not filling or self._pass.stepper is not self.stepper:  # a replaced stepper is never filled
                self._pass.stepper.set_filling(False)
            self._pass = None

    def _on_pass_rows(self, worker: "_PassWorker", delivery: tuple) -> None:
        """Checkpoints from a pass worker (GUI thread): kept if the stepper's inputs are still
        the ones it read; progress at most every PASS_REPORT_S (a pass shorter than that reports
        only its end through ``pass_progress``, nothing in the status bar)."""
        kind, payload = delivery
        stepper = self.stepper
        if stepper is not worker.stepper or stepper.version != worker.version:
            return
        if kind == "levels":
            self.cell_levels, self._levels_pending = payload, False
            self.levels_changed.emit()  # the views drawn with the levels recolour
            return
        j, rows = payload  # first checkpoint index, (n, L, S, H)
        stepper.accept(j, rows)
        self._land()
        if worker is not self._pass:
            return
        now = time.perf_counter()
        if stepper.done:
            self._pass = None
            stepper.set_filling(False)
            self.pass_progress.emit(stepper.steps, stepper.steps)
            if self._pass_shown:
                self.message.emit("First pass done: every step is ready")
        elif now - self._pass_reported >= PASS_REPORT_S:
            self._pass_reported, self._pass_shown = now, True
            self.pass_progress.emit(stepper.computed, stepper.steps)
            if self._waiting:
                self._report_wait()
            else:
                self.message.emit(f"First pass: {self.pass_percent()} % of {stepper.steps:,} steps")

    def _on_pass_failed(self, worker: "_PassWorker", message: str) -> None:
        if worker is self._pass:
            self._pass = None
            worker.stepper.set_filling(False)
            self._wait_without_pass()
            self.error.emit(f"First pass failed: {message}")

    def _on_pass_finished(self, worker: "_PassWorker") -> None:
        if worker is self._pass:  # ended without reaching the end: the stepper's inputs changed under it
            self._pass = None
            worker.stepper.set_filling(False)
            self._wait_without_pass()

    def cancel_pass(self) -> None:
        """Stop the first pass (steps beyond it are still computed when moved to, block by block)."""
        if self._pass is not None:
            self._stop_pass()
            self._wait_without_pass()
            self.message.emit(f"First pass stopped at step {self.stepper.computed:,} of {self.stepper.steps:,}")

    # --- selection and display ----------------------------------------------------------------
    def select(self, layer: int, unit: int, step: int = -1) -> None:
        """Select ``unit`` of ``layer`` (unit -1: none) and optionally a step (-1: none)."""
        if self.model is None:
            return
        if not 0 <= layer < self.num_layers or not -1 <= unit < self.hidden_size or not -1 <= step < max(self.steps, 1):
            raise ValueError(f"no unit {unit} / step {step} in layer {layer}")
        self.layer, self.unit, self.selected_step = int(layer), int(unit), int(step)
        self.selection_changed.emit(self.layer, self.unit, self.selected_step)

    def brush(self, start: int, end: int) -> None:
        """Brush the steps ``[start, end)`` (a text selection or a heatmap time range), clipped to
        the sequence; an empty span clears the brush. Emits ``brushed`` when it changes."""
        start, end = max(0, int(start)), min(int(end), self.steps)
        span = (start, end) if start < end else (0, 0)
        if span != self.brush_span:
            self.brush_span = span
            self.brushed.emit(*span)

    def request_quantity(self, name: str) -> None:
        """Ask the views that colour by a quantity (the text) to show ``name`` (h, c or a gate)."""
        self.quantity_requested.emit(name)

    def set_colorblind(self, on: bool) -> None:
        if bool(on) != self.colorblind:
            self.colorblind = bool(on)
            self.colormap_changed.emit(self.colorblind)

    def display_name(self) -> str:
        """Window-title text: the model and text file names, or the series' length."""
        return self.sequence.display_name(self.model_path, self.text_path)


class _PassWorker(threads.Worker):
    """The first pass of ``stepper`` in a worker thread: ``Stepper.next_checkpoints`` block by
    block from the last known checkpoint, handed over through ``done(("rows", (j, rows)))`` after at
    most PASS_BUDGET_S of work, the last one empty ("nothing left"); with ``levels``, also the
    cell-state levels of the first LEVEL_STEPS_MAX steps (``done(("levels", [(lo, hi), ...]))``)
    from the cell states this forward passes through, as soon as it has passed them: each step
    is computed once (the steps before the pass's first block and after its last whole one, when
    in the levels' sample, by one ``checkpoint_states`` each).
    Reads only what it copied when made and the stepper's immutable inputs and model."""

    def __init__(self, stepper: Stepper, levels: bool):
        super().__init__()
        self.stepper, self.version = stepper, stepper.version
        self._levels = levels  # also compute the cell-state levels (``levels``)
        self._j = stepper.computed // stepper.every  # the last known checkpoint
        self._state = stepper.state(self._j * stepper.every)  # per layer ((1, H), ...)
        self._last = stepper.steps // stepper.every  # the last checkpoint there is
        self._none = stepper.next_checkpoints(self._j, 0, self._state)  # (0, L, S, H)

    def work(self) -> None:
        stepper, j, state = self.stepper, self._j, self._state
        every, model = stepper.every, stepper.model
        sample = min(stepper.steps, LEVEL_STEPS_MAX) if self._levels else 0  # steps the levels come from
        cells = None
        if self._levels and (sample == 0 or model.config.cell != "lstm"):
            self.done.emit(("levels", Session._cell_levels(model, None)))  # no sample, or fixed levels
            sample = 0
        elif sample:
            L, H = model.config.num_layers, model.config.hidden_size
            cells = np.empty((-(-sample // every) * every, L, H), model.dtype)  # (whole blocks, L, H)
            lead = min(j * every, sample)  # sampled steps before the pass's first block
            if lead:
                checkpoint_states(model, stepper.inputs[:lead], None, lead, cells[:lead])  # from the zero state
            if lead == sample:  # the pass starts after the sample
                self.done.emit(("levels", Session._cell_levels(model, cells[:sample])))
        since, rows, first = time.perf_counter(), [], j + 1
        while j < self._last and not self.stop_requested.is_set():
            sampled = cells[j * every : (j + 1) * every] if j * every < sample else None  # (every, L, H)
            row = stepper.next_checkpoints(j, 1, state, sampled)  # (1, L, S, H)
            rows.append(row)
            state = [tuple(a[None] for a in layer) for layer in row[0]]  # (1, H) each
            j += 1
            if sampled is not None and j * every >= sample:
                self.done.emit(("levels", Session._cell_levels(model, cells[:sample])))
            if time.perf_counter() - since >= PASS_BUDGET_S:
                self.done.emit(("rows", (first, np.concatenate(rows))))  # (n, L, S, H)
                since, rows, first = time.perf_counter(), [], j + 1
        if self.stop_requested.is_set():
            return
        if rows:
            self.done.emit(("rows", (first, np.concatenate(rows))))  # (n, L, S, H)
        if j * every < sample:  # the sample ends in the last, partial block, which the pass skips
            checkpoint_states(model, stepper.inputs[j * every : sample], state, sample - j * every,
                              cells[j * every : sample])
            self.done.emit(("levels", Session._cell_levels(model, cells[:sample])))
        self.done.emit(("rows", (j + 1, self._none)))  # none left: the pass is over


def read_text(path, vocab: CharVocab | None) -> tuple:
    """``(text, known, ids)`` of the text file at ``path``: decoded (``engine.data.load_text``),
    read through ``vocab`` (``known``: ``split_known``, what is kept and left out) and the kept
    text encoded (None, None without a vocabulary). Raises ``DataError`` for an unusable file or
    one with no known character."""
    text = load_text(path)
    if vocab is None:
        return text, None, None
    known = split_known(text, vocab)
    if known.kept == "":
        raise DataError(f"{path}: none of its characters are in the model's vocabulary")
    return text, known, vocab.encode(known.kept, "the text")
