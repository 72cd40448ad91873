"""Current step panel: the vectors of the selected layer at the current step, side by side
as colour strips (unit 0 at the top), and the model's top-k next-character predictions as a bar
chart, the true next character's bar in red. For a numeric series the right-hand plot shows the
predicted next value(s) against the actual ones, in original units when the sequence knows the
scaling (``SeriesSequence.original``), else scaled. ``PREDICTION_VIEWS`` picks the right-hand
plot by ``session.sequence.predicts_characters``; a model without an output layer (head
"none") shows ``NoPredictions``' note instead."""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from engine.data import display_char
from engine.quantities import RECORDED_NAMES as PANEL_NAMES

from ..core.labels import step_label
from ..plots import BoundedAxis, argb_pixels, argb_table, colormap_for
from ..readout import Readout
from ..session import Session
from ..still_parts import cache_still_parts
from ..shown import RefreshWhenShown

TOP_K = 10
PREDICTED = (90, 140, 220)
TRUE_NEXT = (220, 60, 60)
STRIP_WIDTH = 0.84  # of a vector's column
BAR_HEIGHT = 0.75  # of a prediction's row
LABEL_GAP = 6  # pixels between the row labels and the axis line


PROBABILITY_TICKS = [(0.0, "0"), (0.5, "0.5"), (1.0, "1")]


