"""Shared look of the lesson panels: one accent colour per gate, number formatting, and the
heatmap colour of a value (so a number in the inspector or the diagram carries the same colour
as its cell in the gate heatmaps)."""

from __future__ import annotations

from PySide6 import QtGui

from ..plots import value_colours

SIGNIFICANT_DIGITS = 5  # digits shown for every number in the lessons
# Accent colours of the gates' names and wires (distinct under the common colour-vision deficiencies:
# Okabe-Ito palette).
GATE_ACCENT = {
    "f": "#D55E00",  # forget gate: vermillion
    "i": "#009E73",  # input gate: bluish green
    "g": "#0072B2",  # candidate: blue
    "o": "#CC79A7",  # output gate: reddish purple
    "c": "#E69F00",  # cell state: orange
    "h": "#56B4E9",  # hidden state: sky blue
    "r": "#D55E00",  # GRU reset gate: vermillion
    "z": "#009E73",  # GRU update gate: bluish green
    "n": "#0072B2",  # GRU candidate: blue
}


def fmt(value: float) -> str:
    """A number with ``SIGNIFICANT_DIGITS`` significant digits and an explicit sign (monospace-friendly)."""
    return f"{value:+#.{SIGNIFICANT_DIGITS}g}"


def heat_colour(name: str, value: float, levels: tuple, colorblind: bool = False) -> QtGui.QColor:
    """The colour the heatmap of ``name`` gives ``value`` with colour levels ``(lo, hi)``."""
    r, g, b = value_colours(name, [value], levels, colorblind)[0]
    return QtGui.QColor(int(r), int(g), int(b))
