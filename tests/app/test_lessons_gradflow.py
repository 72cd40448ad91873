"""Gradient-flow plot and the RNN-vs-LSTM comparison: the plotted data is engine.gradflow's."""

import numpy as np
import pytest

from engine.gradflow import gradient_flow
from lstmviz.lessons.gradflow_panel import MAX_STEPS

from . import helpers


@pytest.fixture
def lessons(window):
    installed = helpers.lessons(window)
    helpers.lessons_in_front(window)
    yield installed
    installed.shutdown()


def expected_flow(model, vocab, text):
    known = "".join(ch for ch in text if ch in set(vocab.chars))[-(MAX_STEPS + 1):]
    ids = np.array([vocab.index(ch) for ch in known])
    return gradient_flow(model, ids[:-1], ids[1:])


def test_plot_shows_the_engine_gradient_norms_of_the_current_text(window, lessons, qtbot):
    s, panel = window.session, lessons.gradflow
    s.select(1, -1, -1)  # the plot follows the selected layer
    qtbot.waitUntil(lambda: not panel._timer.isActive(), timeout=5000)
    np.testing.assert_array_equal(panel.curves["viewer ||dL/dh||"][1],
                                  expected_flow(s.model, s.vocab, s.text).h_norms[1])
    s.set_text(s.text * 4)  # longer than MAX_STEPS: the last MAX_STEPS + 1 characters are used
    qtbot.waitUntil(lambda: not panel._timer.isActive(), timeout=5000)
    flow = expected_flow(s.model, s.vocab, s.text)
    t, norms = panel.curves["viewer ||dL/dh||"]
    assert len(t) == MAX_STEPS
    np.testing.assert_array_equal(norms, flow.h_norms[1])
    np.testing.assert_array_equal(t, np.arange(MAX_STEPS))
    np.testing.assert_array_equal(panel.curves["viewer ||dL/dc||"][1], flow.c_norms[1])
    drawn = [item.yData for item in panel.plot.getPlotItem().listDataItems()]
    assert any(np.array_equal(y, flow.h_norms[1]) for y in drawn)


def test_compare_trains_both_and_feeds_the_gradient_flow(window, lessons, qtbot, errors):
    compare = lessons.compare
    compare.hidden.setValue(8)
    compare.steps.setValue(20)
    compare.seq_len.setValue(8)
    compare.train()
    assert compare.is_active()
    qtbot.waitUntil(lambda: len(compare.models) == 2 and not compare.is_active(), timeout=120_000)
    assert errors == []
    for cell in ("rnn", "lstm"):
        steps, loss = compare.histories[cell].data()
        np.testing.assert_array_equal(steps, np.arange(1, 21))
        x, y = compare.curves[cell].getData()
        np.testing.assert_array_equal(y, loss)
        assert np.all(np.isfinite(loss))
        assert compare.models[cell].config.cell == cell and compare.models[cell].config.hidden_size == 8
    assert set(lessons.gradflow.flows) == {"vanilla RNN", "LSTM"}
    text = window.session.text
    for label, cell in (("vanilla RNN", "rnn"), ("LSTM", "lstm")):
        flow = expected_flow(compare.models[cell], compare.vocab, text)
        np.testing.assert_array_equal(lessons.gradflow.curves[f"{label} ||dL/dh||"][1], flow.h_norms[0])
    assert "LSTM ||dL/dc||" in lessons.gradflow.curves and "vanilla RNN ||dL/dc||" not in lessons.gradflow.curves
    compare.step_box.setCurrentIndex(compare.step_box.findData("rnn"))
    compare.show_in_viewer()
    assert window.session.model is compare.models["rnn"]


def test_hidden_plot_waits_until_shown(window, lessons, qtbot):
    """Behind another tab (e.g. while training refreshes the weights) the plot is not
    recomputed; showing it brings it up to date."""
    s, panel = window.session, lessons.gradflow
    qtbot.waitUntil(lambda: not panel._timer.isActive(), timeout=5000)
    window.docks["gradflow"].hide()
    before = panel.curves["viewer ||dL/dh||"][1].copy()
    s.set_text(s.text[: len(s.text) // 2])
    assert not panel._timer.isActive()
    np.testing.assert_array_equal(panel.curves["viewer ||dL/dh||"][1], before)
    window.docks["gradflow"].show()
    window.docks["gradflow"].raise_()  # shown again as a tab: brought to the front of its group
    qtbot.waitUntil(lambda: len(panel.curves["viewer ||dL/dh||"][1]) != len(before), timeout=5000)
    np.testing.assert_array_equal(panel.curves["viewer ||dL/dh||"][1],
                                  expected_flow(s.model, s.vocab, s.text).h_norms[s.layer])


def test_a_hidden_panel_computes_nothing_until_first_shown(window, qtbot):
    """Built off screen (as every dock behind a tab is), the panel computes no gradient flow;
    the first time it is shown it does."""
    from lstmviz.lessons.gradflow_panel import GradientFlowPanel

    s = window.session
    panel = GradientFlowPanel(s)
    try:
        assert panel.flows == {} and not panel._timer.isActive()
        s.set_text(s.text[:30])  # changes while hidden only mark it out of date
        assert panel.flows == {} and not panel._timer.isActive()
        panel.show()
        qtbot.waitUntil(lambda: "viewer" in panel.flows, timeout=5000)
        np.testing.assert_array_equal(panel.flows["viewer"].dh, expected_flow(s.model, s.vocab, s.text).dh)
    finally:
        panel.close()
        panel.deleteLater()
