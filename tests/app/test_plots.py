"""The heatmap's colours equal pyqtgraph's ImageItem's (and value_colours'), and a window that
moves along by a step colours and repaints only the columns that changed."""

import re

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from lstmviz.core.levels import nice_ceil
from lstmviz.plots import STEP_MANTISSAS, HeatmapView, colormap_for, value_colours


def canvas_rgb(view: HeatmapView, columns) -> np.ndarray:
    """RGB ``(H, n, 3)`` drawn for image ``columns`` of ``view`` (its canvas may be wider)."""
    item = view.image
    image = item.qimage.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    offset = item.t0 - item.first
    return np.array([[image.pixelColor(c + offset, r).getRgb()[:3] for c in columns]
                     for r in range(image.height())])


def image_item_rgb(name, values, levels, colorblind) -> np.ndarray:
    """RGB ``(n, 3)`` that pyqtgraph's own ImageItem draws for ``values (n,)`` (one row)."""
    item = pg.ImageItem(axisOrder="row-major")
    item.setColorMap(colormap_for(name, colorblind))
    item.setImage(values[None, :], autoLevels=False, levels=levels)
    item.render()
    image = item.qimage
    return np.array([image.pixelColor(x, 0).getRgb()[:3] for x in range(len(values))])


@pytest.mark.parametrize("name, levels, colorblind", [("h", (-1.0, 1.0), False), ("f", (0.0, 1.0), True),
                                                      ("c", (-20.0, 20.0), False)])
def test_heatmap_pixels_equal_image_item_and_value_colours(qapp, name, levels, colorblind):
    lo, hi = levels
    values = np.linspace(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), 1000).astype(np.float32)  # past both ends
    view = HeatmapView(name, colorblind=colorblind)
    try:
        view.set_data(values[:, None], levels=levels)  # T = 1000 steps of one unit
        drawn = canvas_rgb(view, range(len(values)))[0]  # (1000, 3)
        expected = image_item_rgb(name, values, levels, colorblind)
        assert np.array_equal(drawn, expected)
        assert np.array_equal(value_colours(name, values, levels, colorblind), expected)
    finally:
        view.close()


def settle(item) -> None:
    """Run the event loop until the item's paints of a new layout are over."""
    quiet, painted = 0, -1.0
    while quiet < 5:
        QtWidgets.QApplication.processEvents()
        quiet, painted = (quiet + 1, painted) if item.painted_area == painted else (0, item.painted_area)


@pytest.fixture
def heatmap(qtbot):
    view = HeatmapView("h")
    qtbot.addWidget(view)
    view.resize(500, 300)
    with qtbot.waitExposed(view):
        view.show()
    yield view
    view.close()


def test_a_window_moving_by_one_step_colours_and_repaints_one_column(qtbot, heatmap):
    rng = np.random.default_rng(0)
    T, H, W = 1000, 32, 100  # steps, units, window width
    values = rng.uniform(-1, 1, (T, H)).astype(np.float32)  # (T, H)
    heatmap.plot.setXRange(250 - 0.5, 250 + W - 0.5, padding=0)
    heatmap.plot.setYRange(-0.5, H - 0.5, padding=0)
    heatmap.set_data(values[200:300], (-1, 1), t0=200, room=W)
    item = heatmap.image
    settle(item)
    for t in range(301, 341):  # the window [t - W, t) moves along
        written, painted = item.colours_written, item.painted_area
        heatmap.set_data(values[t - W : t], (-1, 1), t0=t - W, room=W)
        qtbot.waitUntil(lambda: item.painted_area > painted)  # Qt paints what changed
        assert item.colours_written - written == H  # one new column coloured
        assert 0 < item.painted_area - painted <= 2 * 2 * H  # one column (the one leaving is off screen)
        assert np.array_equal(canvas_rgb(heatmap, [W - 1])[:, 0], value_colours("h", values[t - 1], (-1, 1)))
    assert np.array_equal(heatmap.displayed_image(), values[240:340].T)


def test_changed_values_inside_the_window_are_recoloured(heatmap):
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, (50, 8)).astype(np.float32)  # (T, H)
    heatmap.set_data(values, (-1, 1), t0=0, room=10)
    edited = values.copy()
    edited[20:23] = -values[20:23]  # e.g. the records after an edit of the text
    written = heatmap.image.colours_written
    heatmap.set_data(edited, (-1, 1), t0=0, room=10)
    assert heatmap.image.colours_written - written == 3 * 8
    assert np.array_equal(canvas_rgb(heatmap, range(50)), np.stack([value_colours("h", edited[:, u], (-1, 1))
                                                                     for u in range(8)]))


