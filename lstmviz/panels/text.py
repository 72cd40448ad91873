"""Text panel: the sequence being stepped, editable, with the current character highlighted.

When a unit is selected, each stepped character's background shows that unit's value of the
chosen quantity (h by default; c on its symmetric levels, or any gate), drawn with the same
colormap as its heatmap: the classic "quote-tracking cell" view. Colours are extra selections,
so they never touch the document or its undo history.

Edits are applied after a short pause (``EDIT_DEBOUNCE_MS``) and re-run the model from the first
changed character. Characters outside the model's vocabulary are removed again and named in the
status bar. Clicking a character moves the cursor to just after it.

The panel shows ``session.sequence.document()`` and reads each step's span from the sequence:
for text, the characters (editable); for a numeric series, the steps' labels, read-only and
separated by ``core.sequence.SERIES_SEPARATOR``, each label highlighted, coloured and clickable
as a character is for text.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..plots import GATE_STYLE, value_colours
from ..session import Session

EDIT_DEBOUNCE_MS = 400
COLOURED_MAX = 3000  # characters coloured before the cursor (older ones stay plain)


class TextPanel(QtWidgets.QWidget):
    """Editable text with per-character activation colours."""

    status = QtCore.Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.quantity = "h"
        self._cached = None  # (start, document revision, [ExtraSelection per step from start])
        self._stale = False  # True: the cached selections' colours are out of date
        self._fresh = 0  # the first this many cached selections have up-to-date colours

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self.info = QtWidgets.QLabel()
        self.info.setToolTip("The selected unit whose values colour the characters")
        bar.addWidget(self.info, 1)
        bar.addWidget(QtWidgets.QLabel("Colour by"))
        self.quantity_box = QtWidgets.QComboBox()
        for name in ("h", "c", "f", "i", "o", "g"):
            self.quantity_box.addItem(GATE_STYLE[name].label, name)
        self.quantity_box.setToolTip("Which value of the selected unit colours each character")
        self.quantity_box.currentIndexChanged.connect(self._on_quantity_chosen)
        bar.addWidget(self.quantity_box)
        self.clear_button = QtWidgets.QPushButton("Clear selection")
        self.clear_button.setToolTip("Stop colouring the text by a unit")
        self.clear_button.clicked.connect(lambda: session.select(session.layer, -1, -1))
        bar.addWidget(self.clear_button)

        self.editor = QtWidgets.QPlainTextEdit()
        self.editor.setToolTip("The text stepped through the model. Click a character to move the "
                               "cursor there; edit it to re-run from the first changed character.")
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont)
        font.setPointSize(11)
        self.editor.setFont(font)
        self.editor.setLineWrapMode(QtWidgets.QPlainTextEdit.WidgetWidth)
        self.editor.viewport().installEventFilter(self)
        self.editor.textChanged.connect(self._on_text_edited)
        self.editor.selectionChanged.connect(self._on_selection_brushed)
        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(EDIT_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.apply_edit)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.editor, 1)

        session.text_changed.connect(self._on_session_text)
        session.model_changed.connect(self._forget_colours)  # text_changed and stepped follow
        session.stepped.connect(self.recolour)
        session.selection_changed.connect(self.invalidate)
        session.colormap_changed.connect(self._on_colormap_changed)
        session.quantity_requested.connect(self.set_quantity)
        self._on_session_text()

    # --- text in and out ----------------------------------------------------------------------
    def _on_session_text(self):
        sequence = self.session.sequence
        shown = sequence.document()
        self.editor.setReadOnly(not sequence.editable)
        if self.editor.toPlainText() != shown:
            blocker = QtCore.QSignalBlocker(self.editor)
            self.editor.setPlainText(shown)
            del blocker
            self._forget_selections()
        self.invalidate()

    def span(self, step: int) -> tuple:
        """``(start, end)`` document positions of step ``step`` (a character, or a series label)."""
        return self.session.sequence.span(step)

    def _on_text_edited(self):
        if self.session.sequence.editable:
            self._debounce.start()

    def apply_edit(self):
        """Send the editor's text to the session now (normally after the debounce)."""
        self._debounce.stop()
        typed = self.editor.toPlainText()
        if typed == self.session.text:
            return
        caret = self.editor.textCursor().position()
        accepted = self.session.set_text(typed)  # text_changed has put ``accepted`` in the editor
        if accepted != typed:  # characters were refused: the caret stays after what the user typed
            known = set(accepted)
            cursor = self.editor.textCursor()
            cursor.setPosition(sum(ch in known for ch in typed[:caret]))
            self.editor.setTextCursor(cursor)

    def _on_selection_brushed(self):
        """A selection in the editor brushes its steps in the Session (hypothesis selection)."""
        cursor = self.editor.textCursor()
        if cursor.hasSelection() and self.session.ready:
            seq = self.session.sequence
            self.session.brush(seq.step_at(cursor.selectionStart()), seq.step_at(cursor.selectionEnd() - 1) + 1)

    def eventFilter(self, obj, event):
        if obj is self.editor.viewport() and event.type() == QtCore.QEvent.MouseButtonRelease \
                and event.button() == QtCore.Qt.LeftButton and not self.editor.textCursor().hasSelection():
            self.jump_to_char(self.step_at(event.position().toPoint()))
        return super().eventFilter(obj, event)

    def char_at(self, point: QtCore.QPoint) -> int:
        """Index of the character under a viewport point."""
        cursor = self.editor.cursorForPosition(point)
        p = cursor.position()
        if p > 0 and point.x() < self.editor.cursorRect(cursor).x():
            p -= 1
        return p

    def step_at(self, point: QtCore.QPoint) -> int:
        """Index of the step under a viewport point (for a series: the label at or before it)."""
        return self.session.sequence.step_at(self.char_at(point))

    def jump_to_char(self, index: int):
        """Make step ``index`` (a character, or a series label) the current one (the last one stepped)."""
        s = self.session
        if s.ready and 0 <= index < s.steps:
            if self._debounce.isActive():
                self.apply_edit()
            s.seek(index + 1)

    # --- colours ------------------------------------------------------------------------------
    def _on_quantity_chosen(self, _index):
        self.quantity = self.quantity_box.currentData()
        self.invalidate()

    def set_quantity(self, name: str):
        index = self.quantity_box.findData(name)
        if index < 0:
            raise ValueError(f"cannot colour the text by {name!r}")
        self.quantity_box.setCurrentIndex(index)

    def _on_colormap_changed(self, _colorblind):
        self.invalidate()

    def _colouring(self) -> bool:
        s = self.session
        return s.ready and s.unit >= 0 and self.quantity in s.names

    def _colours(self, lo: int, hi: int) -> np.ndarray:
        """Colours ``(hi - lo, 3) uint8`` of characters lo..hi-1 for the selected unit."""
        s = self.session
        values = s.trace().gate(self.quantity, s.layer)[lo:hi, s.unit]  # (n,)
        return value_colours(self.quantity, values, s.levels(self.quantity, s.layer), s.colorblind)

    def _step_cursor(self, doc, step: int) -> QtGui.QTextCursor:
        """A cursor selecting step ``step``'s span."""
        start, end = self.span(step)
        cursor = QtGui.QTextCursor(doc)
        cursor.setPosition(start)
        cursor.setPosition(end, QtGui.QTextCursor.KeepAnchor)
        return cursor

    def _char_selection(self, doc, step: int, rgb) -> QtWidgets.QTextEdit.ExtraSelection:
        sel = QtWidgets.QTextEdit.ExtraSelection()
        sel.cursor = self._step_cursor(doc, step)
        _set_colour(sel, rgb)
        return sel

    def _forget_colours(self, *_):
        """The colours are out of date (new weights, unit, quantity or colormap); the characters'
        selections are kept and recoloured in place (cheaper than rebuilding them)."""
        self._stale = True

    def _forget_selections(self):
        """The document changed: the characters' selections must be rebuilt."""
        self._cached = None

    def invalidate(self, *_):
        """Forget the cached character colours (selection, quantity or colours changed)."""
        self._forget_colours()
        self.recolour()

    def _coloured_selections(self) -> list:
        """Extra selections colouring characters [start, t). They are kept when stepping back
        (and reused stepping forward again) and recoloured in place when only the colours are
        out of date (new weights, unit, quantity or colormap); rebuilt when the text changes."""
        t = self.session.t
        if not self._colouring():
            self._cached = None
            return []
        start = max(0, t - COLOURED_MAX)
        revision = self.editor.document().revision()  # typing moves the selections' cursors
        if self._cached is None or self._cached[:2] != (start, revision):
            self._cached, self._fresh = (start, revision, []), 0
        sels = self._cached[2]  # one per step from ``start``, possibly beyond t
        if self._stale:
            self._fresh, self._stale = 0, False
        n = t - start
        kept = min(len(sels), n)
        if self._fresh < kept:  # recolour the out-of-date ones among those shown
            colours = self._colours(start + self._fresh, start + kept).tolist()
            for sel, rgb in zip(sels[self._fresh:kept], colours):
                _set_colour(sel, rgb)
        if len(sels) < n:
            doc = self.editor.document()
            sels.extend(self._char_selection(doc, start + k, rgb)
                        for k, rgb in enumerate(self._colours(start + len(sels), t).tolist(), len(sels)))
        self._fresh = max(self._fresh, n)
        return sels[:n]

    def recolour(self, *_):
        """Rebuild the highlight of the current character and the activation colours."""
        s = self.session
        doc = self.editor.document()
        selections = self._coloured_selections()  # a new list: the current step's highlight is added
        coloured = bool(selections)
        if s.t > 0:
            sel = QtWidgets.QTextEdit.ExtraSelection()
            sel.cursor = self._step_cursor(doc, s.t - 1)
            if not coloured:
                sel.format.setBackground(QtGui.QColor(255, 214, 10))
                sel.format.setForeground(QtGui.QColor("black"))
            sel.format.setFontWeight(QtGui.QFont.Bold)
            sel.format.setUnderlineStyle(QtGui.QTextCharFormat.SingleUnderline)
            sel.format.setUnderlineColor(QtGui.QColor(220, 30, 30))
            selections.append(sel)
            if not self.editor.hasFocus():
                cursor = QtGui.QTextCursor(doc)
                cursor.setPosition(self.span(s.t - 1)[1])
                self.editor.setTextCursor(cursor)
                self.editor.ensureCursorVisible()
        self.editor.setExtraSelections(selections)
        if s.unit >= 0:
            self.info.setText(f"Colouring by layer {s.layer}, unit {s.unit}, "
                              f"{GATE_STYLE[self.quantity].label}")
        else:
            self.info.setText("Click a heatmap cell to colour the text by that unit")
        self.clear_button.setEnabled(s.unit >= 0)


def _set_colour(sel: QtWidgets.QTextEdit.ExtraSelection, rgb) -> None:
    """Background ``rgb`` (0-255 each) with black or white text, whichever reads better."""
    r, g, b = rgb
    sel.format.setBackground(QtGui.QColor(r, g, b))
    light = 299 * r + 587 * g + 114 * b > 140_000  # bright background: dark text
    sel.format.setForeground(QtGui.QColor("black" if light else "white"))
