"""The main window's panels show exactly what the engine computes, while stepping and editing."""

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine.data import display_char
from lstmviz.panels.gates import WINDOW
from lstmviz.core.levels import CELL_LEVEL_PERCENTILE
from lstmviz.panels.step import TOP_K, TRUE_NEXT
from lstmviz.plots import GATE_STYLE

from .conftest import TEXT
from .helpers import assert_heatmaps_equal_trace

NAMES = ("f", "i", "o", "g", "c", "h")


def assert_heatmaps_match(window, text, layer=0):
    """Every heatmap equals the engine's whole-sequence trace of ``text`` over the drawn window."""
    s = window.session
    assert_heatmaps_equal_trace(window, s.model.trace(s.vocab.encode(text)), NAMES, layer)


def test_after_n_steps_heatmaps_equal_engine_trace(window, qtbot):
    s = window.session
    for _ in range(17):
        assert s.step()
    assert s.t == 17
    assert_heatmaps_match(window, TEXT)
    window.panel("gates").layer_box.setCurrentIndex(1)
    window.panel("gates").layer_box.activated.emit(1)
    assert s.layer == 1
    assert_heatmaps_match(window, TEXT, layer=1)


def test_cell_state_levels_are_symmetric_over_whole_text(window):
    s = window.session
    s.seek(3)
    c = s.model.trace(s.vocab.encode(TEXT)).gate("c", 0)
    lo, hi = window.panel("gates").views["c"].colorbar.levels()
    assert lo == -hi and hi >= np.percentile(np.abs(c), CELL_LEVEL_PERCENTILE)  # from the whole text
    assert window.panel("gates").views["f"].colorbar.levels() == GATE_STYLE["f"].levels
    s.seek(40)
    assert window.panel("gates").views["c"].colorbar.levels() == (lo, hi)


def test_cell_state_levels_reach_the_heatmap_when_the_pass_worker_delivers_them(window, qtbot):
    s = window.session  # nothing steps or seeks: the levels' arrival alone must redraw the heatmap
    view = window.panel("gates").views["c"]
    qtbot.waitUntil(lambda: not s._levels_pending and not s.passing, timeout=10_000)
    c = s.model.trace(s.vocab.encode(TEXT)).gate("c", 0)
    m = view.colorbar.levels()[1]
    assert view.image.getLevels() == view.colorbar.levels() == (-m, m)
    assert m >= np.percentile(np.abs(c), CELL_LEVEL_PERCENTILE) > 0.01  # the text's, not the interim default


def test_back_then_forward_shows_identical_images(window):
    s = window.session
    s.seek(30)
    before = {n: window.panel("gates").views[n].displayed_image().copy() for n in NAMES}
    for _ in range(6):
        assert s.back()
    assert window.panel("gates").views["h"].displayed_image().shape[1] == 24
    for _ in range(6):
        assert s.step()
    for n in NAMES:
        assert np.array_equal(window.panel("gates").views[n].displayed_image(), before[n]), n


def test_keyboard_shortcuts_step_when_not_editing(window, qtbot):
    s = window.session
    window.panel("gates").views["h"].setFocus()
    qtbot.keyClick(window, QtCore.Qt.Key_Right)
    qtbot.keyClick(window, QtCore.Qt.Key_Right)
    assert s.t == 2
    qtbot.keyClick(window, QtCore.Qt.Key_Left)
    assert s.t == 1
    qtbot.keyClick(window, QtCore.Qt.Key_End)
    assert s.t == len(TEXT)
    qtbot.keyClick(window, QtCore.Qt.Key_Home)
    assert s.t == 0


def test_editing_text_recomputes_from_edit_point(window, qtbot):
    s = window.session
    s.seek(40)
    kept = window.panel("gates").views["c"].displayed_image()[:, :8].copy()
    edited = TEXT[:8] + "xyz" + TEXT[8:]
    window.panel("text").editor.setPlainText(edited)
    qtbot.waitUntil(lambda: s.text == edited, timeout=3000)
    assert s.t == 40
    assert np.array_equal(window.panel("gates").views["c"].displayed_image()[:, :8], kept)
    assert_heatmaps_match(window, edited)


