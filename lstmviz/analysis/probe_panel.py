"""Feature probes (``engine.analysis.probe``): rank every unit of every layer and quantity by
how well it tracks a feature of the viewed text, a built-in one (quotes, bracket depth, line
position, ...), a regular expression, or the brushed span (``Session.brush``).

The ranking runs off the GUI thread over the whole text in chunks (memory: one chunk plus the
accumulators). Clicking a row colours the text by that unit and quantity
(``Session.select`` + ``Session.request_quantity``).
"""

from __future__ import annotations

from PySide6 import QtWidgets

from engine.analysis.features import BUILTIN_FEATURES, REGEX_PREFIX, feature, span_feature
from engine.analysis.probe import probe_chunks

from .base import AnalysisPanel
from .jobs import chunks, text_source

ROWS_SHOWN = 200
BRUSHED = "brushed span"
REGEX = "regular expression"


def make_feature(text: str, name: str, regex: str, span: tuple):
    """The ``Feature`` chosen: a built-in ``name``, ``REGEX`` with ``regex`` or ``BRUSHED`` with
    ``span``; ValueError for a bad pattern (the job reports it)."""
    if name == BRUSHED:
        return span_feature(len(text), [span], "brushed span")
    return feature(text, REGEX_PREFIX + regex if name == REGEX else name)


def run_probe(model, ids, feat, check):
    """The job: the ranked ``UnitScore`` list (``probe_chunks`` over ``jobs.chunks``)."""
    cfg = model.config
    return probe_chunks(chunks(model, ids, check), feat, cfg.cell, cfg.num_layers, cfg.hidden_size)


class ProbePanel(AnalysisPanel):
    """Pick a feature, see the units that track it best."""

    def __init__(self, session, parent=None):
        super().__init__(session, "probes", parent)
        self.feature_box = QtWidgets.QComboBox()
        self.feature_box.addItems([*BUILTIN_FEATURES, REGEX, BRUSHED])
        self.feature_box.setCurrentText("depth")
        self.feature_box.setToolTip("What to look for: a built-in feature of each text position, "
                                    "positions inside a regular-expression match, or the brushed span")
        self.regex = QtWidgets.QLineEdit()
        self.regex.setPlaceholderText(r"regular expression, e.g. \d+")
        self.regex.setEnabled(False)
        self.controls.addWidget(QtWidgets.QLabel("Feature"))
        self.controls.addWidget(self.feature_box)
        self.controls.addWidget(self.regex, 1)
        self.table = QtWidgets.QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["rank", "layer", "quantity", "unit", "score", "score is"])
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("Units ranked by |correlation| (continuous features) or |AUC − 0.5| "
                              "(binary ones); click a row to colour the text by that unit")
        self.table.cellClicked.connect(self._on_row_clicked)
        self.body.addWidget(self.table)
        self.scores = None  # the ranked UnitScores shown
        self.feature_box.currentTextChanged.connect(self._on_feature_chosen)
        self.regex.editingFinished.connect(self.refresh_soon)
        session.brushed.connect(self._on_brushed)

    def _on_feature_chosen(self, name: str) -> None:
        self.regex.setEnabled(name == REGEX)
        self.refresh_soon()

    def _on_brushed(self, *_):
        if self.feature_box.currentText() == BRUSHED:
            self.refresh_soon()

    def choice(self) -> tuple:
        """``(name, regex, span)``: what ``make_feature`` needs; ValueError when incomplete."""
        name, span = self.feature_box.currentText(), self.session.brush_span
        if name == BRUSHED and span[1] <= span[0]:
            raise ValueError("Select a span of the text first (drag in the Text panel or across a heatmap).")
        if name == REGEX and not self.regex.text():
            raise ValueError("Type a regular expression.")
        return name, self.regex.text(), span

    def refresh(self) -> None:
        source = text_source(self.session)
        if source is None:
            return
        model, ids, text = source
        try:
            name, regex, span = self.choice()
        except ValueError as error:
            self.say(str(error))
            return
        self.say(f"Ranking every unit for “{regex if name == REGEX else name}”…")
        self.start(lambda check: run_probe(model, ids, make_feature(text, name, regex, span), check), text, model)

    def show_result(self, scores) -> None:
        self.scores = scores
        shown = scores[:ROWS_SHOWN]
        self.table.setRowCount(len(shown))
        for row, s in enumerate(shown):
            score = f"{s.score:+.3f}" + (f" ±{s.bound:.3f}" if s.bound else "")
            kind = "correlation r" if s.kind == "pearson" else "ROC AUC"
            for col, value in enumerate((row + 1, s.layer, s.quantity, s.unit, score, kind)):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(str(value)))
        if scores:
            best = scores[0]
            self.say(f"Best: layer {best.layer}, {best.quantity}, unit {best.unit} ({best.score:+.3f}); "
                     f"{len(scores)} units ranked, the top {len(shown)} listed")

    def clear_results(self) -> None:
        self.scores = None
        self.table.setRowCount(0)

    def _on_row_clicked(self, row: int, _col: int) -> None:
        if self.scores is None or row >= len(self.scores):
            return
        s = self.scores[row]
        self.session.select(s.layer, s.unit, -1)
        self.session.request_quantity(s.quantity)

    def figure(self):
        return self.table

    def csv_rows(self):
        if self.scores is None:
            return None
        return (["rank", "layer", "quantity", "unit", "score", "kind", "bound"],
                [[k + 1, s.layer, s.quantity, s.unit, repr(s.score), s.kind, repr(s.bound)]
                 for k, s in enumerate(self.scores)])
