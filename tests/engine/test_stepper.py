"""Stepper: windowed records equal the whole-sequence trace; back/forward and edits are exact."""

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


def assert_matches(records, reference, lo, atol):
    """``records`` (steps [lo, lo + n)) equal rows [lo, lo + n) of the whole-sequence ``reference``."""
    n = records.steps
    for k in range(reference.num_layers):
        for name in reference.layers[k]:
            np.testing.assert_allclose(records.gate(name, k), reference.gate(name, k)[lo:lo + n], rtol=0,
                                       atol=atol, err_msg=f"layer {k} {name}")
    np.testing.assert_allclose(records.outputs, reference.outputs[lo:lo + n], rtol=0, atol=atol)


@pytest.mark.parametrize("cell", ["lstm", "rnn", "gru"])
def test_steps_equal_whole_sequence_trace(cell):
    model = make_model(cell=cell)
    x = ids(40)
    reference = model.trace(x)
    s = Stepper(model, x, every=8)
    for _ in range(25):
        assert s.step()
    assert s.t == 25
    tr = s.trace()
    assert tr.steps == 25 and tr.names == reference.names
    assert_matches(tr, reference, 0, 1e-12)


def test_windowed_records_at_random_positions_equal_the_trace_with_a_small_cache():
    """Windows anywhere (across blocks, evicted and recomputed) equal ``model.trace``; the
    initial state of a window is the state before its first step."""
    model = make_model()
    x = ids(700)
    reference = model.trace(x)
    s = Stepper(model, x, every=16, cache_bytes=0)  # one cached block: every window recomputes
    assert s.run_pass()
    rng = np.random.default_rng(5)
    for _ in range(30):
        lo = int(rng.integers(0, 690))
        hi = int(rng.integers(lo, 700))
        rec = s.records(lo, hi)
        assert rec.steps == hi - lo
        assert_matches(rec, reference, lo, 1e-12)
        if lo:
            np.testing.assert_allclose(rec.initial_state[1][1], reference.gate("c", 1)[lo - 1], rtol=0, atol=1e-12)
    assert len(s._blocks) == 1


def test_float32_close_to_float64_reference():
    model64 = make_model("float64")
    model32 = SequenceModel(ModelConfig(**{**model64.config.to_dict(), "dtype": "float32"}), params=model64.params)
    x = ids(30)
    s = Stepper(model32, x, every=7)
    s.seek(30)
    assert s.trace().gate("h").dtype == np.float32
    assert_matches(s.trace(), model64.trace(x), 0, 1e-5)


def test_back_then_forward_is_bit_identical_even_after_eviction():
    model = make_model()
    s = Stepper(model, ids(200), every=8, cache_bytes=0)
    s.seek(120)
    before = {name: s.records(100, 120).gate(name, 1).copy() for name in NAMES}
    state_before = s.state()
    for _ in range(60):
        assert s.back()
    assert s.t == 60
    s.records(0, 20)  # evicts the blocks read above
    for _ in range(60):
        s.step()
    for name in NAMES:
        assert np.array_equal(s.records(100, 120).gate(name, 1), before[name]), name
    for a, b in zip(state_before, s.state()):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_records_revision_is_renewed_exactly_when_records_read_before_may_differ():
    """Stepping, reading new blocks and reading cached ones keep the revision (the records read
    stay the records); an edit, a block computed again after the cache dropped it, and a block
    adopted over one read before renew it, to a number no other cursor has."""
    model = make_model()
    x = ids(64)
    s = Stepper(model, x, every=8, cache_bytes=2 * 8 * Stepper(model, x[:1]).step_bytes)  # two blocks
    other = Stepper(model, x, every=8)
    assert s.records_revision != other.records_revision
    first = s.records_revision
    s.seek(20)
    s.records(0, 20)  # blocks 0..2: the first read of each, block 0 dropped by the last
    for _ in range(10):
        assert s.step()
    s.records(8, 24)  # blocks 1 and 2, still cached
    assert s.records_revision == first
    s.records(0, 8)  # block 0 again, computed after the cache dropped it
    assert s.records_revision != first
    second = s.records_revision
    s.edit(np.r_[x[:40], (x[40] + 1) % 7, x[41:]])
    assert s.records_revision not in (first, second)
    third = s.records_revision
    s.edit(s.inputs.copy())  # the same inputs: nothing changes
    assert s.records_revision == third
    fresh = Stepper(model, x, every=8)
    fresh.records(0, 8)
    before = fresh.records_revision
    fresh.adopt(model.trace(x[:16]))  # block 0 read before, then adopted over; block 1 is new
    assert fresh.records_revision != before


