"""Interventions (``engine.analysis.intervene``): clamp, zero or scale one unit's cell state,
hidden state or gate from a chosen step onward (or over the brushed span), and see what changes:
the heatmaps of the intervened run beside the originals (original | intervened | difference,
for a chosen quantity and the viewed layer, on the gate heatmaps' time axis), the
next-character probabilities at the cursor with and without, the change in the loss over the
whole text, and a sample generated with and without from the same seed.

The interventions are listed (with a count badge) and removable; they never touch the model:
the engine runs its own chunked loop with the edits (``iter_intervened``). Two jobs run off the
GUI thread, each with progress and Cancel: the *window* job (the shown steps, the cursor's
probabilities and the samples) and the *loss* job (``loss_change`` over the whole text, from
the stored state at the checkpoint just before the first intervention; about 60 us a step for
the demo model, memory two chunks whatever the length).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine.analysis.intervene import (MODES, Intervention, editable, iter_intervened, loss_change, sample_pair,
                                      window_of)
from engine.quantities import DISPLAY_ORDERS
from engine.trace import Trace

from ..core.labels import step_label
from ..plots import HeatmapView, colormap_for, room_for_end_tick_labels
from .base import QUANTITY_LABELS, AnalysisPanel, layer_box, quantity_box
from .jobs import CHUNK, JobBar, JobRunner, text_source

BARS = 10  # most likely next characters shown
LEGEND_ROOM = 1.6  # the probability axis reaches this multiple of the tallest bar: room for the legend
MAX_WINDOW = 2000  # most steps the window job computes (the last ones of the visible range)
PRIME_MAX = 300  # characters of the text before the intervention that prime the samples
SAMPLE_LENGTH = 160
DEBOUNCE_MS = 150  # the window job waits for the time axis to settle
LOSS_CHUNK = 512  # steps between two cancel points of the loss job (about 30 ms for the demo model)
PANES = ("original", "intervened", "difference")
RESULT_HEIGHT = 90  # px: the least height of the heatmaps and the probability bars
PANE_WIDTH = 150  # px: the least width of a heatmap pane (its axis labels fit)
LIST_ROWS = 2  # interventions the list shows without scrolling


@dataclasses.dataclass
class WindowOutcome:
    """What the window job found: the traces of steps ``[lo, lo + n)`` without and with the
    interventions, the next-character probabilities ``(V,)`` at ``step`` without and with
    (None when ``step`` is outside the window), and the two samples."""

    original: Trace
    changed: Trace
    step: int
    probs_before: np.ndarray | None  # (V,)
    probs_after: np.ndarray | None  # (V,)
    sample_without: str
    sample_with: str

    @property
    def lo(self) -> int:
        return self.original.start


def start_state(stepper, first: int) -> tuple[int, list]:
    """``(s0, state)``: the latest checkpoint the stepper already knows at or before step
    ``first`` and the model state there (no new work on the calling thread)."""
    s0 = min(first, stepper.computed)
    s0 -= s0 % stepper.every
    return s0, stepper.state(s0)


def run_window(model, vocab, ids, text, interventions, s0, states, lo, hi, step, seed, check) -> WindowOutcome:
    """The window job: both runs from ``states`` (the original and the intervened run's after
    ``s0`` steps) to ``hi``, keeping steps ``[lo, hi)``; ``check`` reports progress and cancels."""
    kept = ([], [])
    for t0, original, changed in iter_intervened(model, ids, interventions, s0, states[0], end=hi, chunk=CHUNK,
                                                 changed_state=states[1]):
        check(0.9 * (t0 + original.steps - s0) / max(1, hi - s0))
        if t0 + original.steps > lo:
            kept[0].append(original)
            kept[1].append(changed)
    original, changed = (window_of(parts, lo, hi) for parts in kept)
    before = after = None
    if lo <= step < hi:
        before, after = original.outputs[step - lo], changed.outputs[step - lo]  # (V,) each
    first = min(iv.start for iv in interventions)
    offset = max(0, first - PRIME_MAX)
    shifted = [dataclasses.replace(iv, start=max(0, iv.start - offset),
                                   end=None if iv.end is None else max(1, iv.end - offset)) for iv in interventions]
    without, with_ = sample_pair(model, vocab, shifted, prime=text[offset:first], length=SAMPLE_LENGTH, seed=seed)
    return WindowOutcome(original, changed, step, before, after, without[first - offset:], with_[first - offset:])


def run_loss(model, ids, interventions, s0, state, kept, check):
    """The loss job: ``loss_change`` over steps ``[s0, T)`` from ``state``, keeping the
    intervened run's state after every chunk in ``kept``."""
    return loss_change(model, ids, interventions, start=s0, state=state, chunk=LOSS_CHUNK, keep_states=kept,
                       progress=lambda done, total: check(done / total))