class CurrentStepPanel(RefreshWhenShown, QtWidgets.QWidget):
    """Colour strips of the current step's vectors and the top-k predictions. Behind another
    tab (e.g. the loss curve while training) it skips updates and catches up when shown."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        # change every step: the size of the widest title (``_on_model_changed``), so no layout follows
        self.vectors_title = Readout()
        self.predictions_title = Readout()
        titles = QtWidgets.QHBoxLayout()
        titles.setContentsMargins(6, 2, 6, 2)  # room below a glyph that sits low ("␣")
        for title, stretch in ((self.vectors_title, 3), (self.predictions_title, 2)):
            titles.addWidget(title, 0, QtCore.Qt.AlignLeft)
            titles.setStretch(titles.count() - 1, stretch)
        self.plots = pg.GraphicsLayoutWidget()
        # A step changes a column per strip, the bars and their labels: Qt's minimal update
        # region is then a dozen rectangles, and painting through a clip of many rectangles
        # costs more than painting their bounding rectangle (measured: 2.0 -> 0.9 ms a step)
        self.plots.setViewportUpdateMode(QtWidgets.QGraphicsView.BoundingRectViewportUpdate)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(titles)
        layout.addWidget(self.plots, 1)
        self.setMinimumSize(260, 200)
        self.setAutoFillBackground(True)  # opaque: a step repaints the titles, not the dock under them
        self.plots.ci.setContentsMargins(2, 2, 2, 2)

        self.vectors = self.plots.addPlot(row=0, col=0, axisItems=bounded_axes())
        self.vectors.invertY(True)
        self.vectors.setMouseEnabled(x=False, y=False)
        self.vectors.hideButtons()
        self.vectors.setMenuEnabled(False)
        self.vectors.setLabel("left", "unit")
        self.strip_image = Strips(PANEL_NAMES)  # all the strips, one item: one update and one paint a step
        self.vectors.addItem(self.strip_image)
        self.strips = self.strip_image.strips
        # a plain Qt line item (set_unit below): Qt repaints it with the strips without calling Python
        self.unit_marker = QtWidgets.QGraphicsLineItem()
        self.unit_marker.setPen(pg.mkPen((255, 80, 80), width=1.5))
        self.unit_marker.setZValue(10)
        self.unit_marker.hide()
        self.vectors.addItem(self.unit_marker, ignoreBounds=True)

        self.predictions = self.plots.addPlot(row=0, col=1, axisItems=bounded_axes())
        self.predictions.invertY(True)
        self.predictions.setMouseEnabled(x=False, y=False)
        self.predictions.hideButtons()
        self.predictions.setMenuEnabled(False)
        self.predictions.setXRange(0, 1, padding=0.02)
        self.predictions.setYRange(-0.5, TOP_K - 0.5, padding=0)
        self.predictions.setLabel("bottom", "probability")
        self.bars = Bars(self.predictions)
        self.row_labels = RowLabels(self.predictions)
        symbol = dict(symbol="o", symbolSize=9, pen=None)
        self.predicted_points = pg.PlotDataItem(symbolBrush=PREDICTED, symbolPen=None, **symbol)
        self.actual_points = pg.PlotDataItem(symbolBrush=TRUE_NEXT, symbolPen=None, **symbol)
        for item in (self.predicted_points, self.actual_points):
            self.predictions.addItem(item)
        self.plots.ci.layout.setColumnStretchFactor(0, 3)
        self.plots.ci.layout.setColumnStretchFactor(1, 2)
        cache_still_parts(self.plots)
        self.top: list = []  # [(char, probability)] of the current step, most likely first
        self.forecast: tuple | None = None  # series: (predicted (K,), actual (K,) or None), shown units
        self._layout = None  # what the axes and colormaps were set up for (see ``layout`` below)
        self._predicted = CharacterPredictions  # the right-hand plot's kind, by ``session.sequence``

        session.model_changed.connect(self._on_model_changed)
        session.text_changed.connect(self._reserve_titles)
        session.stepped.connect(self.refresh_soon)  # also follows every model or text change
        session.selection_changed.connect(self.refresh_soon)
        session.colormap_changed.connect(self._on_colormap_changed)
        session.levels_changed.connect(self.refresh_soon)
        self._on_model_changed()

    def _on_model_changed(self):
        s = self.session
        headless = s.model is not None and s.model.config.head == "none"
        self._predicted = NoPredictions if headless else PREDICTION_VIEWS[s.sequence.predicts_characters]
        layout = self._predicted.layout(s)
        if layout == self._layout:
            return  # new weights for the same text model (e.g. while training): nothing to rebuild
        self._layout = layout
        self._reserve_titles()
        H = max(s.hidden_size, 1)
        self.strip_image.set_names(s.names)
        self.vectors.getAxis("bottom").setTicks([list(enumerate(s.names))])
        self.vectors.setXRange(-0.5, max(len(s.names), 1) - 0.5, padding=0)
        self.unit_marker.setLine(-0.5, 0, max(len(s.names), 1) - 0.5, 0)  # placed at the unit by setY
        self.vectors.setYRange(-0.5, H - 0.5, padding=0)
        self.setToolTip("Left: the selected layer's vectors at the current step (one column each, "
                        f"unit 0 at the top). Right: {self._predicted.TOOLTIP}.")
        self._predicted.set_axes(self, s)
        self._apply_colormaps(s.colorblind)

    def _reserve_titles(self, *_):
        """Size the titles for the widest ones this model and sequence can give (a new text
        may have more steps or longer labels)."""
        self.vectors_title.set_reserve(vectors_reserve(self.session))
        self.predictions_title.set_reserve(self._predicted.reserve(self.session))

    def _apply_colormaps(self, colorblind: bool):
        self.strip_image.set_colormaps({name: colormap_for(name, colorblind) for name in self.strips})

    def _on_colormap_changed(self, colorblind: bool):
        self._layout = None
        self._apply_colormaps(colorblind)
        self.refresh_soon()

    def refresh(self, *_):
        """Show step ``t - 1`` (the character or value just read) and the prediction made there."""
        s = self.session
        t = s.t
        if not s.ready or t == 0:
            self.strip_image.clear()
            self.bars.set_bars([], [])
            self.predicted_points.setData([], [])
            self.actual_points.setData([], [])
            self._predicted.clear(self)
            self.top, self.forecast = [], None
            self.vectors_title.setText("before the first step")
            self.predictions_title.setText(self._predicted.EMPTY_TITLE)
            return
        window = s.records(t - 1, t)  # row 0 is step t - 1
        self.strip_image.set_columns({name: window.gate(name, s.layer)[0] for name in s.names},
                                     {name: s.levels(name, s.layer) for name in s.names})
        shown = s.sequence.shown(t - 1)
        self.vectors_title.setText(f"{step_label(t - 1)}: <b>{html.escape(shown)}</b> &nbsp; layer {s.layer}")
        self.unit_marker.setY(max(s.unit, 0))
        self.unit_marker.setVisible(s.unit >= 0)
        self._predicted.show(self, s, window.outputs[0], t)  # (V,) or (K,)


def bounded_axes() -> dict:
    """The left and bottom axes of a plot (``BoundedAxis``: a step repaints the plots without
    computing their bounding rectangles again)."""
    return {"left": BoundedAxis("left"), "bottom": BoundedAxis("bottom")}


def vectors_reserve(s: Session) -> str:
    """A vectors title as wide as the widest the panel shows for ``s``'s model and sequence
    (``refresh``): the last step, the longest label (in wide letters), the last layer."""
    if s.sequence.predicts_characters:
        longest = widest_character(s)
    else:
        longest = "W" * max((len(label) for label in s.sequence.labels), default=1)
    return f"{step_label(max(s.steps, 1) - 1)}: <b>{longest}</b> &nbsp; layer {max(s.num_layers, 1) - 1}"


def widest_character(s: Session) -> str:
    """As many wide letters as the longest shown character (``display_char``, e.g. ``\\u00a0``)
    of ``s``'s vocabulary has (one without a vocabulary)."""
    return "W" * max((len(display_char(ch)) for ch in s.vocab.chars), default=1) if s.vocab is not None else "W"


