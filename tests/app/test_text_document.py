"""The text panel positions cursors only in a document holding the session's current text: an
edit far before the cursor (the session's ``t`` falls back to the first changed step before
``text_changed``, and replacing the editor's document scrolls it) draws no selection into the
document being replaced."""

from PySide6 import QtGui

from .conftest import TEXT


def test_an_edit_far_before_the_cursor_positions_no_cursor_outside_the_document(window, qtbot, qtlog):
    s = window.session
    text = TEXT * 300  # 21,300 characters
    s.set_text(text)
    s.seek(15_000)
    qtbot.waitUntil(lambda: not s.seeking and not s.passing, timeout=60_000)
    panel = window.panel("text")
    assert panel.editor.verticalScrollBar().value() > 0  # scrolled down to the cursor
    edited = text[:5000] + "zz" + text[5000:]
    s.set_text(edited)
    qtbot.waitUntil(lambda: not s.seeking and not s.passing and not panel.loading, timeout=60_000)
    assert [r.message for r in qtlog.records if "QTextCursor" in r.message] == []
    assert panel.editor.toPlainText() == edited and s.t == 15_000
    selections = panel.editor.extraSelections()
    current = [(sel.cursor.selectionStart(), sel.cursor.selectionEnd(), sel.cursor.selectedText())
               for sel in selections if sel.format.fontWeight() == QtGui.QFont.Bold]  # the current character's
    assert current == [(14_999, 15_000, edited[14_999])]
