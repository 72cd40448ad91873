"""engine.analysis.intervene: identity edits change nothing bit for bit; an edit changes exactly
what the LSTM and GRU (r, z, n, h) equations say, in every path (single step, chunked runs,
loss, samples); the demo's bracket unit matters for closing brackets."""

import numpy as np
import pytest

from engine.analysis.intervene import (Intervention, editable, intervene, intervened_step, intervened_trace,
                                      iter_intervened, loss_change, sample_pair, window_of)
from engine.analysis.strip import strip
from engine.cells import sigmoid
from engine.data import CharVocab
from engine.checkpoint import load_char_checkpoint
from engine.sample import sample
from engine.stepper import Stepper

from .analysis_helpers import DEMO_CHARS, DEMO_MODEL, DEMO_TEXT, tiny_inputs, tiny_model

NAMES = ("i", "f", "g", "o", "c", "h")


def test_no_active_intervention_is_model_step_bit_for_bit():
    model, ids = tiny_model(dtype="float32"), tiny_inputs(12)
    state_a = state_b = None
    late = (Intervention(1, "c", 2, "zero", start=100),)  # never active in these steps
    for t in range(12):
        out_a, state_a, rec_a = model.step(ids[t : t + 1], state_a)
        out_b, state_b, rec_b = intervened_step(model, ids[t : t + 1], state_b, t, late)
        assert np.array_equal(out_a, out_b)
        for ra, rb in zip(rec_a, rec_b):
            assert all(np.array_equal(ra[name], rb[name]) for name in ra)


@pytest.mark.parametrize("iv", [Intervention(0, "h", 3, "scale", 1.0), Intervention(1, "f", 0, "scale", 1.0, 5, 30),
                                Intervention(0, "c", 5, "scale", 1.0, 2)])
def test_scaling_by_one_changes_nothing_bit_for_bit(iv):
    model, ids = tiny_model(dtype="float32"), tiny_inputs(80)
    r = intervene(model, ids, [iv], window=40, chunk=16)
    assert np.array_equal(r.nll_before, r.nll_after, equal_nan=True)
    assert r.delta == 0.0
    assert np.array_equal(r.original.outputs, r.changed.outputs)
    for k in range(2):
        assert all(np.array_equal(r.original.gate(n, k), r.changed.gate(n, k)) for n in NAMES)


def test_nll_before_is_the_models_per_character_loss():
    model, ids = tiny_model(), tiny_inputs(80)
    r = intervene(model, ids, [Intervention(0, "h", 1, start=30, end=35)], chunk=16)
    np.testing.assert_allclose(r.nll_before, strip(model, ids, k=0).loss, rtol=1e-12)
    assert r.loss_before == pytest.approx(np.nanmean(r.nll_before), rel=1e-15)


def test_zeroing_h_at_one_step_changes_exactly_what_the_equations_say():
    model, ids = tiny_model(), tiny_inputs(30)
    t, j = 10, 4
    r = intervene(model, ids, [Intervention(0, "h", j, "zero", start=t, end=t + 1)], window=30)
    assert r.window_start == t
    whole = model.trace(ids)
    o, c = r.original, r.changed  # both cover steps [t, 30)
    for name in NAMES:  # the window's original is the unedited run
        np.testing.assert_allclose(o.gate(name, 1), whole.gate(name, 1)[t:], rtol=0, atol=1e-14)
    assert np.array_equal(r.nll_before[:t], r.nll_after[:t])  # steps before t: identical
    # step t, layer 0: only h[j] changes, to 0; the gates and c are as before
    assert all(np.array_equal(o.gate(n, 0)[0], c.gate(n, 0)[0]) for n in "ifgoc")
    expected_h = o.gate("h", 0)[0].copy()
    expected_h[j] = 0.0
    assert np.array_equal(c.gate("h", 0)[0], expected_h)
    # step t, layer 1 reads the edited h: recompute its step from the equations
    p = model.layer_params(1)
    z = expected_h @ p["Wx"] + o.previous("h", 1, 0) @ p["Wh"] + p["b"]  # (4H,) i, f, g, o
    H = 6
    i, f, g, og = sigmoid(z[:H]), sigmoid(z[H : 2 * H]), np.tanh(z[2 * H : 3 * H]), sigmoid(z[3 * H :])
    c1 = f * o.previous("c", 1, 0) + i * g
    np.testing.assert_allclose(c.gate("c", 1)[0], c1, rtol=1e-12)
    h1 = og * np.tanh(c1)
    np.testing.assert_allclose(c.gate("h", 1)[0], h1, rtol=1e-12)
    scores = h1 @ model.params["head.W"] + model.params["head.b"]
    np.testing.assert_allclose(c.outputs[0], np.exp(scores) / np.exp(scores).sum(), rtol=1e-12)
    assert r.nll_after[t] != r.nll_before[t]
    # step t + 1: layer 0's gates read the edited h_t
    assert not np.array_equal(o.gate("i", 0)[1], c.gate("i", 0)[1])