class CharacterPredictions:
    """Text: the ``TOP_K`` most likely next characters as bars, the true next one's in red."""

    TOOLTIP = "the most likely next characters; the red bar is the character that actually comes next"
    EMPTY_TITLE = "next character"

    @staticmethod
    def layout(s: Session) -> tuple:
        """What the axes depend on: new weights for the same model keep them."""
        return (s.sequence.kind, s.names, s.hidden_size, s.colorblind)

    @staticmethod
    def reserve(s: Session) -> str:
        """A title as wide as the widest ``show`` gives: the longest shown character, missed by the top 10."""
        return f"next: <b>{widest_character(s)}</b> (p=0.000, not in top {TOP_K})"

    @staticmethod
    def set_axes(panel: CurrentStepPanel, s: Session) -> None:
        plot = panel.predictions
        plot.invertY(True)
        plot.getAxis("left").setTicks([[]])  # the row labels draw the characters and probabilities
        panel.row_labels.fit([display_char(ch) for ch in s.vocab.chars] if s.vocab is not None else [], "0.00")
        panel.row_labels.setVisible(True)
        plot.setLabel("bottom", "probability")
        plot.getAxis("bottom").setTicks([PROBABILITY_TICKS, []])  # three: readable in a narrow column
        plot.getAxis("bottom").setStyle(hideOverlappingLabels=False)  # "0" and "1" reach past the axis ends
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(-0.5, TOP_K - 0.5, padding=0)

    @staticmethod
    def clear(panel: CurrentStepPanel) -> None:
        panel.row_labels.set_rows([])

    @staticmethod
    def show(panel: CurrentStepPanel, s: Session, probs: np.ndarray, t: int) -> None:
        """The ``TOP_K`` most likely next characters after step ``t - 1``, the true next one's bar in red."""
        if panel.forecast is not None:  # a series' points are shown: cleared once, not on every step
            panel.predicted_points.setData([], [])
            panel.actual_points.setData([], [])
            panel.forecast = None
        k = min(TOP_K, probs.shape[0])
        best = np.argsort(-probs, kind="stable")[:k]  # (k,)
        true_next = s.vocab.index(s.text[t]) if t < len(s.text) else -1
        panel.top = [(s.vocab.chars[i], float(probs[i])) for i in best]
        panel.bars.set_bars(probs[best].tolist(), [BRUSHES[i == true_next] for i in best])
        panel.row_labels.set_rows([(display_char(ch), f"{p:.2f}") for ch, p in panel.top])
        if true_next >= 0 and true_next not in best:
            title = f"next: <b>{html.escape(display_char(s.text[t]))}</b> (p={probs[true_next]:.3f}, not in top {k})"
        elif true_next >= 0:
            title = f"next character: <b style='color:#dc3c3c'>{html.escape(display_char(s.text[t]))}</b>"
        else:
            title = "next character (end of text)"
        panel.predictions_title.setText(title)


