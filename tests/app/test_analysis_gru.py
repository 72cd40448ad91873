"""The intervention panel and the loss strip on a GRU model, driven through their real widgets:
an edit of a unit's h changes the next-character probabilities exactly as the GRU equations
(PyTorch ``nn.GRU``'s, written out here from the parameters) say, and as
``engine.analysis.intervene`` computes; the panel offers only what a GRU can be edited on; the
strip's per-character losses are ``-log p(next character)`` from ``model.trace``."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from engine import ModelConfig, SequenceModel
from engine.analysis.intervene import Intervention, intervene

TIMEOUT_MS = 60_000


@pytest.fixture
def model(vocab):
    """A 2-layer float64 GRU character model (replaces the LSTM of tests/app/conftest.py)."""
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), cell="gru", hidden_size=12, num_layers=2,
                      dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(7))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def gru_probabilities(model, ids, edit=None) -> np.ndarray:
    """``(T, V)`` next-character probabilities of a one-hot GRU model stepped here from its
    parameters (``r = s(x Wx_r + h Wh_r + b_r)``, ``z`` likewise, ``n = tanh(x Wx_n + b_n +
    r * (h Wh_n + bhn))``, ``h' = (1 - z) n + z h``; gate blocks r, z, n), with ``edit(layer, t,
    h)`` applied to each layer's new ``h (H,)`` before it is carried on."""
    p, H, L = model.params, model.config.hidden_size, model.config.num_layers
    hs = [np.zeros(H) for _ in range(L)]
    out = []
    for t, token in enumerate(ids):
        x = np.eye(model.config.input_size)[token]  # (V,)
        for k in range(L):
            gx = x @ p[f"l{k}.Wx"] + p[f"l{k}.b"]  # (3H,)
            gh = hs[k] @ p[f"l{k}.Wh"]  # (3H,)
            r = sigmoid(gx[:H] + gh[:H])  # (H,)
            z = sigmoid(gx[H:2 * H] + gh[H:2 * H])  # (H,)
            n = np.tanh(gx[2 * H:] + r * (gh[2 * H:] + p[f"l{k}.bhn"]))  # (H,)
            h = (1 - z) * n + z * hs[k]  # (H,)
            if edit is not None:
                edit(k, t, h)
            hs[k] = x = h
        scores = x @ p["head.W"] + p["head.b"]  # (V,)
        e = np.exp(scores - scores.max())  # (V,)
        out.append(e / e.sum())
    return np.array(out)  # (T, V)


def shown(window, name):
    window.hooks.raise_panel(name)
    QtWidgets.QApplication.processEvents()
    return window.panel(name)


def test_the_hand_written_gru_is_the_models(window):
    s = window.session
    ids = s.vocab.encode(s.text)
    np.testing.assert_allclose(gru_probabilities(s.model, ids), s.model.trace(ids).outputs, rtol=0, atol=1e-12)


def test_the_panel_offers_only_h_for_a_gru(window):
    panel = shown(window, "interventions")
    assert [panel.quantity.itemData(k) for k in range(panel.quantity.count())] == ["h"]


@pytest.mark.parametrize("mode,value,layer,unit", [("zero", 0.0, 0, 3), ("clamp", 0.9, 1, 5), ("clamp", -0.7, 0, 0)])
def test_editing_a_gru_units_h_changes_the_probabilities_as_the_equations_say(qtbot, window, mode, value, layer, unit):
    s = window.session
    s.seek(30)
    qtbot.waitUntil(lambda: not s.seeking and s.t == 30, timeout=TIMEOUT_MS)
    panel = shown(window, "interventions")
    panel.layer.setValue(layer)
    panel.quantity.setCurrentIndex(panel.quantity.findData("h"))
    panel.unit.setValue(unit)
    panel.mode.setCurrentText(mode)
    panel.value.setValue(value)
    panel.where.setCurrentIndex(0)  # from the cursor on
    qtbot.mouseClick(panel.add_button, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.outcome is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    step = s.t - 1
    assert panel.interventions == [Intervention(layer, "h", unit, mode, value, step, None)]

    def edit(k, t, h):
        if k == layer and t >= step:
            h[unit] = 0.0 if mode == "zero" else value

    ids = s.vocab.encode(s.text)
    np.testing.assert_allclose(panel.outcome.probs_before, gru_probabilities(s.model, ids)[step], rtol=0, atol=1e-12)
    np.testing.assert_allclose(panel.outcome.probs_after, gru_probabilities(s.model, ids, edit)[step], rtol=0,
                               atol=1e-12)
    assert not np.allclose(panel.outcome.probs_after, panel.outcome.probs_before, atol=1e-4)
    ref = intervene(s.model, s.stepper.inputs, panel.interventions, window=1)
    np.testing.assert_allclose(panel.outcome.probs_after, ref.changed.outputs[0], rtol=0, atol=1e-12)
    assert panel.outcome.loss_after - panel.outcome.loss_before == pytest.approx(ref.delta)
    nll = -np.log(gru_probabilities(s.model, ids, edit)[np.arange(len(ids) - 1), ids[1:]])  # (T - 1,)
    assert panel.outcome.loss_after == pytest.approx(nll.mean(), abs=1e-9)


def test_the_strip_losses_of_a_gru_are_minus_log_p_from_the_trace(qtbot, window):
    s = window.session
    panel = shown(window, "strip")
    qtbot.waitUntil(lambda: panel.losses is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    ids = s.vocab.encode(s.text)
    probs = s.model.trace(ids).outputs  # (T, V)
    expected = -np.log(probs[np.arange(len(ids) - 1), ids[1:]])  # (T - 1,)
    np.testing.assert_allclose(panel.losses[:-1], expected, rtol=1e-6)
    assert np.isnan(panel.losses[-1])


def test_switching_to_a_gru_drops_the_edits_it_cannot_make(window, vocab):
    s = window.session
    gru = s.model
    panel = shown(window, "interventions")
    lstm = SequenceModel(ModelConfig(len(vocab), len(vocab), hidden_size=12, num_layers=2, dtype="float64"),
                         rng=np.random.default_rng(8))
    s.set_model(lstm, s.vocab)
    assert [panel.quantity.itemData(k) for k in range(panel.quantity.count())] == ["h", "c", "i", "f", "g", "o"]
    panel.add(Intervention(0, "c", 1, "zero"))
    panel.add(Intervention(1, "h", 2, "clamp", 0.5))
    s.set_model(gru, s.vocab)
    assert panel.interventions == [Intervention(1, "h", 2, "clamp", 0.5)] and panel.list.count() == 1
    assert [panel.quantity.itemData(k) for k in range(panel.quantity.count())] == ["h"]
