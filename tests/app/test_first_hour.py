"""The first hour of a learner (issue 20): numbers never break across lines, every panel names
the same step, replacing a model or text asks first, and the orientation aids are there."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtWidgets

ROOT = Path(__file__).resolve().parents[2]


def wrapped_blocks(document) -> list:
    """Every text block (table cells included) laid out on more lines than its explicit line
    breaks make: ``[(text, lines)]``; empty when no text wraps."""
    out = []
    block = document.firstBlock()
    while block.isValid():
        lines = block.layout().lineCount()
        if lines > 1 + block.text().count("\u2028"):
            out.append((block.text(), lines))
        block = block.next()
    return out


def show_equations(window, unit=5, seek=30):
    s = window.session
    s.seek(seek)
    s.select(0, unit, -1)
    window.docks["equations"].raise_()
    inspector = window.panel("equations")
    inspector.refresh()
    QtWidgets.QApplication.processEvents()
    return inspector


def test_equations_keep_every_number_and_header_on_one_line(window):
    inspector = show_equations(window)
    assert "+ h" in inspector.toPlainText() and inspector.values  # the table is there
    assert wrapped_blocks(inspector.document()) == []
    window.resize(window.minimumSizeHint())  # the smallest the window allows
    QtWidgets.QApplication.processEvents()
    inspector.refresh()
    assert inspector.viewport().width() < inspector.document().idealWidth() + 400  # laid out, not empty
    assert wrapped_blocks(inspector.document()) == []


def test_equations_a_narrow_panel_scrolls_instead_of_wrapping(window):
    inspector = show_equations(window)
    inspector.setMinimumWidth(0)
    window.docks["equations"].setFloating(True)
    window.docks["equations"].resize(200, 300)
    QtWidgets.QApplication.processEvents()
    inspector.refresh()
    assert inspector.viewport().width() < inspector.document().idealWidth()  # narrower than its text
    assert wrapped_blocks(inspector.document()) == []
    assert inspector.horizontalScrollBar().maximum() > 0


SCALED = """
import sys
from PySide6 import QtCore, QtWidgets
from lstmviz.app import build_window
from tests.app.test_first_hour import wrapped_blocks
app = QtWidgets.QApplication([])
app.setStyle("Fusion")
window = build_window(settings=QtCore.QSettings(sys.argv[1], QtCore.QSettings.IniFormat))
window.show()
app.processEvents()
window.docks["equations"].raise_()
inspector = window.panel("equations")
inspector.refresh()
app.processEvents()
assert inspector.values, "the demo unit is selected"
print(repr(wrapped_blocks(inspector.document())))
"""


def last_line_at_twice_the_scale(script: str, tmp_path, timeout: int) -> str:
    """The last line ``script`` prints, run in a fresh offscreen process at QT_SCALE_FACTOR=2
    (argv[1]: a settings file)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "s.ini")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_equations_do_not_wrap_at_twice_the_scale(tmp_path):
    assert last_line_at_twice_the_scale(SCALED, tmp_path, 120) == "[]"


def test_every_panel_names_the_same_step(window, qtbot):
    s = window.session
    s.seek(40)
    s.select(0, 5, -1)
    s.step()  # 41 characters read: trace index 40 is "step 41"
    expected = "step 41"

    def shown(name, read):
        window.docks[name].raise_()  # a panel behind a tab catches up when it comes forward
        QtWidgets.QApplication.processEvents()
        return read(window.panel(name))

    texts = {
        "transport": window.panel("transport").position.text(),
        "status bar": window.position_label.text(),
        "current step": shown("step", lambda p: p.vectors_title.text()),
        "equations": shown("equations", lambda p: p.toPlainText()),
        "cell diagram": shown("diagram", lambda p: p.title),
    }
    for where, text in texts.items():
        assert re.search(rf"\b{expected}(?!\d)", text), (where, text)
    assert f"{expected} of {s.steps}" in texts["transport"]
    assert wrapped_blocks(window.panel("equations").document()) == []


