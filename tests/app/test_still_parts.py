"""Still plot parts (axes, titles, legends) are painted from pixmap caches on screen, so that
redrawing the data beside them does not call back into Python; exports draw them afresh."""

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from lstmviz.export import render_png_bytes, render_svg_bytes
from lstmviz.plots import HeatmapView

CACHED = QtWidgets.QGraphicsItem.DeviceCoordinateCache


class AxisPaints:
    """Counts calls of ``AxisItem.paint`` (the Python paint of every axis). Install it before
    the view is made: shiboken remembers which Python method overrides a virtual."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = pg.AxisItem.paint

        def counted(axis, *args):
            self.count += 1
            return original(axis, *args)

        monkeypatch.setattr(pg.AxisItem, "paint", counted)


def shown_heatmap(qtbot, data) -> HeatmapView:
    view = HeatmapView("f")
    qtbot.addWidget(view)
    view.resize(420, 320)
    with qtbot.waitExposed(view):
        view.show()
    view.set_data(data, t0=0)
    view.plot.setXRange(-0.5, data.shape[0] - 0.5, padding=0)
    view.plot.setYRange(-0.5, data.shape[1] - 0.5, padding=0)
    view.viewport().repaint()
    return view


def test_new_data_repaints_without_painting_the_axes_again(qtbot, monkeypatch):
    rng = np.random.default_rng(0)
    paints = AxisPaints(monkeypatch)
    view = shown_heatmap(qtbot, rng.random((40, 16)))
    before = view.grab().toImage()
    assert paints.count > 0  # the first paint filled the caches
    paints.count = 0

    view.set_data(rng.random((40, 16)), t0=0)
    view.viewport().repaint()

    assert view.grab().toImage() != before  # the new image is on screen
    assert paints.count == 0  # the axes came from their caches

    view.plot.setXRange(9.5, 29.5, padding=0)  # new ticks: the bottom axis draws itself again
    QtWidgets.QApplication.processEvents()
    view.grab()
    assert paints.count > 0


def differing_pixels(a, b) -> int:
    """How many pixels differ between two same-size RGB32 QImages."""
    pixels = [np.frombuffer(image.constBits(), np.uint32, image.width() * image.height()) for image in (a, b)]
    return int(np.count_nonzero(pixels[0] != pixels[1]))


def test_cached_axes_look_like_uncached_ones(qtbot):
    """A cache clips to the item's bounding box: tick labels reaching past it would be cut."""
    view = shown_heatmap(qtbot, np.random.default_rng(1).random((40, 16)))
    cached = view.grab().toImage()
    axes = [view.plot.getAxis(side) for side in ("left", "bottom")]
    assert all(axis.cacheMode() == CACHED for axis in axes)
    for axis in axes:
        axis.setCacheMode(QtWidgets.QGraphicsItem.NoCache)
    view.viewport().repaint()
    uncached = view.grab().toImage()
    assert differing_pixels(cached, uncached) <= 8  # the end of an axis line may move by a pixel


def test_exports_draw_the_axes_afresh_and_keep_the_caches(qtbot, monkeypatch):
    paints = AxisPaints(monkeypatch)
    view = shown_heatmap(qtbot, np.random.default_rng(2).random((40, 16)))
    view.grab()
    paints.count = 0

    svg = render_svg_bytes(view)
    assert paints.count > 0  # the axes painted into the SVG, not their screen pixmaps
    assert b">20</text>" in svg and b">30</text>" in svg  # tick labels (the time axis') are text
    assert svg.count(b"<image") == 2  # the heatmap and the colour bar; no bitmaps of axes
    svg_paints = paints.count
    render_png_bytes(view, width_px=1600)
    assert paints.count > svg_paints

    assert all(view.plot.getAxis(side).cacheMode() == CACHED for side in ("left", "bottom"))


class PythonPaints:
    """Counts calls of the Python ``paint`` of the view boxes and the time brush. Install it
    before the view is made (shiboken remembers which Python method overrides a virtual)."""

    def __init__(self, monkeypatch):
        from lstmviz.time_brush import TimeBrush

        self.counts = {"ViewBox": 0, "TimeBrush": 0}
        for name, cls in (("ViewBox", pg.ViewBox), ("TimeBrush", TimeBrush)):
            original = cls.paint

            def counted(item, *args, name=name, original=original):
                self.counts[name] += 1
                return original(item, *args)

            monkeypatch.setattr(cls, "paint", counted)


def test_a_repaint_calls_no_python_paint_for_items_that_draw_nothing(qtbot, monkeypatch):
    """Layout containers, border-less view boxes and an idle time brush draw nothing, so a
    repaint of the cells calls none of their Python ``paint`` methods (nor, Qt skipping items
    without contents, their bounding rectangles); a drag across the cells draws the brush's
    band and the band is erased on release."""
    from lstmviz.time_brush import TimeBrush

    paints = PythonPaints(monkeypatch)
    data = np.random.default_rng(3).random((40, 16))
    view = HeatmapView("f")
    qtbot.addWidget(view)
    brush = TimeBrush(view.plot)
    view.resize(420, 320)
    with qtbot.waitExposed(view):
        view.show()
    view.set_data(data, t0=0)
    view.plot.setXRange(-0.5, 39.5, padding=0)
    view.plot.setYRange(-0.5, 15.5, padding=0)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    empty = view.grab().toImage()
    assert sum(paints.counts.values()) == 0
    containers = [item for item in view.scene().items()
                  if isinstance(item, (pg.GraphicsLayout, pg.PlotItem, pg.ColorBarItem, pg.ViewBox))]
    assert len(containers) >= 4
    assert all(item.flags() & QtWidgets.QGraphicsItem.ItemHasNoContents for item in containers)

    ranges = view.plot.viewRange()
    press, middle, release = (view.mapFromScene(view.scene_pos_of(8, t)) for t in (5, 12, 20))
    qtbot.mouseMove(view.viewport(), press)  # the pointer arrives over the cells first, as a hand moves it
    qtbot.mousePress(view.viewport(), QtCore.Qt.LeftButton, pos=press)
    qtbot.mouseMove(view.viewport(), middle)
    qtbot.mouseMove(view.viewport(), release)
    view.viewport().repaint()
    banded = view.grab().toImage()
    assert paints.counts["TimeBrush"] > 0 and differing_pixels(banded, empty) > 0
    qtbot.mouseRelease(view.viewport(), QtCore.Qt.LeftButton, pos=release)
    QtWidgets.QApplication.processEvents()
    assert view.plot.viewRange() == ranges  # brushed, not panned
    assert differing_pixels(view.grab().toImage(), empty) == 0  # the band is gone
    painted = paints.counts["TimeBrush"]
    view.set_data(data[::-1].copy(), t0=0)
    view.viewport().repaint()
    assert paints.counts == {"ViewBox": 0, "TimeBrush": painted}