class InterventionPanel(AnalysisPanel):
    """Add interventions, see their consequences."""

    def __init__(self, session, parent=None):
        super().__init__(session, "interventions", parent)
        self.layer = layer_box(session)
        self.quantity = quantity_box(editable("lstm"), "c")
        self.unit = QtWidgets.QSpinBox()
        self.unit.setPrefix("unit ")
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(MODES)
        self.value = QtWidgets.QDoubleSpinBox()
        self.value.setRange(-50.0, 50.0)
        self.value.setSingleStep(0.1)
        self.value.setToolTip("The value to clamp to, or the factor to scale by (unused for zero)")
        self.where = QtWidgets.QComboBox()
        self.where.addItems(["from the cursor", "from step 1", "brushed span"])
        self.where.setToolTip("Where the intervention acts: from the cursor's step to the end of the text, "
                              "over the whole text, or over the brushed span only")
        self.add_button = QtWidgets.QPushButton("Add")
        self.add_button.setToolTip("Add this intervention (nothing is saved into the model)")
        self.add_button.clicked.connect(self.add_from_controls)
        self.badge = QtWidgets.QLabel()
        self.list = QtWidgets.QListWidget()
        self.list.setToolTip("The interventions in effect (select one, then Remove)")
        self.list.setMaximumHeight(LIST_ROWS * self.list.fontMetrics().lineSpacing() + 2 * self.list.frameWidth() + 4)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QtWidgets.QPushButton("Remove all")
        self.clear_button.clicked.connect(self.clear)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setPrefix("seed ")
        self.seed.setToolTip("The random seed of both samples (without and with the interventions)")
        # the window job: heatmaps original | intervened | difference on the gates' time axis
        self.window_runner = JobRunner("interventions-window", self)
        self.window_runner.result.connect(self.show_window)
        self.window_runner.failed.connect(self.say)
        self.shown = QtWidgets.QComboBox()
        self.shown.setToolTip("The quantity the heatmaps show (the layer is the viewed one)")
        self.shown.currentIndexChanged.connect(self._draw_window)
        # controls in a compact column on the left, the results beside it (visible in a low dock)
        side = QtWidgets.QGridLayout()
        side.setContentsMargins(4, 0, 0, 0)
        side.setSpacing(2)
        heatmaps_of = QtWidgets.QHBoxLayout()
        heatmaps_of.addWidget(QtWidgets.QLabel("show"))
        heatmaps_of.addWidget(self.shown, 1)
        pairs = ((self.layer, self.unit), (self.quantity, self.mode), (self.value, self.where),
                 (self.add_button, self.badge), (self.list, None), (self.remove_button, self.clear_button),
                 (heatmaps_of, self.seed))
        for row, (left, right) in enumerate(pairs):
            if right is None:
                side.addWidget(left, row, 0, 1, 2)
                continue
            side.addLayout(left, row, 0) if isinstance(left, QtWidgets.QLayout) else side.addWidget(left, row, 0)
            side.addWidget(right, row, 1)
        side.setRowStretch(len(pairs), 1)
        self.views: dict[str, HeatmapView] = {}
        self.heatmaps = QtWidgets.QWidget()  # the three heatmaps
        heat_row = QtWidgets.QHBoxLayout(self.heatmaps)
        heat_row.setContentsMargins(0, 0, 0, 0)
        heat_row.setSpacing(2)
        for pane in PANES:
            view = HeatmapView("h", colorblind=session.colorblind)
            if pane == "original":  # the unit axis once, on the left; the colour bar of both runs once,
                view.plot.layout.removeItem(view.colorbar)  # on "intervened" (the same levels)
                view.colorbar.hide()
            else:  # the same units and steps as "original": its axes name them
                view.plot.hideAxis("left")
                view.plot.getAxis("bottom").setStyle(showValues=False)
            view.setMinimumSize(PANE_WIDTH, RESULT_HEIGHT)
            self.views[pane] = view
            heat_row.addWidget(view)
        self._window_timer = QtCore.QTimer(self)
        self._window_timer.setSingleShot(True)
        self._window_timer.setInterval(DEBOUNCE_MS)
        self._window_timer.timeout.connect(self._window_soon)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumSize(120, RESULT_HEIGHT)
        self.plot.setLabel("left", "p(next)")
        self.plot.setToolTip("The most likely next characters at the cursor, without and with the interventions")
        self.plot.addLegend(offset=(-10, 2), colCount=2)  # one row, above the bars (LEGEND_ROOM)
        self.bars_before = pg.BarGraphItem(x=[], height=[], width=0.4, brush=(120, 120, 120), name="original")
        self.bars_after = pg.BarGraphItem(x=[], height=[], width=0.4, brush=(240, 140, 40), name="intervened")
        self.plot.addItem(self.bars_before)
        self.plot.addItem(self.bars_after)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        room_for_end_tick_labels(self.plot.getPlotItem())
        self.samples = {}  # "without" / "with": the sample from the same seed
        samples = QtWidgets.QHBoxLayout()
        for key in ("without", "with"):
            box = QtWidgets.QPlainTextEdit()
            box.setReadOnly(True)
            box.setMaximumHeight(80)
            box.setToolTip(f"Text sampled {key} the interventions, from the same seed, continuing the text "
                           "where the first intervention starts")
            column = QtWidgets.QVBoxLayout()
            column.addWidget(QtWidgets.QLabel(f"sample {key}"))
            column.addWidget(box)
            samples.addLayout(column)
            self.samples[key] = box
        self.results = QtWidgets.QWidget()  # heatmaps and probabilities: the exported picture
        result_row = QtWidgets.QHBoxLayout(self.results)
        result_row.setContentsMargins(0, 0, 0, 0)
        result_row.setSpacing(2)
        result_row.addWidget(self.heatmaps, 3)
        result_row.addWidget(self.plot, 2)
        results = QtWidgets.QVBoxLayout()
        results.setSpacing(2)
        results.addWidget(JobBar(self.window_runner))
        results.addWidget(self.results, 1)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        row.addLayout(side)
        row.addLayout(results, 1)
        self.body.addLayout(row, 1)
        self.body.addLayout(samples)  # below: the samples need the width
        self.interventions: list[Intervention] = []
        self.window: WindowOutcome | None = None
        self.loss = None  # the LossChange shown
        self._running_kept: dict = {}  # filled by the running loss job
        self._kept: dict = {}  # step -> the intervened run's state there, from the finished loss job
        session.model_changed.connect(self._on_model_changed)
        session.selection_changed.connect(self._on_selection)
        session.stepped.connect(self._on_stepped)
        session.colormap_changed.connect(self._draw_window)
        session.levels_changed.connect(self._draw_window)
        self.seed.valueChanged.connect(self._window_timer.start)
        self._on_model_changed()
        self._show_list()
        self.refresh_soon()

    def follow_time_axis(self, plot) -> None:
        """Share ``plot``'s time axis (the gate heatmaps'): the heatmaps show its steps."""
        for view in self.views.values():
            view.plot.setXLink(plot)
        plot.sigXRangeChanged.connect(self._window_timer.start)

    def _on_model_changed(self) -> None:
        self.unit.setRange(0, max(0, self.session.hidden_size - 1))
        model = self.session.model
        names = editable("lstm" if model is None else model.config.cell)
        if [self.quantity.itemData(k) for k in range(self.quantity.count())] != list(names):
            current = self.quantity.currentData()
            self.quantity.clear()
            for name in names:
                self.quantity.addItem(QUANTITY_LABELS[name], name)
            self.quantity.setCurrentIndex(max(0, self.quantity.findData(current)))
        fits = [iv for iv in self.interventions if iv.layer < self.session.num_layers
                and iv.unit < self.session.hidden_size and iv.quantity in names]
        if fits != self.interventions:
            self.interventions = fits
            self._show_list()
        shown = DISPLAY_ORDERS[model.config.cell] if self.session.ready else DISPLAY_ORDERS["lstm"]
        current = self.shown.currentText() or "h"
        blocker = QtCore.QSignalBlocker(self.shown)
        self.shown.clear()
        self.shown.addItems(list(shown))
        self.shown.setCurrentIndex(max(0, self.shown.findText(current)))
        del blocker

    def _on_selection(self, layer: int, unit: int, _step: int) -> None:
        self.layer.setValue(layer)
        if unit >= 0:
            self.unit.setValue(unit)
        if self.window is not None and self.window.original.num_layers > layer:
            self._draw_window()

    def _on_stepped(self, *_):
        if self.window is not None and self.window.step != self.session.t - 1:
            self._window_timer.start()

    # --- the list --------------------------------------------------------------------------
    def add_from_controls(self) -> None:
        s = self.session
        where = self.where.currentIndex()
        start, end = (max(0, s.t - 1), None) if where == 0 else (0, None) if where == 1 else s.brush_span
        if where == 2 and end <= start:
            self.say("Select a span of the text first (drag in the Text panel or across a heatmap).")
            return
        self.add(Intervention(self.layer.value(), self.quantity.currentData(), self.unit.value(),
                              self.mode.currentText(), self.value.value(), start, end))

    def add(self, intervention: Intervention) -> None:
        self.interventions.append(intervention)
        self._show_list()
        self.refresh_soon()

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.interventions):
            del self.interventions[row]
            self._show_list()
            self.refresh_soon()

    def clear(self) -> None:
        self.interventions.clear()
        self._show_list()
        self.refresh_soon()

    def _show_list(self) -> None:
        self.list.clear()
        for iv in self.interventions:
            how = {"zero": "zero", "clamp": f"clamp to {iv.value:g}", "scale": f"scale by {iv.value:g}"}[iv.mode]
            span = f"steps {iv.start}–{'end' if iv.end is None else iv.end - 1}"
            self.list.addItem(f"layer {iv.layer} {iv.quantity} unit {iv.unit}: {how}, {span}")
        n = len(self.interventions)
        self.badge.setText(f"<b>{n}</b> active" if n else "none")
        self.badge.setStyleSheet("color: rgb(240, 140, 40)" if n else "color: gray")

    # --- computing ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start both jobs (the interventions, the model or the text changed)."""
        source = text_source(self.session)
        if not self.interventions:
            self.runner.cancel()
            self.clear_results()
            self.say("Add an intervention: pick a unit (click a heatmap cell), a quantity and what to do to it.")
            return
        if source is None or min(iv.start for iv in self.interventions) >= self.session.steps:
            return
        model, ids, text = source
        ivs = tuple(self.interventions)
        s0, state = start_state(self.session.stepper, min(iv.start for iv in ivs))
        self.loss, self._kept, kept = None, {}, {}
        self.say(f"Running the text from step {s0} to the end with and without the interventions…")
        self.start(lambda check: run_loss(model, ids, ivs, s0, state, kept, check), text, model)
        self._running_kept = kept
        self.refresh_window()

    def clear_results(self) -> None:
        self.window_runner.cancel()
        self.window = self.loss = None
        self.bars_before.setOpts(x=[], height=[])
        self.bars_after.setOpts(x=[], height=[])
        self.plot.setTitle(None)
        for box in self.samples.values():
            box.clear()
        for view in self.views.values():
            view.set_data(np.zeros((0, 0), np.float32))

    def _window_soon(self) -> None:
        if self.on_screen():
            self.refresh_window()
        else:
            self._stale = True

    def visible_steps(self) -> tuple[int, int]:
        """``[lo, hi)``: the steps on the heatmaps' time axis (at most the last ``MAX_WINDOW``)."""
        x0, x1 = self.views["original"].plot.viewRange()[0]
        hi = min(self.session.steps, int(np.floor(x1)) + 1)
        lo = max(0, int(np.ceil(x0)), hi - MAX_WINDOW)
        return lo, hi

    def refresh_window(self) -> None:
        """Start the window job: the shown steps, the cursor's probabilities, the samples."""
        source = text_source(self.session)
        if source is None or not self.interventions:
            return
        model, ids, text = source
        ivs, step = tuple(self.interventions), max(0, self.session.t - 1)
        lo, hi = self.visible_steps()
        if hi <= lo:
            lo, hi = step, step + 1
        elif not lo <= step < hi and max(hi, step + 1) - min(lo, step) <= MAX_WINDOW:
            lo, hi = min(lo, step), max(hi, step + 1)  # the cursor's probabilities too
        stepper = self.session.stepper
        s0, state = start_state(stepper, min(lo, *(iv.start for iv in ivs)))
        states = (state, None)
        resume = [t for t in self._kept if s0 < t <= min(lo, stepper.computed)]  # skip the steps before lo
        if resume:
            s0 = max(resume)
            states = (stepper.state(s0), self._kept[s0])
        vocab, seed = self.session.vocab, self.seed.value()
        self.window_runner.run(lambda check: run_window(model, vocab, ids, text, ivs, s0, states, lo, hi, step,
                                                        seed, check))

    def show_result(self, change) -> None:
        """The loss job's ``LossChange``."""
        self.loss, self._kept = change, self._running_kept
        self.say(f"Loss from step {change.start} to the end ({change.steps} characters): {change.before:.4f} → "
                 f"{change.after:.4f} nats/char ({change.delta:+.4f}); over the whole text {change.text_delta:+.4f}")

    def show_window(self, outcome: WindowOutcome) -> None:
        self.window = outcome
        self._draw_window()
        chars = self.session.vocab.chars
        if outcome.probs_before is not None:
            top = np.argsort(-np.maximum(outcome.probs_before, outcome.probs_after), kind="stable")[:BARS]  # (BARS,)
            x = np.arange(top.size)  # (BARS,)
            self.bars_before.setOpts(x=x - 0.2, height=outcome.probs_before[top])
            self.bars_after.setOpts(x=x + 0.2, height=outcome.probs_after[top])
            tallest = float(max(outcome.probs_before[top].max(), outcome.probs_after[top].max()))
            self.plot.setYRange(0, tallest * LEGEND_ROOM, padding=0)
            self.plot.getAxis("bottom").setTicks([[(k, repr(chars[i])[1:-1]) for k, i in enumerate(top)]])
            self.plot.setTitle(f"after {step_label(outcome.step)}", size="9pt")  # the axis: p(next)
        else:
            self.plot.setTitle(f"the cursor ({step_label(outcome.step)}) is outside the shown steps", size="9pt")
        self.samples["without"].setPlainText(outcome.sample_without)
        self.samples["with"].setPlainText(outcome.sample_with)

    def _draw_window(self, *_) -> None:
        """Draw the window's original, intervened and difference arrays of the chosen quantity
        in the viewed layer."""
        w, s = self.window, self.session
        name = self.shown.currentText()
        if w is None or not name or name not in w.original.layers[0] or s.layer >= w.original.num_layers:
            return
        original, changed = w.original.gate(name, s.layer), w.changed.gate(name, s.layer)  # (n, H) each
        levels = s.levels(name, s.layer)
        diff = changed - original  # (n, H)
        reach = max(float(np.abs(diff).max(initial=0.0)), 1e-6)  # symmetric levels: zero is neutral
        for pane, data, levels in (("original", original, levels), ("intervened", changed, levels),
                                   ("difference", diff, (-reach, reach))):
            view = self.views[pane]
            view.colorbar.setColorMap(colormap_for("h" if pane == "difference" else name, s.colorblind))
            view.set_data(data, levels, t0=w.lo)
            view.plot.setTitle(f"{pane} {name}", size="9pt")  # of the viewed layer (narrow: no room to say)
            view.set_cursor(w.step)
            view.plot.setYRange(-0.5, data.shape[1] - 0.5, padding=0)

    def figure(self):
        return self.results
