"""Equation inspector: one unit's update at one step, with every number filled in.

For the focused (layer, unit, step) (see ``focus``) each gate's pre-activation is shown as its
three summands — input part ``x_t·Wx``, recurrent part ``h_{t-1}·Wh`` and bias ``b`` — their sum,
the activation and the result; then ``c_t = f·c_{t-1} + i·g`` and ``h_t = o·tanh(c_t)`` (a
GRU: r, z, then n whose recurrent part is ``r·(h_{t-1}·Wh_n + b_hn)``, and
``h_t = (1 - z)·n + z·h_{t-1}``; a vanilla RNN: ``h_t = tanh(x·Wx + h·Wh + b)``). The summands come from ``Session.equation_breakdown``
(``engine.equations.decompose``); names and activations from ``engine.quantities``;
every value that also appears in a heatmap (gates, pre-activations, c, h) is read from the trace
itself, so the inspector and the heatmaps always agree digit for digit. ``values`` keeps the
shown numbers (name -> float) for tests and exports.
"""

from __future__ import annotations

import html

from PySide6 import QtWidgets

from engine.equations import diagram_values
from engine.quantities import quantity

from ..core.labels import step_label
from ..shown import RefreshWhenShown
from .focus import LessonFocus
from .style import GATE_ACCENT, fmt, heat_colour

ACTIVATION_SYMBOL = {"sigmoid": "σ", "tanh": "tanh"}
HINT = ("<p style='color:gray'>Click a cell in a gate heatmap to choose a unit (and step); "
        "the inspector then shows its equations with every number filled in.</p>")


