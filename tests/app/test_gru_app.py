"""A GRU, a vanilla RNN and a model without an output layer in the real window: the heatmaps,
the current step, the text colouring, the equations, the cell diagram and gradient flow show
each cell's own quantities (GRU r, z, n, h; RNN h), and the prediction views say when there is
no output layer."""

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.checkpoint import save_checkpoint
from lstmviz import threads
from lstmviz.lessons.gradflow_panel import NO_HEAD
from lstmviz.lessons.style import fmt
from lstmviz.panels.step import NoPredictions

from . import helpers
from .test_learn_app import SMALL, WORDS


def shown_heatmaps(window):
    return [name for name, view in window.panel("gates").views.items() if view.isVisibleTo(window.panel("gates"))]


def char_model(vocab, cell, head="softmax", hidden=6, seed=4):
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab) if head == "softmax" else hidden,
                      hidden_size=hidden, num_layers=2, cell=cell, head=head, dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(seed))


@pytest.fixture
def lessons(window):
    installed = helpers.lessons(window)
    helpers.lessons_in_front(window)
    yield installed
    installed.shutdown()


def test_gru_picked_in_the_model_panel_trains_and_shows_r_z_n_h(qtbot, window, errors):
    panels = helpers.learning(window)
    try:
        rng = np.random.Generator(np.random.PCG64(7))
        panels.model_panel.set_values(dict(SMALL, cell="gru", steps=40, eval_every=20))
        assert panels.data_panel.use_text("".join(rng.choice(WORDS) for _ in range(200)), "test corpus")
        assert panels.model_panel.valid, panels.model_panel.message.text()
        with qtbot.waitSignal(panels.controller.finished_training, timeout=60_000):
            panels.training_panel.train_button.click()
    finally:
        threads.stop_all()
    s = window.session
    assert errors == [] and s.model.config.cell == "gru"
    qtbot.waitUntil(lambda: not s.seeking, timeout=30_000)
    assert shown_heatmaps(window) == ["h", "r", "z", "n"]  # in the panel's creation order
    gates = window.panel("gates")
    places = {name: gates.grid.getItemPosition(gates.grid.indexOf(gates.views[name]))[:2] for name in "rznh"}
    assert places == {"r": (0, 0), "z": (0, 1), "n": (1, 0), "h": (1, 1)}  # display order, two columns
    helpers.assert_heatmaps_equal_trace(window, s.model.trace(s.vocab.encode(s.text)), ("r", "z", "n", "h"))


def test_gru_current_step_text_colouring_equations_diagram_and_gradflow(qtbot, window, vocab, lessons, errors):
    s = window.session
    s.set_model(char_model(vocab, "gru"), vocab)
    s.seek(12)
    s.select(1, 2, 9)
    trace = s.trace()
    step = window.panel("step")
    step.refresh()
    assert step.vectors.getAxis("bottom")._tickLevels[0] == list(enumerate(("r", "z", "n", "h")))
    assert [name for name, strip in step.strips.items() if strip.visible] == ["h", "r", "z", "n"]
    assert step.strip_image.qimage.width() == 4  # one canvas column per strip drawn
    np.testing.assert_array_equal(step.strips["n"].image[:, 0], trace.gate("n", 1)[11].astype(np.float32))
    text = window.panel("text")
    text.set_quantity("z")
    enabled = {text.quantity_box.itemData(k) for k in range(text.quantity_box.count())
               if text.quantity_box.model().item(k).isEnabled()}
    assert enabled == {"r", "z", "n", "h"}
    # equations: the numbers are the trace's, and h = (1 - z) n + z h_prev holds
    inspector, diagram = lessons.inspector, lessons.diagram
    inspector.refresh()
    rec = trace.layers[1]
    shown = inspector.values
    for name in ("r", "z", "n"):
        assert shown[name] == rec[name][9, 2]
        assert shown[f"{name}.pre"] == rec["pre"][9, ("r", "z", "n").index(name) * 6 + 2]
        assert shown[f"{name}.input"] + shown[f"{name}.recurrent"] + shown[f"{name}.bias"] == \
            pytest.approx(shown[f"{name}.pre"], abs=1e-12)
    h_prev = rec["h"][8, 2]
    assert shown["h_prev"] == h_prev and shown["h_t"] == rec["h"][9, 2]
    assert shown["(1-z)*n"] + shown["z*h_prev"] == pytest.approx(rec["h"][9, 2], abs=1e-12)
    assert shown["n.recurrent"] == pytest.approx(shown["r"] * shown["n.reset_input"], abs=1e-15)
    assert fmt(float(rec["h"][9, 2])) in inspector.toHtml() and "update gate" in inspector.toHtml()
    diagram.refresh()
    assert diagram.labels["z"] == fmt(float(rec["z"][9, 2])) and diagram.labels["h_t"] == fmt(float(rec["h"][9, 2]))
    assert diagram.labels["1-z"] == fmt(1.0 - float(rec["z"][9, 2]))
    gradflow = window.panel("gradflow")
    gradflow.recompute()
    assert list(gradflow.curves) == ["viewer ||dL/dh||"] and errors == []


def test_vanilla_rnn_shows_h_only(window, vocab, errors):
    s = window.session
    s.set_model(char_model(vocab, "rnn"), vocab)
    s.seek(10)
    assert shown_heatmaps(window) == ["h"]
    helpers.assert_heatmaps_equal_trace(window, s.model.trace(s.vocab.encode(s.text)), ("h",))
    assert errors == []


def test_a_headless_checkpoint_opens_shows_its_gates_and_no_predictions(qtbot, window, vocab, tmp_path, errors):
    path = tmp_path / "stack.npz"
    save_checkpoint(path, char_model(vocab, "gru", head="none"), vocab=vocab)
    s = window.session
    s.load_model(path)
    s.seek(15)
    assert s.model.config.head == "none" and shown_heatmaps(window) == ["h", "r", "z", "n"]
    helpers.assert_heatmaps_equal_trace(window, s.model.trace(s.vocab.encode(s.text)), ("r", "z", "n", "h"), layer=0)
    step = window.panel("step")
    step.refresh()
    assert step.predictions_title.text() == NoPredictions.EMPTY_TITLE and step.top == []
    assert "no output layer" in step.predictions_title.text()
    gradflow = window.panel("gradflow")
    gradflow.recompute()
    assert gradflow.info.text() == NO_HEAD and gradflow.curves == {}
    sampling = helpers.learning(window).sampling_panel
    assert sampling.generate()
    qtbot.waitUntil(lambda: not sampling.busy, timeout=10_000)
    assert errors and "no output layer" in errors[-1][1]