def test_gate_and_cell_edits_follow_the_cell_equations():
    model, ids = tiny_model(), tiny_inputs(20)
    t, j = 5, 2
    r = intervene(model, ids, [Intervention(1, "i", j, "zero", start=t)], window=15)
    c, o = r.changed, r.original
    assert np.all(c.gate("i", 1)[:, j] == 0)
    np.testing.assert_allclose(c.gate("c", 1)[0, j], o.gate("f", 1)[0, j] * o.previous("c", 1, 0)[j], rtol=1e-15)
    np.testing.assert_allclose(c.gate("h", 1)[:, j], c.gate("o", 1)[:, j] * np.tanh(c.gate("c", 1)[:, j]), rtol=1e-15)
    r = intervene(model, ids, [Intervention(0, "c", j, "clamp", 0.7, start=t, end=t + 3)], window=15)
    assert np.all(r.changed.gate("c", 0)[:3, j] == 0.7)
    np.testing.assert_allclose(r.changed.gate("h", 0)[:3, j], r.changed.gate("o", 0)[:3, j] * np.tanh(0.7), rtol=1e-15)
    assert r.changed.gate("c", 0)[3, j] != 0.7  # the span ended


def test_rnn_interventions_on_h_only():
    model, ids = tiny_model("rnn"), tiny_inputs(20)
    r = intervene(model, ids, [Intervention(0, "h", 1, "scale", 2.0, start=3)])
    np.testing.assert_allclose(r.changed.gate("h", 0)[0, 1], 2 * r.original.gate("h", 0)[0, 1], rtol=1e-15)
    with pytest.raises(ValueError, match="only h"):
        intervene(model, ids, [Intervention(0, "c", 1)])


@pytest.mark.parametrize("kwargs", [dict(quantity="x"), dict(mode="double"), dict(unit=-1), dict(start=4, end=4),
                                    dict(value=float("inf"))])
def test_bad_interventions_raise(kwargs):
    with pytest.raises(ValueError):
        Intervention(**(dict(layer=0, quantity="h", unit=0) | kwargs))


def test_interventions_outside_the_model_or_text_raise():
    model, ids = tiny_model(), tiny_inputs(20)
    for iv in (Intervention(2, "h", 0), Intervention(0, "h", 6), Intervention(0, "h", 0, start=20)):
        with pytest.raises(ValueError):
            intervene(model, ids, [iv])
    with pytest.raises(ValueError):
        intervene(model, ids, [])


def stepped_losses(model, ids, interventions):
    """Reference: ``(T - 1,)`` losses without / with the interventions, one ``intervened_step``
    at a time from step 0, -log of the probability the step gives the next character."""
    runs = []
    for ivs in ((), tuple(interventions)):
        state, nll = None, []
        for t in range(ids.shape[0] - 1):
            probs, state, _ = intervened_step(model, ids[t : t + 1], state, t, ivs)  # (1, V)
            nll.append(-np.log(probs[0, ids[t + 1]]))
        runs.append(np.array(nll))
    return runs


