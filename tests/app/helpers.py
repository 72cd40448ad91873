"""Assertions shared by the GUI tests."""

import numpy as np

from lstmviz.panels.gates import WINDOW


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