def test_extend_draws_what_set_data_draws_and_colours_only_the_new_steps(qtbot, heatmap):
    """A window moved along by ``extend`` (the kept steps not compared) shows the same values
    and pixels as ``set_data`` of the same window, across many moves (its buffer refilled),
    colouring the new steps' cells only; a gap before the new steps is refused."""
    rng = np.random.default_rng(2)
    T, H, W = 400, 6, 30
    values = rng.uniform(-1, 1, (T, H))  # (T, H) float64, drawn as float32
    whole = HeatmapView("h")
    qtbot.addWidget(whole)
    heatmap.set_data(values[0:W], (-1, 1), t0=0, room=W)
    moves = 0
    for t in range(W + 3, T, 3):  # three steps per move
        written, first = heatmap.image.colours_written, heatmap.image.first
        heatmap.extend(values[t - 3 : t], t - W, (-1, 1), room=W)
        if heatmap.image.first == first:  # the same canvas (a new one, every W steps, is coloured whole)
            moves += 1
            assert heatmap.image.colours_written - written == 3 * H
        whole.set_data(values[t - W : t], (-1, 1), t0=t - W, room=W)
        assert heatmap.t0 == whole.t0 == t - W
        assert np.array_equal(heatmap.displayed_image(), values[t - W : t].T.astype(np.float32))
        assert np.array_equal(canvas_rgb(heatmap, range(W)), canvas_rgb(whole, range(W)))
    assert moves >= 100
    with pytest.raises(ValueError, match="extend"):
        heatmap.extend(values[:1], heatmap.t0 + W + 1, (-1, 1))  # would leave a step undrawn
    with pytest.raises(ValueError, match="extend"):
        heatmap.extend(values[:1, :2], heatmap.t0, (-1, 1))  # another number of units


def test_steps_leaving_the_window_turn_blank_and_new_levels_recolour_everything(heatmap):
    values = np.linspace(-1, 1, 60 * 4, dtype=np.float32).reshape(60, 4)  # (T, H)
    heatmap.set_data(values[10:40], (-1, 1), t0=10, room=20)
    heatmap.set_data(values[12:42], (-1, 1), t0=12, room=20)  # steps 10 and 11 left the window
    item = heatmap.image
    canvas = np.frombuffer(item.qimage.constBits(), np.uint32).reshape(4, -1)  # (H, W) ARGB32
    alpha = canvas >> 24
    assert np.all(alpha[:, 10 - item.first : 12 - item.first] == 0)  # transparent: nothing drawn there
    assert np.all(alpha[:, 12 - item.first : 42 - item.first] == 255)
    written = item.colours_written
    heatmap.set_data(values[12:42], (-2, 2), t0=12, room=20)
    assert item.colours_written - written == 30 * 4
    assert np.array_equal(canvas_rgb(heatmap, range(30))[:, :, :],
                          np.stack([value_colours("h", values[12:42, u], (-2, 2)) for u in range(4)]))


def drawn_step_labels(view: HeatmapView) -> list:
    """``(text, rect)`` of the time-axis labels ``view`` draws, left to right (the axis' own
    draw specs, generated as its ``paint`` does)."""
    axis = view.plot.getAxis("bottom")
    picture = QtGui.QPicture()
    painter = QtGui.QPainter(picture)
    try:
        if axis.style["tickFont"]:
            painter.setFont(axis.style["tickFont"])
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return sorted(((text, rect) for rect, _, text in texts), key=lambda label: label[1].left())


@pytest.mark.parametrize("width, first, shown", [(300, 1_099_835, 200), (600, 1_099_835, 200),
                                                 (1200, 1_099_835, 200), (600, 1_099_990, 10),
                                                 (600, 0, 200)])
def test_step_labels_are_thousands_separated_integers_at_their_steps_and_never_overlap(qtbot, width, first, shown):
    """At step ~1.1 million the time axis reads "1,099,900", not "1.099e+06"; each label sits
    on its own (whole) step, and neighbouring labels leave room between them at any width."""
    view = HeatmapView("h")
    qtbot.addWidget(view)
    view.resize(width, 250)
    with qtbot.waitExposed(view):
        view.show()
    view.set_data(np.zeros((shown, 12), np.float32), (-1, 1), t0=first)
    view.plot.setXRange(first - 0.5, first + shown - 0.5, padding=0)
    QtWidgets.QApplication.processEvents()
    assert len(checked_step_labels(view, first - 0.5, first + shown - 0.5)) >= 2


def checked_step_labels(view: HeatmapView, lo: float, hi: float) -> list:
    """The drawn time-axis labels of ``view`` shown over ``[lo, hi]``, after asserting that each
    is a thousands-separated integer step inside the range, centred on its step, and that
    neighbouring labels do not overlap."""
    labels = drawn_step_labels(view)
    axis = view.plot.getAxis("bottom")
    for text, rect in labels:
        assert re.fullmatch(r"-?[1-9]\d{0,2}(,\d{3})*|0", text), text
        step = int(text.replace(",", ""))
        assert lo <= step <= hi, (text, lo, hi)
        at = axis.mapFromScene(view.plot.vb.mapViewToScene(QtCore.QPointF(step, 0))).x()
        assert abs(rect.center().x() - at) < 1.0, (text, rect.center().x(), at)
    for (_, left), (_, right) in zip(labels, labels[1:]):
        assert left.right() < right.left()
    return labels


