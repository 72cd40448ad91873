"""Text panel: the sequence being stepped, editable, with the current character highlighted.

When a unit is selected, each stepped character's background shows that unit's value of the
chosen quantity (h by default; c on its symmetric levels, or any gate of the model's cell), drawn with the same
colormap as its heatmap: the classic "quote-tracking cell" view. Only the stepped characters on
screen (plus ``MARGIN`` steps either side) get a colour: a step or a scroll colours a bounded
number of characters whatever the text's length (``recoloured`` counts them), read as a window of
records from the session. The colours never touch the document or its undo history: a
character's colour is a format range of its line's layout (``_StyledLayout.restyle``, the way
``QSyntaxHighlighter`` colours, laid out with the line and drawn in one pass), except the current
step's and a line end's, which are extra selections like the current step's highlight (bold,
underlined). Qt draws a line's extra selections one after another, each clipped to its own
region, so the line that a step repaints costs one pass per selection in it (offscreen, a line
of about 60 coloured characters: 1.2 ms as selections, 0.26 ms for the panel's whole paint as
format ranges). A restyle lays the whole line out again (1 ms at 1k characters, 45 ms at 300k),
so a line longer than ``LONG_LINE`` is restyled at most once per ``LONG_LINE_PENDING`` steps, the
steps coloured meanwhile drawn as extra selections: a step at the end of a 300k-character line
costs about 20 ms instead of 55 (``bench/long_text.py``). ``coloured()`` lists what is drawn.

Edits are applied after a short pause (``EDIT_DEBOUNCE_MS``) and re-run the model from the first
changed character. Characters outside the model's vocabulary are removed again and named in the
status bar. Clicking a character moves the cursor to just after it.

The panel shows ``session.sequence.document()`` and reads each step's span from the sequence:
for text, the characters (editable); for a numeric series, the steps' labels, read-only and
separated by ``core.sequence.SERIES_SEPARATOR``, each label highlighted, coloured and clickable
as a character is for text.
"""

from __future__ import annotations

import math
import operator

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..core.sequence import TextSequence
from ..plots import GATE_STYLE, value_colours
from ..session import Session

EDIT_DEBOUNCE_MS = 400
MARGIN = 60  # steps coloured beyond the ones on screen, on each side: every step hands Qt the whole
# list of selections (visible + 2 MARGIN), so a small margin is cheaper; a scroll colours the steps it
# brings in anyway
LONG_LINE = 2_000  # characters: a longer line is laid out again only every LONG_LINE_PENDING steps
LONG_LINE_PENDING = 32  # steps coloured as extra selections before a long line is restyled
DOCUMENT_CHUNK = 65_536  # characters put into the editor per GUI event while a long text loads


