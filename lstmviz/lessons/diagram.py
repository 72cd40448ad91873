"""The classic LSTM cell diagram (Olah, "Understanding LSTM Networks"), drawn with QPainter,
with the focused unit's live values on every wire.

Top: the cell-state line c_{t-1} -> × (forget) -> + (write) -> c_t. Bottom: h_{t-1} joins x_t
and feeds four layers — σ (f), σ (i), tanh (g), σ (o). i·g is added to the cell state; tanh(c_t)
times o gives h_t. A GRU (Olah's GRU figure, with PyTorch's reset placement) is drawn with the
hidden line on top, h_{t-1} -> × (z) -> + -> h_t, and below σ (r), the reset product feeding
tanh (n), σ (z); (1 − z)·n is added to z·h_{t-1}. A vanilla RNN is drawn as one tanh layer. Values come from
``engine.equations.diagram_values`` (read from the trace); ``labels`` keeps each wire's shown text
(key -> str) for tests. Drawing happens in a fixed 760 x 420 logical canvas scaled to the widget.

Value labels grow in the canvas when the diagram is drawn small (so they stay readable), so
their places are chosen at each size: each label sits at its preferred place (next to its wire)
or, if that box would overlap a symbol (layer box, pointwise operation, the title) or a label
placed before it, at the nearest free place (``place_labels``). ``symbol_rects`` and
``label_rects`` keep the canvas rectangles as last drawn, for tests.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from engine.equations import diagram_values

from ..core.labels import step_label
from ..shown import RefreshWhenShown
from .focus import LessonFocus
from .style import GATE_ACCENT, fmt, heat_colour

CANVAS = QtCore.QRectF(0, 0, 760, 420)  # logical drawing area
LABEL_PX = 12  # pixel size of the value labels in the canvas at full size
MIN_LABEL_PX = 9.6  # on screen, value labels are never smaller (they grow in the canvas, up to
MAX_LABEL_GROWTH = 1.6  # this factor, when the diagram is drawn small)
C_Y, H_Y, LAYER_Y, MID_Y = 80.0, 330.0, 250.0, 165.0  # rows: cell line, hidden line, layers, pointwise ops
LAYER_FILL = QtGui.QColor("#F6D55C")  # the neural-network layers (yellow boxes, as in the classic figure)
OP_FILL = QtGui.QColor("#F4B6C2")  # pointwise operations (pink circles)
C_COLOUR, H_COLOUR = QtGui.QColor(GATE_ACCENT["c"]), QtGui.QColor(GATE_ACCENT["h"])

# Where each value label sits (centre of its box) and which heatmap colours it (None: no swatch).
LSTM_LABELS = {
    "c_prev": (QtCore.QPointF(82, C_Y - 20), "c"), "h_prev": (QtCore.QPointF(82, H_Y - 20), "h"),
    "x_t": (QtCore.QPointF(180, 398), None),
    "f": (QtCore.QPointF(240, 165), "f"), "i": (QtCore.QPointF(320, 190), "i"),
    "g": (QtCore.QPointF(400, 217), "g"), "o": (QtCore.QPointF(530, LAYER_Y + 25), "o"),
    "f*c_prev": (QtCore.QPointF(320, C_Y - 20), None), "i*g": (QtCore.QPointF(400, 122), None),
    "tanh(c_t)": (QtCore.QPointF(600, 208), "h"), "c_t": (QtCore.QPointF(690, C_Y - 20), "c"),
    "h_t": (QtCore.QPointF(690, H_Y - 20), "h"),
}
GRU_LABELS = {
    "h_prev": (QtCore.QPointF(82, C_Y - 20), "h"), "x_t": (QtCore.QPointF(180, 398), None),
    "r": (QtCore.QPointF(320, LAYER_Y - 18), "r"), "n": (QtCore.QPointF(490, 120), "n"),
    "z": (QtCore.QPointF(610, LAYER_Y + 25), "z"), "1-z": (QtCore.QPointF(680, 160), None),
    "z*h_prev": (QtCore.QPointF(460, C_Y - 22), None), "(1-z)*n": (QtCore.QPointF(690, 105), None),
    "h_t": (QtCore.QPointF(700, C_Y - 22), "h"),
}
RNN_LABELS = {
    "h_prev": (QtCore.QPointF(82, H_Y - 20), "h"), "x_t": (QtCore.QPointF(180, 398), None),
    "pre": (QtCore.QPointF(400, 295), None), "h_t": (QtCore.QPointF(690, H_Y - 20), "h"),
}
TEXT_NAMES = {"c_prev": "cₜ₋₁", "h_prev": "hₜ₋₁", "x_t": "xₜ", "f": "f", "i": "i", "g": "g", "o": "o",
              "f*c_prev": "f·cₜ₋₁", "i*g": "i·g", "tanh(c_t)": "tanh(cₜ)", "c_t": "cₜ", "h_t": "hₜ",
              "pre": "z", "r": "r", "z": "z", "n": "n", "1-z": "1−z", "z*h_prev": "z·hₜ₋₁",
              "(1-z)*n": "(1−z)·n"}  # wire names as drawn (Unicode subscripts)
PLACEMENTS = {"lstm": LSTM_LABELS, "gru": GRU_LABELS, "rnn": RNN_LABELS}


class CellDiagram(RefreshWhenShown, QtWidgets.QWidget):
    """QPainter drawing of one LSTM (GRU, RNN) unit with live wire values (module docstring)."""

    def __init__(self, session, focus: LessonFocus, parent=None):
        super().__init__(parent)
        self.session = session
        self.focus = focus
        self.labels: dict = {}  # wire key -> shown text
        self.colours: dict = {}  # wire key -> heatmap colour of its value
        self.title = ""
        self.label_px = float(LABEL_PX)  # value labels' pixel size in the canvas, as last drawn
        self.symbol_rects: list = []  # (symbol, QRectF) in the canvas, as last drawn
        self.label_rects: dict = {}  # wire key -> QRectF of its value label in the canvas, as last drawn
        self.setMinimumSize(380, 220)
        self.setToolTip("The selected unit as the classic cell diagram, with its values at the focused step.")
        focus.changed.connect(self.refresh_soon)
        self.refresh_soon()  # drawn when first on screen

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(760, 420)

    @property
    def cell(self) -> str:
        model = self.session.model
        return "lstm" if model is None else model.config.cell

    def refresh(self) -> None:
        position = self.focus.position()
        self.labels, self.colours = {}, {}
        if position is None:
            self.title = "click a heatmap cell to choose a unit"
        else:
            layer, unit, step = position
            s = self.session
            values = diagram_values(s.records(step, step + 1), layer, 0, unit)  # row 0 is ``step``
            for key, (_, colour_as) in PLACEMENTS[self.cell].items():
                value = values[key]
                self.labels[key] = value if isinstance(value, str) else fmt(value)
                if colour_as is not None:
                    self.colours[key] = heat_colour(colour_as, value, s.levels(colour_as, layer), s.colorblind)
            self.title = f"layer {layer} · unit {unit} · {step_label(step)}"
        self.update()

    # --- painting -----------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:
        painter = QtGui.QPainter(self)
        try:
            painter.setRenderHint(QtGui.QPainter.Antialiasing)
            painter.fillRect(self.rect(), self.palette().color(QtGui.QPalette.Base))
            scale = min(self.width() / CANVAS.width(), self.height() / CANVAS.height())
            painter.translate((self.width() - CANVAS.width() * scale) / 2,
                              (self.height() - CANVAS.height() * scale) / 2)
            painter.scale(scale, scale)
            self.label_px = LABEL_PX * min(MAX_LABEL_GROWTH, max(1.0, MIN_LABEL_PX / (LABEL_PX * scale)))
            self.symbol_rects = [("title", self._draw_frame(painter))]
            {"lstm": self._draw_lstm, "gru": self._draw_gru, "rnn": self._draw_rnn}[self.cell](painter)
            self._draw_labels(painter)
        finally:
            painter.end()

    def _foreground(self) -> QtGui.QColor:
        return self.palette().color(QtGui.QPalette.Text)

    def _draw_frame(self, p: QtGui.QPainter) -> QtCore.QRectF:
        """The cell's frame and title; returns the title's box."""
        fg = self._foreground()
        box = QtCore.QRectF(140, 30, 500, 345)
        fill = QtGui.QColor(fg)
        fill.setAlpha(18)
        p.setPen(QtGui.QPen(fg, 1.5))
        p.setBrush(fill)
        p.drawRoundedRect(box, 18, 18)
        p.setFont(_font(13, bold=True))
        return p.drawText(QtCore.QRectF(150, 8, 480, 20), QtCore.Qt.AlignCenter,
                          f"{self.cell.upper()} unit — {self.title}")

    def _draw_lstm(self, p: QtGui.QPainter) -> None:
        pt = QtCore.QPointF
        # cell-state line and the hidden line
        _wire(p, [pt(20, C_Y), pt(740, C_Y)], C_COLOUR, arrow=True, width=3)
        _wire(p, [pt(20, H_Y), pt(180, H_Y), pt(480, H_Y)], H_COLOUR, width=2)
        _wire(p, [pt(180, 410), pt(180, H_Y)], self._foreground(), arrow=False, width=2)
        layers = {"f": 240.0, "i": 320.0, "g": 400.0, "o": 480.0}
        for name, x in layers.items():  # bus -> each layer
            _wire(p, [pt(x, H_Y), pt(x, LAYER_Y + 17)], H_COLOUR, arrow=True, width=2)
        # gate outputs
        _wire(p, [pt(240, LAYER_Y - 17), pt(240, C_Y + 14)], QtGui.QColor(GATE_ACCENT["f"]), arrow=True)
        _wire(p, [pt(320, LAYER_Y - 17), pt(320, MID_Y), pt(386, MID_Y)], QtGui.QColor(GATE_ACCENT["i"]), arrow=True)
        _wire(p, [pt(400, LAYER_Y - 17), pt(400, MID_Y + 14)], QtGui.QColor(GATE_ACCENT["g"]), arrow=True)
        _wire(p, [pt(400, MID_Y - 14), pt(400, C_Y + 14)], self._foreground(), arrow=True)
        _wire(p, [pt(497, LAYER_Y), pt(586, LAYER_Y)], QtGui.QColor(GATE_ACCENT["o"]), arrow=True)
        _wire(p, [pt(600, C_Y), pt(600, MID_Y - 14)], C_COLOUR, arrow=True, width=2)
        _wire(p, [pt(600, MID_Y + 14), pt(600, LAYER_Y - 14)], self._foreground(), arrow=True)
        _wire(p, [pt(600, LAYER_Y + 14), pt(600, H_Y), pt(740, H_Y)], H_COLOUR, arrow=True, width=3)
        for name, x in layers.items():
            self._symbol(_layer_box, p, pt(x, LAYER_Y), "tanh" if name == "g" else "σ", name)
        for centre, symbol in ((pt(240, C_Y), "×"), (pt(400, C_Y), "+"), (pt(400, MID_Y), "×"),
                               (pt(600, MID_Y), "tanh"), (pt(600, LAYER_Y), "×")):
            self._symbol(_op, p, centre, symbol)

    def _draw_gru(self, p: QtGui.QPainter) -> None:
        pt = QtCore.QPointF
        fg = self._foreground()
        colour = {name: QtGui.QColor(GATE_ACCENT[name]) for name in ("r", "z", "n")}
        # hidden line on top, its copy down to the bus that joins x_t
        _wire(p, [pt(20, C_Y), pt(740, C_Y)], H_COLOUR, arrow=True, width=3)
        _wire(p, [pt(100, C_Y), pt(100, H_Y), pt(540, H_Y)], H_COLOUR, width=2)
        _wire(p, [pt(180, 410), pt(180, H_Y)], fg, width=2)
        for x, top in ((240.0, LAYER_Y + 17), (400.0, LAYER_Y + 14), (540.0, LAYER_Y + 17)):
            _wire(p, [pt(x, H_Y), pt(x, top)], H_COLOUR, arrow=True, width=2)
        # r multiplies the recurrent input of n; n's output is scaled by 1 - z and added
        _wire(p, [pt(257, LAYER_Y), pt(386, LAYER_Y)], colour["r"], arrow=True)
        _wire(p, [pt(400, LAYER_Y - 14), pt(400, MID_Y + 17)], fg, arrow=True)
        _wire(p, [pt(400, MID_Y - 17), pt(400, 120), pt(596, 120)], colour["n"], arrow=True)
        _wire(p, [pt(540, LAYER_Y - 17), pt(540, C_Y + 14)], colour["z"], arrow=True)
        _wire(p, [pt(540, 200), pt(596, 200)], colour["z"], arrow=True)
        _wire(p, [pt(610, 186), pt(610, 134)], fg, arrow=True)
        _wire(p, [pt(610, 106), pt(610, C_Y + 14)], fg, arrow=True)
        self._symbol(_layer_box, p, pt(240, LAYER_Y), "σ", "r")
        self._symbol(_layer_box, p, pt(400, MID_Y), "tanh", "n")
        self._symbol(_layer_box, p, pt(540, LAYER_Y), "σ", "z")
        for centre, symbol in ((pt(400, LAYER_Y), "×"), (pt(540, C_Y), "×"), (pt(610, C_Y), "+"),
                               (pt(610, 200), "1−"), (pt(610, 120), "×")):
            self._symbol(_op, p, centre, symbol)

    def _draw_rnn(self, p: QtGui.QPainter) -> None:
        pt = QtCore.QPointF
        _wire(p, [pt(20, H_Y), pt(180, H_Y), pt(400, H_Y), pt(400, LAYER_Y + 17)], H_COLOUR, arrow=True, width=2)
        _wire(p, [pt(180, 410), pt(180, H_Y)], self._foreground(), width=2)
        _wire(p, [pt(400, LAYER_Y - 17), pt(400, 150), pt(600, 150), pt(600, H_Y), pt(740, H_Y)], H_COLOUR,
              arrow=True, width=3)
        self._symbol(_layer_box, p, pt(400, LAYER_Y), "tanh", None)

    def _symbol(self, draw, p: QtGui.QPainter, centre: QtCore.QPointF, symbol: str, *args) -> None:
        """Draw a layer box or pointwise operation and keep its rectangle (``symbol_rects``)."""
        self.symbol_rects.append((symbol, draw(p, centre, symbol, *args)))

    def _draw_labels(self, p: QtGui.QPainter) -> None:
        fg, bg = self._foreground(), self.palette().color(QtGui.QPalette.Base)
        texts = {key: _label_text(TEXT_NAMES[key], self.labels.get(key, "")) for key in PLACEMENTS[self.cell]}
        wanted = {key: _label_rect(centre, texts[key], colour_as is not None, self.label_px)
                  for key, (centre, colour_as) in PLACEMENTS[self.cell].items()}
        self.label_rects = place_labels(wanted, [rect for _, rect in self.symbol_rects])
        for key, rect in self.label_rects.items():
            _value_box(p, rect, texts[key], self.colours.get(key), fg, bg, self.label_px)


LABEL_GAP = 3.0  # canvas pixels kept free around symbols and between labels
SEARCH_STEP = 4.0  # canvas pixels between the places tried for a label


def place_labels(wanted: dict, obstacles: list, canvas: QtCore.QRectF = CANVAS) -> dict:
    """Label boxes (key -> QRectF, in the canvas) moved as little as possible from ``wanted``
    (key -> QRectF, placed in that order) so that none overlaps an ``obstacle`` (QRectF), a
    label placed before it (both with LABEL_GAP around) or leaves ``canvas``. Places are tried
    in order of distance (vertical moves count half), on a SEARCH_STEP grid; a label with no
    free place anywhere keeps its wanted place."""
    taken = [r.adjusted(-LABEL_GAP, -LABEL_GAP, LABEL_GAP, LABEL_GAP) for r in obstacles]
    placed = {}
    for key, rect in wanted.items():
        spot = next((moved for moved in _candidates(rect, canvas)
                     if not any(moved.intersects(other) for other in taken)), rect)
        placed[key] = spot
        taken.append(spot.adjusted(-LABEL_GAP, -LABEL_GAP, LABEL_GAP, LABEL_GAP))
    return placed


def _candidates(rect: QtCore.QRectF, canvas: QtCore.QRectF):
    """``rect`` moved to every SEARCH_STEP grid offset that keeps it inside ``canvas``, nearest first."""
    xs = np.arange(canvas.left() - rect.left(), canvas.right() - rect.right() + 1e-9, SEARCH_STEP)  # (nx,)
    ys = np.arange(canvas.top() - rect.top(), canvas.bottom() - rect.bottom() + 1e-9, SEARCH_STEP)  # (ny,)
    xs = np.concatenate([[0.0], xs]) if xs.size and xs[0] <= 0 <= xs[-1] else xs  # (nx',) no move first
    ys = np.concatenate([[0.0], ys]) if ys.size and ys[0] <= 0 <= ys[-1] else ys  # (ny',)
    dx, dy = np.meshgrid(xs, ys)  # (ny', nx')
    cost = np.abs(dx) + 0.5 * np.abs(dy)  # (ny', nx')
    for k in np.argsort(cost, axis=None, kind="stable"):
        yield rect.translated(float(dx.flat[k]), float(dy.flat[k]))


def _font(pixel_size: int, bold: bool = False, mono: bool = False) -> QtGui.QFont:
    font = QtGui.QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
    if mono:
        font.setStyleHint(QtGui.QFont.Monospace)
    font.setPixelSize(pixel_size)
    font.setBold(bold)
    return font


def _wire(p: QtGui.QPainter, points: list, colour: QtGui.QColor, arrow: bool = False, width: float = 2) -> None:
    """A polyline, with an arrowhead at its last point when ``arrow``."""
    p.setPen(QtGui.QPen(colour, width, QtCore.Qt.SolidLine, QtCore.Qt.RoundCap, QtCore.Qt.RoundJoin))
    p.setBrush(QtCore.Qt.NoBrush)
    p.drawPolyline(QtGui.QPolygonF(points))
    if arrow:
        tip, before = points[-1], points[-2]
        d = tip - before
        length = (d.x() ** 2 + d.y() ** 2) ** 0.5 or 1.0
        u = QtCore.QPointF(d.x() / length, d.y() / length)
        n = QtCore.QPointF(-u.y(), u.x())
        head = QtGui.QPolygonF([tip, tip - u * 9 + n * 4.5, tip - u * 9 - n * 4.5])
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(colour)
        p.drawPolygon(head)


def _layer_box(p: QtGui.QPainter, centre: QtCore.QPointF, symbol: str, gate: str | None) -> QtCore.QRectF:
    rect = QtCore.QRectF(centre.x() - 17 - (8 if symbol == "tanh" else 0), centre.y() - 17,
                         34 + (16 if symbol == "tanh" else 0), 34)
    p.setPen(QtGui.QPen(QtGui.QColor(GATE_ACCENT[gate]) if gate else QtGui.QColor("#333333"), 2.5))
    p.setBrush(LAYER_FILL)
    p.drawRect(rect)
    p.setPen(QtGui.QColor("#111111"))
    p.setFont(_font(15 if symbol == "σ" else 12, bold=True))
    p.drawText(rect, QtCore.Qt.AlignCenter, symbol)
    return rect


def _op(p: QtGui.QPainter, centre: QtCore.QPointF, symbol: str) -> QtCore.QRectF:
    wide = len(symbol) > 1
    rx, ry = (22, 14) if wide else (14, 14)
    p.setPen(QtGui.QPen(QtGui.QColor("#333333"), 1.5))
    p.setBrush(OP_FILL)
    p.drawEllipse(centre, rx, ry)
    p.setPen(QtGui.QColor("#111111"))
    p.setFont(_font(11 if wide else 17, bold=True))
    rect = QtCore.QRectF(centre.x() - rx, centre.y() - ry, 2 * rx, 2 * ry)
    p.drawText(rect, QtCore.Qt.AlignCenter, symbol)
    return rect


def _label_text(name: str, text: str) -> str:
    return f"{name} = {text}" if text else name


def _label_rect(centre: QtCore.QPointF, label: str, swatch: bool, pixel_size: float) -> QtCore.QRectF:
    """The box of value label ``label`` (text ``pixel_size`` canvas pixels high, room for a
    swatch when ``swatch``) centred on ``centre``."""
    grow = pixel_size / LABEL_PX
    width = QtGui.QFontMetricsF(_font(round(pixel_size), mono=True)).horizontalAdvance(label) \
        + (20 if swatch else 10) * grow
    return QtCore.QRectF(centre.x() - width / 2, centre.y() - 10 * grow, width, 20 * grow)


def _value_box(p: QtGui.QPainter, rect: QtCore.QRectF, label: str, swatch: QtGui.QColor | None,
               fg: QtGui.QColor, bg: QtGui.QColor, pixel_size: float = LABEL_PX) -> None:
    """``label`` ("name = value") in a small rounded box ``rect`` (text ``pixel_size`` canvas
    pixels high), with a swatch in the value's heatmap colour."""
    font = _font(round(pixel_size), mono=True)
    fill = QtGui.QColor(bg)
    fill.setAlpha(230)
    p.setPen(QtGui.QPen(QtGui.QColor(fg.red(), fg.green(), fg.blue(), 90), 1))
    p.setBrush(fill)
    p.drawRoundedRect(rect, 5, 5)
    text_rect = rect.adjusted(5, 0, -5, 0)
    if swatch is not None:
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(swatch)
        p.drawRect(QtCore.QRectF(rect.right() - 14, rect.top() + 4, 10, 12))
        text_rect = rect.adjusted(5, 0, -16, 0)
    p.setPen(fg)
    p.setFont(font)
    p.drawText(text_rect, QtCore.Qt.AlignCenter, label)