def test_a_step_reads_only_the_new_step_and_an_edit_recolours_the_steps_it_changed(window, qtbot, monkeypatch):
    """While the records drawn stay the records (``Session.records_revision``), a step reads one
    step for the heatmaps, not the drawn window; an edit that changes steps already drawn makes
    them read and coloured again: the heatmaps then equal the engine's trace of the edited text
    and their cells are the colours of those values."""
    from .test_plots import canvas_rgb
    from lstmviz.plots import value_colours

    s = window.session
    s.seek(50)
    QtWidgets.QApplication.processEvents()
    read = []
    records = s.records
    monkeypatch.setattr(s, "records", lambda lo, hi: read.append(hi - lo) or records(lo, hi))
    for _ in range(5):
        read.clear()
        assert s.step()
        window.panel("gates").refresh()  # as the event loop would
        assert read and max(read) == 1  # the new step only, shared with the other panels
    views = window.panel("gates").views
    written = {n: views[n].image.colours_written for n in NAMES}
    edited = TEXT[:30] + ("x" if TEXT[30] != "x" else "y") + TEXT[31:]  # step 30 of the 55 drawn
    s.set_text(edited)
    window.panel("gates").refresh()
    assert s.t == 55
    assert_heatmaps_match(window, edited)
    H = s.hidden_size
    for n in NAMES:
        view = views[n]
        assert view.image.colours_written - written[n] >= 25 * H, n  # steps 30..54 changed
        levels = view.image.getLevels()
        expected = np.stack([value_colours(n, view.displayed_image()[u], levels) for u in range(H)])
        assert np.array_equal(canvas_rgb(view, range(55)), expected), n


def test_characters_outside_vocab_are_refused_and_reported(window, qtbot):
    s = window.session
    window.panel("text").editor.setPlainText("Q" + TEXT + "€")
    window.panel("text").apply_edit()
    assert s.text == TEXT
    assert window.panel("text").editor.toPlainText() == TEXT
    assert "'Q'" in window.statusBar().currentMessage() and "'€'" in window.statusBar().currentMessage()


def test_current_step_strips_are_one_item_coloured_as_the_heatmaps(window, qtbot):
    """Every strip is a column of one item's image, each cell the colour its heatmap gives that
    value (the 256-bin lookup of its quantity at its levels), in the colour-blind maps too."""
    from lstmviz.panels.step import Strips
    from lstmviz.plots import value_colours

    s = window.session
    panel = window.panel("step")
    assert [type(item) for item in panel.vectors.items if isinstance(item, Strips)] == [Strips]
    reference = s.model.trace(s.vocab.encode(TEXT))
    for colorblind in (False, True):
        s.set_colorblind(colorblind)
        s.seek(10 + colorblind)
        image = panel.strip_image.qimage
        assert (image.width(), image.height()) == (len(s.names), s.hidden_size)
        for k, name in enumerate(s.names):
            values = reference.gate(name, 0)[9 + colorblind].astype(np.float32)  # (H,) as drawn
            expected = value_colours(name, values, s.levels(name, 0), colorblind)  # (H, 3)
            drawn = [QtGui.QColor(image.pixel(k, r)).getRgb()[:3] for r in range(s.hidden_size)]
            assert drawn == [tuple(int(v) for v in rgb) for rgb in expected], (name, colorblind)


def test_current_step_panel_shows_vectors_and_top_predictions(window):
    s = window.session
    s.seek(10)
    reference = s.model.trace(s.vocab.encode(TEXT))
    panel = window.panel("step")
    np.testing.assert_allclose(panel.strips["f"].image[:, 0], reference.gate("f", 0)[9], atol=1e-6)
    probs = reference.outputs[9]
    best = np.argsort(-probs)[: len(panel.top)]
    assert [c for c, _ in panel.top] == [s.vocab.chars[i] for i in best]
    assert panel.top[0][1] == pytest.approx(probs.max())
    assert panel.row_labels.rows() == [(display_char(s.vocab.chars[i]), f"{probs[i]:.2f}") for i in best]
    np.testing.assert_allclose(panel.bars.widths(), probs[best], rtol=1e-6)  # a bar per row, top first
    red = [item.brush().color().getRgb()[:3] == TRUE_NEXT for item in panel.bars.items if item.isVisible()]
    assert red == [i == s.vocab.index(TEXT[10]) for i in best]  # the true next character's bar is red