class TextPanel(QtWidgets.QWidget):
    """Editable text with per-character activation colours."""

    status = QtCore.Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.quantity = "h"
        self._cached = None  # (document revision, first step, [_Coloured per step from it])
        self._styled = {}  # block number -> [FormatRange] its layout draws (the blocks coloured now)
        self._showing = False  # True while the selections are being set (scrolling re-enters)
        self.recoloured = 0  # characters whose colour the last update computed

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self.info = QtWidgets.QLabel()
        self.info.setToolTip("The selected unit whose values colour the characters")
        bar.addWidget(self.info, 1)
        bar.addWidget(QtWidgets.QLabel("Colour by"))
        self.quantity_box = QtWidgets.QComboBox()
        for name in ("h", "c", "f", "i", "o", "g", "r", "z", "n"):  # those the model's cell lacks are disabled
            self.quantity_box.addItem(GATE_STYLE[name].label, name)
        self.quantity_box.setToolTip("Which value of the selected unit colours each character")
        self.quantity_box.currentIndexChanged.connect(self._on_quantity_chosen)
        bar.addWidget(self.quantity_box)
        self.clear_button = QtWidgets.QPushButton("Clear selection")
        self.clear_button.setToolTip("Stop colouring the text by a unit")
        self.clear_button.clicked.connect(lambda: session.select(session.layer, -1, -1))
        bar.addWidget(self.clear_button)

        self.editor = QtWidgets.QPlainTextEdit()
        document = QtGui.QTextDocument(self.editor)
        document.setDocumentLayout(_StyledLayout(document))
        self.editor.setDocument(document)
        self._blocks = document.blockCount()  # before the next edit (``_on_contents_change``)
        document.contentsChange.connect(self._on_contents_change)
        self.editor.setToolTip("The text stepped through the model. Click a character to move the "
                               "cursor there; edit it to re-run from the first changed character.")
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont)
        font.setPointSize(11)
        self.editor.setFont(font)
        self.editor.setLineWrapMode(QtWidgets.QPlainTextEdit.WidgetWidth)
        self.editor.viewport().installEventFilter(self)
        self.editor.textChanged.connect(self._on_text_edited)
        self.editor.verticalScrollBar().valueChanged.connect(self._show_selections)
        self.editor.selectionChanged.connect(self._on_selection_brushed)
        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(EDIT_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.apply_edit)
        self._filling = None  # (document, characters already in the editor) while a long one loads
        self._editor_sequence = None  # the session's sequence whose document the editor holds (or is filling)
        self._fill = QtCore.QTimer(self)
        self._fill.setInterval(0)
        self._fill.timeout.connect(self._fill_more)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.editor, 1)

        session.text_changed.connect(self._on_session_text)
        session.model_changed.connect(self._forget_colours)  # text_changed and stepped follow
        session.model_changed.connect(self._offer_cell_quantities)
        session.stepped.connect(self.recolour)
        session.selection_changed.connect(self.invalidate)
        session.colormap_changed.connect(self._on_colormap_changed)
        session.levels_changed.connect(self.invalidate)
        self._offer_cell_quantities()
        session.quantity_requested.connect(self.set_quantity)
        self._on_session_text()

    # --- text in and out ----------------------------------------------------------------------
    def _on_session_text(self):
        """Show the session's document. A long one goes into the editor ``DOCUMENT_CHUNK``
        characters per GUI event (read-only meanwhile), so opening it never freezes the window."""
        sequence = self.session.sequence
        shown = sequence.document()
        if self._filling is None or self._filling[0] != shown:
            self._fill.stop()
            self._filling = None
            if self.editor.toPlainText() != shown:
                blocker = QtCore.QSignalBlocker(self.editor)
                self.editor.setPlainText(shown[:DOCUMENT_CHUNK])
                del blocker
                self._forget_selections()
                if len(shown) > DOCUMENT_CHUNK:
                    self._filling = (shown, DOCUMENT_CHUNK)
                    self.editor.document().setUndoRedoEnabled(False)
                    self._fill.start()
        self._editor_sequence = sequence
        self.editor.setReadOnly(not sequence.editable or self._filling is not None)
        self.invalidate()

    @property
    def loading(self) -> bool:
        """True while a long document is still being put into the editor."""
        return self._filling is not None

    def _fill_more(self):
        shown, done = self._filling
        end = min(len(shown), done + DOCUMENT_CHUNK)
        cursor = QtGui.QTextCursor(self.editor.document())
        cursor.movePosition(QtGui.QTextCursor.End)
        blocker = QtCore.QSignalBlocker(self.editor)  # not an edit by the user
        cursor.insertText(shown[done:end])
        del blocker
        if end < len(shown):
            self._filling = (shown, end)
            return
        self._fill.stop()
        self._filling = None
        self.editor.document().setUndoRedoEnabled(True)
        self.editor.setReadOnly(not self.session.sequence.editable)
        self.invalidate()

    def _shown_steps(self) -> int:
        """Steps whose whole span is in the editor already (all of them once it is loaded)."""
        if self._filling is None:
            return self.session.steps
        return self.session.sequence.step_at(self.editor.document().characterCount() - 1)  # the last may be cut

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
        caret = self.editor.textCursor().position()  # in document positions (UTF-16 units)
        accepted = self.session.set_text(typed)  # text_changed has put ``accepted`` in the editor
        if accepted != typed:  # characters were refused: the caret stays after what the user typed
            known = set(accepted)
            before_caret = TextSequence(typed).step_at(caret)  # characters before it
            kept = sum(ch in known for ch in typed[:before_caret])  # accepted characters before the caret
            cursor = self.editor.textCursor()
            cursor.setPosition(self.session.sequence.span(kept)[0])  # the end of the text when kept is all
            self.editor.setTextCursor(cursor)

    def _on_selection_brushed(self):
        """A selection in the editor brushes its steps in the Session (hypothesis selection)."""
        cursor = self.editor.textCursor()
        if cursor.hasSelection() and self.session.ready:
            seq = self.session.sequence
            self.session.brush(seq.step_at(cursor.selectionStart()), seq.step_at(cursor.selectionEnd() - 1) + 1)

    def eventFilter(self, obj, event):
        if obj is self.editor.viewport() and event.type() == QtCore.QEvent.Resize:
            _whole_lines(self.editor)
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

    def _offer_cell_quantities(self):
        """Enable the quantities the model's cell records; fall back to h if the chosen one is not."""
        names = self.session.names or ("h", "c", "f", "i", "o", "g")
        items = self.quantity_box.model()
        for row in range(self.quantity_box.count()):
            items.item(row).setEnabled(self.quantity_box.itemData(row) in names)
        if self.quantity not in names:
            self.set_quantity("h")

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
        values = s.records(lo, hi).gate(self.quantity, s.layer)[:, s.unit]  # (n,)
        return value_colours(self.quantity, values, s.levels(self.quantity, s.layer), s.colorblind)

    def _step_cursor(self, doc, step: int) -> QtGui.QTextCursor:
        """A cursor selecting step ``step``'s span."""
        start, end = self.span(step)
        cursor = QtGui.QTextCursor(doc)
        cursor.setPosition(start)
        cursor.setPosition(end, QtGui.QTextCursor.KeepAnchor)
        return cursor

    def _char_colours(self, lo: int, hi: int) -> list:
        """``_Coloured`` of steps ``[lo, hi)`` (counted in ``recoloured``)."""
        if hi <= lo:
            return []
        doc = self.editor.document()
        coloured = []
        for step, rgb in enumerate(self._colours(lo, hi).tolist(), lo):
            start, end = self.span(step)
            block = doc.findBlock(start)
            item = _Coloured(_char_format(rgb), block.blockNumber())
            if end < block.position() + block.length():  # inside the line, not its end
                item.range = QtGui.QTextLayout.FormatRange()
                item.range.start, item.range.length, item.range.format = start - block.position(), end - start, item.format
            coloured.append(item)
        self.recoloured += hi - lo
        return coloured

    def _selection(self, step: int, char_format: QtGui.QTextCharFormat) -> QtWidgets.QTextEdit.ExtraSelection:
        sel = QtWidgets.QTextEdit.ExtraSelection()
        sel.cursor = self._step_cursor(self.editor.document(), step)
        sel.format = char_format
        return sel

    def _forget_colours(self, *_):
        """The colours are out of date (new weights, unit, quantity or colormap)."""
        self._cached = None

    def _forget_selections(self):
        """The document was replaced: the characters' colours must be rebuilt (its new blocks have none)."""
        self._cached = None
        self._styled = {}
        self._blocks = self.editor.document().blockCount()

    def _on_contents_change(self, position: int, removed: int, added: int):
        """An edit (typed, or text put into the editor): the blocks after it are renumbered
        and keep their colours; the first and last edited ones lose theirs (the others are new)."""
        doc = self.editor.document()
        first = doc.findBlock(position).blockNumber()
        shift = doc.blockCount() - self._blocks
        self._blocks = doc.blockCount()
        added_blocks = doc.findBlock(position + added).blockNumber() - first
        removed_blocks = added_blocks - shift
        for number in (first, first + added_blocks):
            block = doc.findBlockByNumber(number)
            if block.isValid() and block.layout().formats():
                doc.documentLayout().restyle(block, [])
        self._styled = {number + (shift if number > first + removed_blocks else 0): ranges
                        for number, ranges in self._styled.items()
                        if not first <= number <= first + removed_blocks}

    def invalidate(self, *_):
        """Forget the cached character colours (selection, quantity or colours changed)."""
        self._forget_colours()
        self.recolour()

    def visible_steps(self) -> tuple:
        """Steps ``[lo, hi)`` whose spans are (at least partly) in the editor's viewport."""
        viewport = self.editor.viewport()
        first = self.editor.cursorForPosition(QtCore.QPoint(0, 0)).position()
        last = self.editor.cursorForPosition(QtCore.QPoint(viewport.width(), viewport.height())).position()
        sequence = self.session.sequence
        return max(0, sequence.step_at(first)), sequence.step_at(last) + 1

    def _coloured_steps(self) -> tuple:
        """``(lo, [_Coloured per step from lo])``: the colours of the stepped characters on screen
        and ``MARGIN`` steps either side, at most ``visible + 2 * MARGIN`` of them whatever the
        text's length. Those already built for the previous window are kept (stepping adds one);
        all are rebuilt when the text or the colours change. ``recoloured`` counts the ones built."""
        t = self.session.t
        if not self._colouring():
            self._cached = None
            return 0, []
        first, last = self.visible_steps()
        lo, hi = max(0, min(first, t) - MARGIN), min(t, last + MARGIN, self._shown_steps())
        revision = self.editor.document().revision()  # typing moves the selections' cursors
        old_lo, old = (self._cached[1], self._cached[2]) if self._cached and self._cached[0] == revision else (lo, [])
        keep_lo, keep_hi = max(lo, old_lo), min(hi, old_lo + len(old))
        if keep_lo >= keep_hi:
            coloured = self._char_colours(lo, hi)
        else:
            coloured = (self._char_colours(lo, keep_lo) + old[keep_lo - old_lo : keep_hi - old_lo]
                        + self._char_colours(keep_hi, hi))
        self._cached = (revision, lo, coloured)
        return lo, coloured

    def _item_selection(self, step: int, item: "_Coloured") -> QtWidgets.QTextEdit.ExtraSelection:
        """Step ``step``'s extra selection (built once per ``_Coloured``)."""
        if item.selection is None:
            item.selection = self._selection(step, item.format)
        return item.selection

    def _show_colours(self) -> list:
        """Colour the lines' layouts; return the extra selections of the coloured steps that are
        not a layout's (the current step, the line ends, and in a line longer than ``LONG_LINE``
        up to ``LONG_LINE_PENDING`` steps coloured since the line was last restyled)."""
        lo, coloured = self._coloured_steps()
        current = self.session.t - 1
        selections, wanted = [], {}  # wanted: block number -> [(step, _Coloured)]
        for step, item in enumerate(coloured, lo):
            if item.range is None or step == current:
                selections.append(self._item_selection(step, item))
            else:
                wanted.setdefault(item.block, []).append((step, item))
        doc = self.editor.document()
        for number in [n for n in self._styled if n not in wanted]:
            block = doc.findBlockByNumber(number)
            if block.isValid():
                doc.documentLayout().restyle(block, [])
            del self._styled[number]
        for number, items in wanted.items():
            shown = self._styled.get(number)
            ranges = [item.range for _, item in items]
            if shown is not None and len(shown) == len(ranges) and all(map(operator.is_, shown, ranges)):
                continue  # the layout draws these already: the block is not even looked up
            block = doc.findBlockByNumber(number)
            if not block.isValid():
                continue
            if shown is not None and block.length() > LONG_LINE:
                drawn = {id(r) for r in shown}
                pending = [(step, item) for step, item in items if id(item.range) not in drawn]
                if len(pending) <= LONG_LINE_PENDING and len(items) - len(pending) == len(shown):
                    selections.extend(self._item_selection(step, item) for step, item in pending)
                    continue  # the layout still draws only steps still coloured
            doc.documentLayout().restyle(block, ranges)
            self._styled[number] = ranges
        return selections

    def coloured(self) -> dict:
        """``{(start, end): (r, g, b)}``: the document span and background colour of each
        coloured step as drawn (a line layout's format range or an extra selection, the current
        step's included), by position."""
        drawn = {}
        doc = self.editor.document()
        for number in self._styled:
            block = doc.findBlockByNumber(number)
            for r in block.layout().formats():
                start = block.position() + r.start
                drawn[start, start + r.length] = r.format.background().color().getRgb()[:3]
        for sel in self.editor.extraSelections():
            if sel.format.background().style() != QtCore.Qt.NoBrush and sel.format.fontWeight() != QtGui.QFont.Bold:
                drawn[sel.cursor.selectionStart(), sel.cursor.selectionEnd()] = sel.format.background().color().getRgb()[:3]
        return dict(sorted(drawn.items()))

    def _highlight(self, doc) -> QtWidgets.QTextEdit.ExtraSelection:
        """The current character's selection: bold, underlined (yellow when not coloured)."""
        sel = QtWidgets.QTextEdit.ExtraSelection()
        sel.cursor = self._step_cursor(doc, self.session.t - 1)
        if not self._colouring():
            sel.format.setBackground(QtGui.QColor(255, 214, 10))
            sel.format.setForeground(QtGui.QColor("black"))
        sel.format.setFontWeight(QtGui.QFont.Bold)
        sel.format.setUnderlineStyle(QtGui.QTextCharFormat.SingleUnderline)
        sel.format.setUnderlineColor(QtGui.QColor(220, 30, 30))
        return sel

    def _holds_current_text(self) -> bool:
        """Whether the editor holds the document of the session's sequence (False from the
        session's new sequence until ``text_changed`` has put it in the editor, e.g. while a
        ``model_changed`` slot runs or ``setPlainText`` replaces the document and scrolls): no
        span of the new sequence is a position in the editor's document before then."""
        return self._editor_sequence is self.session.sequence

    def _show_selections(self, *_):
        """Set the editor's extra selections for what is on screen now (also after scrolling)."""
        if self._showing or not self._holds_current_text():
            return
        self._showing = True
        try:
            self.recoloured = 0
            selections = self._show_colours()
            if 0 < self.session.t <= self._shown_steps():
                selections.append(self._highlight(self.editor.document()))
            self.editor.setExtraSelections(selections)
        finally:
            self._showing = False

    def recolour(self, *_):
        """Show the current character (scrolled into view unless the user is typing) and the
        activation colours of the characters on screen (once the editor holds the session's text)."""
        s = self.session
        if not self._holds_current_text():
            return  # text_changed comes next, and recolours
        if 0 < s.t <= self._shown_steps() and not self.editor.hasFocus():
            blocker = QtCore.QSignalBlocker(self.editor.verticalScrollBar())  # recoloured once, below
            cursor = QtGui.QTextCursor(self.editor.document())
            cursor.setPosition(self.span(s.t - 1)[1])
            self.editor.setTextCursor(cursor)
            self.editor.ensureCursorVisible()
            del blocker
        elif s.t == 0 and not self.editor.hasFocus():  # back before the first step (Home): show the start
            self.editor.moveCursor(QtGui.QTextCursor.Start)
            self.editor.ensureCursorVisible()
        self._show_selections()
        if s.unit >= 0:
            self.info.setText(f"Colouring by layer {s.layer}, unit {s.unit}, "
                              f"{GATE_STYLE[self.quantity].label}")
        else:
            self.info.setText("Click a heatmap cell to colour the text by that unit")
        self.clear_button.setEnabled(s.unit >= 0)