class ValuePredictions:
    """A series: the predicted next value(s) against the actual ones, by steps ahead, in
    original units when the sequence knows them (``sequence.original``)."""

    TOOLTIP = "the predicted next values (blue) against the actual ones (red), by steps ahead"
    EMPTY_TITLE = "next value"

    @staticmethod
    def layout(s: Session) -> tuple:
        """Every series has its own y range (that of its actual values)."""
        return (s.sequence, s.names, s.hidden_size, s.colorblind)

    @staticmethod
    def reserve(s: Session) -> str:
        """A title as wide as the widest ``show`` gives."""
        return "next (scaled): <b>predicted -0.000e+00</b> &nbsp; <b>actual -0.000e+00</b>"

    @staticmethod
    def set_axes(panel: CurrentStepPanel, s: Session) -> None:
        """Values by horizon step, y fixed to the actual values' range."""
        plot = panel.predictions
        plot.invertY(False)
        panel.row_labels.setVisible(False)
        plot.getAxis("left").setWidth(None)  # sized by its numbers again
        plot.getAxis("left").setTicks(None)
        K = s.model.config.output_size
        plot.setLabel("bottom", "steps ahead")
        plot.getAxis("bottom").setTicks([[(k, str(k)) for k in range(1, K + 1)]])
        plot.setXRange(0.5, K + 0.5, padding=0)
        targets = s.sequence.targets
        if targets is not None and targets.size:
            actual = s.sequence.original(targets)  # (T, K)
            lo, hi = float(actual.min()), float(actual.max())
            plot.setYRange(lo, hi if hi > lo else lo + 1.0, padding=0.1)
        else:
            plot.enableAutoRange(axis="y")

    @staticmethod
    def clear(panel: CurrentStepPanel) -> None:
        pass

    @staticmethod
    def show(panel: CurrentStepPanel, s: Session, output: np.ndarray, t: int) -> None:
        """The prediction made at step ``t - 1`` against the actual next value(s)."""
        sequence = s.sequence
        predicted = sequence.original(output)  # (K,)
        actual = None if sequence.targets is None else sequence.original(sequence.targets[t - 1])  # (K,)
        panel.forecast = (predicted, actual)
        panel.bars.set_bars([], [])
        panel.top = []
        ahead = np.arange(1, predicted.shape[0] + 1)  # (K,)
        panel.predicted_points.setData(ahead - 0.08, predicted)
        panel.actual_points.setData([] if actual is None else ahead + 0.08, [] if actual is None else actual)
        units = "" if sequence.has_original_units else " (scaled)"
        title = f"next{units}: <b style='color:#5a8cdc'>predicted {predicted[0]:.4g}</b>"
        if actual is not None:
            title += f" &nbsp; <b style='color:#dc3c3c'>actual {actual[0]:.4g}</b>"
        panel.predictions_title.setText(title)


class NoPredictions:
    """A model without an output layer (head "none"): the right-hand plot stays empty and its
    title says why."""

    TOOLTIP = "nothing: this model has no output layer, so it makes no predictions"
    EMPTY_TITLE = "no predictions: this model has no output layer"

    @staticmethod
    def layout(s: Session) -> tuple:
        return ("headless", s.names, s.hidden_size, s.colorblind)

    @staticmethod
    def reserve(s: Session) -> str:
        """The only title shown."""
        return NoPredictions.EMPTY_TITLE

    @staticmethod
    def set_axes(panel: CurrentStepPanel, s: Session) -> None:
        panel.predictions.getAxis("left").setTicks([[]])
        panel.row_labels.setVisible(False)

    @staticmethod
    def clear(panel: CurrentStepPanel) -> None:
        pass

    @staticmethod
    def show(panel: CurrentStepPanel, s: Session, output: np.ndarray, t: int) -> None:
        """Nothing to draw: the output is the top layer's h, shown on the left."""
        panel.bars.set_bars([], [])
        panel.predicted_points.setData([], [])
        panel.actual_points.setData([], [])
        panel.top, panel.forecast = [], None
        panel.predictions_title.setText(NoPredictions.EMPTY_TITLE)


class Bars:
    """The predictions' horizontal bars, row j (from 0 at the top) at y = j, ``BAR_HEIGHT`` tall,
    from 0 to its probability: ``TOP_K`` plain Qt rectangle items with pyqtgraph's bar outline
    (the foreground colour). A step only sets their rectangles and brushes; Qt paints them
    without calling Python, and only the bars that changed."""

    def __init__(self, plot: pg.PlotItem):
        pen = pg.mkPen(pg.getConfigOption("foreground"))
        self.items = []
        for _ in range(TOP_K):
            item = QtWidgets.QGraphicsRectItem()
            item.setPen(pen)
            item.hide()
            plot.addItem(item, ignoreBounds=True)
            self.items.append(item)

    def set_bars(self, widths: list, brushes: list) -> None:
        """Show a bar of each width (at most ``TOP_K``) in the matching brush; hide the others."""
        for j, item in enumerate(self.items):
            if j < len(widths):
                item.setRect(QtCore.QRectF(0.0, j - BAR_HEIGHT / 2, widths[j], BAR_HEIGHT))
                item.setBrush(brushes[j])
            item.setVisible(j < len(widths))

    def widths(self) -> list:
        """The shown bars' widths, top first."""
        return [item.rect().width() for item in self.items if item.isVisible()]


