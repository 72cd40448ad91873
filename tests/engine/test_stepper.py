"""Stepper: stepping equals the whole-sequence trace; back/forward and edits are exact."""

import numpy as np
import pytest

from engine import ModelConfig, SequenceModel
from engine.stepper import Stepper

NAMES = ("i", "f", "g", "o", "c", "h", "pre")


def make_model(dtype="float64", layers=2, cell="lstm", input_kind="onehot", V=7, H=5, seed=0):
    cfg = ModelConfig(input_size=V, output_size=V, hidden_size=H, num_layers=layers, cell=cell,
                      input_kind=input_kind, head="softmax", dtype=dtype)
    return SequenceModel(cfg, rng=np.random.default_rng(seed))


def ids(T, V=7, seed=1):
    return np.random.default_rng(seed).integers(0, V, size=T)


def assert_matches_trace(stepper, reference, n, atol):
    for k, layer in enumerate(stepper.layers):
        for name in reference.layers[k]:
            np.testing.assert_allclose(layer[name][:n], reference.gate(name, k)[:n], rtol=0, atol=atol,
                                       err_msg=f"layer {k} {name}")
    np.testing.assert_allclose(stepper.outputs[:n], reference.outputs[:n], rtol=0, atol=atol)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_steps_equal_whole_sequence_trace(cell):
    model = make_model(cell=cell)
    x = ids(40)
    reference = model.trace(x)
    s = Stepper(model, x)
    for _ in range(25):
        assert s.step()
    assert s.t == 25
    assert_matches_trace(s, reference, 25, 1e-12)
    tr = s.trace()
    assert tr.steps == 25 and tr.names == reference.names
    np.testing.assert_allclose(tr.gate("h", 1), reference.gate("h", 1)[:25], rtol=0, atol=1e-12)


def test_float32_close_to_float64_reference():
    model64 = make_model("float64")
    model32 = SequenceModel(ModelConfig(**{**model64.config.to_dict(), "dtype": "float32"}), params=model64.params)
    x = ids(30)
    s = Stepper(model32, x)
    s.seek(30)
    assert s.layers[0]["h"].dtype == np.float32
    assert_matches_trace(s, model64.trace(x), 30, 1e-5)


def test_back_then_forward_is_bit_identical():
    model = make_model()
    s = Stepper(model, ids(20))
    s.seek(12)
    before = {name: s.layers[1][name][:12].copy() for name in NAMES}
    state_before = s.state()
    for _ in range(5):
        assert s.back()
    assert s.t == 7
    for a, b in zip(s.state()[0], (s.layers[0]["h"][6:7], s.layers[0]["c"][6:7])):
        assert np.array_equal(a, b)
    for _ in range(5):
        s.step()
    for name in NAMES:
        assert np.array_equal(s.layers[1][name][:12], before[name]), name
    for a, b in zip(state_before, s.state()):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_back_at_start_and_step_at_end_are_refused():
    s = Stepper(make_model(), ids(3))
    assert not s.back()
    s.seek(3)
    assert not s.step() and s.t == 3


def test_seek_backwards_and_forwards_and_bounds():
    model = make_model()
    x = ids(30)
    s = Stepper(model, x)
    s.seek(30)
    s.seek(4)
    assert s.t == 4 and s.trace().steps == 4
    s.seek(30)
    assert_matches_trace(s, model.trace(x), 30, 1e-12)
    for bad in (-1, 31, 2.5, True):
        with pytest.raises(ValueError):
            s.seek(bad)


def test_run_to_with_zero_budget_advances_in_chunks():
    model = make_model()
    x = ids(50)
    s = Stepper(model, x)
    chunks = 0
    while not s.run_to(50, budget_s=0.0):
        chunks += 1
        assert 0 < s.t < 50
    assert chunks == 49 and s.t == 50
    assert_matches_trace(s, model.trace(x), 50, 1e-12)


@pytest.mark.parametrize("new_len", [40, 30, 50])
def test_edit_recomputes_from_first_change_and_equals_fresh_run(new_len):
    model = make_model()
    x = ids(40)
    s = Stepper(model, x)
    s.seek(35)
    kept = s.layers[0]["c"][:10].copy()
    y = np.concatenate([x[:10], ids(new_len - 10, seed=9)])
    y[10] = (x[10] + 1) % 7  # first change exactly at 10
    first = s.edit(y)
    assert first == 10
    assert s.t == min(35, new_len)
    assert np.array_equal(s.layers[0]["c"][:10], kept)
    fresh = Stepper(model, y)
    fresh.seek(s.t)
    for name in NAMES:
        assert np.array_equal(s.layers[1][name][: s.t], fresh.layers[1][name][: s.t]), name
    assert_matches_trace(s, model.trace(y), s.t, 1e-12)


def test_edit_without_change_keeps_everything():
    s = Stepper(make_model(), ids(20))
    s.seek(15)
    assert s.edit(s.inputs.copy()) == 20
    assert s.t == 15 and s.computed == 15


def test_dense_inputs_and_text_checks():
    model = make_model(input_kind="dense", V=3)
    x = np.random.default_rng(2).normal(size=(12, 3))
    s = Stepper(model, x)
    s.seek(12)
    assert_matches_trace(s, model.trace(x), 12, 1e-12)
    with pytest.raises(ValueError):
        Stepper(make_model(), ids(5), text="abc")
    with pytest.raises(ValueError):
        Stepper(make_model(), np.array([0, 99]))


def test_edit_from_and_to_an_empty_sequence():
    model = make_model()
    s = Stepper(model, np.zeros((0,), np.int64))
    assert s.steps == 0 and not s.step()
    x = ids(10)
    assert s.edit(x) == 0
    s.seek(10)
    assert_matches_trace(s, model.trace(x), 10, 1e-12)
    s.edit(np.zeros((0,), np.int64))
    assert s.t == 0 and s.trace().steps == 0


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_adopted_trace_rows_equal_stepped_rows_and_stepping_continues(cell):
    """A fresh cursor that adopts a sequence forward (the GUI's weight refresh) holds what
    stepping would have computed: the gate rows bit for bit in float32, and stepping on past
    the adopted rows continues from the adopted state."""
    model = make_model(dtype="float32", cell=cell)
    x = ids(60)
    stepped = Stepper(model, x)
    stepped.seek(60)
    adopted = Stepper(model, x)
    adopted.adopt(model.trace(x[:40]))
    assert adopted.computed == 40 and adopted.t == 0
    adopted.seek(60)
    for k, layer in enumerate(stepped.layers):
        for name, values in layer.items():
            assert np.array_equal(adopted.layers[k][name], values), f"layer {k} {name}"
    np.testing.assert_allclose(adopted.outputs, stepped.outputs, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="inputs"):
        Stepper(model, ids(60, seed=9)).adopt(model.trace(x[:10]))


def test_edit_without_running_then_adopt_keeps_rows_before_the_change():
    """The viewer's edit path: rows before the first change are kept bit for bit, the rest
    come from a whole-sequence pass, and the result equals a fresh run."""
    model = make_model(dtype="float64")
    x = ids(50)
    s = Stepper(model, x)
    s.seek(50)
    before = {name: a[:20].copy() for name, a in s.layers[0].items()}
    y = x.copy()
    y[20] = (y[20] + 1) % 7
    assert s.edit(y, run=False) == 20 and s.t == 20 and s.computed == 20
    s.adopt(model.trace(y))
    assert s.computed == 50
    for name, a in s.layers[0].items():
        assert np.array_equal(a[:20], before[name]), name
    s.seek(50)
    assert_matches_trace(s, model.trace(y), 50, 1e-12)