@pytest.fixture
def letters_model_path(tmp_path):
    """A checkpoint whose vocabulary has letters, space, '.' and newline only."""
    from engine import ModelConfig, SequenceModel
    from engine.checkpoint import save_checkpoint
    from engine.data import CharVocab

    vocab = CharVocab.from_text("abcdefghijklmnopqrstuvwxyzHST .\n")
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=8, dtype="float64")
    path = tmp_path / "letters.npz"
    save_checkpoint(path, SequenceModel(cfg, rng=np.random.default_rng(5)), vocab=vocab)
    return path


def test_a_model_that_cannot_read_the_text_asks_first_and_cancel_keeps_everything(
        window, confirmations, letters_model_path):
    from .conftest import TEXT

    s = window.session
    model, text, t = s.model, s.text, s.t
    missing = sorted(set(TEXT) - set("abcdefghijklmnopqrstuvwxyzHST .\n"))  # '"', '(', ')', digits, ...
    confirmations.answer = False
    assert not window.open_path(str(letters_model_path), "model")
    [(title, message, details)] = confirmations
    assert "letters.npz" in message
    for c in missing:
        assert repr(c) in details, c
    assert f"{len(missing)} characters" in details
    assert f"{sum(TEXT.count(c) for c in missing)} in all" in details
    assert (s.model, s.text, s.t) == (model, text, t)  # Cancel changed nothing

    confirmations.answer = True
    assert window.open_path(str(letters_model_path), "model")
    assert s.text == "".join(c for c in TEXT if c not in missing)
    status = window.statusBar().currentMessage()
    assert "Opened model letters.npz" in status and "left out" in status  # not overwritten


def test_a_model_that_reads_every_character_opens_without_asking(window, confirmations, model_path):
    assert window.open_path(str(model_path), "model")
    assert list(confirmations) == []


def test_train_asks_before_replacing_the_opened_model_and_cancel_keeps_it(window, qtbot, confirmations):
    from . import helpers

    learn = helpers.learning(window)
    s = window.session
    learn.model_panel.set_values(dict(hidden_size=8, num_layers=1, steps=10, seq_len=8, batch_size=2))
    assert learn.data_panel.use_text("abc abc abc " * 40, "letters")
    model, text = s.model, s.text
    confirmations.answer = False
    assert not helpers.train(qtbot, learn.training_panel)
    [(title, message, _)] = confirmations
    assert "model.npz" in message and "Help > Open demo" in message
    assert "replaced by the start of the training text" in message  # the shown text has other characters
    assert (s.model, s.text) == (model, text) and learn.controller.trainer is None


def test_view_theme_light_and_dark_are_remembered(window, settings_path):
    from PySide6 import QtCore, QtGui

    app = QtWidgets.QApplication.instance()
    palette, style = QtGui.QPalette(app.palette()), app.style().name()
    try:
        actions = {a.text(): a for a in window.theme_actions.actions()}
        actions["&Light"].trigger()
        assert app.palette().color(QtGui.QPalette.Window).lightness() > 200
        assert app.palette().color(QtGui.QPalette.WindowText).lightness() < 60
        assert window.settings.value("view/theme") == "light"
        actions["&Dark"].trigger()
        assert app.palette().color(QtGui.QPalette.Window).lightness() < 60
        window.settings.sync()
        assert QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat).value("view/theme") == "dark"
        assert app.style().name().lower() == "fusion"
    finally:
        app.setPalette(palette)
        app.setStyle(style)


def test_the_tour_opens_on_the_first_start_only_and_walks_through_the_panels(window):
    from lstmviz.tour import PAGES, Tour, show_first_time

    tour = show_first_time(window, window.settings)
    assert isinstance(tour, Tour) and tour.isVisible() and tour.page == 0
    assert show_first_time(window, window.settings) is None  # remembered
    seen = []
    while True:
        seen.append(tour.title.text())
        if name := next(iter(PAGES[tour.page].panels), None):
            assert not window.docks[name].visibleRegion().isEmpty() or name == "text", name
        if not tour.next_button.isEnabled():
            break
        tour.next_button.click()
    assert seen == [page.title for page in PAGES]
    assert any("bracket" in page.text for page in PAGES) and any("Equations" in page.text for page in PAGES)
    tour.close_button.click()
    assert not tour.isVisible()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    entries = [a.text() for a in help_menu.actions() if not a.isSeparator()]
    assert entries[:3] == ["&What am I looking at?", "&User guide", "Open the &demo"]
    help_menu.actions()[0].trigger()
    assert window.findChild(Tour).isVisible() and window.findChild(Tour).page == 0