class RowLabels(QtWidgets.QGraphicsItem):
    """The predictions' row labels, a character and its probability per bar, drawn in the
    left axis's area (a child of the axis item), right-aligned, the probabilities in a column.

    An axis lays its tick labels out again and resizes whenever their text changes, which
    relays out the plot; these labels are ``QStaticText`` (laid out once per distinct string:
    at most the vocabulary and the 101 probabilities), the axis width is fixed by ``fit``
    to the widest possible label, and a step repaints only this item when a label changed.
    """

    def __init__(self, plot: pg.PlotItem):
        self._axis = plot.getAxis("left")
        super().__init__(self._axis)
        self._view = plot.vb
        self._rows: list = []  # [(character, probability)] as shown, row j at y = j in the view
        self._texts: dict = {}  # string -> (QStaticText, width, height) in the tick font
        self.painted = 0  # paints so far (tests)
        self._rows_at = None  # (top, pitch): row j at y = top + j * pitch in item coordinates (None: to map)
        self._view.sigResized.connect(self._geometry_changed)
        self._view.sigYRangeChanged.connect(self._geometry_changed)
        self._axis.geometryChanged.connect(self._geometry_changed)

    def rows(self) -> list:
        """``[(character as shown, probability text)]``, top row first."""
        return list(self._rows)

    def fit(self, characters: list, number: str) -> None:
        """Fix the axis width to the widest of ``characters`` beside ``number`` (a widest probability)."""
        self._texts.clear()
        metrics = QtGui.QFontMetricsF(self._font())
        widest = max((metrics.horizontalAdvance(c) for c in characters), default=0.0)
        gap = metrics.horizontalAdvance("  ")
        self._axis.setWidth(math.ceil(widest + gap + metrics.horizontalAdvance(number) + 2 * LABEL_GAP))
        self._geometry_changed()

    def set_rows(self, rows: list) -> None:
        """Show ``rows`` (``[(character, probability text)]``); repaints only if they changed."""
        if rows != self._rows:
            self._rows = list(rows)
            self.update()

    def _font(self) -> QtGui.QFont:
        return self._axis.style.get("tickFont") or QtGui.QFont()

    def _text(self, string: str) -> tuple:
        """``(QStaticText, width, height)`` of ``string`` in the tick font (laid out once)."""
        entry = self._texts.get(string)
        if entry is None:
            text = QtGui.QStaticText(string)
            text.setTextFormat(QtCore.Qt.PlainText)
            text.prepare(QtGui.QTransform(), self._font())
            size = text.size()
            entry = self._texts[string] = (text, size.width(), size.height())
        return entry

    def _geometry_changed(self, *_):
        self._rows_at = None
        self.prepareGeometryChange()
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt's name
        return QtCore.QRectF(0, 0, self._axis.width(), self._axis.height())

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        self.painted += 1
        if not self._rows:
            return
        font = self._font()
        painter.setFont(font)
        painter.setPen(self._axis.textPen())
        if self._rows_at is None:  # mapped again after the view's size, y range or the axis' geometry change
            to_item = lambda j: self.mapFromScene(self._view.mapViewToScene(QtCore.QPointF(0, j))).y()  # noqa: E731
            top = to_item(0)
            self._rows_at = (top, to_item(1) - top)
        top, pitch = self._rows_at  # row j is at top + j * pitch
        numbers = self._axis.width() - LABEL_GAP  # right edge of the probabilities
        chars = numbers - self._text("0.00")[1] - QtGui.QFontMetricsF(font).horizontalAdvance("  ")
        for j, (char, probability) in enumerate(self._rows):
            y = top + j * pitch
            for string, right in ((probability, numbers), (char, chars)):
                text, width, height = self._text(string)
                painter.drawStaticText(QtCore.QPointF(right - width, y - height / 2), text)


class Strip:
    """What one strip shows (``Strips``): ``image (H, 1)`` float32 or None, whether it is
    drawn, and its work counters (cells coloured, item-space area painted), for tests."""

    def __init__(self):
        self.image = None
        self.visible = False
        self.colours_written = 0
        self.painted_area = 0.0


