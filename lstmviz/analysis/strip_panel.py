"""The whole-text strip (Karpathy, Johnson & Fei-Fei 2015, Fig. 5): the per-character loss
``-log p(next character)`` of the whole viewed text as a colour strip, and, once zoomed in to at
most ``LABELLED_STEPS`` steps each at least a character wide, each character with the model's
top-5 predictions for the next one underneath (brighter: more likely; never dimmer than a
legible grey). The service makes it
follow the gate heatmaps' time axis: it shows the same steps as the heatmaps, across the
whole width of its dock (the heatmaps sit three side by side, so no one pixel scale fits them
all). Zoomed in, the strip is at least tall enough for each row to hold a line of text.

The losses come from a streaming pass off the GUI thread (memory: one chunk plus ``(T,)``
float32 losses); the top-5 of the few visible steps come from the steps already traced
(``Session.trace``), on demand.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui

from engine.analysis.strip import TOP_K, log_softmax_head, next_char_loss

from ..plots import StepAxis
from .base import AnalysisPanel
from .jobs import chunks, text_source

LABELLED_STEPS = 60  # characters and predictions are drawn when at most this many steps are visible
# (and each step is at least a character wide)
LOSS_LEVELS = (0.0, 5.0)  # nats: the colour strip's levels
MIN_HEIGHT = 60  # px of the strip while it shows the loss row alone
SHADE_FLOOR = 150  # grey level of the least likely prediction (legible on the black background)


def run_losses(model, ids, check) -> np.ndarray:
    """The job: ``(T,)`` float32 next-character losses (NaN at the last step), by chunks."""
    loss = np.empty(ids.shape[0], np.float32)  # (T,)
    for t0, tr in chunks(model, ids, check):
        logp = log_softmax_head(model, tr.gate("h", tr.num_layers - 1))  # (n, V)
        loss[t0 : t0 + tr.steps] = next_char_loss(logp, ids, t0)
    return loss


def top_predictions(model, h_top: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (n, k), probabilities (n, k))`` of the ``k`` most likely next characters for top-layer
    states ``h_top (n, H)``, best first (ties: lower id first)."""
    logp = log_softmax_head(model, h_top)  # (n, V)
    best = np.argsort(-logp, axis=1, kind="stable")[:, :k]  # (n, k)
    return best, np.exp(np.take_along_axis(logp, best, axis=1))  # (n, k), (n, k)


