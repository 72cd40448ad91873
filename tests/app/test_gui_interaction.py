"""Mouse readouts and selection, settings persistence, and refusing bad files."""

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from lstmviz.plots import colormap_for, value_colours

from .conftest import TEXT, make_window


def view_point(view, unit, step):
    """Widget coordinates of the centre of heatmap cell (unit, step)."""
    return view.mapFromScene(view.scene_pos_of(unit, step))


def test_hover_readout_names_unit_step_char_and_value(window, qtbot):
    s = window.session
    s.seek(20)
    view = window.panel("gates").views["c"]
    reference = s.model.trace(s.vocab.encode(TEXT)).gate("c", 0)
    point = QtCore.QPointF(view_point(view, 7, 13))
    move = QtGui.QMouseEvent(QtCore.QEvent.MouseMove, point, view.viewport().mapToGlobal(point),
                             QtCore.Qt.NoButton, QtCore.Qt.NoButton, QtCore.Qt.NoModifier)
    with qtbot.waitSignal(view.hovered, timeout=2000) as blocker:
        QtWidgets.QApplication.sendEvent(view.viewport(), move)
    unit, step, value = blocker.args
    assert (unit, step) == (7, 13)
    assert value == np.float32(reference[13, 7])
    message = window.statusBar().currentMessage()
    assert "cell state c" in message and "unit 7" in message and "step 14 ·" in message  # index 13 is step 14
    assert repr(TEXT[13]) in message and f"{reference[13, 7]:+.4f}" in message


def test_click_selects_unit_and_colours_text(window, qtbot):
    s = window.session
    s.seek(30)
    view = window.panel("gates").views["h"]
    with qtbot.waitSignal(s.selection_changed, timeout=2000) as blocker:
        qtbot.mouseClick(view.viewport(), QtCore.Qt.LeftButton, pos=view_point(view, 5, 12))
    assert blocker.args == [0, 5, 12]
    assert (s.layer, s.unit, s.selected_step) == (0, 5, 12)

    h = s.model.trace(s.vocab.encode(TEXT)).gate("h", 0)[:30, 5]  # (30,)
    lut = colormap_for("h").getLookupTable(nPts=256, alpha=False)
    coloured = window.panel("text").coloured()
    assert sorted(coloured) == [(k, k + 1) for k in range(30)]
    for k in (0, 11, 29):
        r, g, b = lut[int(np.clip((h[k] + 1) / 2 * 255, 0, 255))]
        assert coloured[k, k + 1] == (r, g, b)
    selections = window.panel("text").editor.extraSelections()
    bold = [sel for sel in selections if sel.format.fontWeight() == QtGui.QFont.Bold]
    assert [sel.cursor.selectionStart() for sel in bold] == [29]


def test_clicking_a_character_moves_the_cursor_there(window, qtbot):
    s = window.session
    editor = window.panel("text").editor
    cursor = editor.textCursor()
    cursor.setPosition(10)
    rect = editor.cursorRect(cursor)
    qtbot.mouseClick(editor.viewport(), QtCore.Qt.LeftButton, pos=QtCore.QPoint(rect.x() + 3, rect.center().y()))
    assert s.t == 11  # character 10 is the one just stepped


def test_text_coloured_by_chosen_quantity(window):
    s = window.session
    s.seek(8)
    s.select(1, 2, -1)
    window.panel("text").set_quantity("c")
    drawn = np.array(list(window.panel("text").coloured().values()))  # (8, 3) by position
    c = s.model.trace(s.vocab.encode(TEXT)).gate("c", 1)[:8, 2]
    lo, hi = s.levels("c", 1)
    lut = colormap_for("c").getLookupTable(nPts=256, alpha=False)
    expected = lut[np.clip(np.floor((c - lo) * 256 / (hi - lo)), 0, 255).astype(int)]  # the heatmap's bins
    assert np.array_equal(drawn, expected)


def drawn_text_colours(window) -> dict:
    """{character index: (r, g, b)} of the editor's coloured characters."""
    return {start: rgb for (start, _), rgb in window.panel("text").coloured().items()}


def expected_text_colours(session, quantity: str, unit: int, t: int) -> dict:
    """The heatmap colours of ``quantity`` for ``unit`` at steps 0..t-1, from a fresh trace."""
    values = session.model.trace(session.vocab.encode(session.text)).gate(quantity, 0)[:t, unit]  # (t,)
    return {k: tuple(int(v) for v in rgb)
            for k, rgb in enumerate(value_colours(quantity, values, session.levels(quantity, 0)))}