class EquationInspector(RefreshWhenShown, QtWidgets.QTextBrowser):
    """Rich-text view of one unit's equations (see the module docstring)."""

    def __init__(self, session, focus: LessonFocus, parent=None):
        super().__init__(parent)
        self.session = session
        self.focus = focus
        self.values: dict = {}  # quantity -> float, exactly as shown (rounded only for display)
        self.setOpenLinks(False)
        self.setLineWrapMode(QtWidgets.QTextEdit.NoWrap)  # a narrow panel scrolls; no number is broken
        self.setMinimumSize(360, 260)
        self.setToolTip("The selected unit's equations at the focused step. Numbers are coloured "
                        "as in the heatmaps; the step follows the cursor until you click a heatmap cell.")
        focus.changed.connect(self.refresh_soon)
        self.refresh_soon()  # shown when first on screen

    def refresh(self) -> None:
        position = self.focus.position()
        if position is None:
            self.values = {}
            self.setHtml(HINT)
            return
        layer, unit, step = position
        s = self.session
        trace = s.records(step, step + 1)  # row 0 is ``step``; the state before it is carried
        breakdown = s.equation_breakdown(layer, step, unit)
        wires = diagram_values(trace, layer, 0, unit)
        pre = trace.gate("pre", layer)[0]  # (G,) public order, as recorded
        H = trace.hidden_size
        values = {"h_prev": wires["h_prev"]}
        for k, (name, term) in enumerate(breakdown.gates.items()):
            values.update({f"{name}.input": term.input_part, f"{name}.recurrent": term.recurrent_part,
                           f"{name}.bias": term.bias, f"{name}.pre": float(pre[k * H + unit])})
            values[name] = wires["h_t" if name == "h" else name]
        if trace.cell == "lstm":
            for key in ("c_prev", "f*c_prev", "i*g", "c_t", "tanh(c_t)", "h_t"):
                values[key] = wires[key]
        if trace.cell == "gru":
            values["n.reset_input"] = breakdown.reset_input
            for key in ("1-z", "z*h_prev", "(1-z)*n", "h_t"):
                values[key] = wires[key]
        self.values = values
        self.setHtml(self._html(trace.cell, layer, unit, step, wires["x_t"]))

    # --- HTML ---------------------------------------------------------------------------------
    def _num(self, key: str, colour_as: str | None = None) -> str:
        """A number in monospace, with a swatch in its heatmap colour when ``colour_as`` is given."""
        value = self.values[key]
        text = f"<span style='font-family:monospace'>{html.escape(fmt(value))}</span>"
        if colour_as is None:
            return text
        s = self.session
        colour = heat_colour(colour_as, value, s.levels(colour_as, s.layer), s.colorblind).name()
        return (f"{text}&nbsp;<span style='background-color:{colour}'>&nbsp;&nbsp;</span>")

    @staticmethod
    def _name(name: str, sub: str = "t") -> str:
        return f"<b style='color:{GATE_ACCENT[name]}'>{name}<sub>{sub}</sub></b>"

    def _gate_table(self, names: tuple) -> str:
        """One column per gate, one row per term, read downwards: input part + recurrent part +
        bias = pre-activation, through the activation, to the value. Every cell is ``nowrap``
        (a line break only where a ``<br>`` puts one), so a narrow panel scrolls sideways
        instead of breaking a number across lines."""
        def row(label: str, cells: list) -> str:
            return (f"<tr><td nowrap align='right'><small>{label}</small></td>"
                    + "".join(f"<td nowrap align='right'>{c}</td>" for c in cells) + "</tr>")

        heads = [f"{self._name(n)}<br><small>{quantity(n).title}</small>" for n in names]
        rows = [
            row("", heads),
            row("input x<sub>t</sub>·W<sub>x</sub>", [self._num(f"{n}.input") for n in names]),
            row("+ h<sub>t-1</sub>·W<sub>h</sub>", [self._num(f"{n}.recurrent") for n in names]),
            row("+ bias b", [self._num(f"{n}.bias") for n in names]),
            row("= z", [self._num(f"{n}.pre") for n in names]),
            row("", [f"↓ {ACTIVATION_SYMBOL[quantity(n).activation]}(z)" for n in names]),
            row("value", [self._num(n, colour_as=n) for n in names]),
        ]
        return "<table cellspacing='0' cellpadding='2'>" + "".join(rows) + "</table>"

    @staticmethod
    def _lines(*lines: str) -> str:
        """A paragraph of ``lines`` that never wraps inside a line."""
        return "<p style='white-space:nowrap'>" + "<br>".join(lines) + "</p>"

    def _html(self, cell: str, layer: int, unit: int, step: int, x_label: str) -> str:
        header = self._lines(f"<b>layer {layer} · unit {unit} · {step_label(step)}</b>",
                             f"input x<sub>t</sub> = <span style='font-family:monospace'>{html.escape(x_label)}</span>"
                             f" &nbsp; h<sub>t-1</sub> = {self._num('h_prev', colour_as='h')}")
        if cell == "rnn":
            formula = self._lines("h<sub>t</sub> = tanh(x<sub>t</sub>·W<sub>x</sub> + h<sub>t-1</sub>·W<sub>h</sub> + b)",
                                  f"&nbsp;&nbsp;&nbsp;= tanh({self._num('h.pre')}) = {self._num('h', colour_as='h')}")
            return header + self._gate_table(("h",)) + formula
        if cell == "gru":
            return header + self._gate_table(("r", "z", "n")) + self._gru_lines()
        f, i, g, o = (self._name(n) for n in ("f", "i", "g", "o"))
        c, h = self._name("c"), self._name("h")
        c_prev = self._name("c", "t-1")
        cell_line = self._lines(
            f"{c} = {f}·{c_prev} + {i}·{g}",
            f"&nbsp;&nbsp;&nbsp;= {self._num('f')} × {self._num('c_prev', colour_as='c')}",
            f"&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;+ {self._num('i')} × {self._num('g')}",
            f"&nbsp;&nbsp;&nbsp;= {self._num('f*c_prev')} <small>(kept)</small> + {self._num('i*g')} <small>(written)</small>",
            f"&nbsp;&nbsp;&nbsp;= {self._num('c_t', colour_as='c')}")
        hidden_line = self._lines(
            f"{h} = {o}·tanh({c}) = {self._num('o')} × tanh({self._num('c_t')})",
            f"&nbsp;&nbsp;&nbsp;= {self._num('o')} × {self._num('tanh(c_t)')} = {self._num('h_t', colour_as='h')}")
        return header + self._gate_table(("f", "i", "g", "o")) + cell_line + hidden_line

    def _gru_lines(self) -> str:
        """The candidate's reset-gated recurrent part and the hidden-state mix of a GRU unit."""
        r, z, n, h = (self._name(k) for k in ("r", "z", "n", "h"))
        h_prev = self._name("h", "t-1")
        n_line = self._lines(
            f"recurrent part of {n} = {r}·(h<sub>t-1</sub>·W<sub>hn</sub> + b<sub>hn</sub>)",
            f"&nbsp;&nbsp;&nbsp;= {self._num('r')} × {self._num('n.reset_input')} = {self._num('n.recurrent')}")
        h_line = self._lines(
            f"{h} = (1 − {z})·{n} + {z}·{h_prev}",
            f"&nbsp;&nbsp;&nbsp;= {self._num('1-z')} × {self._num('n')}",
            f"&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;+ {self._num('z')} × {self._num('h_prev', colour_as='h')}",
            f"&nbsp;&nbsp;&nbsp;= {self._num('(1-z)*n')} <small>(written)</small> + {self._num('z*h_prev')} <small>(kept)</small>",
            f"&nbsp;&nbsp;&nbsp;= {self._num('h_t', colour_as='h')}")
        return n_line + h_line