class Strips(pg.GraphicsObject):
    """The current step's vectors as colour strips, one item: strip k (the k-th of
    ``set_names``) is column k of an ``(H, n)`` ARGB32 canvas, coloured through its quantity's
    256-entry lookup table with the heatmaps' mapping (``colour_indices``: the same colours as
    their cells), drawn at x = k, ``STRIP_WIDTH`` wide, unit r centred on y = r. A step colours
    the strips whose values changed and repaints the item once (not an item per strip)."""

    def __init__(self, names):
        super().__init__()
        self.setFlag(self.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # exposedRect: the part to paint
        self.strips = {name: Strip() for name in names}
        self._names: tuple = ()  # the strips drawn, in column order
        self._luts: dict = {}  # name -> (256,) uint32 opaque ARGB32
        self._levels: dict = {}  # name -> (lo, hi) the drawn column was coloured at
        self._canvas = np.zeros((0, 0), np.uint32)  # (H, n) ARGB32
        self.qimage = None  # QImage over ``_canvas`` (shares its memory)

    def set_names(self, names) -> None:
        """Draw the strips of ``names`` (in this order), blank until ``set_columns``."""
        self.prepareGeometryChange()
        self._names = tuple(names)
        for name, strip in self.strips.items():
            strip.visible, strip.image = name in self._names, None
        self._canvas = np.zeros((0, len(self._names)), np.uint32)
        self.qimage = None
        self.update()

    def set_colormaps(self, colormaps: dict) -> None:
        """``{name: pg.ColorMap}``; the shown columns are coloured again."""
        for name, colormap in colormaps.items():
            self._luts[name] = argb_table(colormap)  # (256,)
        levels, self._levels = self._levels, {}  # nothing is drawn at its levels now: recoloured below
        shown = {name: self.strips[name].image[:, 0] for name in self._names if self.strips[name].image is not None}
        self.set_columns(shown, {name: levels[name] for name in shown})

    def set_columns(self, columns: dict, levels: dict) -> None:
        """Show ``{name: (H,) values}`` at ``{name: (lo, hi)}`` colour levels (strips not named
        keep what they show); a strip whose values and levels are those drawn is not coloured again."""
        if not columns:
            return
        H = len(next(iter(columns.values())))
        if self._canvas.shape != (H, len(self._names)):
            self.prepareGeometryChange()
            self._canvas = np.zeros((H, len(self._names)), np.uint32)  # (H, n)
            self.qimage = pg.functions.ndarray_to_qimage(self._canvas, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
            for strip in self.strips.values():
                strip.image = None
        changed = False
        for k, name in enumerate(self._names):
            if name not in columns:
                continue
            strip = self.strips[name]
            values = np.array(columns[name], dtype=np.float32)[:, None]  # (H, 1) own copy
            level = (float(levels[name][0]), float(levels[name][1]))
            if (strip.image is not None and self._levels.get(name) == level
                    and np.array_equal(strip.image.view(np.uint32), values.view(np.uint32))):
                continue  # bitwise: an unchanged NaN is unchanged
            self._canvas[:, k] = argb_pixels(self._luts[name], values[:, 0], level)  # (H,)
            strip.image, self._levels[name] = values, level
            strip.colours_written += H
            changed = True
        if changed:
            self.update()

    def clear(self) -> None:
        """Show nothing."""
        for strip in self.strips.values():
            strip.image = None
        if self._canvas.size:
            self._canvas[:] = 0
            self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt's name
        n, H = len(self._names), self._canvas.shape[0]
        return QtCore.QRectF(-STRIP_WIDTH / 2, -0.5, max(n - 1 + STRIP_WIDTH, 0.0), H)

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        """Each strip's column of the canvas into its place (a vector picture, e.g. SVG, gets
        each column as its own image: it ignores a source rectangle)."""
        if self.qimage is None:
            return
        H = self._canvas.shape[0]
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        vector = painter.paintEngine().type() == QtGui.QPaintEngine.Type.SVG
        shown = option.exposedRect
        for k, name in enumerate(self._names):
            strip = self.strips[name]
            if strip.image is None:
                continue
            target = QtCore.QRectF(k - STRIP_WIDTH / 2, -0.5, STRIP_WIDTH, H)
            exposed = shown & target
            strip.painted_area += exposed.width() * exposed.height()
            if vector:
                painter.drawImage(target, self.qimage.copy(k, 0, 1, H))
            else:
                painter.drawImage(target, self.qimage, QtCore.QRectF(k, 0, 1, H))


BRUSHES = {False: pg.mkBrush(PREDICTED), True: pg.mkBrush(TRUE_NEXT)}  # by "is the true next character"

PREDICTION_VIEWS = {True: CharacterPredictions, False: ValuePredictions}  # by ``sequence.predicts_characters``
