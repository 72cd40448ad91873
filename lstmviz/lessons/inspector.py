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
        trace = s.trace()
        breakdown = s.equation_breakdown(layer, step, unit)
        wires = diagram_values(trace, layer, step, unit)
        pre = trace.gate("pre", layer)[step]  # (G,) public order, as recorded
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
        return (f"{text}&nbsp;<span style='background-color:{colour}'>&nbsp;&nbsp;&nbsp;&nbsp;</span>")

    @staticmethod
    def _name(name: str, sub: str = "t") -> str:
        return f"<b style='color:{GATE_ACCENT[name]}'>{name}<sub>{sub}</sub></b>"

    def _gate_row(self, name: str) -> str:
        activation = quantity(name).activation
        cells = [f"{self._name(name)} <small>{quantity(name).title}</small>",
                 self._num(f"{name}.input"), "+", self._num(f"{name}.recurrent"), "+", self._num(f"{name}.bias"),
                 "=", self._num(f"{name}.pre"), f"→ {ACTIVATION_SYMBOL[activation]} →",
                 self._num(name, colour_as=name)]
        return "<tr>" + "".join(f"<td align='right'>{c}</td>" for c in cells) + "</tr>"

    def _html(self, cell: str, layer: int, unit: int, step: int, x_label: str) -> str:
        header = (f"<p><b>layer {layer} · unit {unit} · step {step}</b> &nbsp; input x<sub>t</sub> = "
                  f"<span style='font-family:monospace'>{html.escape(x_label)}</span> &nbsp; "
                  f"h<sub>t-1</sub> = {self._num('h_prev', colour_as='h')}</p>")
        heads = ["", "input x·W<sub>x</sub>", "", "recurrent h<sub>t-1</sub>·W<sub>h</sub>", "", "bias b", "",
                 "pre-activation z", "", "value"]
        table = ("<table cellspacing='0' cellpadding='3'><tr>"
                 + "".join(f"<th align='right'><small>{h}</small></th>" for h in heads) + "</tr>")
        if cell == "rnn":
            table += self._gate_row("h") + "</table>"
            formula = ("<p>h<sub>t</sub> = tanh(x<sub>t</sub>·W<sub>x</sub> + h<sub>t-1</sub>·W<sub>h</sub> + b) = "
                       f"tanh({self._num('h.pre')}) = {self._num('h', colour_as='h')}</p>")
            return header + table + formula
        if cell == "gru":
            return header + self._gru_html(table)
        table += "".join(self._gate_row(name) for name in ("f", "i", "g", "o"))
        table += "</table>"
        f, i, g, o = (self._name(n) for n in ("f", "i", "g", "o"))
        c, h = self._name("c"), self._name("h")
        c_prev = self._name("c", "t-1")
        cell_line = (f"<p>{c} = {f}·{c_prev} + {i}·{g}<br>"
                     f"&nbsp;&nbsp;&nbsp;= {self._num('f')} × {self._num('c_prev', colour_as='c')} + "
                     f"{self._num('i')} × {self._num('g')}<br>"
                     f"&nbsp;&nbsp;&nbsp;= {self._num('f*c_prev')} <small>(kept)</small> + "
                     f"{self._num('i*g')} <small>(written)</small> = {self._num('c_t', colour_as='c')}</p>")
        hidden_line = (f"<p>{h} = {o}·tanh({c}) = {self._num('o')} × tanh({self._num('c_t')})<br>"
                       f"&nbsp;&nbsp;&nbsp;= {self._num('o')} × {self._num('tanh(c_t)')} = "
                       f"{self._num('h_t', colour_as='h')}</p>")
        return header + table + cell_line + hidden_line

    def _gru_html(self, table: str) -> str:
        """The r, z, n rows and the candidate and hidden-state lines of a GRU unit."""
        table += "".join(self._gate_row(name) for name in ("r", "z", "n")) + "</table>"
        r, z, n, h = (self._name(k) for k in ("r", "z", "n", "h"))
        h_prev = self._name("h", "t-1")
        n_line = (f"<p>recurrent part of {n} = {r}·(h<sub>t-1</sub>·W<sub>hn</sub> + b<sub>hn</sub>) = "
                  f"{self._num('r')} × {self._num('n.reset_input')} = {self._num('n.recurrent')}</p>")
        h_line = (f"<p>{h} = (1 − {z})·{n} + {z}·{h_prev}<br>"
                  f"&nbsp;&nbsp;&nbsp;= {self._num('1-z')} × {self._num('n')} + {self._num('z')} × "
                  f"{self._num('h_prev', colour_as='h')}<br>"
                  f"&nbsp;&nbsp;&nbsp;= {self._num('(1-z)*n')} <small>(written)</small> + "
                  f"{self._num('z*h_prev')} <small>(kept)</small> = {self._num('h_t', colour_as='h')}</p>")
        return table + n_line + h_line