def test_intervened_trace_is_the_models_trace_where_nothing_is_edited():
    model, ids = tiny_model(dtype="float32"), tiny_inputs(40)
    plain = model.trace(ids)
    touched = (Intervention(1, "c", 2, "scale", 3.0, start=5),)
    for trace in (intervened_trace(model, ids, (Intervention(0, "h", 1, start=100),)),  # never active here
                  intervened_trace(model, ids, touched, apply=False)):  # the stepping path, no edit
        assert np.array_equal(trace.outputs, plain.outputs)
        assert all(np.array_equal(trace.gate(n, k), plain.gate(n, k)) for n in NAMES for k in range(2))
    edited = intervened_trace(model, ids, touched)
    assert all(np.array_equal(edited.gate(n, k)[:5], plain.gate(n, k)[:5]) for n in NAMES for k in range(2))
    np.testing.assert_allclose(edited.gate("c", 1)[5, 2],
                               3 * (plain.gate("f", 1)[5, 2] * plain.gate("c", 1)[4, 2]
                                    + plain.gate("i", 1)[5, 2] * plain.gate("g", 1)[5, 2]), rtol=1e-6)


def test_chunks_from_a_stored_state_continue_the_run_from_step_zero():
    model, ids = tiny_model(), tiny_inputs(90)
    ivs = [Intervention(0, "c", 3, "clamp", 0.5, start=37, end=61)]
    whole = intervene(model, ids, ivs, window=53)
    stepper = Stepper(model, ids, every=16)
    parts = list(iter_intervened(model, ids, ivs, start=32, state=stepper.state(32), chunk=10))
    assert [t0 for t0, _, _ in parts] == list(range(32, 90, 10))
    for k, tr in enumerate((whole.original, whole.changed)):
        got = window_of([p[1 + k] for p in parts], 37, 90)
        assert got.start == 37 and got.steps == 53
        for name in NAMES:
            np.testing.assert_allclose(got.gate(name, 0), tr.gate(name, 0), rtol=0, atol=1e-13)
        np.testing.assert_allclose(got.initial_state[0][1], model.trace(ids[:37]).gate("c", 0)[-1], atol=1e-13)
    for _, original, changed in parts:  # the runs agree bit for bit before the edit
        before = min(max(0, 37 - original.start), original.steps)
        assert np.array_equal(original.gate("h", 1)[:before], changed.gate("h", 1)[:before])
    with pytest.raises(ValueError, match="before step 40"):
        next(iter_intervened(model, ids, ivs, start=40))
    kept = {}
    loss_change(model, ids, ivs, start=32, state=stepper.state(32), chunk=10, keep_states=kept)
    assert sorted(kept) == [42, 52, 62, 72, 82, 90]
    _, original, changed = next(iter_intervened(model, ids, ivs, 52, stepper.state(52), chunk=10, changed_state=kept[52]))
    for name in NAMES:  # resumed from the kept state: the same as the run from step 32
        np.testing.assert_array_equal(changed.gate(name, 0), parts[2][2].gate(name, 0))
        np.testing.assert_allclose(original.gate(name, 0), parts[2][1].gate(name, 0), rtol=0, atol=1e-13)


def test_loss_change_equals_a_step_by_step_computation():
    model, ids = tiny_model(), tiny_inputs(70)
    ivs = [Intervention(1, "h", 2, "zero", start=20), Intervention(0, "f", 4, "scale", 0.5, start=25, end=40)]
    before, after = stepped_losses(model, ids, ivs)  # (69,) each
    mask = np.zeros(70, bool)
    mask[[21, 30, 55, 69]] = True  # step 69 has no next character: not counted
    stepper = Stepper(model, ids, every=16)
    for start, state in ((20, stepper.state(20)), (16, stepper.state(16)), (0, None)):
        r = loss_change(model, ids, ivs, start=start, state=state, where=mask, chunk=8)
        assert (r.start, r.steps, r.text_steps, r.where_steps) == (start, 69 - start, 69, 3)
        assert r.before == pytest.approx(before[start:].mean(), rel=1e-12)
        assert r.after == pytest.approx(after[start:].mean(), rel=1e-12)
        assert r.where_after - r.where_before == pytest.approx((after - before)[[21, 30, 55]].mean(), rel=1e-10)
        assert r.text_delta == pytest.approx((after - before).mean(), rel=1e-10)


