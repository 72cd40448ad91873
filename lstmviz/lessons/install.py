"""Install the lesson docks (equations, cell diagram, gradient flow, RNN vs LSTM, series).

``install_lessons(main_window, session, settings)`` creates the panels around one shared
``LessonFocus``, adds one dock each (object names set, so ``restoreState`` matches them; their
toggle actions go into ``main_window.view_menu`` when the window exposes one), connects the
comparison's trained pair to the gradient-flow plot, restores the panels' size settings from
``settings`` (a ``QSettings``, or None) and writes them back when the window closes. Closing the
window or quitting the application stops the lessons' training threads and waits for them.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QObject, QSettings, Qt
from PySide6.QtWidgets import QMainWindow, QWidget

from .compare_panel import ComparePanel
from .diagram import CellDiagram
from .focus import LessonFocus
from .gradflow_panel import GradientFlowPanel
from .inspector import EquationInspector
from .series_panel import SeriesPanel


class Lessons(QObject):
    """The installed lesson panels and their docks (``docks``: object name -> QDockWidget)."""

    def __init__(self, main_window: QMainWindow, session, settings: QSettings | None):
        super().__init__(main_window)
        self.window = main_window
        self.settings = settings
        self.focus = LessonFocus(session, self)
        self.inspector = EquationInspector(session, self.focus)
        self.diagram = CellDiagram(session, self.focus)
        self.gradflow = GradientFlowPanel(session)
        self.compare = ComparePanel(session)
        self.series = SeriesPanel(session)
        self.docks: dict = {}
        self._add_dock("equations", "Equations", self.inspector, Qt.RightDockWidgetArea)
        self._add_dock("diagram", "Cell diagram", self.diagram, Qt.RightDockWidgetArea)
        self._add_dock("gradflow", "Gradient flow", self.gradflow, Qt.BottomDockWidgetArea)
        self._add_dock("compare", "RNN vs LSTM", self.compare, Qt.BottomDockWidgetArea)
        self._add_dock("series", "Series", self.series, Qt.BottomDockWidgetArea)  # forms in scroll areas: a
        # small screen still fits the window (the docks' minimum sizes add up)
        main_window.tabifyDockWidget(self.docks["equations"], self.docks["diagram"])
        main_window.tabifyDockWidget(self.docks["gradflow"], self.docks["compare"])
        main_window.tabifyDockWidget(self.docks["compare"], self.docks["series"])
        self.docks["equations"].raise_()
        self.docks["gradflow"].raise_()
        self.compare.models_changed.connect(self.gradflow.set_comparison)
        self.series.step_button.clicked.connect(self._show_heatmaps)
        self.spin_boxes = {
            "lessons/compare_hidden": self.compare.hidden, "lessons/compare_steps": self.compare.steps,
            "lessons/compare_seq_len": self.compare.seq_len, "lessons/series_window": self.series.window_size,
            "lessons/series_horizon": self.series.horizon, "lessons/series_hidden": self.series.hidden,
            "lessons/series_steps": self.series.steps,
        }
        self._restore_settings()
        main_window.add_close_guard(self._on_close)
        QCoreApplication.instance().aboutToQuit.connect(self.shutdown)

    def _add_dock(self, name: str, title: str, widget: QWidget, area) -> None:
        self.docks[name] = self.window.add_panel(name, title, widget, area, scrolled=True)

    def _show_heatmaps(self) -> None:
        """After "Step through" the heatmaps (behind the Series tab by default) come forward."""
        gates = getattr(self.window, "docks", {}).get("gates")
        if gates is not None:
            gates.raise_()

    def _restore_settings(self) -> None:
        if self.settings is None:
            return
        for key, box in self.spin_boxes.items():
            box.setValue(self.settings.value(key, box.value(), type=int))

    def save_settings(self) -> None:
        if self.settings is None:
            return
        for key, box in self.spin_boxes.items():
            self.settings.setValue(key, box.value())

    def shutdown(self) -> None:
        """Stop the lessons' training runs and wait for their threads."""
        self.compare.shutdown()
        self.series.shutdown()

    def _on_close(self) -> bool:
        """The window's close guard (asked after the learning panels', which may keep the
        window open): keep the lessons' settings, stop their runs, let the window close."""
        self.save_settings()
        self.shutdown()
        return True


def install_lessons(main_window: QMainWindow, session, settings: QSettings | None = None) -> Lessons:
    """Create and wire the lesson docks in ``main_window``; see the module docstring."""
    return Lessons(main_window, session, settings)
