"""Small widget helpers shared by the lesson panels."""

from __future__ import annotations

from PySide6 import QtWidgets


def spin_box(lo: int, hi: int, value: int, tip: str) -> QtWidgets.QSpinBox:
    """An integer spin box over ``[lo, hi]`` starting at ``value``, with a tooltip."""
    box = QtWidgets.QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    return box