def test_loss_change_stops_at_the_first_cancel_point():
    model, ids = tiny_model(), tiny_inputs(100)
    seen = []
    r = loss_change(model, ids, [Intervention(0, "h", 0, start=10)], chunk=20,
                    progress=lambda done, total: seen.append((done, total)), cancelled=lambda: len(seen) >= 2)
    assert r is None and seen == [(20, 90), (40, 90)]
    with pytest.raises(ValueError, match="mask"):
        loss_change(model, ids, [Intervention(0, "h", 0)], where=np.ones(5, bool))


@pytest.fixture(scope="module")
def demo():
    ckpt = load_char_checkpoint(DEMO_MODEL)
    text = DEMO_TEXT.read_text(encoding="utf-8")[:DEMO_CHARS]
    return ckpt, text, ckpt.vocab.encode(text)


def test_demo_zeroing_the_bracket_unit_raises_the_loss_on_closing_brackets(demo):
    """Measured: over the first 20k characters, zeroing h unit 50 raises the mean loss on steps
    whose next character is ')' or ']' from 1.65 to 3.89 nats (+2.24), the overall mean by 0.27."""
    ckpt, text, ids = demo
    closing = np.zeros(len(text), bool)  # (T,) the next character closes a bracket
    closing[:-1] = [ch in ")]" for ch in text[1:]]
    r = intervene(ckpt.model, ids, [Intervention(0, "h", 50, "zero")])
    assert r.delta_where(closing) > 1.5
    assert r.delta_where(closing) > 3 * r.delta_where(~closing)
    summed = loss_change(ckpt.model, ids, [Intervention(0, "h", 50, "zero")], where=closing)
    assert summed.where_after - summed.where_before == pytest.approx(r.delta_where(closing), rel=1e-9)
    assert summed.text_delta == pytest.approx(r.delta, rel=1e-9)


def test_demo_paired_samples_share_the_seed(demo):
    ckpt, _, _ = demo
    plain, edited = sample_pair(ckpt.model, ckpt.vocab, [Intervention(0, "h", 50, "zero")], prime="Ka is [",
                                length=60, seed=3)
    assert plain == sample(ckpt.model, ckpt.vocab, "Ka is [", 60, rng=np.random.default_rng(3)).text
    assert edited != plain and edited.startswith("Ka is [") and len(edited) == len(plain)
    same, also_same = sample_pair(ckpt.model, ckpt.vocab, [Intervention(0, "h", 50, "scale", 1.0)], prime="Ka",
                                  length=60, seed=3)
    assert same == also_same


# --- GRU: r, z, n and h edits ------------------------------------------------------------------
GRU_NAMES = ("r", "z", "n", "h")


def edited(x, interventions, layer, name, t):
    """``x (H,)`` with the interventions on ``name`` of ``layer`` active at step ``t`` applied,
    written from their fields (clamp to value, zero, scale by value)."""
    x = x.copy()
    for iv in interventions:
        if (iv.layer, iv.quantity) == (layer, name) and iv.start <= t and (iv.end is None or t < iv.end):
            x[iv.unit] = iv.value * x[iv.unit] if iv.mode == "scale" else 0.0 if iv.mode == "zero" else iv.value
    return x


