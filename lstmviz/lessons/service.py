"""The lesson docks' service: the equation inspector, cell diagram, gradient flow, RNN vs LSTM
and series panels around one shared ``LessonFocus``, and their wiring.

``LessonsService(session, settings, hooks)`` builds the panels (``lstmviz.app``'s dock table
puts each in its dock), connects the comparison's trained pair to the gradient-flow plot, brings
the gate heatmaps forward after the series' "Step through" (``hooks.raise_panel``), restores the
panels' size settings and the series' CSV delimiter and decimal separator from ``settings`` (a
``QSettings``, or None) and, once the window closes (``hooks.on_close``, after every close guard
agreed), writes them back and stops the lessons' training runs, waiting for their threads.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings

from .compare_panel import ComparePanel
from .diagram import CellDiagram
from .focus import LessonFocus
from .gradflow_panel import GradientFlowPanel
from .inspector import EquationInspector
from .series_panel import SeriesPanel


class LessonsService(QObject):
    """The lesson panels and their wiring (see the module docstring)."""

    def __init__(self, session, settings: QSettings | None, hooks):
        super().__init__()
        self.settings = settings
        self.focus = LessonFocus(session, self)
        self.inspector = EquationInspector(session, self.focus)
        self.diagram = CellDiagram(session, self.focus)
        self.gradflow = GradientFlowPanel(session)
        self.compare = ComparePanel(session)
        self.series = SeriesPanel(session)
        self.setParent(self.inspector)  # lives as long as the equations dock
        self.compare.models_changed.connect(self.gradflow.set_comparison)
        self.series.step_button.clicked.connect(lambda: hooks.raise_panel("gates"))
        self.spin_boxes = {
            "lessons/compare_hidden": self.compare.hidden, "lessons/compare_steps": self.compare.steps,
            "lessons/compare_seq_len": self.compare.seq_len, "lessons/series_window": self.series.window_size,
            "lessons/series_horizon": self.series.horizon, "lessons/series_hidden": self.series.hidden,
            "lessons/series_steps": self.series.steps,
        }
        self.combos = {"lessons/series_delimiter": self.series.delimiter_box,
                       "lessons/series_decimal": self.series.decimal_box,
                       "lessons/series_missing": self.series.missing_box}  # saved by their shown label
        self._restore_settings()
        hooks.on_close(self._on_close)

    def _restore_settings(self) -> None:
        if self.settings is None:
            return
        for key, box in self.spin_boxes.items():
            box.setValue(self.settings.value(key, box.value(), type=int))
        for key, combo in self.combos.items():
            index = combo.findText(self.settings.value(key, combo.currentText(), type=str))
            combo.setCurrentIndex(max(index, 0))

    def save_settings(self) -> None:
        if self.settings is None:
            return
        for key, box in self.spin_boxes.items():
            self.settings.setValue(key, box.value())
        for key, combo in self.combos.items():
            self.settings.setValue(key, combo.currentText())

    def shutdown(self) -> None:
        """Stop the lessons' training runs and wait for their threads."""
        self.compare.shutdown()
        self.series.shutdown()

    def _on_close(self) -> None:
        """The window closes: keep the lessons' settings, stop their runs."""
        self.save_settings()
        self.shutdown()