@pytest.mark.parametrize("lo, hi, least", [(-1_200.5, -1_000.5, 2), (-60.5, 40.5, 2), (10.2, 11.8, 1),
                                           (4.6, 5.4, 1)])
def test_negative_ranges_and_views_under_two_steps_get_whole_step_labels(qtbot, lo, hi, least):
    """Panned left of step 0 the labels are negative integers ("-1,100"); zoomed in to under two
    steps no fractional label appears, only the whole steps inside the view."""
    view = HeatmapView("h")
    qtbot.addWidget(view)
    view.resize(600, 250)
    with qtbot.waitExposed(view):
        view.show()
    view.set_data(np.zeros((50, 12), np.float32), (-1, 1), t0=0)
    view.plot.setXRange(lo, hi, padding=0)
    QtWidgets.QApplication.processEvents()
    assert len(checked_step_labels(view, lo, hi)) >= least


@pytest.mark.parametrize("least, expected", [(1.0, 1.0), (1.01, 2.0), (2.2, 5.0), (7.0, 10.0), (26.0, 50.0),
                                             (1000.0, 1000.0), (1001.0, 2000.0)])
def test_step_labels_are_spaced_by_1_2_or_5_times_a_power_of_ten(least, expected):
    assert nice_ceil(least, STEP_MANTISSAS) == expected


def test_the_cursor_is_drawn_at_its_step_and_moving_it_repaints_two_columns(qtbot, heatmap):
    """The cursor is a light line through its step's cells; moved a step, it repaints its old
    and new columns only, and the line leaves the old column."""
    H, W = 16, 50
    values = np.full((W, H), -1.0, np.float32)  # (T, H): the diverging map's dark blue end everywhere
    heatmap.plot.setXRange(-0.5, W - 0.5, padding=0)
    heatmap.plot.setYRange(-0.5, H - 0.5, padding=0)
    heatmap.set_data(values, (-1, 1), t0=0, room=W)
    heatmap.set_cursor(20)
    settle(heatmap.image)
    vb, viewport = heatmap.plot.vb, heatmap.viewport()

    def brightness(step) -> int:
        """The brightest pixel (sum of R, G, B) within a pixel of step ``step``'s centre, mid-height."""
        point = heatmap.mapFromScene(vb.mapViewToScene(QtCore.QPointF(step, H / 2)))
        image = viewport.grab().toImage()
        return max(sum(image.pixelColor(x, point.y()).getRgb()[:3]) for x in range(point.x() - 1, point.x() + 2))

    assert brightness(20) > brightness(25) + 200  # the line, over the cells' colour
    painted = heatmap.image.painted_area
    heatmap.set_cursor(21)
    qtbot.waitUntil(lambda: heatmap.image.painted_area > painted)
    settle(heatmap.image)
    assert heatmap.image.painted_area - painted <= 2 * 2 * H  # the old and the new column (and their edges)
    assert brightness(21) > brightness(20) + 200 and abs(brightness(20) - brightness(25)) < 30
    heatmap.set_cursor(None)
    settle(heatmap.image)
    assert abs(brightness(21) - brightness(25)) < 30


def test_repaints_reuse_the_axes_bounding_rectangles_until_their_geometry_changes(qtbot, heatmap, monkeypatch):
    """Qt asks every axis for its bounding rectangle on each repaint of a view; the heatmap's
    left and step axes (``BoundedAxis``) compute it once per geometry (pyqtgraph's
    ``AxisItem.boundingRect``), and what they return is what pyqtgraph computes."""
    heatmap.set_data(np.zeros((50, 8), np.float32), (-1, 1))
    axes = [heatmap.plot.getAxis("left"), heatmap.plot.getAxis("bottom")]
    for _ in range(3):
        heatmap.viewport().repaint()
    computed = []
    compute = pg.AxisItem.boundingRect
    monkeypatch.setattr(pg.AxisItem, "boundingRect", lambda self: computed.append(self) or compute(self))
    for _ in range(5):
        heatmap.viewport().repaint()
    assert not set(computed) & set(axes)
    assert [compute(axis) for axis in axes] == [axis.boundingRect() for axis in axes]
    heatmap.resize(640, 360)  # new geometry: computed again
    qtbot.waitUntil(lambda: set(axes) <= set(computed))
    assert [compute(axis) for axis in axes] == [axis.boundingRect() for axis in axes]
    for axis, style in zip(axes, ({"tickLength": -10}, {"hideOverlappingLabels": False})):
        before = axis.boundingRect()
        axis.setStyle(**style)  # a style the rectangle depends on: computed again
        assert axis.boundingRect() == compute(axis) != before