class HandGRU:
    """A one-hot GRU character model stepped here in NumPy from ``model``'s parameters with PyTorch
    ``nn.GRU``'s equations (gate blocks r, z, n), each edit applied where its quantity is made:
    ``r = s(x Wx_r + h Wh_r + b_r)`` (edited), ``z`` likewise (edited), ``n = tanh(x Wx_n + b_n +
    r (h Wh_n + bhn))`` with the edited r (then edited), ``h' = (1 - z) n + z h`` (then edited).
    ``step`` is ``SequenceModel.step``'s interface on a batch of one (for ``engine.sample``)."""

    def __init__(self, model, interventions=()):
        self.config, self.params, self.interventions, self.t = model.config, model.params, tuple(interventions), 0

    def step(self, x_t, state=None):
        p, H, L = self.params, self.config.hidden_size, self.config.num_layers
        hs = [np.zeros(H) for _ in range(L)] if state is None else [s[0][0] for s in state]
        x = np.eye(self.config.input_size)[int(x_t[0])]  # (V,)
        records, ivs, t = [], self.interventions, self.t
        for k in range(L):
            gx = x @ p[f"l{k}.Wx"] + p[f"l{k}.b"]  # (3H,)
            gh = hs[k] @ p[f"l{k}.Wh"]  # (3H,)
            r = edited(1 / (1 + np.exp(-(gx[:H] + gh[:H]))), ivs, k, "r", t)  # (H,)
            z = edited(1 / (1 + np.exp(-(gx[H : 2 * H] + gh[H : 2 * H]))), ivs, k, "z", t)  # (H,)
            n = edited(np.tanh(gx[2 * H :] + r * (gh[2 * H :] + p[f"l{k}.bhn"])), ivs, k, "n", t)  # (H,)
            h = edited((1 - z) * n + z * hs[k], ivs, k, "h", t)  # (H,)
            records.append({"r": r[None], "z": z[None], "n": n[None], "h": h[None]})  # (1, H) each
            hs[k] = x = h
        scores = x @ p["head.W"] + p["head.b"]  # (V,)
        e = np.exp(scores - scores.max())  # (V,)
        self.t += 1
        return (e / e.sum())[None], [(h[None],) for h in hs], records

    def run(self, ids):
        """``(outputs (T, V), {(layer, name): (T, H)})`` over token ids ``ids (T,)`` from zeros."""
        state, outputs, recs = None, [], []
        for token in ids:
            out, state, rec = self.step(np.array([token]), state)
            outputs.append(out[0])
            recs.append(rec)
        L = self.config.num_layers
        return np.array(outputs), {(k, n): np.array([r[k][n][0] for r in recs]) for k in range(L) for n in GRU_NAMES}


@pytest.mark.parametrize("iv", [Intervention(0, "r", 2, "clamp", 0.05, start=6, end=9),
                                Intervention(1, "r", 4, "zero", start=6),
                                Intervention(0, "z", 1, "clamp", 0.97, start=6, end=9),
                                Intervention(1, "z", 3, "scale", 0.2, start=6),
                                Intervention(0, "n", 5, "scale", -1.5, start=6, end=9),
                                Intervention(1, "n", 0, "clamp", 0.8, start=6),
                                Intervention(0, "h", 3, "clamp", -0.6, start=6, end=9)])
def test_gru_edits_change_exactly_what_the_equations_say(iv):
    model, ids = tiny_model("gru"), tiny_inputs(20)
    base = intervened_trace(model, ids, [iv], apply=False)
    got = intervened_trace(model, ids, [iv])
    outputs, hand = HandGRU(model, [iv]).run(ids)
    np.testing.assert_allclose(got.outputs, outputs, rtol=0, atol=1e-13)
    for (k, name), expected in hand.items():
        np.testing.assert_allclose(got.gate(name, k), expected, rtol=0, atol=1e-13)
    t, j, other = iv.start, iv.unit, np.arange(6) != iv.unit
    downstream = {"r": "rnh", "z": "zh", "n": "nh", "h": "h"}[iv.quantity]  # within the edited unit's step
    for name in GRU_NAMES:  # step t of the edited layer: only unit j of what the equations recompute
        a, b = base.gate(name, iv.layer)[t], got.gate(name, iv.layer)[t]
        assert np.array_equal(a[other], b[other])
        assert (a[j] != b[j]) == (name in downstream), name
    pre_a, pre_b = base.gate("pre", iv.layer)[t], got.gate("pre", iv.layer)[t]  # (3H,) r, z, n arguments
    changed = np.flatnonzero(pre_a != pre_b)
    assert changed.tolist() == ([12 + j] if iv.quantity == "r" else [])  # n's argument reads the edited r
    for k in range(2):  # steps before t, and layers below the edit at step t: bit for bit
        assert all(np.array_equal(base.gate(n, k)[:t], got.gate(n, k)[:t]) for n in GRU_NAMES)
        if k < iv.layer:
            assert all(np.array_equal(base.gate(n, k)[t], got.gate(n, k)[t]) for n in GRU_NAMES)
    if iv.layer == 0:  # the layer above reads the edited h at step t
        assert not np.array_equal(base.gate("h", 1)[t], got.gate("h", 1)[t])
    assert not np.array_equal(base.outputs[t], got.outputs[t])
    assert not np.array_equal(base.gate("r", iv.layer)[t + 1], got.gate("r", iv.layer)[t + 1])  # step t+1 reads h_t