def test_help_open_demo_brings_the_demo_back_at_unit_50(window):
    from lstmviz.app import DEMO_START_STEP, DEMO_UNIT

    s = window.session
    window.open_demo()
    assert s.model_path.endswith("demo.npz")
    assert s.t == DEMO_START_STEP and (s.layer, s.unit) == DEMO_UNIT


def test_the_user_guide_ships_with_the_app_and_in_docs(window):
    from lstmviz.guide import show_guide

    guide = show_guide(window)
    text = guide.browser.toPlainText()
    assert "unit 50" in text and "What am I looking at?" in text
    assert (ROOT / "assets" / "guide.md").read_text() == (ROOT / "docs" / "guide.md").read_text()
    for picture in ("first-start.png", "equations.png"):  # the guide's screenshots, in both places
        assert (ROOT / "assets" / picture).is_file() and (ROOT / "docs" / picture).is_file()
    guide.close()


def test_a_long_loss_readout_does_not_resize_any_dock(window):
    loss = window.panel("loss")
    window.docks["loss"].raise_()
    QtWidgets.QApplication.processEvents()
    sizes = {name: dock.size() for name, dock in window.docks.items() if dock.isVisible()}
    long = "step 123456: smoothed loss 1.23456, validation 1.38629 nats/char (2.000 bits/char) and more"
    loss.readout.setText(long)
    for _ in range(5):
        QtWidgets.QApplication.sendPostedEvents()
        QtWidgets.QApplication.processEvents()
    assert {name: dock.size() for name, dock in window.docks.items() if dock.isVisible()} == sizes
    assert loss.readout.text() == long  # whole, though shown elided
    assert long in loss.readout.toolTip()
    loss.readout.setText("short")
    assert loss.readout.toolTip().count("short") == 0 and "validation" in loss.readout.toolTip()  # its own tip


def test_train_disabled_says_why_on_the_training_tab(window):
    from . import helpers

    learn = helpers.learning(window)
    panel = learn.training_panel
    learn.model_panel.set_values({"dropout": 1.0})
    assert not panel.train_button.isEnabled()
    assert panel.reason_label.isVisibleTo(panel)
    assert panel.reason_label.text() == f"Cannot train yet: {learn.model_panel.reason}"
    learn.model_panel.set_values({"dropout": 0.0})
    if learn.model_panel.valid:
        assert not panel.reason_label.isVisibleTo(panel)


def test_save_model_while_paused(window, qtbot, tmp_path, monkeypatch, errors):
    from lstmviz import dialogs, threads

    from . import helpers

    learn = helpers.learning(window)
    learn.model_panel.set_values(dict(cell="lstm", hidden_size=8, num_layers=1, seq_len=8, batch_size=2,
                                      steps=100_000, eval_every=1000, dropout=0.0))
    assert learn.data_panel.use_text("abc abd abe " * 60, "letters")
    panel = learn.training_panel
    try:
        assert helpers.train(qtbot, panel)
        assert learn.controller.state == "running" and not panel.save_button.isEnabled()
        panel.pause_button.click()
        qtbot.waitUntil(panel.save_button.isEnabled, timeout=30_000)  # once the worker holds
        path = tmp_path / "paused.npz"
        monkeypatch.setattr(dialogs, "ask_save_path", lambda *args: str(path))
        step = learn.controller.trainer.step
        assert panel.save() and path.is_file() and errors == []
        from engine.checkpoint import load_checkpoint

        assert load_checkpoint(path).step == step
    finally:
        threads.stop_all()