def test_prediction_labels_are_painted_level_with_their_bars_after_resizes(window, qtbot):
    """The row labels map their rows to the view once per geometry: after the plots are resized
    or the rows' range changes (the rows move), each label is still painted at the height of
    its bar's centre."""
    s = window.session
    s.seek(10)
    panel = window.panel("step")
    labels = panel.row_labels
    seen = set()
    for height, rows in ((300, TOP_K), (420, TOP_K + 2), (360, TOP_K)):
        panel.plots.setFixedHeight(height)
        panel.predictions.setYRange(-0.5, rows - 0.5, padding=0)
        painted = labels.painted
        qtbot.waitUntil(lambda: labels.painted > painted)
        for _ in range(5):
            QtWidgets.QApplication.processEvents()
        top, pitch = labels._rows_at  # where the last paint put row j: top + j * pitch
        seen.add((round(top, 3), round(pitch, 3)))
        for j, bar in enumerate(item for item in panel.bars.items if item.isVisible()):
            centre = labels.mapFromScene(bar.mapToScene(bar.rect().center())).y()
            assert top + j * pitch == pytest.approx(centre, abs=1e-6), (height, j)
    assert len(seen) == 3  # the rows moved each time


def test_current_step_panel_behind_a_tab_waits_then_shows_the_current_step(window, qtbot):
    """Behind another tab (the loss curve takes its place while training) the panel skips
    updates; when its tab comes forward it shows the current step's vectors and predictions."""
    s = window.session
    other = window.docks["loss"]  # in the current step's tab group
    assert window.docks["step"] in window.tabifiedDockWidgets(other)
    other.raise_()
    panel = window.panel("step")
    qtbot.waitUntil(lambda: panel.visibleRegion().isEmpty())
    s.seek(4)
    top_before = list(panel.top)
    s.seek(12)
    assert panel.top == top_before  # not recomputed while hidden
    window.docks["step"].raise_()
    reference = s.model.trace(s.vocab.encode(TEXT))
    qtbot.waitUntil(lambda: not panel.visibleRegion().isEmpty())
    np.testing.assert_allclose(panel.strips["f"].image[:, 0], reference.gate("f", 0)[11], atol=1e-6)
    best = np.argsort(-reference.outputs[11])[: len(panel.top)]
    assert [c for c, _ in panel.top] == [s.vocab.chars[i] for i in best]


def test_set_model_reruns_current_text_to_current_step(window, model):
    s = window.session
    s.seek(25)
    from engine import ModelConfig, SequenceModel

    other = SequenceModel(ModelConfig(**model.config.to_dict()), rng=np.random.default_rng(11))
    s.set_model(other, s.vocab)
    assert s.t == 25 and s.model is other
    assert_heatmaps_match(window, TEXT)


def test_long_seek_catches_up_in_chunks(window, qtbot, monkeypatch):
    import lstmviz.session as session_module

    monkeypatch.setattr(session_module, "CATCHUP_BUDGET_S", 1e-9)  # one block per chunk, however fast the machine
    monkeypatch.setattr(session_module, "SYNC_STEPS", 0)
    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 10)  # the vectorised pass covers 10 steps
    monkeypatch.setattr(session_module, "CHECKPOINT_EVERY", 16)
    monkeypatch.setattr(session_module._PassWorker, "work", lambda self: None)  # no pass rows arrive before the cancel
    s = window.session
    long_text = TEXT * 4
    s.set_model(s.model, s.vocab)  # a cursor with the patched checkpoint spacing
    s.set_text(long_text)
    s.cancel_pass()  # the seek alone catches up
    s.seek(0)
    seen = []
    s.stepped.connect(seen.append)
    s.seek(len(long_text))
    assert s.seeking and s.t < len(long_text)
    qtbot.waitUntil(lambda: not s.seeking, timeout=60000)
    assert s.t == len(long_text) and len(seen) > 2
    assert_heatmaps_match(window, long_text)
    assert window.panel("gates").views["h"].displayed_image().shape[1] == WINDOW


def test_refused_character_leaves_the_caret_where_the_user_was_typing(window, qtbot):
    """Typing an unknown character in the middle: it is removed and the caret stays after the
    last accepted character instead of jumping to the start."""
    editor = window.panel("text").editor
    cursor = editor.textCursor()
    cursor.setPosition(12)
    editor.setTextCursor(cursor)
    editor.insertPlainText("€")  # typed at position 12 (QTest.keyClicks aborts on non-Latin-1 text)
    window.panel("text").apply_edit()
    assert window.session.text == TEXT and editor.toPlainText() == TEXT
    assert editor.textCursor().position() == 12