def _char_format(rgb) -> QtGui.QTextCharFormat:
    """Background ``rgb`` (0-255 each) with black or white text, whichever reads better."""
    r, g, b = rgb
    char_format = QtGui.QTextCharFormat()
    char_format.setBackground(QtGui.QColor(r, g, b))
    light = 299 * r + 587 * g + 114 * b > 140_000  # bright background: dark text
    char_format.setForeground(QtGui.QColor("black" if light else "white"))
    return char_format


class _Coloured:
    """One coloured step: its format, its block's number, the format range its line's layout
    draws (None for a span that ends the line: a selection draws it) and its extra selection
    (built when it is drawn as one: the current step or a line end)."""

    __slots__ = ("format", "block", "range", "selection")

    def __init__(self, char_format: QtGui.QTextCharFormat, block: int):
        self.format, self.block, self.range, self.selection = char_format, block, None, None


class _StyledLayout(QtWidgets.QPlainTextDocumentLayout):
    """The editor's document layout. ``restyle`` gives one block's layout new format ranges
    and repaints that block alone (laid out again when painted). Qt's own ``markContentsDirty``
    of the block would relayout the next block too and repaint the whole view; no document
    signal is emitted either way: it is not an edit."""

    def __init__(self, document: QtGui.QTextDocument):
        super().__init__(document)
        self._restyling = None  # the block being restyled

    def restyle(self, block: QtGui.QTextBlock, ranges: list) -> None:
        """Draw ``block`` with format ranges ``ranges`` (``QTextLayout.FormatRange``, block-relative)."""
        self._restyling = block
        try:
            block.layout().setFormats(ranges)  # drops the block's lines; Qt records a pending change of it ...
            self.document().markContentsDirty(block.position(), 0)  # ... handed to documentChanged now
        finally:
            self._restyling = None

    def documentChanged(self, position: int, removed: int, added: int) -> None:  # noqa: N802 - Qt's name
        if self._restyling is None:
            super().documentChanged(position, removed, added)
        else:  # the block's size is unchanged (colours only): repaint it, laid out by the paint
            self.updateBlock.emit(self._restyling)


def _whole_lines(editor: QtWidgets.QPlainTextEdit) -> None:
    """Leave the part of the editor's height that cannot hold a whole line as an empty margin
    at the bottom, so no line is shown cut off."""
    margins = editor.viewportMargins()
    line = math.ceil(QtGui.QFontMetricsF(editor.font()).lineSpacing())  # the plain-text layout's line pitch
    top = editor.document().documentMargin()
    available = editor.viewport().height() + margins.bottom()
    lines = int((available - top) // line)
    spare = max(0, int(available - top - lines * line)) if lines > 0 else 0
    if spare != margins.bottom():
        editor.setViewportMargins(margins.left(), margins.top(), margins.right(), spare)