def test_text_colours_follow_new_weights_steps_back_and_typing(window, qtbot):
    from engine.model import SequenceModel

    s = window.session
    s.seek(40)
    s.select(0, 3, -1)
    window.panel("text").set_quantity("h")
    assert drawn_text_colours(window) == expected_text_colours(s, "h", 3, 40)
    config = s.model.config
    s.set_model(SequenceModel(config, rng=np.random.default_rng(7)), s.vocab)  # new weights, same text
    assert drawn_text_colours(window) == expected_text_colours(s, "h", 3, 40)
    s.seek(25)
    s.set_model(SequenceModel(config, rng=np.random.default_rng(8)), s.vocab)  # new weights while stepped back
    s.seek(45)
    assert drawn_text_colours(window) == expected_text_colours(s, "h", 3, 45)
    editor = window.panel("text").editor
    cursor = editor.textCursor()
    cursor.setPosition(0)
    editor.setTextCursor(cursor)
    editor.insertPlainText(TEXT[5])  # every character after it moves one place
    window.panel("text").apply_edit()
    assert s.text == TEXT[5] + TEXT
    assert drawn_text_colours(window) == expected_text_colours(s, "h", 3, s.t)


def test_settings_round_trip_through_ini(window, qtbot, settings_path):
    window.session.set_colorblind(True)
    window.panel("transport").set_speed(33)
    window.panel("text").set_quantity("f")
    window.docks["step"].hide()
    window.resize(1, 1)  # the smallest the docks allow (close to the offscreen screen's 800 x 600)
    target = window.size() + QtCore.QSize(0, 6)  # wider than the screen would be clamped
    window.resize(target)
    window._remember(str(settings_path.parent / "model.npz"))
    size = window.size()
    window.close()
    ini = QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat)
    assert ini.value("play/speed", type=int) == 33

    second = make_window(settings_path)
    try:
        second.show()
        assert second.session.colorblind and second.colorblind_action.isChecked()
        assert second.panel("gates").views["h"].colorblind
        assert second.panel("transport").speed.value() == 33
        assert second.panel("text").quantity == "f"
        assert not second.docks["step"].isVisible() and second.docks["gates"].isVisible()
        assert second.size() == size and size == target
        assert second.recent_files() == [str((settings_path.parent / "model.npz").resolve())]
        assert [a.toolTip() for a in second.recent_menu.actions()] == second.recent_files()
        second.reset_layout()
        assert second.docks["step"].isVisible()
    finally:
        second.close()
        second.deleteLater()


def snapshot(session):
    return session.model, session.vocab, session.text, session.t, session.stepper


def test_corrupt_model_file_shows_error_and_changes_nothing(window, tmp_path, errors):
    s = window.session
    s.seek(12)
    before = snapshot(s)
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a real zip archive")
    assert not window.open_path(str(bad))
    assert snapshot(s) == before
    assert len(errors) == 1 and "model" in errors[0][0] and "broken.npz" in errors[0][1]
    assert window.recent_files() == []


def test_binary_text_file_shows_error_and_changes_nothing(window, tmp_path, errors, monkeypatch):
    from lstmviz import dialogs

    s = window.session
    s.seek(5)
    before = snapshot(s)
    bad = tmp_path / "image.txt"
    bad.write_bytes(bytes(range(256)) * 4)
    monkeypatch.setattr(dialogs, "ask_open_path", lambda parent, title, file_filter: str(bad))
    window.ask_open_text()
    assert snapshot(s) == before
    assert len(errors) == 1 and "binary" in errors[0][1]


def test_open_model_and_text_through_menu_and_drop(window, tmp_path, model_path, monkeypatch):
    from lstmviz import dialogs

    other = tmp_path / "other.txt"
    other.write_text("She said \"xyz\".", encoding="utf-8")
    monkeypatch.setattr(dialogs, "ask_open_path", lambda parent, title, file_filter: str(other))
    window.ask_open_text()
    assert window.session.text == "She said \"xyz\"."
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(model_path))])
    event = QtGui.QDropEvent(QtCore.QPointF(10, 10), QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton,
                             QtCore.Qt.NoModifier)
    window.dropEvent(event)
    assert window.session.model_path == str(model_path)
    assert window.recent_files()[0] == str(model_path.resolve())


def test_menus_and_about(window):
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&View", "&Help"]
    assert isinstance(window.export_menu, QtWidgets.QMenu)
    assert window.quit_action.shortcut() == QtGui.QKeySequence("Ctrl+Q")
    about = window.about_text()
    for name in ("lstmviz", "Qt", "PySide6", "pyqtgraph", "NumPy"):
        assert name in about
    for dock in window.docks.values():
        assert dock.objectName() and dock.toggleViewAction().text()


