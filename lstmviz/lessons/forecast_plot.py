"""The forecast plot of the series lesson, in the series' ORIGINAL units.

Grey: the actual series. Orange: the model's one-step-ahead prediction of every value from the
values before it (``engine.series.predict_all``). The validation part is shaded. Dashed purple:
a multi-step forecast rolled forward from an origin the user picks (``origin_picked`` on a left
click; the series panel computes it with ``engine.series.forecast``). ``curves`` keeps each
curve's ``(x, y)`` as drawn, for tests.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

ACTUAL, PREDICTED, FORECAST = (150, 150, 150), "#E69F00", "#CC79A7"


class ForecastPlot(pg.PlotWidget):
    """Actual vs predicted values, the validation region and one rolled-forward forecast."""

    origin_picked = QtCore.Signal(int)  # series index clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        self.curves: dict = {}  # "actual" / "predicted" / "forecast" -> (x (n,), y (n,))
        self.setLabel("bottom", "index")
        self.setLabel("left", "value (original units)")
        self.showGrid(x=True, y=True, alpha=0.25)
        self.addLegend(offset=(10, 10))
        self.validation = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(120, 160, 220, 45),
                                              pen=pg.mkPen(None))
        self.validation.setZValue(-10)
        self.validation.hide()
        self.addItem(self.validation)
        self._actual = self.plot(pen=pg.mkPen(ACTUAL, width=1.5), name="actual")
        self._predicted = self.plot(pen=pg.mkPen(PREDICTED, width=2), name="one-step prediction")
        self._forecast = self.plot(pen=pg.mkPen(FORECAST, width=2, style=QtCore.Qt.DashLine),
                                   symbol="o", symbolSize=4, symbolBrush=FORECAST, name="rolled-forward forecast")
        self.origin_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(FORECAST, width=1))
        self.origin_line.hide()
        self.addItem(self.origin_line, ignoreBounds=True)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.setToolTip("Grey: the series; orange: the model's one-step-ahead predictions; shaded: the "
                        "validation part. Click to roll a forecast forward from that point (dashed).")

    def set_series(self, values: np.ndarray, val_start: int) -> None:
        """Show ``values (N,)``; the validation part starts at index ``val_start`` (N: none)."""
        x = np.arange(len(values))  # (N,)
        self._set("actual", self._actual, x, values)
        self._set("predicted", self._predicted, x[:0], values[:0])
        self.clear_forecast()
        if val_start < len(values):
            self.validation.setRegion((val_start - 0.5, len(values) - 0.5))
            self.validation.show()
        else:
            self.validation.hide()

    def set_prediction(self, index: np.ndarray, predicted: np.ndarray) -> None:
        """One-step-ahead predictions ``predicted (M,)`` of series indices ``index (M,)``."""
        self._set("predicted", self._predicted, index, predicted)

    def set_forecast(self, origin: int, values: np.ndarray) -> None:
        """A forecast ``values (S,)`` of indices ``origin + 1 .. origin + S``."""
        x = np.arange(origin + 1, origin + 1 + len(values))  # (S,)
        self._set("forecast", self._forecast, x, values)
        self.origin_line.setValue(origin)
        self.origin_line.show()

    def clear_forecast(self) -> None:
        self._set("forecast", self._forecast, np.zeros(0), np.zeros(0))
        self.origin_line.hide()

    def _set(self, key: str, item, x: np.ndarray, y: np.ndarray) -> None:
        x, y = np.asarray(x, np.float64).copy(), np.asarray(y, np.float64).copy()  # (n,), (n,)
        self.curves[key] = (x, y)
        item.setData(x, y)

    def _on_clicked(self, event) -> None:
        if event.button() != QtCore.Qt.LeftButton or not self.plotItem.vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = self.plotItem.vb.mapSceneToView(event.scenePos()).x()
        self.origin_picked.emit(int(math.floor(x + 0.5)))
