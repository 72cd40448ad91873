"""What a step repaints, counted (never timed): the repainted regions of the heatmaps and the
text stay as small at the end of a long text as at its start, the step panel's titles are never
measured while stepping, and the cell-state levels redraw only the views drawn with them."""

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from engine import ModelConfig, SequenceModel
from engine.data import CharVocab
from lstmviz.panels.gates import WINDOW
from lstmviz.readout import Readout

from .conftest import TEXT
from .test_gui_stepping import NAMES, PaintRegions

LONG = TEXT * 120  # ~8,000 steps: many drawn windows long


def settle() -> None:
    for _ in range(10):
        QtWidgets.QApplication.processEvents()


def step_regions(window, s, widgets: list, steps: int = 8) -> dict:
    """The regions each of ``widgets`` repaints over ``steps`` steps (one turn of the event loop each)."""
    regions = PaintRegions(*widgets)
    for _ in range(steps):
        assert s.step()
        QtWidgets.QApplication.processEvents()
    for widget in widgets:
        widget.removeEventFilter(regions)
    return regions.regions


def px_per_step(view) -> float:
    vb = view.plot.vb
    return vb.mapViewToScene(QtCore.QPointF(1, 0)).x() - vb.mapViewToScene(QtCore.QPointF(0, 0)).x()


def test_a_step_repaints_a_column_and_the_cursor_of_each_heatmap_and_a_line_of_text_whatever_the_position(
        window, qtbot):
    """Per step each heatmap repaints one rectangle at most two steps and a cursor's width wide
    (the new column, the cursor's old and new places; never the whole image or view) and the
    text one or two lines, as many pixels at the end of a long text as at its start."""
    s = window.session
    s.set_text(LONG)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    s.select(0, 3, -1)  # the text coloured by a unit: every character on screen has a selection
    views = window.panel("gates").views
    heatmaps = [views[n].viewport() for n in NAMES]
    text = window.panel("text").editor.viewport()
    line = QtGui.QFontMetricsF(window.panel("text").editor.font()).lineSpacing()
    widths = {}
    for start in (WINDOW + 10, len(LONG) - 20):  # near the start and at the end of the text
        s.seek(start)
        settle()
        regions = step_regions(window, s, heatmaps + [text])
        for name, viewport in zip(NAMES, heatmaps):
            assert len(regions[viewport]) >= 8, name  # a repaint per step
            bound = 2 * px_per_step(views[name]) + 8  # the column and a 1.5 px cursor, antialiasing margins
            assert all(r.boundingRect().width() <= bound for r in regions[viewport]), (name, start)
            assert all(r.boundingRect().height() <= viewport.height() for r in regions[viewport])
        assert regions[text] and all(r.boundingRect().height() <= 2 * line + 8 for r in regions[text]), start
        widths[start] = [r.boundingRect().width() for v in heatmaps for r in regions[v]]
    assert max(widths[len(LONG) - 20]) <= max(widths[WINDOW + 10]) + 2  # the position changes nothing


def test_the_step_titles_are_never_measured_while_stepping(window, monkeypatch):
    """The titles have reserved sizes: a step shows new rich titles without laying them out to
    measure them (``sizeHint``) and without changing their size (so no layout follows)."""
    s = window.session
    step = window.panel("step")
    s.seek(5)
    settle()
    sizes = (step.vectors_title.size(), step.predictions_title.size())
    measured = []
    hint = Readout.sizeHint
    monkeypatch.setattr(Readout, "sizeHint", lambda self: measured.append(self) or hint(self))
    titles = set()
    for _ in range(10):
        assert s.step()
        titles.add(step.vectors_title.text())
    assert len(titles) == 10 and not {step.vectors_title, step.predictions_title} & set(measured)
    assert (step.vectors_title.size(), step.predictions_title.size()) == sizes


def test_a_longer_text_widens_the_reserved_title(window):
    """The vectors title is reserved for the last step of the text: a longer text's step
    numbers have more digits, and the title grows with them."""
    s, title = window.session, window.panel("step").vectors_title
    before = title.width()
    s.set_text(TEXT * 200)  # step numbers of five digits instead of two
    assert title.width() > before


def test_the_predictions_title_has_room_for_the_vocabularys_longest_shown_character(window):
    """A character that is not printable is shown as ``\\uXXXX``: the predictions title is
    reserved wide enough for the widest title it shows, that of such a character missed by the
    top 10, in the title's own font."""
    s, title = window.session, window.panel("step").predictions_title
    text = TEXT + "\xa0\x0c"
    vocab = CharVocab.from_text(text)
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=12, num_layers=2, dtype="float64")
    s.set_model(SequenceModel(cfg, rng=np.random.default_rng(3)), vocab)
    s.set_text(text)
    for shown in ("\\u00a0", "\\u000c"):
        widest = QtWidgets.QLabel(f"next: <b>{shown}</b> (p=0.000, not in top 10)")
        widest.setFont(title.font())
        assert title.width() >= widest.sizeHint().width()