def test_first_pass_runs_between_gui_events_with_progress_and_can_be_cancelled(window, qtbot, monkeypatch):
    """The first pass computes the checkpoints in chunks driven by a timer (progress goes to the
    status bar); cancelled it stops, restarted after an edit it resumes from the change."""
    import lstmviz.session as session_module

    monkeypatch.setattr(session_module, "CHECKPOINT_EVERY", 16)
    monkeypatch.setattr(session_module, "PASS_BUDGET_S", 0.0)  # one block per GUI event
    monkeypatch.setattr(session_module, "PASS_REPORT_S", 0.0)
    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 10)  # the levels' forward covers 10 steps
    s = window.session
    long_text = TEXT * 4
    progress, messages = [], []
    s.pass_progress.connect(lambda done, total: progress.append((done, total)))
    s.message.connect(messages.append)
    s.set_model(s.model, s.vocab)
    s.set_text(long_text)
    assert s.passing and s.stepper.computed < len(long_text)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    assert s.stepper.done and progress[-1] == (len(long_text), len(long_text))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress) and len(progress) > 5
    assert messages[-1].startswith("First pass done")
    edited = long_text[:200] + "x" + long_text[201:]
    s.set_text(edited)
    assert s.passing and s.stepper.computed == 192
    s.cancel_pass()
    assert not s.passing and "stopped" in messages[-1]
    s.seek(len(edited))
    assert_heatmaps_match(window, edited)


def painted(window) -> dict:
    """Work counters of the per-step drawing: cells coloured and area painted (in cells) of every
    heatmap and current-step strip, paints of the prediction labels, characters recoloured."""
    views = window.panel("gates").views
    strips = window.panel("step").strips
    return {**{("heatmap", n): (v.image.colours_written, v.image.painted_area) for n, v in views.items()},
            **{("strip", n): (item.colours_written, item.painted_area) for n, item in strips.items()},
            "labels": window.panel("step").row_labels.painted}


def test_a_step_colours_one_column_and_repaints_a_bounded_strip_of_each_heatmap(window, qtbot):
    """Stepping costs what one new step costs, not what the drawn window holds: each heatmap
    colours one new column (H cells) and repaints a narrow strip around it and the cursor; each
    current-step strip colours its H cells; the text panel colours one new character."""
    s = window.session
    s.select(0, 3, -1)  # the text coloured by a unit too
    s.seek(20)  # the time axis shows steps 0..WINDOW-1 until the cursor passes WINDOW: no page jump below
    H = s.hidden_size
    qtbot.waitUntil(lambda: all(v.image.painted_area > 0 for v in window.panel("gates").views.values()
                                if v.isVisible()))
    for _ in range(10):
        QtWidgets.QApplication.processEvents()  # the first paints of the new layout
    for _ in range(12):
        before = painted(window)
        assert s.step()
        qtbot.waitUntil(lambda: all(painted(window)[("heatmap", n)][1] > before[("heatmap", n)][1] for n in NAMES))
        after = painted(window)
        for n in NAMES:
            coloured, area = (a - b for a, b in zip(after[("heatmap", n)], before[("heatmap", n)]))
            assert coloured == H, n  # the new step's column, not the WINDOW columns drawn
            assert area <= (WINDOW // 8) * H, n  # a few columns around the cursor
            assert after[("strip", n)][0] - before[("strip", n)][0] == H, n
        assert after["labels"] - before["labels"] <= 1
        assert window.panel("text").recoloured == 1
    assert_heatmaps_match(window, TEXT)


def on_screen(window, widget) -> np.ndarray:
    """The pixels ``widget`` shows now ``(h, w) uint32``, as the window's backing store holds them
    after the paints so far (not painted afresh)."""
    shot = window.screen().grabWindow(window.winId()).toImage()
    shot = shot.copy(QtCore.QRect(widget.mapTo(window, QtCore.QPoint(0, 0)), widget.size()))
    return rgb32(shot)


def rgb32(image) -> np.ndarray:
    """An image's pixels ``(h, w) uint32`` (RGB32)."""
    image = image.convertToFormat(QtGui.QImage.Format_RGB32)
    return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), -1)[:, : image.width()].copy()