def test_back_at_start_and_step_at_end_are_refused():
    s = Stepper(make_model(), ids(3))
    assert not s.back()
    s.seek(3)
    assert not s.step() and s.t == 3


def test_seek_backwards_and_forwards_and_bounds():
    model = make_model()
    x = ids(30)
    s = Stepper(model, x, every=4)
    s.seek(30)
    s.seek(4)
    assert s.t == 4 and s.trace().steps == 4
    s.seek(30)
    assert_matches(s.trace(), model.trace(x), 0, 1e-12)
    for bad in (-1, 31, 2.5, True):
        with pytest.raises(ValueError):
            s.seek(bad)
    with pytest.raises(ValueError):
        s.records(5, 31)


def test_run_to_with_zero_budget_advances_one_block_at_a_time():
    model = make_model()
    x = ids(50)
    s = Stepper(model, x, every=10)
    reached = []
    while not s.run_to(50, budget_s=0.0):
        reached.append(s.t)
    assert reached == [10, 20, 30, 40] and s.t == 50
    assert_matches(s.trace(), model.trace(x), 0, 1e-12)


def test_first_pass_is_chunked_cancellable_and_keeps_checkpoints_only():
    """The pass reports progress once per block, stops when cancelled and resumes where it
    stopped; afterwards every checkpoint equals the trace's state at that step."""
    model = make_model()
    x = ids(100)
    reference = model.trace(x)
    s = Stepper(model, x, every=16, cache_bytes=0)
    seen = []
    assert not s.run_pass(progress=lambda done, total: seen.append((done, total)), cancelled=lambda: len(seen) >= 3)
    assert seen == [(16, 100), (32, 100), (48, 100)] and s.computed == 48 and not s.done
    assert s.run_pass(progress=lambda done, total: seen.append((done, total)))
    assert [d for d, _ in seen] == [16, 32, 48, 64, 80, 96, 100] and s.done and s.t == 0
    for j in range(1, 7):
        np.testing.assert_allclose(s._checkpoints[j, 0, 1], reference.gate("c", 0)[16 * j - 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("new_len", [40, 30, 50])
def test_edit_recomputes_from_first_change_and_equals_fresh_run(new_len):
    model = make_model()
    x = ids(40)
    s = Stepper(model, x, every=4)
    s.seek(35)
    kept = s.records(0, 10).gate("c").copy()
    y = np.concatenate([x[:10], ids(new_len - 10, seed=9)])
    y[10] = (x[10] + 1) % 7  # first change exactly at 10
    first = s.edit(y)
    assert first == 10
    assert s.t == min(35, new_len)
    assert np.array_equal(s.records(0, 10).gate("c"), kept)
    fresh = Stepper(model, y, every=4)
    fresh.seek(s.t)
    for name in NAMES:
        assert np.array_equal(s.trace().gate(name, 1), fresh.trace().gate(name, 1)), name
    assert_matches(s.records(0, new_len), model.trace(y), 0, 1e-12)


def test_edit_without_change_keeps_everything():
    s = Stepper(make_model(), ids(20), every=4)
    s.seek(15)
    assert s.edit(s.inputs.copy()) == 20
    assert s.t == 15 and s.computed == 16


def test_seek_interrupted_by_an_edit_gives_the_edited_texts_values():
    """A long seek stopped half-way (budget), then an edit before and after the point reached:
    finishing the seek gives the values of the edited text."""
    model = make_model()
    x = ids(300)
    s = Stepper(model, x, every=8)
    assert not s.run_to(300, budget_s=0.0) and s.t == 8
    y = x.copy()
    y[5] = (y[5] + 1) % 7
    y[200] = (y[200] + 3) % 7
    assert s.edit(y, run=False) == 5 and s.t == 5
    assert s.run_to(300)
    assert_matches(s.records(150, 300), model.trace(y), 150, 1e-12)


def test_dense_inputs_and_text_checks():
    model = make_model(input_kind="dense", V=3)
    x = np.random.default_rng(2).normal(size=(12, 3))
    s = Stepper(model, x, every=5)
    s.seek(12)
    assert_matches(s.trace(), model.trace(x), 0, 1e-12)
    with pytest.raises(ValueError):
        Stepper(make_model(), ids(5), text="abc")
    with pytest.raises(ValueError):
        Stepper(make_model(), np.array([0, 99]))


def test_edit_from_and_to_an_empty_sequence():
    model = make_model()
    s = Stepper(model, np.zeros((0,), np.int64))
    assert s.steps == 0 and not s.step() and s.records(0, 0).steps == 0
    x = ids(10)
    assert s.edit(x) == 0
    s.seek(10)
    assert_matches(s.trace(), model.trace(x), 0, 1e-12)
    s.edit(np.zeros((0,), np.int64))
    assert s.t == 0 and s.trace().steps == 0


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_adopted_trace_gives_the_same_bits_as_stepping(cell):
    """A fresh cursor that adopts a sequence forward (the GUI's weight refresh) takes its
    checkpoints from it, and the records from there on are bit for bit those of stepping."""
    model = make_model(dtype="float32", cell=cell)
    x = ids(60)
    stepped = Stepper(model, x, every=16)
    stepped.seek(60)
    adopted = Stepper(model, x, every=16)
    adopted.adopt(model.trace(x[:40]))
    assert adopted.computed == 32 and adopted.t == 0
    adopted.seek(60)
    for k, layer in enumerate(stepped.trace().layers):
        for name, values in layer.items():
            assert np.array_equal(adopted.trace().gate(name, k), values), f"layer {k} {name}"
    with pytest.raises(ValueError, match="inputs"):
        Stepper(model, ids(60, seed=9)).adopt(model.trace(x[:10]))


def test_trace_and_records_refuse_more_than_the_memory_bound(monkeypatch):
    import engine.stepper as stepper_module
    s = Stepper(make_model(), ids(100), every=8)
    monkeypatch.setattr(stepper_module, "TRACE_BYTES", 30 * s.step_bytes)
    assert s.max_records() == 30
    s.seek(30)
    assert s.trace().steps == 30
    s.seek(31)
    with pytest.raises(ValueError, match="records"):
        s.trace()
    assert s.records(60, 90).steps == 30


def test_a_waiting_reader_gets_the_checkpoints_copied_once_when_ready(monkeypatch):
    """``wait_known`` hands no checkpoints while a filling pass has not reached the step asked
    for (no copy per wait: the array is large), then a copy equal to the known rows; None once
    the inputs changed; at once when no pass is filling."""
    x = ids(100)
    s = Stepper(make_model(), x, every=16)
    copies = []
    rows = Stepper._known_rows
    monkeypatch.setattr(Stepper, "_known_rows", lambda self: copies.append(self.computed) or rows(self))
    s.set_filling(True)
    s.run_to(40)  # checkpoints up to step 48 known
    assert [s.wait_known(80, s.version, 0.0) for _ in range(3)] == [(False, None)] * 3 and copies == []
    assert s.known_percent() == 48
    ready, known = s.wait_known(48, s.version, 0.0)
    assert ready and copies == [48] and np.array_equal(known, s._checkpoints[:4]) and known is not s._checkpoints
    s.set_filling(False)
    ready, known = s.wait_known(80, s.version, 0.0)  # nothing fills them in: the known ones
    assert ready and len(known) == 4 and copies == [48, 48]
    version = s.version
    s.edit(x[::-1].copy(), run=False)
    assert s.wait_known(80, version, 0.0) == (True, None) and len(copies) == 2
    s.run_pass()
    assert s.known_percent() == 100
