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

A rich text (inline markup such as ``<b>``) cannot be elided: with a ``reserve`` it is shown as
it is, cut at the reserved width, and never measured (``sizeHint`` lays a rich text out as a
document, the costly part of showing it), so a rich ``reserve`` as wide as the texts it stands
for (e.g. the Current step panel's titles) keeps a step from laying anything out to measure it.
Without a reserve, each new text is measured.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class Readout(QtWidgets.QLabel):
    """A QLabel whose fixed size grows to fit the widest text shown so far (never shrinks), or
    with ``reserve`` (plain or rich text) stays the size of that text and elides wider plain
    texts (module docstring)."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None, reserve: str | None = None):
        super().__init__(parent)
        self._reserve = reserve
        self._reserved = None  # (width of the reserve, fixed size) in the current font, once measured
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

    def set_reserve(self, reserve: str | None) -> None:
        """Fix the size at that of ``reserve`` from now on (None: grow to fit instead)."""
        if reserve != self._reserve:
            self._reserve, self._reserved = reserve, None
            self._show()
            self._fit()

    def _reserved_size(self) -> tuple:
        """``(width of the reserve text, fixed size)`` in the current font (measured once per font;
        a rich reserve as laid out, in a label like this one)."""
        if self._reserved is None:
            margins = self.contentsMargins()
            if QtGui.Qt.mightBeRichText(self._reserve):
                probe = QtWidgets.QLabel(self._reserve)
                probe.setFont(self.font())
                probe.setMargin(self.margin())
                probe.setContentsMargins(margins)
                hint = probe.sizeHint()
                width = hint.width() - margins.left() - margins.right() - 2 * self.margin()
            else:
                width = self.fontMetrics().horizontalAdvance(self._reserve)
                hint = QtCore.QSize(width + margins.left() + margins.right() + 2 * self.margin(),
                                    self.sizeHint().height())
            self._reserved = (width, hint)
        return self._reserved

    def _show(self) -> None:
        """Show the text, elided to the reserved width when there is one (plain texts only)."""
        shown = self._text
        if self._reserve is not None and not QtGui.Qt.mightBeRichText(shown):
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
        hint = self.sizeHint()
        needed = QtCore.QSize(max(hint.width(), self.minimumWidth()), max(hint.height(), self.minimumHeight()))
        if self.minimumSize() != needed or self.maximumSize() != needed:
            self.setFixedSize(needed)

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange) and self._text is not None:
            self.setMinimumSize(0, 0)  # measure afresh in the new font
            self._reserved = None
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