def test_heatmaps_painted_a_step_at_a_time_look_as_painted_whole(window, qtbot):
    """Partial repaints leave no seams: what is on screen after stepping equals a fresh paint."""
    s = window.session
    s.select(0, 3, -1)  # the unit marker crosses every repainted strip
    s.seek(10)
    for _ in range(10):
        QtWidgets.QApplication.processEvents()
    for _ in range(25):
        assert s.step()
        QtWidgets.QApplication.processEvents()
    for _ in range(10):
        QtWidgets.QApplication.processEvents()
    for name in NAMES:
        viewport = window.panel("gates").views[name].viewport()
        assert np.array_equal(on_screen(window, viewport), rgb32(viewport.grab().toImage())), name


def test_heatmaps_behind_a_tab_do_no_work_per_step_and_catch_up_when_shown(window, qtbot):
    """Behind another tab the heatmaps colour nothing while stepping (the time axis they share
    with other views still follows the cursor); brought to the front they show the engine's
    values at the cursor."""
    s = window.session
    s.set_text(TEXT * 6)  # longer than the drawn window
    gates = window.panel("gates")
    other = window.docks["gradflow"]  # in the heatmaps' tab group
    assert window.docks["gates"] in window.tabifiedDockWidgets(other)
    other.raise_()
    qtbot.waitUntil(lambda: gates.visibleRegion().isEmpty())
    before = painted(window)
    for _ in range(WINDOW + 5):  # past the first page of the time axis
        assert s.step()
    after = painted(window)
    assert all(after[("heatmap", n)][0] == before[("heatmap", n)][0] for n in NAMES)  # nothing coloured
    lo, hi = gates.views["h"].plot.viewRange()[0]
    assert lo < s.t - 1 < hi  # the shared time axis followed the cursor
    window.docks["gates"].raise_()
    qtbot.waitUntil(lambda: not gates.visibleRegion().isEmpty())
    assert_heatmaps_match(window, TEXT * 6)


def test_a_step_leaves_the_time_axes_alone_while_the_cursor_is_in_view(window, qtbot):
    """The heatmaps follow the cursor by pages: a step inside the shown range moves no view
    (a range change repaints whole views and their axes)."""
    s = window.session
    s.set_text(TEXT * 6)
    s.seek(WINDOW + 3)
    QtWidgets.QApplication.processEvents()
    views = window.panel("gates").views
    ranges = {n: views[n].plot.viewRange() for n in NAMES}
    assert ranges["h"][0][0] < s.t - 1 < ranges["h"][0][1]
    changes = []
    views["h"].plot.sigXRangeChanged.connect(lambda *_: changes.append(s.t))
    steps = round(ranges["h"][0][1] + 0.5) - s.t  # steps until the cursor is the last step in view
    for _ in range(steps):
        assert s.step()
    assert changes == [] and {n: views[n].plot.viewRange() for n in NAMES} == ranges
    assert s.step()  # past the right edge: one jump
    assert len(changes) == 1 and views["h"].plot.viewRange()[0][0] < s.t - 1 < views["h"].plot.viewRange()[0][1]


class PaintRegions(QtCore.QObject):
    """Records the region of every paint event of the widgets it is installed on."""

    def __init__(self, *widgets):
        super().__init__()
        self.regions = {w: [] for w in widgets}
        for w in widgets:
            w.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QtCore.QEvent.Paint and obj in self.regions:
            self.regions[obj].append(QtGui.QRegion(event.region()))
        return False


def test_a_step_repaints_each_plot_as_one_small_rectangle(window, qtbot):
    """Per step, each heatmap repaints one narrow rectangle (the new column and the cursor) and
    the current-step plots one rectangle (their columns, bars and labels), never a region of
    many rectangles (clipping to many rectangles costs more than painting their bounding one)."""
    s = window.session
    s.select(0, 3, -1)
    s.seek(30)
    for _ in range(10):
        QtWidgets.QApplication.processEvents()
    heatmaps = [window.panel("gates").views[n].viewport() for n in NAMES]
    step_view = window.panel("step").plots.viewport()
    regions = PaintRegions(step_view, *heatmaps)
    for _ in range(10):
        assert s.step()
        QtWidgets.QApplication.processEvents()
    assert len(regions.regions[step_view]) >= 10
    assert all(r.rectCount() == 1 for r in regions.regions[step_view])
    for viewport in heatmaps:
        assert len(regions.regions[viewport]) >= 10
        for region in regions.regions[viewport]:
            assert region.rectCount() == 1
            assert region.boundingRect().width() <= viewport.width() // 8