def test_rnn_vs_lstm_trains_on_the_users_text_and_explains_the_outcome(window):
    from lstmviz.core.recipes import COMPARE_BATCH

    from .conftest import TEXT

    compare = window.panel("compare")
    window.session.set_text(TEXT * 6)  # the user's text: too short for 64-character chunks
    text, source, seq_len = compare.training_text(64, COMPARE_BATCH)
    assert text == window.session.text and "viewer's text" in source  # the loaded text, though short
    assert seq_len < 64 and f"chunks of {seq_len}" in source
    from engine.data import TextCorpus

    TextCorpus(text).check_trainable(seq_len, COMPARE_BATCH)  # one batch fits at that length
    assert "come out ahead" in compare.expect.text()
    compare.val_histories["rnn"].extend(np.array([600]), np.array([1.370]))  # the run
    compare.val_histories["lstm"].extend(np.array([600]), np.array([1.395]))
    summary = compare._summary()
    assert "vanilla RNN: validation loss 1.370" in summary and "The RNN is ahead" in summary
    compare.val_histories["rnn"].extend(np.array([700]), np.array([1.5]))
    assert "ahead" not in compare._summary()


def cut_lines(editor) -> list:
    """The y ranges (viewport pixels) of the text lines that the viewport's bottom edge cuts."""
    bottom, cut = editor.viewport().height(), []
    block = editor.firstVisibleBlock()
    while block.isValid():
        top = editor.blockBoundingGeometry(block).translated(editor.contentOffset()).top()
        layout = block.layout()
        for k in range(layout.lineCount()):
            rect = layout.lineAt(k).rect()
            y0, y1 = top + rect.top(), top + rect.bottom()
            if y0 < bottom < y1:
                cut.append((y0, y1))
        if top > bottom:
            break
        block = block.next()
    return cut


def test_the_text_panel_shows_whole_lines_and_follows_the_cursor_home(window):
    from PySide6 import QtCore

    from .conftest import TEXT

    s = window.session
    s.set_text(TEXT * 20)  # many lines
    editor = window.panel("text").editor
    for height in (120, 137, 151):
        window.docks["text"].setFloating(True)
        window.docks["text"].resize(600, height)
        QtWidgets.QApplication.processEvents()
        assert cut_lines(editor) == [], height  # no line straddles the bottom edge
    s.seek(s.steps)
    assert editor.verticalScrollBar().value() > 0  # scrolled to the end with the cursor
    s.seek(0)  # Home
    assert editor.verticalScrollBar().value() == 0
    assert editor.textCursor().position() == 0
    QtCore.QCoreApplication.processEvents()


def test_cell_diagram_labels_are_readable_at_its_smallest(window):
    from lstmviz.lessons.diagram import CANVAS

    diagram = window.panel("diagram")
    window.docks["diagram"].raise_()
    window.docks["diagram"].setFloating(True)
    window.docks["diagram"].resize(diagram.minimumSize())
    QtWidgets.QApplication.processEvents()
    diagram.grab()  # paints at its smallest
    scale = min(diagram.width() / CANVAS.width(), diagram.height() / CANVAS.height())
    assert diagram.label_px * scale >= 9.0, (diagram.size(), diagram.label_px, scale)  # on screen, in px


def test_follow_cursor_button_looks_different_on_and_off(window):
    button = window.panel("gates").follow_button
    assert button.isChecked() and button.text().startswith("●")
    on = button.grab().toImage()
    button.setChecked(False)  # what zooming or panning by hand does
    assert button.text().startswith("○") and button.grab().toImage() != on
    button.setChecked(True)
    assert button.text().startswith("●")


def test_series_panel_fits_its_dock_and_the_ramp_follows_n(window):
    panel = window.panel("series")
    window.docks["series"].raise_()
    QtWidgets.QApplication.processEvents()
    area = window.docks["series"].widget()  # the dock's scroll area
    assert not area.horizontalScrollBar().isVisible()  # one scroll direction at most
    for label in panel.findChildren(QtWidgets.QLabel):
        if label.isVisible() and label.text() in ("ahead", "forecast from", "window", "horizon"):
            assert label.width() >= label.fontMetrics().horizontalAdvance(label.text()), label.text()
    panel.generator_box.setCurrentText("ramp -3 … 8")
    panel.length.setValue(40)
    panel.generate()
    assert len(panel.values) == 40 and panel.values[0] == -3.0 and panel.values[-1] == 8.0


