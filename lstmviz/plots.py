"""The shared heatmap widget and the colormap policy (DESIGN.md §3).

Policy: quantities in [0, 1] (gates i, f, o and probabilities) use a sequential map
(``viridis``, colour-blind ``cividis``); quantities around zero (g, h and the cell state c) a
diverging map (``CET-D1``, colour-blind ``CET-CBD1``). The colormap kind and the range of each
quantity come from ``engine.quantities``; the levels from ``core.levels.gate_levels`` (fixed for
bounded quantities, from the whole sequence for c). No rainbow maps.

``HeatmapView`` draws one ``(T, H)`` array as units (rows, unit 0 at the top) by time (columns),
cells centred on integer coordinates, with a non-interactive colour bar; its time axis is a
``StepAxis`` (whole steps, labelled "1,099,985", labels never overlapping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from engine.quantities import QUANTITIES, quantity

from .core.levels import gate_levels, nice_ceil
from .still_parts import cache_still_parts


@dataclass(frozen=True)
class GateStyle:
    """How one quantity is drawn: label, colormap names and fixed levels (None: from the data)."""

    label: str
    cmap: str
    cmap_colorblind: str
    levels: tuple | None


COLORMAPS = {"sequential": ("viridis", "cividis"), "diverging": ("CET-D1", "CET-CBD1")}  # default, colour-blind

GATE_STYLE = {name: GateStyle(q.label, *COLORMAPS[q.colormap], q.range) for name, q in QUANTITIES.items()}


def colormap_for(name: str, colorblind: bool = False) -> pg.ColorMap:
    """The pyqtgraph colormap of quantity ``name``."""
    style = GATE_STYLE[name]
    return pg.colormap.get(style.cmap_colorblind if colorblind else style.cmap)


_LOOKUP_TABLES: dict = {}  # (name, colorblind) -> (256, 3) uint8


def colour_indices(values, levels: tuple) -> np.ndarray:
    """Lookup-table rows ``(...) intp`` of ``values (...)`` at colour levels ``(lo, hi)``: the
    ImageItem's own mapping ([lo, hi] cut into 256 equal bins, values outside clipped to the
    end bins). NaN maps to row 0 (callers that draw make it transparent)."""
    lo, hi = levels
    scaled = (np.asarray(values, np.float64) - lo) * (256.0 / (hi - lo))  # (...)
    np.clip(scaled, 0, 255, out=scaled)  # truncation below is then floor
    nan = np.isnan(scaled)  # (...)
    if nan.any():
        scaled[nan] = 0
    return scaled.astype(np.intp)  # (...)


def argb_table(colormap: pg.ColorMap) -> np.ndarray:
    """The 256-entry lookup table ``(256,) uint32`` of ``colormap`` as opaque ARGB32 pixels."""
    rgb = colormap.getLookupTable(nPts=256, alpha=False).astype(np.uint32)  # (256, 3)
    return 0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]  # (256,)


def argb_pixels(table: np.ndarray, values: np.ndarray, levels: tuple) -> np.ndarray:
    """ARGB32 pixels ``(...) uint32`` of ``values (...)`` through ``table`` (``argb_table``) at
    colour levels ``(lo, hi)`` (``colour_indices``); NaN is transparent (0)."""
    argb = table[colour_indices(values, levels)]  # (...)
    argb[np.isnan(values)] = 0
    return argb


def value_colours(name: str, values, levels: tuple, colorblind: bool = False) -> np.ndarray:
    """RGB ``(n, 3) uint8`` that the heatmap of ``name`` gives ``values (n,)`` at colour levels
    ``(lo, hi)``: the ImageItem's own mapping (256-entry table; [lo, hi] cut into 256 equal bins),
    so text backgrounds and swatches match the heatmap cells exactly."""
    key = (name, bool(colorblind))
    if key not in _LOOKUP_TABLES:
        _LOOKUP_TABLES[key] = colormap_for(name, colorblind).getLookupTable(nPts=256, alpha=False)
    return _LOOKUP_TABLES[key][colour_indices(values, levels)]  # (n, 3)


class ColumnImage(pg.GraphicsObject):
    """An image of values ``(H, T)`` (rows by columns, one unit of item coordinates per cell)
    coloured through a 256-entry lookup table with the ImageItem's mapping (``colour_indices``),
    that repaints only the columns whose values changed.

    Item coordinates are the cells' (column c, row r centred on (c, r)); place or scale the item
    with ``setPos``/``setTransform``. The colours live in an ARGB32 canvas that may be wider than
    the image (``room`` blank columns either side, transparent): an image that moves along by a
    few columns, as a window ending at a stepping cursor does, keeps the canvas where it is; only
    the new or changed columns are coloured and ``update``d, and Qt repaints that strip of the
    view, not the whole image. ``colours_written`` and ``painted_area`` count the work (cells coloured, item-space
    area painted), for tests. Levels and colormap follow the pyqtgraph ``ImageItem`` interface
    that ``ColorBarItem`` drives (``setLevels``, ``getLevels``, ``setColorMap``, ``getColorMap``).
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFlag(self.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # exposedRect: the part to paint
        self.image = None  # (H, T) float32 values drawn, or None
        self._t0 = 0  # column of the item's canvas where image column 0 sits
        self._levels = (0.0, 1.0)
        self._colormap = None
        self._lut = np.full(256, 0xFF000000, np.uint32)  # ARGB32 of each lookup-table row
        self._canvas = np.zeros((0, 0), np.uint32)  # (H, W) ARGB32, premultiplied; 0 = transparent
        self._first = 0  # absolute column of canvas column 0
        self._bounds = QtCore.QRectF(-0.5, -0.5, 0, 0)  # the canvas in item coordinates
        self.qimage = None  # QImage over ``_canvas`` (shares its memory)
        self.colours_written = 0
        self.painted_area = 0.0
        self._cursor = None  # item column of the cursor line (None: none)
        self._cursor_pen = QtGui.QPen()
        self._line_pen = None  # (half width, rgba) of a cursor pen ``_blit_line`` can draw, else None
        self._line_device = None  # (painter transform, pixel ratio, (m11, dx, m22, dy) or None) of the last blit
        self._line_image = None  # ((width, height, rgba), QImage) of the cursor's pixels

    # --- ImageItem's interface for ColorBarItem ----------------------------------------------
    def setLevels(self, levels, update: bool = True) -> None:  # noqa: N802 - pyqtgraph's name
        levels = (float(levels[0]), float(levels[1]))
        if levels != self._levels:
            self._levels = levels
            self._recolour_all()

    def getLevels(self) -> tuple:  # noqa: N802 - pyqtgraph's name
        return self._levels

    def setColorMap(self, colormap) -> None:  # noqa: N802 - pyqtgraph's name
        self._colormap = pg.colormap.get(colormap) if isinstance(colormap, str) else colormap
        self._lut = argb_table(self._colormap)  # (256,) opaque ARGB32
        self._recolour_all()

    def getColorMap(self):  # noqa: N802 - pyqtgraph's name
        return self._colormap

    @property
    def t0(self) -> int:
        """Item column of the image's column 0."""
        return self._t0

    @property
    def first(self) -> int:
        """Item column of the canvas's column 0 (``qimage`` column 0)."""
        return self._first

    # --- data ---------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, t0: int = 0, levels: tuple | None = None, room: int = 0,
                  kept: bool = False) -> None:
        """Show ``image (H, T)`` (float32; other types are converted) with its column 0 at item
        column ``t0`` (at ``levels`` if given). Only columns whose values differ from what is
        drawn at the same position are coloured and repainted; a canvas that cannot hold the
        image is rebuilt with ``room`` spare columns either side. ``kept``: the caller vouches
        that the columns drawn before and now hold the same values (only the new columns are
        coloured; False compares them bitwise). The item keeps ``image``: never mutate it
        afterwards."""
        image = np.asarray(image, dtype=np.float32)  # (H, T) in any memory order; compared bitwise below
        if levels is not None:
            levels = (float(levels[0]), float(levels[1]))
            if levels != self._levels:
                self._levels = levels
                self.image = None  # recoloured whole below
        H, T = image.shape
        old, old_t0 = self.image, self._t0
        self.image, self._t0 = image, int(t0)
        first, (rows, width) = self._first, self._canvas.shape
        if old is None or rows != H or not (first <= t0 and t0 + T <= first + width):
            self._new_canvas(H, t0 - room, T + 2 * room)
            return
        changed = np.ones(T, bool)  # (T,) columns to colour
        lo, hi = max(t0, old_t0), min(t0 + T, old_t0 + old.shape[1])  # steps drawn before and now
        if hi > lo and kept:
            changed[lo - t0 : hi - t0] = False
        elif hi > lo:  # bitwise: an unchanged NaN is unchanged
            changed[lo - t0 : hi - t0] = np.any(image[:, lo - t0 : hi - t0].view(np.uint32)
                                                != old[:, lo - old_t0 : hi - old_t0].view(np.uint32), axis=0)
        old_end = old_t0 + old.shape[1]
        gone = list(range(old_t0, min(old_end, t0))) + list(range(max(old_t0, t0 + T), old_end))  # now blank
        if gone:
            self._canvas[:, [c - first for c in gone]] = 0
        columns = np.flatnonzero(changed)  # (n,) image columns
        self._colour(columns)
        self._update_columns(sorted(gone + (columns + t0).tolist()))

    def set_cursor(self, column: int | None, pen: QtGui.QPen | None = None) -> None:
        """A vertical line through item column ``column`` across the rows, drawn with ``pen``
        over the cells (None: no line). Drawn by this item, a moved cursor repaints the old and
        the new column only, in the same repaint as the cells (no item of its own to move)."""
        if pen is not None:
            self._cursor_pen = pen
            blits = (pen.isCosmetic() and pen.widthF() > 1.0 and pen.style() == QtCore.Qt.PenStyle.SolidLine
                     and pen.capStyle() == QtCore.Qt.PenCapStyle.SquareCap)
            self._line_pen = (pen.widthF() / 2, pen.color().rgba()) if blits else None
        if column != self._cursor:
            moved = [c for c in (self._cursor, column) if c is not None]
            self._cursor = column
            if self._canvas.size:
                self._update_columns(sorted(set(moved)))

    @property
    def cursor(self) -> int | None:
        """Item column of the cursor line, or None."""
        return self._cursor

    def clear(self) -> None:
        """Show nothing."""
        self.image = None
        if self._canvas.size:
            self._canvas[:] = 0
            self.update()

    def _new_canvas(self, H: int, first: int, width: int) -> None:
        self.prepareGeometryChange()
        self._canvas = np.zeros((H, width), np.uint32)  # (H, W)
        self._first = first
        self._bounds = QtCore.QRectF(first - 0.5, -0.5, width, H)
        self.qimage = pg.functions.ndarray_to_qimage(self._canvas, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        self._colour(np.arange(self.image.shape[1]))
        self.update()

    def _recolour_all(self) -> None:
        if self.image is not None and self._canvas.size:
            self._colour(np.arange(self.image.shape[1]))
            self.update()

    def _colour(self, columns: np.ndarray) -> None:
        """Colour image ``columns (n,)`` into the canvas (NaN: transparent)."""
        if not columns.size:
            return
        values = self.image[:, columns]  # (H, n)
        self._canvas[:, columns + (self._t0 - self._first)] = argb_pixels(self._lut, values, self._levels)  # (H, n)
        self.colours_written += values.size

    def _update_columns(self, steps: list) -> None:
        """Repaint the canvas columns of absolute ``steps`` (sorted), one rectangle per run. Qt
        unites an item's update rectangles into one, so with several runs only those in view
        are updated: a column off screen (the one leaving a window on the left) would stretch
        the repaint across the whole view; it is repainted from the canvas when it comes into
        view."""
        H = self._canvas.shape[0]
        runs, start = [], None  # [QRectF] of each run of consecutive steps
        for k, c in enumerate(steps):
            if start is None:
                start = c
            if k + 1 == len(steps) or steps[k + 1] != c + 1:
                runs.append(QtCore.QRectF(start - 0.5, -0.5, c + 1 - start, H))
                start = None
        shown = self.viewRect() if len(runs) > 1 else None  # item coordinates; None outside a view
        for run in runs:
            if shown is None or run.intersects(shown):
                self.update(run)

    # --- QGraphicsItem ------------------------------------------------------------------------
    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt's name
        return QtCore.QRectF(self._bounds)  # Qt asks about ten times per paint: kept with the canvas

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        """Draw the canvas whole on screen: Qt's clip limits the work to the exposed part and
        the cells map to the same pixels on every paint, so partial repaints leave no seams. A
        vector picture (SVG) gets the image's own columns, not the blank canvas around them."""
        if self.qimage is None or self.image is None:
            return
        H, T = self.image.shape
        drawn = QtCore.QRectF(self._t0 - 0.5, -0.5, T, H)  # item coordinates of the image
        exposed = option.exposedRect & drawn
        self.painted_area += exposed.width() * exposed.height()
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        engine = painter.paintEngine().type()
        if engine == QtGui.QPaintEngine.Type.SVG:  # it ignores a source rectangle
            painter.drawImage(drawn, self.qimage.copy(self._t0 - self._first, 0, T, H))
        else:
            painter.drawImage(self._bounds, self.qimage)
        if self._cursor is not None:
            line = QtCore.QLineF(self._cursor, -0.5, self._cursor, H - 0.5)
            if not self._blit_line(painter, line, widget, engine):
                painter.setPen(self._cursor_pen)
                painter.drawLine(line)

    def _blit_line(self, painter: QtGui.QPainter, line: QtCore.QLineF, widget, engine) -> bool:
        """Draw the vertical cursor ``line`` (item coordinates) as the raster engine would draw
        it with the cursor's cosmetic pen, without antialiasing, on ``widget``: the pixels whose centres lie in
        the pen's square around the line (ends snapped to 1/64 pixel, centres on the lower edge
        out, on the upper edge in), blended with one unscaled ``drawImage`` of the pen's
        colour, about 2 us instead of 70 us (the raster engine blends a thin translucent
        stroke scanline by scanline). Returns False, drawing nothing, where that rule does not
        hold (no widget, e.g. an export; antialiasing, a rotation, a scaled screen, another paint
        engine, a dashed, non-cosmetic or hairline pen): draw the line instead. ``engine``: the
        painter's paint engine type. The pen is checked when set (``set_cursor``), the transform
        once per transform and pixel ratio."""
        if (widget is None or self._line_pen is None or engine != QtGui.QPaintEngine.Type.Raster
                or painter.testRenderHint(QtGui.QPainter.RenderHint.Antialiasing)):
            return False
        transform, ratio = painter.transform(), painter.device().devicePixelRatioF()
        if self._line_device is None or self._line_device[:2] != (transform, ratio):
            scales = (transform.type().value <= QtGui.QTransform.TransformationType.TxScale.value and ratio == 1.0)
            self._line_device = (transform, ratio, (transform.m11(), transform.dx(), transform.m22(), transform.dy())
                                 if scales else None)  # device x = m11 x + dx, y = m22 y + dy
        scale = self._line_device[2]
        if scale is None:
            return False
        sx, dx, sy, dy = scale
        half, rgba = self._line_pen
        first_column, end_column = _pixels(sx * line.x1() + dx, sx * line.x2() + dx, half)
        first_row, end_row = _pixels(sy * line.y1() + dy, sy * line.y2() + dy, half)
        size = (end_column - first_column, end_row - first_row)
        if size[0] > 0 and size[1] > 0:
            key = (*size, rgba)
            if self._line_image is None or self._line_image[0] != key:
                image = QtGui.QImage(*size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
                image.fill(QtGui.QColor.fromRgba(rgba))
                self._line_image = (key, image)
            painter.setWorldTransform(_IDENTITY)  # device pixels (nothing else of the state changes)
            painter.drawImage(QtCore.QPoint(first_column, first_row), self._line_image[1])
            painter.setWorldTransform(transform)
        return True


_IDENTITY = QtGui.QTransform()


def _pixels(a: float, b: float, half: float) -> tuple:
    """Pixels ``[first, end)`` along one axis that the raster engine fills, without
    antialiasing, for a square-capped stroke from ``a`` to ``b`` (device coordinates) ``2 * half``
    wide: centres in ``(lo, hi]``, the edges ``lo, hi`` rounded to 1/64 pixel (its fixed point)."""
    lo, hi = round((min(a, b) - half) * 64) / 64, round((max(a, b) + half) * 64) / 64
    return math.floor(lo - 0.5) + 1, math.floor(hi - 0.5) + 1


CURSOR_PEN = pg.mkPen((255, 255, 255, 220), width=1.5)  # the heatmaps' cursor line

LABEL_GAP_PX = 12  # least room between neighbouring step labels, in pixels


STEP_MANTISSAS = (1.0, 2.0, 5.0)  # step labels every 1, 2, 5, 10, 20, 50, ... steps


class BoundedAxis(pg.AxisItem):
    """A pyqtgraph axis that computes its bounding rectangle (pyqtgraph's
    ``AxisItem.boundingRect``, about 5 us in Python) once per geometry and style, not on every
    call: Qt asks every axis of a view for it on every repaint of the view, a step's included.
    It depends on the axis' geometry (pyqtgraph gives an axis no transform), its orientation
    (fixed), tick length and label overlap setting (set through ``setStyle``), and with a grid
    on the view's rectangle: an axis with a grid computes it on every call."""

    def __init__(self, *args, **kwargs):
        self._bounds = None  # QRectF computed for the current geometry and style, or None
        super().__init__(*args, **kwargs)
        self.geometryChanged.connect(self._forget_bounds)

    def _forget_bounds(self) -> None:
        self._bounds = None

    def setStyle(self, **kwargs) -> None:  # noqa: N802 - pyqtgraph's name
        self._bounds = None
        super().setStyle(**kwargs)

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt's name
        if self.grid is not False:
            return super().boundingRect()
        if self._bounds is None:
            self._bounds = super().boundingRect()
        return QtCore.QRectF(self._bounds)


class StepAxis(BoundedAxis):
    """A time axis of steps: ticks at whole steps, labelled as integers with thousands
    separators ("1,099,985", never "1.09985e+06"), the labelled ticks at least the widest
    label's width plus ``LABEL_GAP_PX`` apart (measured in the axis' tick font), so neighbouring
    labels never overlap. Only the major ticks are labelled; the minor ones divide them into
    whole steps. Ticks set explicitly (``setTicks``) are drawn as given."""

    def __init__(self, orientation: str = "bottom", **kwargs):
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)
        self.setStyle(maxTextLevel=0)

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        return [f"{round(v * scale):,}" for v in values]

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph's names
        levels = super().tickSpacing(minVal, maxVal, size)
        if not levels:
            return levels
        metrics = QtGui.QFontMetricsF(self.style["tickFont"] or self.font())
        widest = max(metrics.horizontalAdvance(label) for label in self.tickStrings([minVal, maxVal], 1, 1))
        steps_per_px = abs(maxVal - minVal) / size
        major = nice_ceil(max(levels[0][0], (widest + LABEL_GAP_PX) * steps_per_px, 1), STEP_MANTISSAS)
        minors = [(spacing, 0) for spacing, _ in levels[1:]
                  if 1 <= spacing < major and abs(major / spacing - round(major / spacing)) < 1e-9]
        return [(major, 0), *minors]


class HeatmapView(pg.GraphicsLayoutWidget):
    """Units (rows) x time (columns) heatmap of one quantity, with colour bar and cursor.

    Signals: ``hovered(unit, step, value)`` when the mouse is over a cell; ``clicked(unit, step)``
    on a left click on a cell. Steps are absolute (the image starts at step ``t0``).
    """

    hovered = QtCore.Signal(int, int, float)
    clicked = QtCore.Signal(int, int)

    def __init__(self, name: str, colorblind: bool = False, parent=None):
        super().__init__(parent)
        quantity(name)  # ValueError for an unknown name
        self.name = name
        self._colorblind = bool(colorblind)
        self._t0 = 0
        self._rows = np.zeros((0, 0), np.float32)  # (T + room, H): the steps drawn, rows _first.. of it
        self._first = 0
        self._img = np.zeros((0, 0), np.float32)  # (H, T) what is drawn
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.addPlot(row=0, col=0, axisItems={"bottom": StepAxis("bottom"), "left": BoundedAxis("left")})
        self.plot.setTitle(GATE_STYLE[name].label, size="9pt")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setLabel("left", "unit")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # integer units: no "x1e3" prefix, and no
        # label rebuilt on every range shift (the bottom StepAxis has none either)
        self.plot.hideButtons()
        self.plot.getAxis("bottom").setHeight(18)
        self.image = ColumnImage()
        self.plot.addItem(self.image)
        levels = gate_levels(name, None) if GATE_STYLE[name].levels else (-1.0, 1.0)
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=colormap_for(name, colorblind),
                                        interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        # The cursor is drawn by the image (set_cursor): a step repaints one strip, the new column
        # and the cursor's old and new places, with no item of its own to move. The unit marker is
        # a plain Qt line item across the image (set_unit_marker): Qt repaints it without Python.
        self.unit_marker = QtWidgets.QGraphicsLineItem()
        self.unit_marker.setPen(pg.mkPen((255, 80, 80, 200), width=1))  # solid: a dash pattern's phase
        # differs between a repaint of a thin strip and of the whole line, leaving broken dashes
        self.unit_marker.setZValue(10)
        self.unit_marker.hide()
        self.plot.addItem(self.unit_marker, ignoreBounds=True)
        self._bar_levels = levels  # the colour bar's
        self._cursor_step = None  # step the cursor is at (None: hidden)
        self._marked_unit = None  # unit the marker is at (None: hidden)
        scene = self.scene()
        scene.contextMenu = [a for a in scene.contextMenu if a.text() != "Export..."]
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)
        cache_still_parts(self)

    # --- data ---------------------------------------------------------------------------------
    def set_data(self, data: np.ndarray, levels: tuple | None = None, t0: int = 0, room: int = 0) -> None:
        """Draw ``data (T, H)`` whose first row is absolute step ``t0``; ``levels`` default to
        ``gate_levels(name, data)``. Only the steps whose values changed since the last call are
        coloured and repainted (``ColumnImage``); ``room``: spare steps kept either side, so a
        window moving along by up to ``room`` steps never rebuilds the image."""
        data = np.asarray(data)
        if data.ndim != 2:
            raise ValueError(f"heatmap data must be (T, H), got shape {data.shape}")
        if levels is None:
            levels = gate_levels(self.name, data)
        T, H = data.shape
        rows = np.empty((T + max(room, 0), H), np.float32)  # (T + room, H): room for ``extend``
        rows[:T] = data
        self._draw(rows, 0, T, int(t0), levels, room, kept=False)

    def extend(self, data: np.ndarray, t0: int, levels: tuple, room: int = 0) -> None:
        """Draw the steps drawn from absolute step ``t0`` on, followed by ``data (n, H)``, the
        ``n`` steps right after the last one drawn (at ``levels``; ``room`` as for ``set_data``).
        The steps kept are not compared with anything, for a caller that knows their values are
        unchanged (``Session.records_revision``): a step reads and colours only its new steps,
        not the whole window. Raises ValueError unless the drawn steps reach from at most ``t0``
        to at least ``t0`` and ``data`` has their units."""
        data = np.asarray(data)
        H, T = self._img.shape
        end = self._t0 + T  # the step after the last one drawn
        if data.ndim != 2 or data.shape[1] != H or not self._t0 <= t0 <= end:
            raise ValueError(f"can only extend steps {self._t0}..{end} of {H} units, "
                             f"got data of shape {data.shape} from step {t0}")
        n, kept = data.shape[0], end - t0
        first = self._first + t0 - self._t0  # row of step t0
        if self._first + T + n > self._rows.shape[0]:  # no room after the drawn rows: a new buffer (the
            rows = np.empty((kept + n + max(room, 0), H), np.float32)  # image keeps the old one, unchanged)
            rows[:kept] = self._rows[first : first + kept]  # (kept, H)
            self._rows, first = rows, 0
        self._rows[first + kept : first + kept + n] = data  # past the rows drawn: they stay as drawn
        self._draw(self._rows, first, kept + n, int(t0), levels, room, kept=True)

    def _draw(self, rows: np.ndarray, first: int, T: int, t0: int, levels: tuple, room: int, kept: bool) -> None:
        """Draw ``rows[first : first + T]`` (``(T, H)`` float32, private) from absolute step ``t0``."""
        H = rows.shape[1]
        old_units, canvas = self._img.shape[0], self.image.boundingRect()
        self._rows, self._first, self._t0 = rows, first, t0
        self._img = rows[first : first + T].T  # (H, T) view of a private (T, H) buffer: a step's columns are
        # rows of it, so copying and comparing them runs along memory
        if T and H:
            self.image.set_image(self._img, t0, levels, room, kept)
        else:
            self.image.clear()
        levels = (float(levels[0]), float(levels[1]))
        if levels != self._bar_levels:
            self._bar_levels = levels
            self.colorbar.setLevels(levels)
        if H != old_units:
            self._place_cursor()
        if H != old_units or self.image.boundingRect() != canvas:
            self._place_marker()

    def displayed_image(self) -> np.ndarray:
        """The drawn array ``(H, T)`` (float32)."""
        return self._img

    @property
    def t0(self) -> int:
        """Absolute step of the image's first column."""
        return self._t0

    def set_cursor(self, t: int | None) -> None:
        """Vertical line at step ``t`` across the units (None hides it)."""
        if t != self._cursor_step:
            self._cursor_step = t
            self._place_cursor()

    def set_unit_marker(self, unit: int | None) -> None:
        """Horizontal line through ``unit`` across the image (None hides it)."""
        if unit != self._marked_unit:
            self._marked_unit = unit
            self._place_marker()

    def _place_cursor(self) -> None:
        t = self._cursor_step
        self.image.set_cursor(t if self._img.shape[0] > 0 else None, CURSOR_PEN)

    def _place_marker(self) -> None:
        unit, drawn = self._marked_unit, self.image.boundingRect()  # the image's canvas: every step that can be drawn
        self.unit_marker.setVisible(unit is not None and not drawn.isEmpty())
        if unit is not None and not drawn.isEmpty():  # across the canvas: it stays put while stepping
            self.unit_marker.setLine(drawn.left(), unit, drawn.right(), unit)

    def set_colorblind(self, colorblind: bool) -> None:
        """Switch between the default and the colour-blind-safe colormap."""
        self._colorblind = bool(colorblind)
        self.colorbar.setColorMap(colormap_for(self.name, self._colorblind))

    @property
    def colorblind(self) -> bool:
        return self._colorblind

    def add_context_action(self, action: QtGui.QAction) -> None:
        """Add ``action`` to the right-click menu of the whole view."""
        self.scene().contextMenu.append(action)

    # --- mouse --------------------------------------------------------------------------------
    def cell_at(self, scene_pos: QtCore.QPointF) -> tuple | None:
        """``(unit, step)`` under a scene position, or None outside the image."""
        H, T = self._img.shape
        if H == 0 or T == 0 or not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.vb.mapSceneToView(scene_pos)
        col = int(math.floor(p.x() + 0.5)) - self._t0
        row = int(math.floor(p.y() + 0.5))
        if 0 <= row < H and 0 <= col < T:
            return row, col + self._t0
        return None

    def scene_pos_of(self, unit: int, step: int) -> QtCore.QPointF:
        """Scene position of the centre of cell ``(unit, step)`` (inverse of ``cell_at``)."""
        return self.plot.vb.mapViewToScene(QtCore.QPointF(step, unit))

    def value_at(self, unit: int, step: int) -> float:
        return float(self._img[unit, step - self._t0])

    def _on_mouse_moved(self, scene_pos):
        cell = self.cell_at(scene_pos)
        if cell is not None:
            self.hovered.emit(cell[0], cell[1], self.value_at(*cell))

    def _on_mouse_clicked(self, event):
        if event.button() != QtCore.Qt.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            self.clicked.emit(cell[0], cell[1])


def room_for_end_tick_labels(plot: pg.PlotItem) -> None:
    """Give ``plot`` top and bottom margins of half a tick label's height (its left axis' tick
    font), so the labels of ticks at the very ends of the vertical axis, which pyqtgraph draws
    centred on their tick, are not cut by the edge of the view (e.g. a view ranged with
    ``padding=0`` to round numbers, no title above)."""
    axis = plot.getAxis("left")
    half = math.ceil(QtGui.QFontMetricsF(axis.style["tickFont"] or axis.font()).height() / 2)
    left, _, right, _ = plot.layout.getContentsMargins()
    plot.layout.setContentsMargins(left, half, right, half)
