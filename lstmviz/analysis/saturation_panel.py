"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, Fig. 3; ``engine.analysis.saturation``):
per sigmoid gate (i, f, o) of the chosen layer, one point per unit at (fraction of steps with the
gate < 0.1, fraction > 0.9) over the whole viewed text. Points near the right edge are gates that
are mostly off, near the top mostly on; units in between switch. Hovering a point names the unit;
clicking it selects the unit. Live while training: new weights queue one recomputation behind
the running one (``JobRunner.run(restart=False)``), so the rate is bounded by the work.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from engine.analysis.saturation import sigmoid_gates
from engine.cells import CELL_TYPES
from engine.analysis.saturation import trace_saturation

from .base import AnalysisPanel, layer_box
from .jobs import chunks, text_source


def run_saturation(model, ids, check):
    """The job: ``trace_saturation`` over ``jobs.chunks`` (every sigmoid gate of every layer)."""
    return trace_saturation(trace for _, trace in chunks(model, ids, check))


GATES = tuple(dict.fromkeys(g for cell in CELL_TYPES for g in sigmoid_gates(cell)))  # every cell's


class SaturationPanel(AnalysisPanel):
    """One scatter plot per sigmoid gate of the model's cell (LSTM i, f, o; GRU r, z) of
    left- vs right-saturation fractions."""

    def __init__(self, session, parent=None):
        super().__init__(session, "saturation", parent)
        self.layer = layer_box(session)
        self.controls.addWidget(self.layer)
        self.controls.addStretch(1)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumHeight(160)
        self.plots, self.scatters = {}, {}
        for k, gate in enumerate(GATES):
            plot = self.view.addPlot(row=0, col=k)
            plot.setTitle(f"{gate} gate", size="9pt")
            plot.setLabel("bottom", "fraction &lt; 0.1")
            plot.setLabel("left", "fraction &gt; 0.9")
            plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.04)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.addItem(pg.PlotCurveItem([0, 1], [1, 0], pen=pg.mkPen((120, 120, 120), style=QtCore.Qt.DashLine)))
            scatter = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(90, 160, 240, 200), pen=None, hoverable=True,
                                         hoverBrush=pg.mkBrush(255, 200, 0), tip=self._tip)
            scatter.sigHovered.connect(lambda _s, points, _ev, gate=gate: self._on_hovered(gate, points))
            scatter.sigClicked.connect(self._on_clicked)
            plot.addItem(scatter)
            self.plots[gate], self.scatters[gate] = plot, scatter
        self.body.addWidget(self.view)
        self.result = None  # list of engine Saturation
        self.layer.valueChanged.connect(self._draw)

    @staticmethod
    def _tip(x, y, data):
        return f"unit {data}: < 0.1 {x:.0%} of steps, > 0.9 {y:.0%}"

    def refresh(self) -> None:
        source = text_source(self.session)
        if source is None:
            return
        model, ids, text = source
        gates = sigmoid_gates(model.config.cell)
        for gate, plot in self.plots.items():
            plot.setVisible(gate in gates)
        if not gates:
            self.say("Saturation needs gates: a vanilla RNN has none.")
            return
        self.start(lambda check: run_saturation(model, ids, check), text, model)

    def show_result(self, result) -> None:
        self.result = result
        self._draw()

    def clear_results(self) -> None:
        self.result = None
        for scatter in self.scatters.values():
            scatter.clear()

    def _draw(self, *_):
        if self.result is None:
            return
        layer = self.layer.value()
        shown = [s for s in self.result if s.layer == layer]
        for s in shown:
            units = np.arange(s.left.shape[0])  # (H,)
            self.scatters[s.gate].setData(s.left, s.right, data=units)
        if shown:
            self.say(f"Layer {layer} over {shown[0].steps} steps: hover a point to name its unit, click to select it")

    def _on_hovered(self, gate: str, points) -> None:
        if len(points):
            p = points[0]
            self.say(f"{gate} gate, unit {p.data()}: < 0.1 on {p.pos().x():.1%} of steps, > 0.9 on {p.pos().y():.1%}")

    def _on_clicked(self, _scatter, points, *_):
        if len(points):
            self.session.select(self.layer.value(), int(points[0].data()), -1)

    def figure(self):
        return self.view

    def csv_rows(self):
        if self.result is None:
            return None
        return (["layer", "gate", "unit", "fraction_below_0.1", "fraction_above_0.9", "steps"],
                [[s.layer, s.gate, u, repr(float(s.left[u])), repr(float(s.right[u])), s.steps]
                 for s in self.result for u in range(s.left.shape[0])])