def test_rnn_vs_lstm_model_choice_is_not_clipped(window):
    compare = window.panel("compare")
    compare.step_box.addItems(["vanilla RNN", "LSTM"])  # what a finished comparison offers
    window.docks["compare"].raise_()
    QtWidgets.QApplication.processEvents()
    box = compare.step_box
    needed = box.fontMetrics().horizontalAdvance("vanilla RNN")
    assert box.width() > needed + 20  # the text and the arrow


# --- no text is clipped: labels, axis tick labels and tab titles, in every dock ---------------
def _needed_size(label) -> tuple:
    """``(width, height)`` the label's text takes laid out on the lines it has, from the
    label's font (fallback fonts included: a QTextDocument shapes the text as the label does)."""
    from PySide6 import QtCore, QtGui

    document = QtGui.QTextDocument()
    document.setDocumentMargin(0)
    document.setDefaultFont(label.font())
    text = QtWidgets.QLabel.text(label)  # the text shown (an eliding label's, elided)
    if label.textFormat() == QtCore.Qt.RichText or (label.textFormat() == QtCore.Qt.AutoText
                                                   and QtGui.Qt.mightBeRichText(text)):
        document.setHtml(text)
    else:
        document.setPlainText(text)
    return document.idealWidth(), document.size().height()


def clipped_labels(root) -> list:
    """Every shown, non-wrapping QLabel under ``root`` whose shown text is wider or taller than
    its contents rectangle: ``[(text, needed (w, h), available (w, h))]``. A label that elides
    its text to fit (``Readout``, ``ElidedLabel``: "…", the whole text in the tooltip) passes."""
    out = []
    for label in root.findChildren(QtWidgets.QLabel):
        if (not label.isVisible() or label.wordWrap() or not QtWidgets.QLabel.text(label)
                or label.pixmap() is not None and not label.pixmap().isNull()):
            continue
        width, height = _needed_size(label)
        room = label.contentsRect().adjusted(label.margin(), label.margin(), -label.margin(), -label.margin())
        if width > room.width() + 0.5 or height > room.height() + 0.5:
            out.append((label.text(), (round(width, 1), round(height, 1)), (room.width(), room.height())))
    return out


def clipped_ticks(root) -> list:
    """Every axis tick label (pyqtgraph ``AxisItem``) in a shown graphics view under ``root``
    drawn past its view's viewport or its axis' painted area: ``[(axis, text, rect in view)]``."""
    import pyqtgraph as pg
    from PySide6 import QtGui

    views = root.findChildren(pg.GraphicsView) + ([root] if isinstance(root, pg.GraphicsView) else [])
    out = []
    image = QtGui.QImage(4, 4, QtGui.QImage.Format_ARGB32)
    for view in views:
        if not view.isVisible() or view.scene() is None:
            continue
        viewport = view.viewport().rect()
        for axis in view.scene().items():
            if not isinstance(axis, pg.AxisItem) or not axis.isVisible() or not axis.style["showValues"]:
                continue
            painter = QtGui.QPainter(image)
            specs = axis.generateDrawSpecs(painter)
            painter.end()
            if specs is None:
                continue
            painted = axis.boundingRect()
            for rect, _flags, text in specs[2]:
                shown = view.mapFromScene(axis.mapRectToScene(rect)).boundingRect()
                if not (painted.adjusted(-0.5, -0.5, 0.5, 0.5).contains(rect) and viewport.contains(shown)):
                    out.append((axis.orientation, text, shown.getRect()))
    return out


def elided_tabs(window) -> list:
    """Every tab of a shown dock tab bar whose title is drawn elided: ``[(title, as drawn)]``
    (e.g. ``("Gate heatmaps", "Gate he…")``)."""
    out = []
    for bar in window.findChildren(QtWidgets.QTabBar):
        if not bar.isVisible():
            continue
        for k in range(bar.count()):
            option = QtWidgets.QStyleOptionTab()
            bar.initStyleOption(option, k)  # the text as the tab paints it: elided when it lacks room
            if option.text != bar.tabText(k):
                out.append((bar.tabText(k), option.text))
    return out


