"""Interventions (``engine.analysis.intervene``): clamp, zero or scale one unit's cell state,
hidden state or gate from a chosen step onward (or over the brushed span), and see what changes:
the next-character probabilities at the current step with and without, the change in the loss
on the text, and a sample generated with and without from the same seed.

The interventions are listed (with a count badge) and removable; they never touch the model:
the engine runs its own stepping loop with the edits. The computation runs off the GUI thread.
The engine steps one character at a time from the first intervention (about 0.2 ms a step for
the demo model), so the loss is measured over the text's first ``MEASURED_STEPS`` characters
after the first intervention starts (exact there: a step's loss depends only on the characters
up to the next one), which bounds a job to a few seconds on any text; the status line names the
range.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from engine.analysis.intervene import MODES, Intervention, intervene, sample_pair

from ..plots import room_for_end_tick_labels
from .base import QUANTITY_LABELS, AnalysisPanel, layer_box, quantity_box
from .jobs import text_source

BARS = 10  # most likely next characters shown
MEASURED_STEPS = 20_000  # steps from the first intervention over which the loss change is measured
PRIME_MAX = 300  # characters of the text before the intervention that prime the samples
SAMPLE_LENGTH = 160


@dataclasses.dataclass
class InterventionOutcome:
    """What the job found: loss per character before/after (nats), the next-character
    probabilities ``(V,)`` at ``step`` without and with (None when ``step`` comes before every
    intervention), and the two samples."""

    loss_before: float
    loss_after: float
    measured: int  # steps [0, measured) of the text the losses cover
    step: int
    probs_before: np.ndarray | None  # (V,)
    probs_after: np.ndarray | None  # (V,)
    sample_without: str
    sample_with: str


def run_intervention(model, vocab, ids, text, interventions, step, seed, check) -> InterventionOutcome:
    """The job (see the module docstring); ``step`` is the current step (0-based), ``check``
    is called between the phases."""
    first = min(iv.start for iv in interventions)
    end = min(ids.shape[0], first + MEASURED_STEPS)  # the losses of steps [0, end - 1) need ids[:end]
    window = max(1, min(step, end - 1) - first + 1)
    res = intervene(model, ids[:end], interventions, window=window)
    check(0.7)
    before = after = None
    if first <= step < res.window_start + res.original.steps:
        k = step - res.window_start
        before, after = res.original.outputs[k], res.changed.outputs[k]  # (V,) each
    offset = max(0, first - PRIME_MAX)
    shifted = [dataclasses.replace(iv, start=max(0, iv.start - offset),
                                   end=None if iv.end is None else max(1, iv.end - offset)) for iv in interventions]
    without, with_ = sample_pair(model, vocab, shifted, prime=text[offset:first], length=SAMPLE_LENGTH, seed=seed)
    return InterventionOutcome(res.loss_before, res.loss_after, end, step, before, after,
                               without[first - offset:], with_[first - offset:])


class InterventionPanel(AnalysisPanel):
    """Add interventions, see their consequences."""

    def __init__(self, session, parent=None):
        super().__init__(session, "interventions", parent)
        self.layer = layer_box(session)
        self.quantity = quantity_box(("h", "c", "i", "f", "g", "o"), "c")
        self.unit = QtWidgets.QSpinBox()
        self.unit.setPrefix("unit ")
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(MODES)
        self.value = QtWidgets.QDoubleSpinBox()
        self.value.setRange(-50.0, 50.0)
        self.value.setSingleStep(0.1)
        self.value.setToolTip("The value to clamp to, or the factor to scale by (unused for zero)")
        self.where = QtWidgets.QComboBox()
        self.where.addItems(["from the cursor on", "from the start", "over the brushed span"])
        self.add_button = QtWidgets.QPushButton("Add")
        self.add_button.setToolTip("Add this intervention (nothing is saved into the model)")
        self.add_button.clicked.connect(self.add_from_controls)
        for w in (self.layer, self.quantity, self.unit, self.mode, self.value, self.where, self.add_button):
            self.controls.addWidget(w)
        self.badge = QtWidgets.QLabel()
        self.list = QtWidgets.QListWidget()
        self.list.setMaximumHeight(70)
        self.remove_button = QtWidgets.QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QtWidgets.QPushButton("Remove all")
        self.clear_button.clicked.connect(self.clear)
        self.seed = QtWidgets.QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("sample seed ")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.badge)
        row.addWidget(self.list, 1)
        buttons = QtWidgets.QVBoxLayout()
        for w in (self.remove_button, self.clear_button, self.seed):
            buttons.addWidget(w)
        row.addLayout(buttons)
        self.body.addLayout(row)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(120)
        self.plot.setLabel("left", "p(next)")
        self.plot.addLegend(offset=(-10, 5))
        self.bars_before = pg.BarGraphItem(x=[], height=[], width=0.4, brush=(120, 120, 120), name="original")
        self.bars_after = pg.BarGraphItem(x=[], height=[], width=0.4, brush=(240, 140, 40), name="with interventions")
        self.plot.addItem(self.bars_before)
        self.plot.addItem(self.bars_after)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        room_for_end_tick_labels(self.plot.getPlotItem())
        self.samples = {}  # "without" / "with": the sample from the same seed
        samples = QtWidgets.QHBoxLayout()
        for key in ("without", "with"):
            box = QtWidgets.QPlainTextEdit()
            box.setReadOnly(True)
            box.setMaximumHeight(110)
            box.setToolTip(f"Text sampled {key} the interventions, from the same seed, continuing the text "
                           "where the first intervention starts")
            column = QtWidgets.QVBoxLayout()
            column.addWidget(QtWidgets.QLabel(f"sample {key}"))
            column.addWidget(box)
            samples.addLayout(column)
            self.samples[key] = box
        self.body.addWidget(self.plot, 1)
        self.body.addLayout(samples)
        self.interventions: list[Intervention] = []
        self.outcome: InterventionOutcome | None = None
        session.model_changed.connect(self._on_model_changed)
        session.selection_changed.connect(self._on_selection)
        session.text_changed.connect(self.refresh_soon)
        session.stepped.connect(self._on_stepped)
        self.seed.valueChanged.connect(self.refresh_soon)
        self._on_model_changed()
        self._show_list()

    def _on_model_changed(self) -> None:
        self.unit.setRange(0, max(0, self.session.hidden_size - 1))
        model = self.session.model
        names = ("h", "c", "i", "f", "g", "o") if model is None or model.config.cell == "lstm" else ("h",)  # editable
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
        self.refresh_soon()

    def _on_selection(self, layer: int, unit: int, _step: int) -> None:
        self.layer.setValue(layer)
        if unit >= 0:
            self.unit.setValue(unit)

    def _on_stepped(self, *_):
        if self.outcome is not None and self.outcome.step != self.session.t - 1:
            self.refresh_soon()

    # --- the list --------------------------------------------------------------------------
    def add_from_controls(self) -> None:
        s = self.session
        where = self.where.currentIndex()
        start, end = (max(0, s.t - 1), None) if where == 0 else (0, None) if where == 1 else s.brush_span
        if where == 2 and end <= start:
            self.say("Select a span of the text first (drag in the Text panel).")
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
        source = text_source(self.session)
        if not self.interventions:
            self.runner.cancel()
            self.outcome = None
            self.bars_before.setOpts(x=[], height=[])
            self.bars_after.setOpts(x=[], height=[])
            for box in self.samples.values():
                box.clear()
            self.say("Add an intervention: pick a unit (click a heatmap cell), a quantity and what to do to it.")
            return
        if source is None:
            return
        model, ids, text = source
        ivs, vocab, step, seed = tuple(self.interventions), self.session.vocab, max(0, self.session.t - 1), self.seed.value()
        self.say("Running the text with and without the interventions…")
        self.start(lambda check: run_intervention(model, vocab, ids, text, ivs, step, seed, check), text, model)

    def show_result(self, outcome: InterventionOutcome) -> None:
        self.outcome = outcome
        chars = self.session.vocab.chars
        delta = outcome.loss_after - outcome.loss_before
        where = "the text" if outcome.measured == self.session.steps else f"the first {outcome.measured} characters"
        self.say(f"Loss on {where}: {outcome.loss_before:.4f} → {outcome.loss_after:.4f} nats/char "
                 f"({delta:+.4f})" + ("" if outcome.probs_before is not None
                                       else f"; the cursor (step {outcome.step}) is outside the interventions' "
                                            "measured steps"))
        if outcome.probs_before is not None:
            top = np.argsort(-np.maximum(outcome.probs_before, outcome.probs_after), kind="stable")[:BARS]  # (BARS,)
            x = np.arange(top.size)  # (BARS,)
            self.bars_before.setOpts(x=x - 0.2, height=outcome.probs_before[top])
            self.bars_after.setOpts(x=x + 0.2, height=outcome.probs_after[top])
            self.plot.getAxis("bottom").setTicks([[(k, repr(chars[i])[1:-1]) for k, i in enumerate(top)]])
            self.plot.setTitle(f"next character after step {outcome.step}", size="9pt")
        self.samples["without"].setPlainText(outcome.sample_without)
        self.samples["with"].setPlainText(outcome.sample_with)

    def figure(self):
        return self.plot
