"""The brushed span (hypothesis selection) names characters: an edit at or before its end
clears it, from the session and from every heatmap; an edit after it keeps it."""

from .conftest import TEXT


def test_typing_over_a_brushed_selection_clears_the_brush(window, qtbot):
    s, panel = window.session, window.panel("text")
    regions = window.panel("gates").brush_regions
    seen = []
    s.brushed.connect(lambda a, b: seen.append((a, b)))
    cursor = panel.editor.textCursor()
    cursor.setPosition(5)
    cursor.setPosition(10, cursor.MoveMode.KeepAnchor)
    panel.editor.setTextCursor(cursor)
    assert s.brush_span == (5, 10) and all(r.isVisible() for r in regions.values())
    qtbot.keyClicks(panel.editor, "x")  # replaces the selected characters
    panel.apply_edit()
    assert s.text == TEXT[:5] + "x" + TEXT[10:]
    assert s.brush_span == (0, 0) and seen[-1] == (0, 0)
    assert not any(r.isVisible() for r in regions.values())


def test_an_edit_after_the_brushed_steps_keeps_them(window):
    s = window.session
    s.brush(5, 10)
    s.set_text(TEXT[:20] + "x" + TEXT[20:])
    assert s.brush_span == (5, 10)
    s.set_text(TEXT[:10] + "x" + TEXT[10:])  # inserted right after the last brushed character
    assert s.brush_span == (5, 10)
    s.set_text(TEXT[:9] + "y" + TEXT[10:])  # the last brushed character changes
    assert s.brush_span == (0, 0)
