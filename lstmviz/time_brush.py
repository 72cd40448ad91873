"""Brushing a span of steps by dragging across a heatmap (LSTMVis's brush, on the time axis).

``TimeBrush(plot)`` lies over a units x time plot (cells centred on integer steps) and turns a
left-button drag across it into the span of steps ``[start, end)`` the drag crossed: a
translucent band follows the drag and, on release, ``brushed(start, end)`` is emitted (connect
it to ``Session.brush``, as a text selection is). The band is the drag's only: the lasting
brushed span is drawn by whoever shows ``Session.brush_span`` (the gates panel outlines it on
every heatmap until it is cleared). Other buttons (right: zoom), clicks (select
a cell), hovering and drags on items above it (a brushed region's edges) are left to the plot;
the time axis itself still pans when dragged.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui

BAND_COLOUR = QtGui.QColor(90, 160, 240, 70)


def steps_crossed(x0: float, x1: float) -> tuple[int, int]:
    """``[start, end)``: the steps whose cells (``[t - 0.5, t + 0.5)``) the x positions
    ``x0`` and ``x1`` (either order) and everything between them touch."""
    lo, hi = sorted((x0, x1))
    return math.floor(lo + 0.5), math.floor(hi + 0.5) + 1


class TimeBrush(pg.GraphicsObject):
    """See the module docstring. Add it to ``plot`` before the items that must take drags
    first (equal z: the later item is on top)."""

    brushed = QtCore.Signal(int, int)

    def __init__(self, plot: pg.PlotItem):
        super().__init__()
        self._span: tuple[int, int] | None = None  # the span being dragged
        # nothing to draw between drags: Qt then never calls ``paint`` (Python) when it repaints
        # the cells below, as it does on every step
        self.setFlag(self.GraphicsItemFlag.ItemHasNoContents, True)
        plot.addItem(self, ignoreBounds=True)
        self._vb = plot.vb
        self._vb.sigRangeChanged.connect(self._on_range)
        self.setToolTip("Drag across the heatmap to brush a span of steps (hypothesis selection)")

    def _on_range(self, *_):
        self.prepareGeometryChange()

    def boundingRect(self) -> QtCore.QRectF:
        return self._vb.viewRect()

    def paint(self, painter, *_):
        if self._span is not None:
            view = self._vb.viewRect()
            start, end = self._span
            painter.fillRect(QtCore.QRectF(start - 0.5, view.top(), end - start, view.height()), BAND_COLOUR)

    def mouseDragEvent(self, ev):
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        self._span = steps_crossed(ev.buttonDownPos().x(), ev.pos().x())
        if ev.isFinish():
            span, self._span = self._span, None
            self.brushed.emit(*span)
        self.setFlag(self.GraphicsItemFlag.ItemHasNoContents, self._span is None)
        self.scene().update(self.sceneBoundingRect())  # draws or erases the band (with or without contents)
