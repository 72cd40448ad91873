"""The shared heatmap widget and the colormap policy (DESIGN.md §3).

Policy: quantities in [0, 1] (gates i, f, o and probabilities) use a sequential map
(``viridis``, colour-blind ``cividis``); quantities around zero (g, h and the cell state c) a
diverging map (``CET-D1``, colour-blind ``CET-CBD1``). The colormap kind and the range of each
quantity come from ``engine.quantities``; the levels from ``core.levels.gate_levels`` (fixed for
bounded quantities, from the whole sequence for c). No rainbow maps.

``HeatmapView`` draws one ``(T, H)`` array as units (rows, unit 0 at the top) by time (columns),
cells centred on integer coordinates, with a non-interactive colour bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from engine.quantities import QUANTITIES, quantity

from .core.levels import gate_levels
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


def value_colours(name: str, values, levels: tuple, colorblind: bool = False) -> np.ndarray:
    """RGB ``(n, 3) uint8`` that the heatmap of ``name`` gives ``values (n,)`` at colour levels
    ``(lo, hi)``: the ImageItem's own mapping (256-entry table; [lo, hi] cut into 256 equal bins),
    so text backgrounds and swatches match the heatmap cells exactly."""
    key = (name, bool(colorblind))
    if key not in _LOOKUP_TABLES:
        _LOOKUP_TABLES[key] = colormap_for(name, colorblind).getLookupTable(nPts=256, alpha=False)
    lo, hi = levels
    scaled = (np.asarray(values, np.float64) - lo) * (256.0 / (hi - lo))  # (n,)
    return _LOOKUP_TABLES[key][np.clip(np.floor(scaled), 0, 255).astype(np.intp)]  # (n, 3)


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
        self._img = np.zeros((0, 0), np.float32)  # (H, T) what is drawn
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.addPlot(row=0, col=0)
        self.plot.setTitle(GATE_STYLE[name].label, size="9pt")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setLabel("left", "unit")
        for side in ("left", "bottom"):  # integer steps and units: no "x1e3" prefixes, and no label
            self.plot.getAxis(side).enableAutoSIPrefix(False)  # rebuilt on every range shift
        self.plot.hideButtons()
        self.plot.getAxis("bottom").setHeight(18)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        levels = gate_levels(name, None) if GATE_STYLE[name].levels else (-1.0, 1.0)
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=colormap_for(name, colorblind),
                                        interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.cursor = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen((255, 255, 255, 220), width=1.5))
        self.cursor.setZValue(10)
        self.cursor.hide()
        self.plot.addItem(self.cursor, ignoreBounds=True)
        self.unit_marker = pg.InfiniteLine(angle=0, movable=False,
                                           pen=pg.mkPen((255, 80, 80, 200), width=1, style=QtCore.Qt.DashLine))
        self.unit_marker.setZValue(10)
        self.unit_marker.hide()
        self.plot.addItem(self.unit_marker, ignoreBounds=True)
        scene = self.scene()
        scene.contextMenu = [a for a in scene.contextMenu if a.text() != "Export..."]
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)
        cache_still_parts(self)

    # --- data ---------------------------------------------------------------------------------
    def set_data(self, data: np.ndarray, levels: tuple | None = None, t0: int = 0) -> None:
        """Draw ``data (T, H)`` whose first row is absolute step ``t0``; ``levels`` default to
        ``gate_levels(name, data)``."""
        data = np.asarray(data)
        if data.ndim != 2:
            raise ValueError(f"heatmap data must be (T, H), got shape {data.shape}")
        if levels is None:
            levels = gate_levels(self.name, data)
        T, H = data.shape
        self._t0 = int(t0)
        self._img = np.ascontiguousarray(data.T, dtype=np.float32)  # (H, T) private copy
        if T and H:
            self.image.setImage(self._img, autoLevels=False, levels=levels)
            self.image.setPos(self._t0 - 0.5, -0.5)  # one pixel per step and unit, centred
        else:
            self.image.clear()
        if tuple(self.colorbar.levels()) != tuple(levels):
            self.colorbar.setLevels(levels)

    def displayed_image(self) -> np.ndarray:
        """The drawn array ``(H, T)`` (float32)."""
        return self._img

    @property
    def t0(self) -> int:
        """Absolute step of the image's first column."""
        return self._t0

    def set_cursor(self, t: int | None) -> None:
        """Vertical line at step ``t`` (None hides it)."""
        if t is None:
            self.cursor.hide()
            return
        self.cursor.setValue(t)
        self.cursor.show()

    def set_unit_marker(self, unit: int | None) -> None:
        """Dashed horizontal line through ``unit`` (None hides it)."""
        if unit is None:
            self.unit_marker.hide()
            return
        self.unit_marker.setValue(unit)
        self.unit_marker.show()

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
