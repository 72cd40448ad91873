"""engine.analysis.features and probe: features by hand, scores against NumPy and a direct AUC,
and the README's claims about the bundled demo model."""

import numpy as np
import pytest

from engine.analysis.features import BUILTIN_FEATURES, Feature, builtin_feature, feature, span_feature
from engine.analysis.probe import AUCAccumulator, PearsonAccumulator, pearson, probe, probe_chunks, roc_auc
from engine.analysis.stream import quantity
from engine.checkpoint import load_char_checkpoint

from .analysis_helpers import DEMO_CHARS, DEMO_MODEL, DEMO_TEXT, tiny_inputs, tiny_model

TEXT = 'a "b(c)" [d]\n)x_1 (['


def test_builtin_features_by_hand():
    f = {name: builtin_feature(TEXT, name).values.tolist() for name in BUILTIN_FEATURES}
    #             a  ' ' "  b  (  c  )  "  ' ' [  d  ]  \n )  x  _  1  ' ' (  [
    assert f["quote"] == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["depth_round"] == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]  # the stray ')' is ignored
    assert f["depth_square"] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert f["depth"] == [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2]
    assert f["line_pos"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2, 3, 4, 5, 6]
    assert f["after_newline"] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert f["in_word"] == [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert f["letter"] == [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert f["digit"] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert f["punct"] == [0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1]
    assert f["space"] == [0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    assert {name: builtin_feature(TEXT, name).binary for name in BUILTIN_FEATURES} == {
        name: name not in ("depth", "depth_round", "depth_square", "line_pos") for name in BUILTIN_FEATURES}


def test_regex_and_span_features():
    assert feature("ab12cd3", r"regex:\d+").values.tolist() == [0, 0, 1, 1, 0, 0, 1]
    assert feature("abc", "regex:x*").values.tolist() == [0, 0, 0]  # empty matches mark nothing
    assert span_feature(6, [(1, 3), (4, 5)]).values.tolist() == [0, 1, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="bad regular expression"):
        feature("abc", "regex:(")
    with pytest.raises(ValueError, match="unknown feature"):
        feature("abc", "colour")
    with pytest.raises(ValueError):
        span_feature(6, [(4, 7)])


def test_streamed_pearson_equals_numpy_corrcoef():
    rng = np.random.default_rng(5)
    a = 1e4 + rng.normal(size=(500, 5)) * [1, 2, 3, 0.1, 5]  # (T, H) large offset: tests the stable update
    y = rng.normal(size=500) + 0.3 * a[:, 2]  # (T,)
    expected = [np.corrcoef(a[:, u], y)[0, 1] for u in range(5)]
    acc = PearsonAccumulator(5)
    for rows in np.split(np.arange(500), [1, 2, 100, 333]):
        acc.feed(a[rows], y[rows])
    np.testing.assert_allclose(acc.result(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pearson(a, y), expected, rtol=0, atol=1e-12)


def test_constant_unit_scores_nan_and_constant_feature_raises():
    a = np.stack([np.ones(10), np.arange(10.0)], axis=1)  # (10, 2)
    r = pearson(a, np.arange(10.0) ** 2)
    assert np.isnan(r[0]) and 0.9 < r[1] < 1
    with pytest.raises(ValueError, match="constant"):
        pearson(a, np.ones(10))
    with pytest.raises(ValueError, match="always off"):
        roc_auc(a, np.zeros(10), 0, 10)


def exact_auc(x: np.ndarray, labels: np.ndarray) -> float:
    """P(x_pos > x_neg) + 0.5 P(x_pos == x_neg) over every positive-negative pair."""
    pos, neg = x[labels > 0.5], x[labels <= 0.5]
    diff = pos[:, None] - neg[None, :]  # (P, N)
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_histogram_auc_is_exact_on_bin_centres_and_within_its_bound_otherwise():
    rng = np.random.default_rng(6)
    labels = (rng.random(400) < 0.3).astype(float)  # (T,)
    centres = (rng.integers(0, 64, size=(400, 3)) + 0.5) / 64 * 2 - 1  # (T, 3) values at bin centres of 64 bins
    centres[:, 1] += 13 / 32 * labels * (centres[:, 1] < 0.5)  # shift positives up by 13 whole bins
    auc, bound = roc_auc(centres, labels, -1, 1, bins=64)
    np.testing.assert_allclose(auc, [exact_auc(centres[:, u], labels) for u in range(3)], rtol=0, atol=1e-15)
    x = np.tanh(rng.normal(size=(400, 3)) + labels[:, None] * [0, 1, -2])  # (T, 3) continuous values
    acc = AUCAccumulator(np.full(3, -1.0), np.full(3, 1.0))
    for rows in np.split(np.arange(400), [50, 51, 300]):
        acc.feed(x[rows], labels[rows])
    auc, bound = acc.result()
    exact = np.array([exact_auc(x[:, u], labels) for u in range(3)])
    assert np.all(np.abs(auc - exact) <= bound) and np.all(bound < 0.01)
    assert auc[1] > 0.7 and auc[2] < 0.2


def test_probe_on_a_model_equals_direct_scores_on_the_whole_trace():
    model, ids = tiny_model(), tiny_inputs(200)
    tr = model.trace(ids)
    y = np.sin(np.arange(200) / 7.0)  # (T,)
    ranked = probe(model, ids, Feature("wave", False, y), chunk=23)
    assert len(ranked) == 2 * 6 * 6
    strengths = [s.strength for s in ranked]
    assert strengths == sorted(strengths, reverse=True)
    for s in ranked:
        assert s.kind == "pearson"
        assert s.score == pytest.approx(np.corrcoef(quantity(tr, s.quantity, s.layer)[:, s.unit], y)[0, 1], abs=1e-12)
    labels = (y > 0.3).astype(float)  # (T,)
    ranked = probe(model, ids, Feature("crest", True, labels), layers=[1], quantities=["c", "f"], chunk=23)
    assert {(s.layer, s.quantity) for s in ranked} == {(1, "c"), (1, "f")}
    for s in ranked:
        exact = exact_auc(quantity(tr, s.quantity, 1)[:, s.unit], labels)
        assert s.kind == "auc" and abs(s.score - exact) <= s.bound + 1e-15 and s.bound < 0.02


def test_a_gru_is_probed_through_its_r_z_n_and_h():
    model, ids = tiny_model("gru"), tiny_inputs(150)
    tr = model.trace(ids)
    y = np.cos(np.arange(150) / 5.0)  # (T,)
    ranked = probe(model, ids, Feature("wave", False, y), chunk=31)
    assert {s.quantity for s in ranked} == {"h", "r", "z", "n"} and len(ranked) == 2 * 4 * 6
    for s in ranked:
        assert s.score == pytest.approx(np.corrcoef(tr.gate(s.quantity, s.layer)[:, s.unit], y)[0, 1], abs=1e-12)
    with pytest.raises(ValueError, match="quantit"):
        probe(model, ids, Feature("wave", False, y), quantities=["c"])


def test_probe_of_one_whole_trace_equals_the_streamed_probe():
    model, ids = tiny_model(), tiny_inputs(90)
    feat = Feature("ramp", False, np.arange(90.0) % 13)
    whole = probe_chunks([(0, model.trace(ids))], feat, "lstm", 2, 6)
    streamed = probe(model, ids, feat, chunk=8)
    assert [(s.layer, s.quantity, s.unit) for s in whole] == [(s.layer, s.quantity, s.unit) for s in streamed]
    np.testing.assert_allclose([s.score for s in whole], [s.score for s in streamed], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="cover"):
        probe_chunks([(0, model.trace(ids[:50]))], feat, "lstm", 2, 6)
    with pytest.raises(ValueError, match="in order"):
        probe_chunks([(5, model.trace(ids))], feat, "lstm", 2, 6)


@pytest.mark.parametrize("kwargs, message", [(dict(layers=[2]), "layer"), (dict(quantities=["x"]), "quantity")])
def test_probe_rejects_bad_layers_and_quantities(kwargs, message):
    with pytest.raises(ValueError, match=message):
        probe(tiny_model(), tiny_inputs(20), Feature("f", False, np.arange(20.0)), **kwargs)


def test_probe_rejects_a_feature_of_another_length():
    with pytest.raises(ValueError, match="values for 20 steps"):
        probe(tiny_model(), tiny_inputs(20), Feature("f", False, np.arange(19.0)))


@pytest.fixture(scope="module")
def demo():
    ckpt = load_char_checkpoint(DEMO_MODEL)
    text = DEMO_TEXT.read_text(encoding="utf-8")[:DEMO_CHARS]
    return ckpt.model, text, ckpt.vocab.encode(text)


@pytest.mark.parametrize("name, unit, top", [("depth", 50, 1), ("quote", 10, 1), ("line_pos", 13, 1)])
def test_demo_units_the_readme_names(demo, name, unit, top):
    """README: unit 50 tracks bracket depth, 10 "inside a quote", 13 the position in the line (h)."""
    model, text, ids = demo
    ranked = probe(model, ids, feature(text, name), quantities=["h"])
    assert unit in [s.unit for s in ranked[:top]]
