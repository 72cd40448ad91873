"""Assertions shared by the GUI tests."""

import numpy as np
from PySide6 import QtCore, QtWidgets

from lstmviz.panels.gates import WINDOW


class ResizeCounter(QtCore.QObject):
    """Counts the Resize events delivered to the widgets it is installed on."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, watched, event):
        if event.type() == QtCore.QEvent.Resize:
            self.count += 1
        return False


def assert_heatmaps_equal_trace(window, reference, names, layer=0):
    """Every heatmap in ``names`` shows exactly the steps of ``reference`` (the engine's
    whole-sequence trace) inside the drawn window that ends at the session's step."""
    t = window.session.t
    lo = max(0, t - WINDOW)
    for name in names:
        view = window.panel("gates").views[name]
        expected = reference.gate(name, layer)[lo:t].T  # (H, t - lo)
        shown = view.displayed_image()
        assert shown.shape == expected.shape, name
        np.testing.assert_allclose(shown, expected, rtol=0, atol=1e-6, err_msg=name)
        assert view.t0 == lo


def learning(window):
    """The window's ``LearningService`` (the training dock's panels, controller and viewer sync)."""
    from lstmviz.learn import LearningService

    return window.panel("training").findChild(LearningService)


def lessons(window):
    """The window's ``LessonsService`` (the lesson panels)."""
    from lstmviz.lessons import LessonsService

    return window.panel("equations").findChild(LessonsService)


def lessons_in_front(window):
    """Take the lesson docks out of the app's tab groups, as two groups of their own in front
    (equations | diagram on the right, gradient flow | RNN vs LSTM | series at the bottom), so
    the equations and the gradient flow are on screen next to the heatmaps and the current step."""
    from PySide6 import QtCore

    docks = window.docks
    for names, area in ((("equations", "diagram"), QtCore.Qt.RightDockWidgetArea),
                        (("gradflow", "compare", "series"), QtCore.Qt.BottomDockWidgetArea)):
        for name in names:
            window.addDockWidget(area, docks[name])
        for one, other in zip(names, names[1:]):
            window.tabifyDockWidget(docks[one], docks[other])
        docks[names[0]].raise_()


def train(qtbot, panel, timeout=60_000) -> bool:
    """Press Train the way the app does (``TrainingPanel.train()``, which only starts the time
    estimate in a worker) and wait on the panel's GUI-thread relay ``estimate_ended`` for what
    followed: True once the run has started (the controller is running it), False if it was
    declined, cancelled or failed. Asserts that the estimate started."""
    with qtbot.waitSignal(panel.estimate_ended, timeout=timeout) as blocker:
        assert panel.train()
    return blocker.args[0]


def shown(window, name):
    """The panel ``name``, its dock raised to the front (so it computes)."""
    window.hooks.raise_panel(name)
    QtWidgets.QApplication.processEvents()
    return window.panel(name)


def add_intervention(qtbot, panel, quantity, unit, mode, value, layer=0):
    """Fill the interventions panel's form (from the cursor on) and click Add."""
    panel.layer.setValue(layer)
    panel.quantity.setCurrentIndex(panel.quantity.findData(quantity))
    panel.unit.setValue(unit)
    panel.mode.setCurrentText(mode)
    panel.value.setValue(value)
    panel.where.setCurrentIndex(0)  # from the cursor on
    qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