class StripPanel(AnalysisPanel):
    """The loss strip with characters and top-5 predictions when zoomed in."""

    def __init__(self, session, parent=None):
        super().__init__(session, "strip", parent)
        self.controls.setContentsMargins(0, 0, 0, 0)
        self.view = pg.GraphicsLayoutWidget()
        self.plot = self.view.addPlot(axisItems={"bottom": StepAxis("bottom")})
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.hideButtons()
        self.plot.getAxis("left").setWidth(40)
        self._rows_shown = None  # whether the prediction rows are shown (None: not set up yet)
        self._show_rows(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(values=LOSS_LEVELS, colorMap=pg.colormap.get("inferno"), interactive=False,
                                   width=12)  # as narrow as the heatmaps' bars
        self.bar.setToolTip("Loss -log p(next character), nats")
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.view.setMinimumHeight(MIN_HEIGHT)
        self.setMaximumHeight(240)
        self.plot.vb.sigResized.connect(self.draw_labels)  # labels what now fits
        self.body.addWidget(self.view)
        self.labels: list = []  # TextItems in use (characters and predictions)
        self.losses: np.ndarray | None = None
        self.plot.sigXRangeChanged.connect(self.draw_labels)
        session.stepped.connect(self.draw_labels)

    def refresh(self) -> None:
        source = text_source(self.session)
        if source is None:
            return
        model, ids, text = source
        if model.config.head != "softmax":
            self.say("The strip needs a character model (softmax head).")
            return
        self.start(lambda check: run_losses(model, ids, check), text, model)

    def show_result(self, losses: np.ndarray) -> None:
        self.losses = losses
        self.image.setImage(np.nan_to_num(losses, nan=0.0)[None, :], autoLevels=False, levels=LOSS_LEVELS)  # (1, T)
        self.image.setRect(-0.5, -0.5, losses.shape[0], 1)
        mean = float(np.nanmean(losses)) if losses.size > 1 else float("nan")
        self.say(f"Loss per character over the text: mean {mean:.3f} nats; zoom the time axis "
                 f"(wheel) to read the characters and the top {TOP_K} predictions")
        self.draw_labels()

    def clear_results(self) -> None:
        self.losses = None
        self.image.clear()

    def show_steps(self, lo: float, hi: float) -> None:
        """Show the time range ``[lo, hi]`` (the heatmaps' x range)."""
        self.plot.setXRange(lo, hi, padding=0)

    def visible_steps(self) -> tuple[int, int]:
        lo, hi = self.plot.viewRange()[0]
        return max(0, int(np.ceil(lo))), min(self.session.steps, int(np.floor(hi)) + 1)

    def _show_rows(self, predictions: bool) -> None:
        """The loss row alone, or with the ``TOP_K`` prediction rows under it (zoomed in); the
        axis and range are set only when that changes (a step then repaints no axis)."""
        if predictions == self._rows_shown:
            return
        self._rows_shown = predictions
        rows = TOP_K if predictions else 0
        self.plot.getAxis("left").setTicks([[(0, "loss"), *((r + 1, f"#{r + 1}") for r in range(rows))]])
        self.plot.setYRange(-0.5, rows + 0.5, padding=0)
        needed = MIN_HEIGHT
        if predictions:  # each row at least a line of text high
            chrome = self.view.height() - self.plot.vb.height()  # px of axes and margins
            needed = max(MIN_HEIGHT, math.ceil((rows + 1) * QtGui.QFontMetricsF(self.font()).lineSpacing() + chrome))
        self.view.setMinimumHeight(needed)

    def draw_labels(self, *_):
        s = self.session
        lo, hi = self.visible_steps()
        x0, x1 = self.plot.viewRange()[0]
        step_px = self.plot.vb.width() / max(x1 - x0, 1e-9)  # px per step
        readable = (s.ready and s.vocab is not None and s.model.config.head == "softmax" and 0 < hi - lo <= LABELLED_STEPS
                    and step_px >= QtGui.QFontMetricsF(self.font()).averageCharWidth() + 1)
        self._show_rows(readable)  # may resize the plot, which calls this again: remove the labels after it
        for item in self.labels:
            self.plot.removeItem(item)
        self.labels = []
        if not readable:
            return
        text, chars = s.text, s.vocab.chars
        traced = min(hi, s.t)
        if traced > lo:
            h_top = s.records(lo, traced).gate("h", s.num_layers - 1)  # (n, H), row 0 is step lo
            ids, probs = top_predictions(s.model, h_top)  # (n, k) each
        else:
            ids = probs = np.empty((0, TOP_K))
        for t in range(lo, hi):
            self._label(t, 0, text[t], QtGui.QColor(255, 255, 255))
            if t - lo < ids.shape[0]:
                for r in range(ids.shape[1]):  # TOP_K, or fewer with a smaller vocabulary
                    self._label(t, r + 1, chars[ids[t - lo, r]], prediction_colour(float(probs[t - lo, r])))

    def _label(self, x: int, y: int, ch: str, colour) -> None:
        item = pg.TextItem(_visible(ch), color=colour, anchor=(0.5, 0.5))
        item.setPos(x, y)
        self.plot.addItem(item)
        self.labels.append(item)

    def figure(self):
        return self.view

    def csv_rows(self):
        if self.losses is None:
            return None
        text = self.session.text
        return (["step", "char", "loss_nats"],
                [[t, text[t] if t < len(text) else "", repr(float(v))] for t, v in enumerate(self.losses)])


def prediction_colour(p: float) -> QtGui.QColor:
    """A prediction's text colour for probability ``p`` in [0, 1]: from ``SHADE_FLOOR`` grey
    (unlikely, still legible on black) to white (certain)."""
    shade = int(round(SHADE_FLOOR + (255 - SHADE_FLOOR) * min(max(p, 0.0), 1.0)))
    return QtGui.QColor(shade, shade, shade)


def _visible(ch: str) -> str:
    """A printable stand-in for whitespace characters."""
    return {"\n": "⏎", " ": "·", "\t": "⇥"}.get(ch, ch)
