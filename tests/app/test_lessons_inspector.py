"""Equation inspector and cell diagram: their numbers are the trace's (and the heatmaps')."""

import numpy as np
import pytest

from engine import GATES, ModelConfig, SequenceModel
from lstmviz.lessons.style import fmt

from . import helpers


@pytest.fixture
def lessons(window):
    installed = helpers.lessons(window)
    helpers.lessons_in_front(window)
    yield installed
    installed.shutdown()


def expected_lstm(trace, layer, step, unit):
    """Every quantity the inspector shows, read straight from the trace (no engine.equations)."""
    rec = trace.layers[layer]
    H = trace.hidden_size
    c_prev = trace.initial_state[layer][1][unit] if step == 0 else rec["c"][step - 1, unit]
    h_prev = trace.initial_state[layer][0][unit] if step == 0 else rec["h"][step - 1, unit]
    out = {"h_prev": h_prev, "c_prev": c_prev, "c_t": rec["c"][step, unit], "h_t": rec["h"][step, unit],
           "f*c_prev": rec["f"][step, unit] * c_prev, "i*g": rec["i"][step, unit] * rec["g"][step, unit],
           "tanh(c_t)": np.tanh(rec["c"][step, unit])}
    for k, name in enumerate(GATES):
        out[name] = rec[name][step, unit]
        out[f"{name}.pre"] = rec["pre"][step, k * H + unit]
    return out


def check_inspector(inspector, trace, layer, step, unit):
    shown = inspector.values
    html = inspector.toHtml()
    for key, value in expected_lstm(trace, layer, step, unit).items():
        assert shown[key] == float(value), key
        assert fmt(float(value)) in html, key
    for name in GATES:  # the three summands add up to the recorded pre-activation
        total = shown[f"{name}.input"] + shown[f"{name}.recurrent"] + shown[f"{name}.bias"]
        assert total == pytest.approx(shown[f"{name}.pre"], abs=1e-12)
    assert shown["c_t"] == pytest.approx(shown["f*c_prev"] + shown["i*g"], abs=1e-12)
    assert shown["h_t"] == pytest.approx(shown["o"] * shown["tanh(c_t)"], abs=1e-12)


def test_inspector_shows_the_trace_numbers_for_the_selection(window, lessons):
    s = window.session
    s.seek(20)
    s.select(1, 5, -1)
    check_inspector(lessons.inspector, s.trace(), 1, 19, 5)
    assert "layer 1 · unit 5 · step 20" in lessons.inspector.toPlainText()  # the step just read


def test_inspector_matches_the_heatmap_cell_that_was_clicked(window, lessons):
    s = window.session
    s.seek(30)
    s.select(0, 3, -1)
    window.panel("gates").views["i"].clicked.emit(7, 12)  # what a click on cell (unit 7, step 12) emits
    assert (s.unit, s.selected_step) == (7, 12)
    check_inspector(lessons.inspector, s.trace(), 0, 12, 7)
    for name in ("f", "i", "o", "g", "c", "h"):  # the heatmaps draw float32 copies of the same numbers
        key = {"c": "c_t", "h": "h_t"}.get(name, name)
        assert np.float32(lessons.inspector.values[key]) == window.panel("gates").views[name].value_at(7, 12)
    s.step()  # stepping follows the cursor again
    check_inspector(lessons.inspector, s.trace(), 0, 30, 7)


def test_inspector_without_a_unit_shows_a_hint(window, lessons):
    window.session.seek(5)
    window.session.select(0, -1, -1)
    assert lessons.inspector.values == {}
    assert "Click a cell" in lessons.inspector.toPlainText()