def clipped_in_every_dock(window) -> dict:
    """Bring each dock forward in turn and collect its clipped labels and tick labels; the
    elided tab titles under "tabs". Empty when nothing is clipped."""
    found = {}
    for name, dock in window.docks.items():
        dock.raise_()
        for _ in range(3):
            QtWidgets.QApplication.processEvents()
        if problems := clipped_labels(dock) + clipped_ticks(dock):
            found[name] = problems
    if tabs := elided_tabs(window):
        found["tabs"] = tabs
    return found


def step_onto_a_space(window) -> None:
    """Seek to a step whose next character is a space: the Current step panel names it "␣"."""
    session = window.session
    session.seek(session.text.index(" "))
    window.docks["step"].raise_()
    QtWidgets.QApplication.processEvents()
    assert "␣" in window.panel("step").predictions_title.text()


def test_no_text_is_clipped_in_any_dock_at_the_default_size(window):
    from lstmviz.main_window import DEFAULT_SIZE

    window.resize(*DEFAULT_SIZE)
    step_onto_a_space(window)
    QtWidgets.QApplication.processEvents()
    assert clipped_in_every_dock(window) == {}


def test_no_text_is_clipped_in_any_dock_at_the_smallest_window(window):
    step_onto_a_space(window)
    window.resize(window.minimumSizeHint())
    QtWidgets.QApplication.processEvents()
    found = clipped_in_every_dock(window)
    found.pop("tabs", None)  # tab titles may be elided in the smallest window (whole in the View menu)
    assert found == {}


CLIPPED_SCALED = """
import sys
from PySide6 import QtCore, QtWidgets
from lstmviz.app import build_window
from lstmviz.main_window import DEFAULT_SIZE
from tests.app.test_first_hour import clipped_in_every_dock, step_onto_a_space
app = QtWidgets.QApplication([])
app.setStyle("Fusion")
window = build_window(settings=QtCore.QSettings(sys.argv[1], QtCore.QSettings.IniFormat))
window.show()
window.resize(*DEFAULT_SIZE)
step_onto_a_space(window)
app.processEvents()
print(repr(clipped_in_every_dock(window)))
"""


@pytest.mark.slow
def test_no_text_is_clipped_at_twice_the_scale(tmp_path):
    assert last_line_at_twice_the_scale(CLIPPED_SCALED, tmp_path, 180) == "{}"


def test_the_analysis_docks_share_a_tab_group_of_their_own():
    from lstmviz.app import DOCKS

    groups = {dock.name: dock.group for dock in DOCKS}
    analysis = {"strip", "hypothesis", "probes", "saturation", "interventions", "history"}
    assert len({groups[name] for name in analysis}) == 1
    group = groups["strip"]
    assert group is not None and {name for name, g in groups.items() if g == group} == analysis


def diagram_overlaps(diagram) -> list:
    """Pairs of the cell diagram's value labels that overlap each other or a symbol (layer box,
    pointwise operation, title), and labels that leave the canvas, as last painted."""
    from lstmviz.lessons.diagram import CANVAS

    labels = list(diagram.label_rects.items())
    out = [(key, "canvas") for key, rect in labels if not CANVAS.contains(rect)]
    for k, (key, rect) in enumerate(labels):
        out += [(key, other) for other, box in labels[k + 1:] + diagram.symbol_rects if rect.intersects(box)]
    return out


def test_cell_diagram_labels_overlap_no_symbol_or_label_at_any_dock_width(window):
    diagram = window.panel("diagram")
    dock = window.docks["diagram"]
    window.session.seek(30)
    window.session.select(0, 5, -1)
    dock.raise_()
    dock.setFloating(True)
    QtWidgets.QApplication.processEvents()
    diagram.refresh()
    assert diagram.labels  # values shown: the longest labels
    smallest = dock.minimumSizeHint()
    for height in (smallest.height(), 300, 500):
        for width in range(smallest.width(), 1400, 45):
            dock.resize(width, height)
            QtWidgets.QApplication.processEvents()
            diagram.grab()  # paints at this size
            assert len(diagram.label_rects) == len(diagram.labels) and diagram.symbol_rects
            assert diagram_overlaps(diagram) == [], (diagram.size(), diagram.label_px)
