"""Gate heatmaps panel: one layer's gates and states as units x time, around the cursor (LSTM
f, i, o, g, c, h; GRU r, z, n, h; vanilla RNN h).

Only the last ``WINDOW`` steps before the cursor are drawn, so a step costs the same however
long the text is. The views share their time axis (wheel on the x axis zooms, drag pans);
the view follows the cursor until the user zooms or pans, and "Follow" brings it back. It
follows by pages: when the cursor leaves the shown ``WINDOW`` steps the axis jumps to put it
``PAGE`` steps left of the right edge, so most steps repaint the images only, not the axes.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from engine.quantities import DISPLAY_ORDERS, RECORDED_NAMES as PANEL_NAMES

from ..core.labels import step_label
from ..plots import GATE_STYLE, HeatmapView
from ..session import Session
from ..shown import RefreshWhenShown
from ..time_brush import TimeBrush

WINDOW = 200  # steps drawn, ending at the cursor
PAGE = WINDOW // 4  # steps of blank time axis ahead of the cursor after the view follows it
LABELLED_STEPS = 40  # the time axis names each step's character when at most this many are visible
BRUSH_FILL = (255, 255, 255, 60)  # the brushed span: a light veil on every colour map ...
BRUSH_EDGE = pg.mkPen((255, 0, 255), width=2)  # ... between magenta edges, a colour none of the maps uses


class GatesPanel(RefreshWhenShown, QtWidgets.QWidget):
    """A heatmap per quantity of the model's cell plus a layer selector. Hover readouts go out
    through ``status``. Behind another tab it draws nothing per step (it only keeps the shared
    time axis following the cursor) and catches up when shown."""

    status = QtCore.Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.views: dict[str, HeatmapView] = {}
        self._follow = True
        self._shown_layer = 0
        self._x_start = None  # first step of the followed x range (None: not set yet)
        self._units = None  # H the y ranges are set for
        self._laid_out = None  # the quantities the grid shows, in order
        self._drawn = None  # (Session.records_revision, layer) of the records the views show

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self.layer_box = QtWidgets.QComboBox()
        self.layer_box.setToolTip("Which layer of a stacked model the heatmaps show")
        self.layer_box.activated.connect(self._on_layer_chosen)
        bar.addWidget(self.layer_box)
        self.follow_button = QtWidgets.QPushButton("● Following the cursor")
        self.follow_button.setCheckable(True)
        self.follow_button.setChecked(True)
        self.follow_button.setToolTip("Keep the last steps before the cursor in view "
                                      "(turns off when you zoom or pan the time axis)")
        self.follow_button.toggled.connect(self._on_follow_toggled)
        bar.addWidget(self.follow_button)
        self.hint = QtWidgets.QLabel("wheel: zoom · drag: brush · drag axis: pan · click: select unit")
        self.hint.setStyleSheet("color: gray")
        bar.addWidget(self.hint)
        bar.addStretch(1)

        self.grid = grid = QtWidgets.QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        for name in PANEL_NAMES:
            view = HeatmapView(name, colorblind=session.colorblind, parent=self)  # hidden until laid out
            view.setToolTip(f"{GATE_STYLE[name].label}: units (rows) by step (columns); "
                            "hover for values, click to select a unit")
            view.setMinimumSize(160, 120)
            view.hovered.connect(lambda u, s, v, name=name: self._on_hovered(name, u, s, v))
            view.clicked.connect(self._on_clicked)
            view.plot.vb.sigRangeChangedManually.connect(self._on_user_zoomed)
            TimeBrush(view.plot).brushed.connect(session.brush)  # drag across a heatmap: brush its steps
            self.views[name] = view
        for name, view in self.views.items():
            if name != "h":
                view.plot.setXLink(self.views["h"].plot)  # h: shown for every cell

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addLayout(grid, 1)

        self.views["h"].plot.sigXRangeChanged.connect(self.label_time_axis)
        self.brush_regions = {}  # name -> the Session's brushed span on that heatmap
        for name, view in self.views.items():
            region = pg.LinearRegionItem(brush=BRUSH_FILL, pen=BRUSH_EDGE, hoverBrush=BRUSH_FILL)
            region.setToolTip("The brushed span (select text to brush); drag its edges to change it")
            region.setVisible(False)
            region.sigRegionChangeFinished.connect(self._on_brush_dragged)
            view.plot.addItem(region)
            self.brush_regions[name] = region
        session.brushed.connect(self._show_brush)
        session.model_changed.connect(self._on_model_changed)
        session.stepped.connect(self._on_stepped)  # also follows every model or text change
        session.selection_changed.connect(self._on_selection_changed)
        session.colormap_changed.connect(self._on_colormap_changed)
        session.levels_changed.connect(self.refresh_soon)
        self._on_model_changed()

    # --- session -> views ---------------------------------------------------------------------
    def _on_model_changed(self):
        s = self.session
        self.layer_box.clear()
        self.layer_box.addItems([f"layer {k}" for k in range(s.num_layers)])
        self.layer_box.setEnabled(s.num_layers > 1)
        self.layer_box.setCurrentIndex(s.layer)
        names = s.names or DISPLAY_ORDERS["lstm"]
        if names == self._laid_out:
            return  # the same quantities: the grid stays (a relayout resizes and repaints every view)
        self._laid_out = names
        columns = 3 if len(names) > 4 else 2
        for view in self.views.values():
            self.grid.removeWidget(view)
            view.setVisible(False)
        for k, name in enumerate(names):
            self.grid.addWidget(self.views[name], k // columns, k % columns)
            self.views[name].setVisible(True)

    def window_start(self, t: int) -> int:
        """First step drawn when the cursor is at ``t`` steps taken."""
        return max(0, t - WINDOW)

    def _on_stepped(self, *_):
        """The cursor moved: the shared time axis follows it (the loss strip and intervention
        views show its steps, whether the heatmaps are on screen or not); the heatmaps are
        redrawn when on screen."""
        if self.session.ready:
            self._follow_cursor(self.session.t)
        self.refresh_soon()

    def _follow_cursor(self, t: int):
        """Page the shared time axis so that it shows the cursor at ``t`` steps taken (when following)."""
        cursor = t - 1
        if self._follow and (self._x_start is None or not self._x_start <= cursor < self._x_start + WINDOW):
            # the view jumps by pages, the cursor then PAGE steps left of the right edge: the time
            # axes and the views' layout change once per PAGE steps, not on every step
            self._x_start = max(0, t - WINDOW + PAGE)
            self.views["h"].plot.setXRange(self._x_start - 0.5, self._x_start + WINDOW - 0.5, padding=0)

    def refresh(self, *_):
        """Redraw the window of steps ending at the cursor."""
        s = self.session
        if not s.ready:
            return
        t = s.t
        lo = self.window_start(t)
        H = s.hidden_size
        self._shown_layer = s.layer
        reads = {}  # (first step, end) -> records: one read shared by the views

        def gate(name: str, a: int, b: int) -> np.ndarray:
            if (a, b) not in reads:
                reads[a, b] = s.records(a, b)
            return reads[a, b].gate(name, s.layer)  # (b - a, H)

        drawn = self._drawn
        for name in s.names:
            view = self.views[name]
            units, T = view.displayed_image().shape
            end = view.t0 + T  # the step after the last one drawn
            kept = drawn == (s.records_revision, s.layer) and units == H and view.t0 <= lo <= end <= t <= end + WINDOW
            if kept:  # the steps drawn keep their records: read and colour the new ones only
                new = gate(name, end, t)  # (t - end, H)
                kept = drawn[0] == s.records_revision  # the read stored no block again
            if kept:
                view.extend(new, lo, s.levels(name, s.layer), room=WINDOW)
            else:
                view.set_data(gate(name, lo, t), s.levels(name, s.layer), t0=lo, room=WINDOW)
            view.set_cursor(t - 1 if t else None)
        self._drawn = (s.records_revision, s.layer)
        self._follow_cursor(t)
        if self._units != H:
            self._units = H
            for view in self.views.values():
                view.plot.setYRange(-0.5, H - 0.5, padding=0)
        for view in self.views.values():
            view.set_unit_marker(s.unit if s.unit >= 0 else None)

    def label_time_axis(self, *_):
        """Name each visible step by its character (``session.label``) when zoomed in to at most
        ``LABELLED_STEPS`` steps; numbered ticks otherwise."""
        s = self.session
        lo, hi = self.views["h"].plot.viewRange()[0]
        first, last = max(0, int(lo + 1)), min(s.steps, int(hi) + 1)
        ticks = None
        if 0 < last - first <= LABELLED_STEPS:
            ticks = [[(t, repr(s.label(t))[1:-1]) for t in range(first, last)], []]
        for view in self.views.values():
            view.plot.getAxis("bottom").setTicks(ticks)

    def _show_brush(self, start: int, end: int):
        for region in self.brush_regions.values():
            region.setVisible(end > start)
            blocker = QtCore.QSignalBlocker(region)
            region.setRegion((start - 0.5, end - 0.5))
            del blocker

    def _on_brush_dragged(self, region):
        lo, hi = region.getRegion()
        self.session.brush(int(round(lo + 0.5)), int(round(hi + 0.5)))

    def _on_selection_changed(self, layer, unit, step):
        self.layer_box.setCurrentIndex(layer)
        if layer != self._shown_layer:
            self.refresh_soon()
            return
        for view in self.views.values():
            view.set_unit_marker(unit if unit >= 0 else None)

    def _on_colormap_changed(self, colorblind: bool):
        """The colour-blind maps were switched on or off."""
        for view in self.views.values():
            view.set_colorblind(colorblind)
        self.refresh_soon()

    # --- user -> session ----------------------------------------------------------------------
    def _on_layer_chosen(self, index: int):
        s = self.session
        if index >= 0 and index != s.layer:
            s.select(index, s.unit, s.selected_step)

    def _on_hovered(self, name: str, unit: int, step: int, value: float):
        s = self.session
        what = s.caption(step) if 0 <= step < s.steps else "?"
        self.status.emit(f"{GATE_STYLE[name].label} · unit {unit} · {step_label(step) if step >= 0 else 'step ?'} · {what} · value {value:+.4f}")

    def _on_clicked(self, unit: int, step: int):
        self.session.select(self.session.layer, unit, step)

    def _on_user_zoomed(self, *_):
        self.follow_button.setChecked(False)
        self._x_start = None

    def _on_follow_toggled(self, on: bool):
        self._follow = on
        self.follow_button.setText("● Following the cursor" if on else "○ Follow the cursor")  # on and off differ
        if on:
            self.refresh()
