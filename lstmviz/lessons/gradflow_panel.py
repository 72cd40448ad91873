"""Gradient flow through time: how strongly the loss at the last character reaches back.

For the session's text (its last ``MAX_STEPS + 1`` known characters: ``MAX_STEPS`` inputs, each
predicting the next) the panel plots, on a log scale, ``||dLoss_T/dh_t||`` (and for an LSTM
``||dLoss_T/dc_t||``) against the step t, from ``Session.gradient_flow``
(``engine.gradflow.gradient_flow``). Without a
comparison it shows the viewer's model; once the "RNN vs LSTM" panel has trained its pair, it
shows both (a vanilla RNN's curve falls off geometrically; the LSTM's cell path keeps it up).
Recomputed on the GUI thread when the model or the text changes, at most once per
``COALESCE_MS`` (changes in between are gathered into one recomputation, so live training
updates do not pile up): a few forward passes and one backward pass over at most 200 steps.
Nothing is computed while the panel is off screen (also not when it is built): it catches up
when shown.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from ..shown import RefreshWhenShown
from ..session import GRADFLOW_STEPS

MAX_STEPS = GRADFLOW_STEPS  # inputs of the analysed sequence (the text's last MAX_STEPS + 1 characters)
COALESCE_MS = 500  # the longest a change waits before the plot follows it
PENS = {  # (colour, dashed) per curve kind
    "rnn h": ("#D55E00", False), "lstm h": ("#0072B2", False), "lstm c": ("#0072B2", True),
    "gru h": ("#009E73", False),
}
NO_HEAD = "This model has no output layer: there is no loss, so no gradient flow to show."


class GradientFlowPanel(RefreshWhenShown, QtWidgets.QWidget):
    """Log-scale plot of per-step gradient norms (see the module docstring).

    ``flows`` maps each shown model's label to its ``GradientFlow``; ``curves`` maps a curve's
    name (``"<label> ||dL/dh||"`` / ``"<label> ||dL/dc||"``) to its ``(t, norm)`` arrays as plotted.
    """

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.comparison: dict = {}  # label -> (model, vocab) from the compare panel
        self.flows: dict = {}
        self.curves: dict = {}
        self.plot = pg.PlotWidget()
        self.plot.setLogMode(x=False, y=True)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step t (the loss is at the last step)")
        self.plot.setLabel("left", "gradient norm ||dL_T / d state_t||")
        self.plot.addLegend(offset=(10, 10))
        self.info = QtWidgets.QLabel()
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: gray")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.info)
        self.setToolTip("How much the loss at the last step depends on the hidden state h (solid) and the "
                        "cell state c (dashed) of every earlier step: the vanishing-gradient picture.")
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COALESCE_MS)
        self._timer.timeout.connect(self.recompute)
        session.model_changed.connect(self.refresh_soon)
        session.text_changed.connect(self.refresh_soon)
        session.selection_changed.connect(self._on_selection)
        self._layer = session.layer  # the layer whose norms are plotted
        self.refresh_soon()  # computed when first shown

    def refresh(self) -> None:
        """Recompute within COALESCE_MS (a pending recomputation absorbs this change)."""
        if not self._timer.isActive():
            self._timer.start()

    def _on_selection(self, layer: int, _unit: int, _step: int) -> None:
        if layer != self._layer:
            self.refresh_soon()

    def set_comparison(self, models: dict) -> None:
        """Show these models (label -> (model, vocab)) instead of the viewer's; {} shows the viewer's.
        Recomputed at once when on screen, else when shown."""
        self.comparison = dict(models)
        if self.on_screen():
            self.recompute()
        else:
            self._stale = True

    def models(self) -> dict:
        """label -> (model, vocab) of the models plotted."""
        if self.comparison:
            return self.comparison
        s = self.session
        return {} if s.model is None or s.vocab is None else {"viewer": (s.model, s.vocab)}

    def recompute(self) -> None:
        self._timer.stop()
        self.plot.clear()
        self.flows, self.curves = {}, {}
        layer_note = ""
        self._layer = self.session.layer
        models = self.models()
        if any(model.config.head == "none" for model, _ in models.values()):
            self.info.setText(NO_HEAD)
            return
        for label, (model, vocab) in models.items():
            flow = self.session.gradient_flow(model, vocab, MAX_STEPS)
            if flow is None:
                continue
            self.flows[label] = flow
            layer = min(self.session.layer, model.config.num_layers - 1)
            layer_note = f" · layer {layer}"
            t = np.arange(flow.dh.shape[1])  # (T,)
            cell = model.config.cell
            self._add_curve(f"{label} ||dL/dh||", t, flow.h_norms[layer], f"{cell} h")
            if flow.c_norms is not None:
                self._add_curve(f"{label} ||dL/dc||", t, flow.c_norms[layer], f"{cell} c")
        if not self.flows:
            self.info.setText("Needs a model and at least two characters of text it knows.")
            return
        T = next(iter(self.flows.values())).dh.shape[1]
        self.info.setText(f"Last {T} steps of the text{layer_note}; loss at step {T - 1} only. "
                          "A line that drops fast means early steps barely affect the loss.")

    def _add_curve(self, name: str, t: np.ndarray, norms: np.ndarray, kind: str) -> None:
        keep = norms > 0  # (T,) a log axis cannot show exact zeros
        self.curves[name] = (t[keep], norms[keep])
        colour, dashed = PENS[kind]
        pen = pg.mkPen(colour, width=2, style=QtCore.Qt.DashLine if dashed else QtCore.Qt.SolidLine)
        self.plot.plot(t[keep], norms[keep], pen=pen, name=name)
