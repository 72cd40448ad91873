"""Readout: a one-line label for text that changes many times a second.

A plain ``QLabel.setText`` asks its layout, and every layout above it up to the main window's,
to lay out again: Qt's ``QLayout::activate`` passes the request up unconditionally unless a
widget on the way has a fixed size. At the top, the main window lays out all its docks again
(~3 ms on the GUI thread each time, measured while training), and the neighbours of a label
jitter as the width of its digits changes. A ``Readout`` has a fixed size that only grows: to
fit the widest text it has shown (in its current font). Its changes stay inside it until a
text needs more room.

With ``reserve`` (a text as wide as the readout should ever be), the width is fixed at that
text's and never grows, so the layout never depends on the length of what is shown: a wider
text is elided ("…") and shown whole in the tooltip. ``text()`` is always the whole text.

Measuring a rich text (``sizeHint``) lays it out as a document, the costly part of showing it.
A readout that already has room skips that for a one-line text with inline markup only (``<b>``,
``<i>``, ``<span>``, bare or with a style setting colours only): its width is then that of its
plain parts in the label's font and of its bold parts in bold (with ``FIT_SLACK_PX`` to spare for
kerning across them); if that fits, its size stays as it is. Any other markup, a style setting a
font's size, weight or family included, is measured laid out.
"""

from __future__ import annotations

import html
import re

from PySide6 import QtCore, QtGui, QtWidgets

_COLOUR = r"\s*(?:background-)?color\s*:[^;:\"'<>]*;?"  # one colour declaration
COLOUR_STYLE = rf"""(?:\s+style\s*=\s*(?:"(?:{_COLOUR})*\s*"|'(?:{_COLOUR})*\s*'))?\s*"""  # none, or colours only
INLINE_TAGS = re.compile(rf"<(?:b|i|span){COLOUR_STYLE}>|</(?:b|i|span)\s*>")  # markup that keeps one line in
# the label's font family and size: a style setting anything but colours (font-size, font-family, ...) may widen it
BOLD = re.compile(rf"<b{COLOUR_STYLE}>(.*?)</b>")  # a bold part (not nested: the readouts' titles)
FIT_SLACK_PX = 2


class Readout(QtWidgets.QLabel):
    """A QLabel whose fixed size grows to fit the widest text shown so far (never shrinks), or
    with ``reserve`` stays as wide as that text and elides wider ones (module docstring)."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None, reserve: str | None = None):
        super().__init__(parent)
        self._reserve = reserve
        self._reserved = None  # (width of the reserve, fixed size) in the current font, once measured
        self._metrics = None  # (metrics of the current font, the same in bold), once needed
        self._text = None
        self._tip = ""  # the tooltip set by the owner; an elided text is added below it
        self.setText(text)

    def text(self) -> str:  # noqa: D102 - QLabel's, whole even when elided
        return self._text

    def setToolTip(self, tip: str) -> None:  # noqa: N802 - Qt's name
        self._tip = tip
        if self._text is not None:
            self._show()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        if text == self._text:
            return  # a step often shows the same text again: nothing to lay out or repaint
        self._text = text
        self._show()
        self._fit()

    def _reserved_size(self) -> tuple:
        """``(width of the reserve text, fixed size)`` in the current font (measured once per font)."""
        if self._reserved is None:
            metrics, margins = self.fontMetrics(), self.contentsMargins()
            width = metrics.horizontalAdvance(self._reserve)
            self._reserved = (width, QtCore.QSize(width + margins.left() + margins.right() + 2 * self.margin(),
                                                  self.sizeHint().height()))
        return self._reserved

    def _show(self) -> None:
        """Show the text, elided to the reserved width when there is one."""
        shown = self._text
        if self._reserve is not None:
            width = self._reserved_size()[0]
            metrics = self.fontMetrics()
            if metrics.horizontalAdvance(shown) > width:
                shown = metrics.elidedText(self._text, QtCore.Qt.ElideRight, width)
        super().setText(shown)  # fixed size at this point: no layout request goes up
        whole = "" if shown == self._text else self._text
        tip = "\n".join(t for t in (self._tip, whole) if t)
        if tip != super().toolTip():
            super().setToolTip(tip)

    def _fit(self) -> None:
        """Fix the size at the larger of the current size and what the text needs (with a
        reserve: at the reserve's size)."""
        if self._reserve is not None:
            needed = self._reserved_size()[1]
            if self.minimumSize() != needed or self.maximumSize() != needed:
                self.setFixedSize(needed)
            return
        if self._fits_as_it_is():
            return
        hint = self.sizeHint()
        needed = QtCore.QSize(max(hint.width(), self.minimumWidth()), max(hint.height(), self.minimumHeight()))
        if self.minimumSize() != needed or self.maximumSize() != needed:
            self.setFixedSize(needed)

    def _fits_as_it_is(self) -> bool:
        """Whether the text fits the readout's fixed size without laying it out: one line
        (plain, or rich with inline tags only) whose plain and bold parts (module docstring)
        fit its width with ``FIT_SLACK_PX`` to spare."""
        if self.minimumSize() != self.maximumSize() or not self._text:
            return False
        parts = [(self._text, False)]  # (text, bold)
        if QtGui.Qt.mightBeRichText(self._text):
            pieces = BOLD.split(self._text)  # plain, bold, plain, bold, ..., plain
            parts = [(INLINE_TAGS.sub("", piece), k % 2 == 1) for k, piece in enumerate(pieces)]
            if any("<" in piece for piece, _ in parts):
                return False  # other markup may change the size (headings, breaks, tables)
            parts = [(html.unescape(piece), bold) for piece, bold in parts]
        if any("\n" in piece for piece, _ in parts):
            return False
        if self._metrics is None:
            bold = QtGui.QFont(self.font())
            bold.setBold(True)
            self._metrics = (QtGui.QFontMetricsF(self.font()), QtGui.QFontMetricsF(bold))
        width = sum(self._metrics[bold].horizontalAdvance(piece) for piece, bold in parts)
        return width + FIT_SLACK_PX <= self.contentsRect().width() - 2 * self.margin()

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange) and self._text is not None:
            self.setMinimumSize(0, 0)  # measure afresh in the new font
            self._reserved = None
            self._metrics = None
            self._show()
            self._fit()


class ElidedLabel(QtWidgets.QLabel):
    """A one-line status label that takes the width its layout gives it (horizontal size
    policy Ignored: a long message never widens the dock) and shows its text elided ("…") to
    that width, whole in the tooltip; ``text()`` is the whole text."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._text = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
        self.setText(text)

    def text(self) -> str:  # noqa: D102 - QLabel's, whole even when elided
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._text = text
        super().setToolTip(text)
        self._show()

    def _show(self) -> None:
        width = self.contentsRect().width() - 2 * self.margin()
        super().setText(self.fontMetrics().elidedText(self._text, QtCore.Qt.ElideRight, max(width, 0)))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._show()

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange):
            self._show()