@pytest.mark.parametrize("name", ["r", "z", "n"])
def test_gru_scaling_by_one_changes_nothing_bit_for_bit(name):
    model, ids = tiny_model("gru", dtype="float32"), tiny_inputs(80)
    ivs = [Intervention(0, name, 3, "scale", 1.0, 2), Intervention(1, name, 1, "scale", 1.0, 5, 30)]
    r = intervene(model, ids, ivs, window=60, chunk=16)
    assert np.array_equal(r.nll_before, r.nll_after, equal_nan=True) and r.delta == 0.0
    assert np.array_equal(r.original.outputs, r.changed.outputs)
    for k in range(2):
        assert all(np.array_equal(r.original.gate(n, k), r.changed.gate(n, k)) for n in (*GRU_NAMES, "pre"))


@pytest.mark.parametrize("name,mode,value", [("r", "clamp", 0.9), ("z", "zero", 0.0), ("n", "scale", 2.5)])
def test_gru_chunked_runs_equal_the_single_step_path(name, mode, value):
    model, ids = tiny_model("gru"), tiny_inputs(70)
    ivs = [Intervention(0, name, 2, mode, value, start=23, end=41), Intervention(1, name, 5, mode, value, start=30)]
    steps = [intervened_step(model, ids[:1], None, 0, ivs)]
    for t in range(1, 70):
        steps.append(intervened_step(model, ids[t : t + 1], steps[-1][1], t, ivs))
    whole = intervened_trace(model, ids, ivs)
    stepper = Stepper(model, ids, every=16)
    parts = list(iter_intervened(model, ids, ivs, start=16, state=stepper.state(16), chunk=9))
    chunked = window_of([changed for _, _, changed in parts], 16, 70)
    for k in range(2):
        for n in GRU_NAMES:
            stepped = np.array([rec[k][n][0] for _, _, rec in steps])  # (70, H)
            np.testing.assert_allclose(whole.gate(n, k), stepped, rtol=0, atol=1e-13)
            np.testing.assert_allclose(chunked.gate(n, k), stepped[16:], rtol=0, atol=1e-13)
    np.testing.assert_allclose(whole.outputs, np.concatenate([out for out, _, _ in steps]), rtol=0, atol=1e-13)
    before, after = stepped_losses(model, ids, ivs)  # (69,) each
    assert not np.allclose(before, after)
    r = loss_change(model, ids, ivs, start=16, state=stepper.state(16), chunk=9)
    assert r.after == pytest.approx(after[16:].mean(), rel=1e-12)
    assert r.text_delta == pytest.approx((after - before).mean(), rel=1e-10)
    assert intervene(model, ids, ivs, chunk=9).delta == pytest.approx((after - before).mean(), rel=1e-10)
    vocab = CharVocab(list("abcdefg"))
    pairs = [sample_pair(model, vocab, ivs, prime="abcab", length=60, seed=seed) for seed in range(4)]
    for seed, (without, with_) in enumerate(pairs):
        assert without == sample(HandGRU(model), vocab, "abcab", 60, rng=np.random.default_rng(seed)).text
        assert with_ == sample(HandGRU(model, ivs), vocab, "abcab", 60, rng=np.random.default_rng(seed)).text
    assert any(with_ != without for without, with_ in pairs)


def test_gru_edits_only_what_a_gru_has():
    assert (editable("lstm"), editable("gru"), editable("rnn")) == (("h", "c", "i", "f", "g", "o"),
                                                                   ("h", "r", "z", "n"), ("h",))
    model, ids = tiny_model("gru"), tiny_inputs(20)
    for name in ("c", "i", "f", "g", "o"):
        with pytest.raises(ValueError, match="has only h, r, z, n;"):
            intervene(model, ids, [Intervention(0, name, 1)])
    with pytest.raises(ValueError, match="has only h, c, i, f, g, o;"):
        intervene(tiny_model(), ids, [Intervention(0, "r", 1)])
