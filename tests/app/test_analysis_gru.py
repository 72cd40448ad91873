"""The intervention panel and the loss strip on a GRU model, driven through their real widgets:
an edit of a unit's h, r, z or n changes the next-character probabilities and the loss exactly
as the GRU equations (PyTorch ``nn.GRU``'s, written out here from the parameters) say, and as
``engine.analysis.intervene`` computes; the panel offers what a GRU can be edited on (h, r, z,
n) and drops the edits a new model's cell cannot take; the strip's per-character losses are
``-log p(next character)`` from ``model.trace``."""

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.analysis.intervene import Intervention, intervene

from .helpers import add_intervention, shown

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
    name, x)`` applied in place to each of r, z, n, h ``(H,)`` as soon as it is computed (so an
    edited r is the one n reads, an edited z or n the ones h' reads)."""
    p, H, L = model.params, model.config.hidden_size, model.config.num_layers
    hs = [np.zeros(H) for _ in range(L)]
    edit = edit or (lambda k, t, name, x: None)
    out = []
    for t, token in enumerate(ids):
        x = np.eye(model.config.input_size)[token]  # (V,)
        for k in range(L):
            gx = x @ p[f"l{k}.Wx"] + p[f"l{k}.b"]  # (3H,)
            gh = hs[k] @ p[f"l{k}.Wh"]  # (3H,)
            r = sigmoid(gx[:H] + gh[:H])  # (H,)
            edit(k, t, "r", r)
            z = sigmoid(gx[H:2 * H] + gh[H:2 * H])  # (H,)
            edit(k, t, "z", z)
            n = np.tanh(gx[2 * H:] + r * (gh[2 * H:] + p[f"l{k}.bhn"]))  # (H,)
            edit(k, t, "n", n)
            h = (1 - z) * n + z * hs[k]  # (H,)
            edit(k, t, "h", h)
            hs[k] = x = h
        scores = x @ p["head.W"] + p["head.b"]  # (V,)
        e = np.exp(scores - scores.max())  # (V,)
        out.append(e / e.sum())
    return np.array(out)  # (T, V)


def offered(panel):
    return [panel.quantity.itemData(k) for k in range(panel.quantity.count())]


def test_the_hand_written_gru_is_the_models(window):
    s = window.session
    ids = s.vocab.encode(s.text)
    np.testing.assert_allclose(gru_probabilities(s.model, ids), s.model.trace(ids).outputs, rtol=0, atol=1e-12)


def test_the_panel_offers_h_r_z_n_for_a_gru(window):
    panel = shown(window, "interventions")
    assert offered(panel) == ["h", "r", "z", "n"]
    assert [panel.quantity.itemText(k) for k in range(4)] == ["h (hidden state)", "r (reset gate)", "z (update gate)",
                                                              "n (candidate)"]


@pytest.mark.parametrize("name,mode,value,layer,unit", [("h", "zero", 0.0, 0, 3), ("h", "clamp", 0.9, 1, 5),
                                                        ("h", "clamp", -0.7, 0, 0), ("r", "clamp", 0.05, 0, 2),
                                                        ("r", "zero", 0.0, 1, 7), ("z", "clamp", 0.98, 0, 4),
                                                        ("z", "scale", 0.1, 1, 1), ("n", "clamp", -0.8, 0, 6),
                                                        ("n", "scale", -2.0, 1, 9)])
def test_editing_a_gru_unit_changes_the_probabilities_as_the_equations_say(qtbot, window, name, mode, value, layer,
                                                                           unit):
    s = window.session
    s.seek(30)
    qtbot.waitUntil(lambda: not s.seeking and s.t == 30, timeout=TIMEOUT_MS)
    panel = shown(window, "interventions")
    add_intervention(qtbot, panel, name, unit, mode, value, layer)
    qtbot.waitUntil(lambda: panel.window is not None and panel.loss is not None and not panel.runner.busy
                    and not panel.window_runner.busy, timeout=TIMEOUT_MS)
    step = s.t - 1
    assert panel.interventions == [Intervention(layer, name, unit, mode, value, step, None)]

    def edit(k, t, quantity, x):
        if (k, quantity) == (layer, name) and t >= step:
            x[unit] = 0.0 if mode == "zero" else value * x[unit] if mode == "scale" else value

    ids = s.vocab.encode(s.text)
    before, after = gru_probabilities(s.model, ids), gru_probabilities(s.model, ids, edit)  # (T, V) each
    w = panel.window
    np.testing.assert_allclose(w.probs_before, before[step], rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.probs_after, after[step], rtol=0, atol=1e-12)
    assert np.abs(w.probs_after - w.probs_before).max() > 1e-6  # far above the 1e-12 agreement
    np.testing.assert_array_equal(w.probs_after, w.changed.outputs[step - w.lo])
    edited = w.changed.gate(name, layer)[step - w.lo, unit]
    original = w.original.gate(name, layer)[step - w.lo, unit]
    assert edited == (0.0 if mode == "zero" else value * original if mode == "scale" else value)
    ref = intervene(s.model, s.stepper.inputs, panel.interventions, window=1)
    np.testing.assert_allclose(w.probs_after, ref.changed.outputs[0], rtol=0, atol=1e-12)
    assert panel.loss.text_delta == pytest.approx(ref.delta, rel=1e-9)
    nll = [-np.log(p[np.arange(len(ids) - 1), ids[1:]]) for p in (before, after)]  # (T - 1,) each
    assert panel.loss.before == pytest.approx(nll[0][panel.loss.start:].mean(), abs=1e-9)
    assert panel.loss.after == pytest.approx(nll[1][panel.loss.start:].mean(), abs=1e-9)
    assert f"{panel.loss.delta:+.4f}" in panel.status.text()


def test_the_strip_losses_of_a_gru_are_minus_log_p_from_the_trace(qtbot, window):
    s = window.session
    panel = shown(window, "strip")
    qtbot.waitUntil(lambda: panel.losses is not None and not panel.runner.busy, timeout=TIMEOUT_MS)
    ids = s.vocab.encode(s.text)
    probs = s.model.trace(ids).outputs  # (T, V)
    expected = -np.log(probs[np.arange(len(ids) - 1), ids[1:]])  # (T - 1,)
    np.testing.assert_allclose(panel.losses[:-1], expected, rtol=1e-6)
    assert np.isnan(panel.losses[-1])


def test_switching_cells_drops_the_edits_the_new_cell_cannot_make(window, vocab):
    s = window.session
    gru = s.model
    panel = shown(window, "interventions")
    lstm = SequenceModel(ModelConfig(len(vocab), len(vocab), hidden_size=12, num_layers=2, dtype="float64"),
                         rng=np.random.default_rng(8))
    s.set_model(lstm, s.vocab)
    assert offered(panel) == ["h", "c", "i", "f", "g", "o"]
    for iv in (Intervention(0, "c", 1, "zero"), Intervention(1, "h", 2, "clamp", 0.5), Intervention(0, "f", 3)):
        panel.add(iv)
    s.set_model(gru, s.vocab)
    assert panel.interventions == [Intervention(1, "h", 2, "clamp", 0.5)] and panel.list.count() == 1
    assert offered(panel) == ["h", "r", "z", "n"]
    for iv in (Intervention(0, "r", 1, "zero"), Intervention(0, "z", 4), Intervention(1, "n", 0, "scale", 2.0)):
        panel.add(iv)
    assert panel.list.count() == 4
    s.set_model(lstm, s.vocab)
    assert panel.interventions == [Intervention(1, "h", 2, "clamp", 0.5)] and panel.list.count() == 1
    assert offered(panel) == ["h", "c", "i", "f", "g", "o"]
