"""Readout: a one-line label for text that changes many times a second.

A plain ``QLabel.setText`` asks its layout, and every layout above it up to the main window's,
to lay out again: Qt's ``QLayout::activate`` passes the request up unconditionally unless a
widget on the way has a fixed size. At the top, the main window lays out all its docks again
(~3 ms on the GUI thread each time, measured while training), and the neighbours of a label
jitter as the width of its digits changes. A ``Readout`` has a fixed size that only grows: to
fit the widest text it has shown (in its current font). Its changes stay inside it until a
text needs more room.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class Readout(QtWidgets.QLabel):
    """A QLabel whose fixed size grows to fit the widest text shown so far (never shrinks)."""

    def __init__(self, text: str = "", parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)  # fixed size at this point: no layout request goes up
        self._fit()

    def _fit(self) -> None:
        """Fix the size at the larger of the current size and what the text needs."""
        hint = self.sizeHint()
        needed = QtCore.QSize(max(hint.width(), self.minimumWidth()), max(hint.height(), self.minimumHeight()))
        if self.minimumSize() != needed or self.maximumSize() != needed:
            self.setFixedSize(needed)

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() in (QtCore.QEvent.FontChange, QtCore.QEvent.StyleChange):
            self.setMinimumSize(0, 0)  # measure afresh in the new font
            self._fit()