def test_inspector_and_diagram_for_a_vanilla_rnn(window, lessons):
    s = window.session
    cfg = ModelConfig(input_size=len(s.vocab), output_size=len(s.vocab), cell="rnn", hidden_size=6, dtype="float64")
    s.set_model(SequenceModel(cfg, rng=np.random.default_rng(1)), s.vocab)
    s.seek(9)
    s.select(0, 2, -1)
    trace = s.trace()
    shown = lessons.inspector.values
    assert shown["h"] == trace.layers[0]["h"][8, 2]
    assert shown["h.pre"] == trace.layers[0]["pre"][8, 2]
    assert shown["h.input"] + shown["h.recurrent"] + shown["h.bias"] == pytest.approx(shown["h.pre"], abs=1e-12)
    assert np.tanh(shown["h.pre"]) == pytest.approx(shown["h"], abs=1e-12)
    window.docks["diagram"].raise_()  # its tab to the front: it catches up
    assert lessons.diagram.labels == {"h_prev": fmt(trace.layers[0]["h"][7, 2]), "x_t": s.text[8],
                                      "pre": fmt(trace.layers[0]["pre"][8, 2]), "h_t": fmt(trace.layers[0]["h"][8, 2])}


def test_diagram_labels_follow_the_trace_as_the_user_steps(window, lessons, qtbot):
    s = window.session
    window.docks["diagram"].raise_()  # the diagram's tab in front (it shares one with the equations)
    s.seek(15)
    s.select(1, 4, -1)
    diagram = lessons.diagram
    for _ in range(3):
        trace, step = s.trace(), s.t - 1
        expected = expected_lstm(trace, 1, step, 4)
        for key in ("h_prev", "c_prev", "f", "i", "g", "o", "f*c_prev", "i*g", "c_t", "tanh(c_t)", "h_t"):
            assert diagram.labels[key] == fmt(float(expected[key])), key
        below = trace.layers[0]["h"][step]  # layer 1 reads layer 0's h_t
        assert diagram.labels["x_t"].startswith(f"[{below[0]:.3g}")
        assert f"step {step + 1}" in diagram.title  # trace index step is step step + 1
        s.step()
    image = diagram.grab().toImage()  # it paints (offscreen) without errors, at its size
    assert image.width() == diagram.width() and image.height() == diagram.height()


def test_inspector_behind_a_tab_waits_and_catches_up_when_its_tab_comes_forward(window, lessons, qtbot):
    """Behind another tab the inspector is not rebuilt on every step (it is "visible" to Qt,
    but not on screen); bringing its tab forward shows the current step's numbers."""
    s = window.session
    window.show()
    window.tabifyDockWidget(window.docks["step"], window.docks["equations"])
    window.docks["step"].raise_()
    qtbot.waitUntil(lambda: lessons.inspector.visibleRegion().isEmpty())
    s.select(0, 3, -1)
    s.seek(5)
    shown_before = dict(lessons.inspector.values)
    s.seek(9)
    assert lessons.inspector.values == shown_before  # stale while hidden
    window.docks["equations"].raise_()
    expected = expected_lstm(s.trace(), 0, 8, 3)
    qtbot.waitUntil(lambda: lessons.inspector.values.get("h_t") == expected["h_t"])
    assert lessons.inspector.values["c_t"] == expected["c_t"]


def test_hidden_inspector_and_diagram_build_nothing_until_first_shown(window, qtbot):
    """Built off screen, the inspector and the diagram read no trace; shown, they show the
    selected unit at the cursor."""
    from lstmviz.lessons.diagram import CellDiagram
    from lstmviz.lessons.focus import LessonFocus
    from lstmviz.lessons.inspector import EquationInspector

    s = window.session
    s.seek(6)
    s.select(0, 2, -1)
    focus = LessonFocus(s)
    inspector, diagram = EquationInspector(s, focus), CellDiagram(s, focus)
    try:
        assert inspector.values == {} and diagram.labels == {}
        for widget in (inspector, diagram):
            widget.show()
        expected = expected_lstm(s.trace(), 0, 5, 2)
        qtbot.waitUntil(lambda: inspector.values.get("h_t") == expected["h_t"], timeout=5000)
        assert diagram.labels["c_t"] == fmt(float(expected["c_t"]))
    finally:
        for widget in (inspector, diagram):
            widget.close()
            widget.deleteLater()
        focus.deleteLater()