def test_the_cell_levels_redraw_the_views_drawn_with_them_not_the_colour_maps(window, qtbot):
    """When the first pass delivers the cell-state levels, ``levels_changed`` (not
    ``colormap_changed``) fires: the c heatmap takes the levels, the colour maps stay."""
    s = window.session
    colormaps, levels = [], []
    s.colormap_changed.connect(colormaps.append)
    s.levels_changed.connect(lambda: levels.append(s.levels("c", 0)))
    view = window.panel("gates").views["c"]
    colormap = view.colorbar.colorMap()
    s.set_text(TEXT * 50)  # new cell-state levels from the pass
    qtbot.waitUntil(lambda: not s.passing and bool(levels), timeout=20000)
    s.seek(30)
    assert colormaps == [] and view.colorbar.colorMap() is colormap
    assert tuple(view.colorbar.levels()) == tuple(levels[-1]) == tuple(s.levels("c", 0))
    assert np.array_equal(view.image.getLevels(), levels[-1])


def cursor_picture(item, transform: QtGui.QTransform, widget, ratio: float = 1.0) -> np.ndarray:
    """``item`` painted whole through ``transform`` on a grey ARGB32 picture (pixels ``(h, w)``)
    of device pixel ratio ``ratio``."""
    picture = QtGui.QImage(260, 200, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    picture.setDevicePixelRatio(ratio)
    picture.fill(QtGui.QColor(40, 40, 40))
    painter = QtGui.QPainter(picture)
    painter.setTransform(transform)
    option = QtWidgets.QStyleOptionGraphicsItem()
    option.exposedRect = item.boundingRect()
    item.paint(painter, option, widget)
    painter.end()
    return np.frombuffer(picture.constBits(), np.uint32).reshape(200, 260).copy()


def cursor_item(qtbot, monkeypatch):
    """A widget, a ``ColumnImage`` of 30 steps from step 1000 with its cursor at 1017, and the
    list that records what each ``_blit_line`` call returned (True: the blit drew the line)."""
    from lstmviz.plots import CURSOR_PEN, ColumnImage
    widget = QtWidgets.QWidget()
    qtbot.addWidget(widget)
    item = ColumnImage()
    item.set_image(np.random.default_rng(1).random((40, 30)), t0=1000)
    item.set_cursor(1017, CURSOR_PEN)
    blitted = []
    blit = ColumnImage._blit_line
    monkeypatch.setattr(ColumnImage, "_blit_line", lambda *a: blitted.append(blit(*a)) or blitted[-1])
    return widget, item, blitted


def test_the_heatmap_cursor_has_the_pixels_of_qts_own_line_at_any_scale(qtbot, monkeypatch):
    """The cursor, blitted as one small image, covers exactly the pixels with exactly the
    colours that QPainter.drawLine gives the cursor's pen, at random scales and offsets."""
    from lstmviz.plots import ColumnImage
    widget, item, drawn = cursor_item(qtbot, monkeypatch)
    rng = np.random.default_rng(7)
    for _ in range(200):
        sx, sy, dx, dy = rng.uniform(0.4, 6), rng.uniform(0.5, 4.5), rng.uniform(0, 40), rng.uniform(0, 20)
        transform = QtGui.QTransform(sx, 0, 0, sy, dx - 1000 * sx, dy)
        fast = cursor_picture(item, transform, widget)
        with monkeypatch.context() as m:
            m.setattr(ColumnImage, "_blit_line", lambda *a: False)
            line = cursor_picture(item, transform, widget)
        assert np.array_equal(fast, line), (sx, sy, dx, dy)
    assert drawn == [True] * 200  # the blit drew every one of them


def test_the_heatmap_cursor_on_a_scaled_paint_device_is_qts_own_line(qtbot, monkeypatch):
    """On a paint device of device pixel ratio 2 (a scaled screen's backing store) the blit's
    pixel rule does not hold, whatever the widget's own ratio (1 here): the cursor is drawn by
    ``drawLine``."""
    from lstmviz.plots import ColumnImage
    widget, item, blitted = cursor_item(qtbot, monkeypatch)
    assert widget.devicePixelRatioF() == 1.0
    transform = QtGui.QTransform(3, 0, 0, 2, 5 - 1000 * 3, 4)
    scaled = cursor_picture(item, transform, widget, ratio=2.0)
    with monkeypatch.context() as m:
        m.setattr(ColumnImage, "_blit_line", lambda *a: False)
        line = cursor_picture(item, transform, widget, ratio=2.0)
    assert blitted == [False] and np.array_equal(scaled, line)


def test_the_time_slider_repaints_only_when_its_handle_moves(window, qtbot):
    """On a long text a step moves the slider's handle by less than a pixel: stepping repaints
    the slider only when the handle's pixel position changes, and always shows the step."""
    s = window.session
    slider = window.panel("transport").slider
    s.set_text(LONG)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    s.seek(100)
    settle()
    steps_per_px = s.steps / (slider.width() - slider.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_SliderLength))
    assert steps_per_px > 4  # several steps per pixel of the handle's track
    before = slider.painted
    for _ in range(40):
        assert s.step()
        QtWidgets.QApplication.processEvents()
        assert slider.value() == s.t
    painted = slider.painted - before
    assert 40 / steps_per_px - 2 <= painted <= 40 / steps_per_px + 2  # once per pixel moved
    s.seek(s.steps)  # the handle jumps to the end: repainted there
    settle()
    assert slider.painted > before + painted
