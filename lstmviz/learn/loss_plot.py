"""The live loss curve: raw and smoothed training loss, validation points, log-scale toggle.
The loss axis carries the unit of the payloads' ``Progress.loss_unit`` (the dataset's).

Every step's loss is kept (``LossHistory``, amortised growth), but the curves are drawn from a
min/max decimation into at most ``max_bins`` bins (two points per bin), so the number of
plotted points stays bounded however long training runs (100k steps draw <= 2 * max_bins
points) while spikes stay visible. Payloads arrive at up to 5 per second; the plot is redrawn
at most every ``REDRAW_MS``, and validation points get symbols only while there are few of them.

Painting is what costs GUI time, so the axes are kept still: the view follows the data in
steady steps (both ranges rounded out to a nice step, see ``steady_range``; x never past the
run's last planned step) instead of auto-ranging to every new point, which would rebuild both
axes on every redraw. No grid: its translucent lines cost more to paint than the curves.
Zooming or panning by hand stops the following until the "A" button is pressed.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QVBoxLayout, QWidget

from ..core.history import DEFAULT_MAX_BINS, LossHistory, loss_readout
from ..core.levels import nice_ceil
from ..plots import room_for_end_tick_labels
from ..readout import Readout
from ..still_parts import cache_still_parts

REDRAW_MS = 1000  # at most one redraw per second (each costs the GUI thread, and the GIL, ~10 ms)
MAX_VAL_SYMBOLS = 200  # above this many validation points, draw them as a line only


TICKS = 5  # ranges are rounded out to a multiple of about (range / TICKS)


def steady_range(lo: float, hi: float) -> tuple[float, float]:
    """``(lo, hi)`` rounded outward to multiples of a nice step near ``(hi - lo) / TICKS``, so
    it changes only when the data cross a rounded bound. Any units; a flat series gets a unit
    wide range around its value."""
    span = hi - lo
    if not span > 0:
        return lo - 0.5, hi + 0.5
    step = nice_ceil(span / TICKS)
    return float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)


class LossPlot(QWidget):
    """pyqtgraph plot of a training run's losses; feed it ``TrainingUpdate`` payloads."""

    def __init__(self, parent: QWidget | None = None, max_bins: int = DEFAULT_MAX_BINS):
        super().__init__(parent)
        self._max_bins = max_bins
        self._raw, self._smooth, self._val = LossHistory(), LossHistory(), LossHistory()
        self._latest = None  # Progress of the newest payload
        self._unit = "nats/char"  # the loss unit on the axis: the newest payload's
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(REDRAW_MS)
        self._redraw_timer.timeout.connect(self.redraw)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(160)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss", units=self._unit)
        room_for_end_tick_labels(self.plot.getPlotItem())  # the view's rounded ends carry ticks
        self.plot.addLegend(offset=(-10, 10))
        self._following = True  # the view follows the data (False once zoomed or panned by hand)
        self.plot.getViewBox().sigRangeChangedManually.connect(self._stop_following)
        self.raw_curve = self.plot.plot(pen=pg.mkPen((120, 160, 220, 140), width=1), name="training loss")
        self.smooth_curve = self.plot.plot(pen=pg.mkPen((30, 90, 200), width=2), name="smoothed")
        self.val_curve = self.plot.plot(pen=pg.mkPen((220, 110, 20), width=1), symbol="o", symbolSize=6,
                                        symbolPen=None,
                                        symbolBrush=(220, 110, 20), name="validation")
        cache_still_parts(self.plot)
        self.log_scale = QCheckBox("Log scale")
        self.log_scale.setToolTip("Show the loss axis on a logarithmic scale (useful once the loss flattens).")
        self.log_scale.toggled.connect(self._on_log_toggled)
        self.readout = Readout("No training yet.", reserve="step 100000: smoothed loss 0.0000, validation 0.0000")
        self.readout.setToolTip("Latest smoothed training loss and validation loss (in the axis's unit; "
                                "a loss in nats per character also in bits per character, in brackets).")
        bar = QHBoxLayout()
        bar.addWidget(self.readout, 1)
        bar.addWidget(self.log_scale)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot, 1)
        layout.addLayout(bar)
        self.setToolTip("Training loss per step (light), its moving average (dark) and the "
                        "validation loss at each evaluation (dots).")

    def reset(self) -> None:
        """Forget the current run's curves."""
        for history in (self._raw, self._smooth, self._val):
            history.clear()
        self._latest = None
        self.redraw()

    def add_update(self, update) -> None:
        """Append a ``TrainingUpdate``'s losses; the plot is redrawn within ``REDRAW_MS`` (at once
        for a run's final payload)."""
        self._raw.extend(update.steps, update.train_loss)
        self._smooth.extend(update.steps, update.smooth_loss)
        self._val.extend(update.val_steps, update.val_loss)
        self._latest = update.progress
        if update.progress.loss_unit != self._unit:
            self._unit = update.progress.loss_unit
            self.plot.setLabel("left", "loss", units=self._unit)
        if update.final:
            self.redraw()  # a run's end is shown at once
        elif not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def plotted_point_count(self) -> int:
        """How many points the three curves hold right now."""
        return sum(0 if c.getData()[0] is None else len(c.getData()[0])
                   for c in (self.raw_curve, self.smooth_curve, self.val_curve))

    def redraw(self) -> None:
        """Draw the decimated curves and the readout now."""
        self._redraw_timer.stop()
        self.raw_curve.setData(*self._raw.decimated(self._max_bins))
        self.smooth_curve.setData(*self._smooth.decimated(self._max_bins))
        self.val_curve.setSymbol("o" if len(self._val) <= MAX_VAL_SYMBOLS else None)
        self.val_curve.setData(*self._val.decimated(self._max_bins))
        self._follow()
        if self._latest is None:
            self.readout.setText("No training yet.")
            return
        last_val = float(self._val.data()[1][-1]) if len(self._val) else None
        self.readout.setText(loss_readout(self._latest.step, self._latest.smooth_loss, last_val, self._unit))

    def shown_range(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The view's ``((x0, x1), (y0, y1))``; y in log10 units when the log scale is on."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        return (x0, x1), (y0, y1)

    def _follow(self) -> None:
        """Keep the view on the data in steady steps (module docstring); the "A" button, which
        turns pyqtgraph's auto-range on, hands the view back to this."""
        view = self.plot.getViewBox()
        if any(view.state["autoRange"]):
            view.disableAutoRange()
            self._following = True
        steps, values = self.raw_curve.getData()  # (p,), (p,) as drawn: decimated (min and max
        if not self._following or steps is None or not len(steps):  # kept), log10 in log mode
            return
        drawn_val = self.val_curve.getData()[1]  # (q,) or None
        values = values if drawn_val is None else np.concatenate([values, drawn_val])  # (p + q,)
        values = values[np.isfinite(values)]  # (k,) log10 of a loss <= 0 is not drawn
        if not len(values):
            return
        x_lo, x_hi = steady_range(float(steps[0]), float(steps[-1]))
        if self._latest is not None:  # never past the run's last planned step
            x_hi = max(min(x_hi, float(self._latest.total_steps)), float(steps[-1]))
        x_range = (max(x_lo, 0.0), x_hi)
        y_range = steady_range(float(values.min()), float(values.max()))
        if self.shown_range() != (x_range, y_range):
            view.setRange(xRange=x_range, yRange=y_range, padding=0)

    def _stop_following(self, *_changed) -> None:
        self._following = False

    def _on_log_toggled(self, on: bool) -> None:
        self.plot.setLogMode(x=False, y=on)
        self._follow()