def test_bad_files_on_the_command_line_open_the_demo_and_say_why(qtbot, tmp_path, settings_path, errors):
    """``lstmviz BAD.npz BINARY.txt``: both refusals are shown once the event loop runs, and
    the window opens on the demo rather than empty."""
    from lstmviz import app

    bad_model, binary = tmp_path / "bad.npz", tmp_path / "bin.txt"
    bad_model.write_text("garbage")
    binary.write_bytes(bytes(range(256)) * 8)
    window = app.build_window(str(bad_model), str(binary), QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat))
    try:
        qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
        assert {title for title, _ in errors} == {"Cannot open this model", "Cannot open this text"}
        assert any("not an .npz" in message for _, message in errors)
        assert any("binary" in message for _, message in errors)
        s = window.session
        assert s.ready and s.model_path == str(app.asset_path(app.DEMO_MODEL)) and s.text
    finally:
        window.close()


def test_swapping_in_a_model_reports_the_characters_it_drops(window):
    """The text stays, less the characters the new model does not know, and the status says which."""
    from engine import CharVocab, ModelConfig, SequenceModel

    s = window.session
    messages = []
    s.message.connect(messages.append)
    vocab = CharVocab.from_text("".join(sorted(set(s.text) - {"e"})))
    model = SequenceModel(ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=4),
                          rng=np.random.default_rng(0))
    before = s.text
    s.set_model(model, vocab)
    assert s.text == before.replace("e", "")
    assert messages and "'e'" in messages[-1]


def test_first_run_window_fits_a_small_screen(qtbot, settings_path):
    """With every dock installed, the first window is the default size at most, the docks'
    minimum sizes add up to less than a 1024 x 768 screen (long forms scroll instead), and no
    stale tab bar is left on show (each dock's tab appears once)."""
    from lstmviz import app
    from lstmviz.main_window import DEFAULT_SIZE

    window = app.build_window(settings=QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat))
    try:
        with qtbot.waitExposed(window):
            window.show()
        minimum = window.minimumSizeHint()
        assert minimum.width() <= 1024 and minimum.height() <= 700
        free = window.screen().availableGeometry()
        assert window.width() <= max(min(DEFAULT_SIZE[0], free.width()), minimum.width())
        assert window.height() <= max(min(DEFAULT_SIZE[1], free.height()), minimum.height())
        tab_bars = window.findChildren(QtWidgets.QTabBar, options=QtCore.Qt.FindDirectChildrenOnly)
        tabs = [bar.tabText(k) for bar in tab_bars if bar.isVisible() for k in range(bar.count())]
        assert "Series" in tabs and len(tabs) == len(set(tabs))
    finally:
        window.close()


def test_playback_takes_exactly_the_set_steps_per_second_and_no_burst_after_a_slow_frame(window):
    """The transport's timer ticks every floor(1000 / speed) ms; the steps follow the schedule
    (60 steps/s are 60, not the 58.8 of a 17 ms timer), driven here by a fake clock."""
    transport, s = window.panel("transport"), window.session
    now = [0.0]
    transport.clock = lambda: now[0]
    transport.set_speed(60)
    s.seek(0)
    transport.play()
    try:
        assert transport.timer.interval() == 16 and transport.timer.timerType() == QtCore.Qt.PreciseTimer
        for tick in range(1, 61):  # one second of 16 ms ticks (the timer itself is not waited for)
            now[0] = tick * 0.016
            transport._tick()
        assert s.t == int(0.96 * 60)  # 57 steps are due after 0.96 s, at the 60th tick
        now[0] = 2.0  # a frame that took a second: one step, then the schedule starts again from it
        transport._tick()
        assert s.t == 58
        now[0] = 2.0 + 0.5 / 60
        transport._tick()
        assert s.t == 58  # not yet due
        now[0] = 2.0 + 1.0 / 60
        transport._tick()
        assert s.t == 59
    finally:
        transport.pause()


def test_a_dock_arrangement_saved_by_an_older_version_is_not_restored(qtbot, settings_path):
    """A state saved before the current LAYOUT_VERSION (an older set of tab groups) would put
    new docks in odd places: the window starts from the default arrangement instead; a state of
    the current version is restored."""
    from lstmviz import app
    from lstmviz.main_window import LAYOUT_VERSION

    def floating_after_saving(version):
        settings = QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat)
        window = app.build_window(settings=settings)
        window.docks["hypothesis"].setFloating(True)
        state = window.saveState(version)
        window.close()  # saves its own state on close: replaced below
        settings.setValue("window/state", state)
        settings.sync()
        window = app.build_window(settings=QtCore.QSettings(str(settings_path), QtCore.QSettings.IniFormat))
        try:
            return window.docks["hypothesis"].isFloating()
        finally:
            window.close()

    assert not floating_after_saving(LAYOUT_VERSION - 1)
    assert floating_after_saving(LAYOUT_VERSION)
