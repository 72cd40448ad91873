"""Characters outside the Basic Multilingual Plane (emoji, math letters) are one step but two
positions of the editor's document (a UTF-16 surrogate pair): the text panel colours, highlights
and picks each whole character, the one the step is."""

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from engine import ModelConfig, SequenceModel
from engine.checkpoint import save_checkpoint
from engine.data import CharVocab

from .conftest import make_window

WIDE_TEXT = "ab\U0001F600c \U0001D465=1\U0001F600\U0001F600d\nok \U0001D465\n"  # 😀 and 𝑥: 2 UTF-16 units each


def utf16_spans(text: str) -> list:
    """``(start, end)`` of each character in UTF-16 units, counted from the encoding."""
    ends = np.cumsum([len(ch.encode("utf-16-le")) // 2 for ch in text])  # (T,)
    return [(int(end - len(ch.encode("utf-16-le")) // 2), int(end)) for ch, end in zip(text, ends)]


def highlighted(panel) -> list:
    """Copies of the cursors of the editor's bold selections (the current step's highlight)."""
    selections = panel.editor.extraSelections()  # held: each cursor lives as long as its selection
    return [QtGui.QTextCursor(sel.cursor) for sel in selections if sel.format.fontWeight() == QtGui.QFont.Bold]


@pytest.fixture
def wide_window(qtbot, tmp_path, settings_path, errors):
    vocab = CharVocab.from_text(WIDE_TEXT)
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=6, dtype="float64")
    save_checkpoint(tmp_path / "wide.npz", SequenceModel(cfg, rng=np.random.default_rng(1)), vocab=vocab, step=1)
    (tmp_path / "wide.txt").write_text(WIDE_TEXT, encoding="utf-8")
    win = make_window(settings_path)
    win.session.load_model(tmp_path / "wide.npz")
    win.session.load_text(tmp_path / "wide.txt")
    win.resize(1200, 800)
    with qtbot.waitExposed(win):
        win.show()
    yield win
    win.close()
    win.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)


def test_colours_and_the_highlight_cover_whole_characters(wide_window, errors):
    s, panel = wide_window.session, wide_window.panel("text")
    spans = utf16_spans(WIDE_TEXT)
    assert panel.editor.document().characterCount() == spans[-1][1] + 1  # Qt counts UTF-16 units (+ the end)
    s.seek(len(WIDE_TEXT) - 1)
    s.select(0, 2, -1)
    QtWidgets.QApplication.processEvents()
    assert sorted(panel.coloured()) == spans[: s.t]  # every stepped character, each whole
    assert [c.selectedText() for c in highlighted(panel)] == [WIDE_TEXT[s.t - 1]]
    s.seek(3)  # the last step is the first 😀
    QtWidgets.QApplication.processEvents()
    assert [(c.selectionStart(), c.selectionEnd(), c.selectedText()) for c in highlighted(panel)] == [
        (2, 4, "\U0001F600")]
    assert errors == []


def test_clicking_a_character_after_wide_ones_steps_to_it(wide_window, qtbot, errors):
    s, editor = wide_window.session, wide_window.panel("text").editor
    step = WIDE_TEXT.index("d")  # after one 😀, one 𝑥 and two more 😀: 4 positions further than its index
    start, _ = utf16_spans(WIDE_TEXT)[step]
    cursor = editor.textCursor()
    cursor.setPosition(start)
    rect = editor.cursorRect(cursor)
    qtbot.mouseClick(editor.viewport(), QtCore.Qt.LeftButton, pos=QtCore.QPoint(rect.x() + 2, rect.center().y()))
    assert s.t == step + 1 and s.sequence.label(s.t - 1) == "d"
    assert errors == []


def test_a_refused_character_typed_after_wide_ones_leaves_the_caret_where_it_was(wide_window, qtbot, errors):
    """More wide characters before the caret than characters after it: a caret counted in code
    points instead of document positions would land inside a surrogate pair."""
    s, panel = wide_window.session, wide_window.panel("text")
    editor = panel.editor
    text = "ab" + "\U0001F600" * 4 + "\n"
    s.set_text(text)
    QtWidgets.QApplication.processEvents()
    caret = 2 + 2 * 4  # after the fourth 😀
    cursor = editor.textCursor()
    cursor.setPosition(caret)
    editor.setTextCursor(cursor)
    qtbot.keyClicks(editor, "Q")  # not in the vocabulary: refused
    panel.apply_edit()
    assert s.text == text and editor.textCursor().position() == caret
    qtbot.keyClicks(editor, "b")
    panel.apply_edit()
    assert s.text == editor.toPlainText() == text[:-1] + "b\n"
