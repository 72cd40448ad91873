"""The Session without a window: text and series sequences, labels and captions, dropping
unknown characters, original units, switching back to text, and the engine work it offers."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DataError
from engine.gradflow import gradient_flow
from engine.stepper import CHECKPOINT_EVERY
from engine.model import ModelConfig, SequenceModel
from engine.series import SeriesDataset, sine
from lstmviz import threads
from lstmviz.core.levels import gate_levels
from lstmviz.session import Session

from .conftest import TEXT

W, K = 4, 2


@pytest.fixture
def session(qapp, model, vocab):
    s = Session()
    s.set_model(model, vocab)
    s.set_text(TEXT)
    yield s
    threads.stop_all()


@pytest.fixture
def dataset():
    return SeriesDataset(10.0 + 5.0 * sine(60, period=11.0), W, K, val_fraction=0.2, dtype="float64")


@pytest.fixture
def forecaster():
    cfg = ModelConfig(input_size=W, output_size=K, hidden_size=5, input_kind="dense", head="linear", dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(7))


def show_series(s, forecaster, dataset):
    labels = [f"{v:.4g}" for v in dataset.values[W:W + dataset.positions]]
    s.set_series(forecaster, dataset.inputs, labels, inverse=dataset.scaler.inverse_transform,
                 targets=dataset.targets)
    return labels


def test_text_labels_captions_and_names(session, model_path, text_path, vocab):
    s = session
    assert s.sequence.kind == "text" and s.sequence.editable
    assert s.steps == len(TEXT) and s.text == TEXT
    assert s.label(3) == TEXT[3] and s.caption(2) == f"char {TEXT[2]!r}"
    with pytest.raises(IndexError):
        s.label(len(TEXT))
    assert s.display_name() == "no model — typed text"
    s.load_model(model_path)
    s.load_text(text_path)
    assert s.display_name() == "model.npz — text.txt"
    assert s.names == ("f", "i", "o", "g", "c", "h")


def test_unknown_characters_are_dropped_and_named(session, vocab):
    s = session
    messages = []
    s.message.connect(messages.append)
    typed = "He said ~one~ #two"
    kept = s.set_text(typed)
    assert kept == "He said one two"  # '~' and '#' are not in the vocabulary
    assert s.text == kept and s.steps == len(kept)
    assert messages and "'~'" in messages[-1] and "'#'" in messages[-1]
    np.testing.assert_array_equal(s.stepper.inputs, [vocab.index(ch) for ch in kept])


def test_series_labels_original_units_and_refusals(session, forecaster, dataset):
    s = session
    s.seek(9)
    labels = show_series(s, forecaster, dataset)
    assert s.sequence.kind == "series" and not s.sequence.editable
    assert s.t == 0 and s.vocab is None and s.text == ""  # a new kind starts at step 0
    assert s.label(5) == labels[5] == f"{dataset.values[5 + W]:.4g}"
    assert s.caption(5) == f"next {labels[5]}"
    actual = s.sequence.original(s.sequence.targets)  # (T, K)
    np.testing.assert_allclose(actual[:, 0], dataset.values[W:W + dataset.positions], rtol=0, atol=1e-9)
    assert s.display_name() == f"numeric series ({dataset.positions} steps)"
    with pytest.raises(DataError, match="series"):
        s.set_text("abc")
    s.seek(12)
    show_series(s, forecaster, dataset)  # the same kind again (e.g. retrained weights): the step is kept
    assert s.t == 12


def test_leaving_a_series_restores_the_parked_text(session, model, vocab, forecaster, dataset):
    s = session
    show_series(s, forecaster, dataset)
    s.seek(7)
    s.set_model(model, vocab)
    assert s.sequence.kind == "text" and s.text == TEXT and s.t == 0
    s.seek(len(TEXT))
    reference = model.trace(vocab.encode(TEXT))
    np.testing.assert_allclose(s.trace().gate("h", 1), reference.gate("h", 1), rtol=0, atol=1e-12)


def test_cell_levels_come_from_the_whole_text(session, model, vocab, qtbot):
    whole = model.trace(vocab.encode(TEXT))
    qtbot.waitUntil(lambda: not session.passing, timeout=10000)  # the pass worker computes them
    for layer in range(2):
        assert session.levels("c", layer) == gate_levels("c", whole.gate("c", layer))
    assert session.levels("f", 0) == (0.0, 1.0)


def test_equation_breakdown_adds_up_the_weights(session, model, vocab):
    s = session
    s.seek(10)
    layer, step, unit = 0, 6, 4
    H = model.config.hidden_size
    breakdown = s.equation_breakdown(layer, step, unit)
    h_prev = s.trace().gate("h", 0)[step - 1]  # (H,)
    token = vocab.index(TEXT[step])
    for k, name in enumerate(("i", "f", "g", "o")):  # PyTorch's gate order in the parameters
        col = k * H + unit
        by_hand = model.params["l0.Wx"][token, col] + h_prev @ model.params["l0.Wh"][:, col] + model.params["l0.b"][col]
        assert breakdown.gates[name].pre == pytest.approx(by_hand, abs=1e-12)
    assert breakdown.c == pytest.approx(s.trace().gate("c", 0)[step, unit], abs=1e-12)
    with pytest.raises(ValueError):
        s.equation_breakdown(0, 10, unit)  # step 10 is not taken yet


def test_one_step_records_are_read_once_per_step_and_follow_edits_and_models(session, model, vocab, qtbot):
    """The panels' one-step reads of a step share one read; an edit before that step or a new
    model gives the new values, equal to a whole-sequence forward of the new text or weights."""
    s = session
    qtbot.waitUntil(lambda: not s.passing, timeout=10000)
    s.seek(12)
    first = s.records(11, 12)
    assert s.records(11, 12) is first
    assert s.records(10, 11) is not first
    edited = "xyz" + TEXT[3:]
    s.set_text(edited)
    s.seek(12)
    np.testing.assert_array_equal(s.records(11, 12).gate("h", 1)[0], model.trace(vocab.encode(edited)).gate("h", 1)[11])
    other = SequenceModel(model.config, rng=np.random.default_rng(11))
    s.set_model(other, vocab)
    s.seek(12)
    np.testing.assert_array_equal(s.records(11, 12).gate("c", 0)[0], other.trace(vocab.encode(edited)).gate("c", 0)[11])


def test_one_step_records_of_a_new_model_at_the_same_step_and_version_are_its_own(session, model, vocab, qtbot):
    """A new model's stepper starts at the same version as the one it replaces: its records at
    the step read last are its own, not the cached ones."""
    s = session
    s.set_model(model, vocab)  # a stepper of its own, as the next model's
    qtbot.waitUntil(lambda: not s.passing, timeout=10000)
    s.seek(12)
    version = s.stepper.version
    s.records(11, 12)
    other = SequenceModel(model.config, rng=np.random.default_rng(11))
    s.set_model(other, vocab)
    s.seek(12)
    assert s.stepper.version == version
    np.testing.assert_array_equal(s.records(11, 12).gate("c", 0)[0], other.trace(vocab.encode(s.text)).gate("c", 0)[11])


def test_gradient_flow_of_the_last_known_characters(session, model, vocab):
    s = session
    flow = s.gradient_flow(max_steps=20)
    ids = np.array([vocab.index(ch) for ch in TEXT[-21:]])
    expected = gradient_flow(model, ids[:-1], ids[1:])
    np.testing.assert_array_equal(flow.dh, expected.dh)
    assert flow.dh.shape == (2, 20, model.config.hidden_size)
    s.set_text(TEXT[:1])
    assert s.gradient_flow() is None  # fewer than two characters


def test_the_session_module_does_not_import_pyqtgraph():
    code = "import sys, lstmviz.session; print('pyqtgraph' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.strip() == "False"


def test_a_long_text_is_read_in_the_background(session, qtbot, tmp_path, monkeypatch):
    """Above threads.BACKGROUND_BYTES ``open_text`` returns at once and shows the text when read
    (unknown characters dropped as ``load_text`` drops them); a bad file is refused through
    ``error`` and a cancelled read changes nothing."""
    monkeypatch.setattr(threads, "BACKGROUND_BYTES", 10)
    s = session
    path = tmp_path / "long.txt"
    path.write_text("€" + TEXT * 3, encoding="utf-8")
    opened, errors = [], []
    s.text_opened.connect(opened.append)
    s.open_failed.connect(errors.append)
    assert s.open_text(path) is False and s.opening and s.text == TEXT
    qtbot.waitUntil(lambda: not s.opening, timeout=20000)
    assert s.text == TEXT * 3 and opened == [str(path)] and s.text_path == str(path) and not errors
    assert np.array_equal(s.stepper.inputs, s.vocab.encode(TEXT * 3))

    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert s.open_text(binary) is False
    qtbot.waitUntil(lambda: not s.opening, timeout=20000)
    assert s.text == TEXT * 3 and len(errors) == 1 and "binary" in errors[0]

    short = tmp_path / "short.txt"
    short.write_text(TEXT[:20], encoding="utf-8")
    assert s.open_text(short) is False
    s.cancel_open()
    threads.stop_all()  # the reader ends; what it read is dropped
    assert not s.opening and s.text == TEXT * 3 and opened == [str(path)]
    monkeypatch.setattr(threads, "BACKGROUND_BYTES", 1 << 20)
    assert s.open_text(short) is True and s.text == TEXT[:20]


@pytest.fixture
def gated_pass(monkeypatch):
    """``Stepper.next_checkpoints`` counting the blocks computed on the GUI thread, and holding
    the pass worker before its first block until ``gate`` is set (set again at teardown)."""
    import threading

    from engine.stepper import Stepper

    gate, on_gui = threading.Event(), []
    compute = Stepper.next_checkpoints

    def counted(self, j, n, state=None, cells=None):
        if n > 0:
            if threading.current_thread() is threading.main_thread():
                on_gui.append(j)
            else:
                gate.wait()
        return compute(self, j, n, state, cells)

    monkeypatch.setattr(Stepper, "next_checkpoints", counted)
    yield gate, on_gui
    gate.set()
    threads.stop_all()


def test_a_far_seek_during_the_first_pass_waits_for_it_and_lands_exactly(session, qtbot, model, vocab, gated_pass):
    """Seeking to the end while the pass runs computes no checkpoint on the GUI thread: the cursor
    stays (``target`` shows where it goes) until the pass gets there, then lands on the end;
    Home replaces the wait at once."""
    gate, on_gui = gated_pass
    s, text = session, TEXT * 300  # 21,000 steps, 82 blocks
    s.set_text(text)
    assert s.passing and not s.stepper.done
    start, messages = s.t, []
    s.message.connect(messages.append)
    s.seek(s.steps)
    assert s.waiting and s.target == s.steps and s.t == start and "waiting for the first pass" in messages[-1]
    s.seek(0)  # Home: at once, and the wait is gone
    assert s.t == 0 and not s.waiting and s.target == 0
    s.seek(s.steps - 5)
    assert s.waiting
    gate.set()
    qtbot.waitUntil(lambda: not s.waiting, timeout=20000)
    assert s.t == s.steps - 5 and on_gui == []
    reference = model.trace(vocab.encode(text)).gate("c", 1)  # (T, H)
    np.testing.assert_allclose(s.records(s.t - 40, s.t).gate("c", 1), reference[s.t - 40:s.t], rtol=0, atol=1e-12)


def test_opening_or_editing_a_text_runs_no_long_forward_on_the_gui_thread(session, qtbot, model, vocab, monkeypatch):
    """``set_model`` / ``set_text`` trace no step on the GUI thread for the colour levels: the
    pass worker computes them from the first LEVEL_STEPS_MAX steps and ``levels_changed``
    announces them; an edit after those steps keeps them, tracing at most one block."""
    import threading

    import lstmviz.session as session_module

    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 500)
    on_gui = []
    trace = SequenceModel.trace

    def counted(self, inputs, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            on_gui.append(len(inputs))
        return trace(self, inputs, *args, **kwargs)

    monkeypatch.setattr(SequenceModel, "trace", counted)
    s, text = session, TEXT * 300
    announced = []
    s.levels_changed.connect(lambda: announced.append(True))
    s.set_model(model, vocab)
    s.set_text(text)
    assert all(n <= 1 for n in on_gui)  # only the Stepper's one-step shape probe
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    assert announced and all(n <= 1 for n in on_gui)
    whole = trace(model, vocab.encode(text[:500]))  # the reference, uncounted
    expected = [gate_levels("c", whole.gate("c", k)) for k in range(2)]
    assert s.cell_levels == expected != [gate_levels("c")] * 2
    announced.clear()
    s.set_text(text[:-10] + "x" * 10)  # beyond the levels' sample: no new levels
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    assert announced == [] and s.cell_levels == expected
    assert all(n <= CHECKPOINT_EVERY for n in on_gui)  # at most the block at the cursor, on demand


def test_the_first_pass_computes_each_step_once_and_takes_the_levels_from_it(session, qtbot, model, vocab,
                                                                             monkeypatch):
    """The pass worker's forward runs each step once (the levels' sample is not traced a second
    time), and the cell-state levels it derives equal those of ``model.trace`` of the sample; an
    edit inside the sample recomputes the levels from the steps before the pass's first block
    and the pass's own blocks."""
    import threading

    import engine.analysis.stream as stream
    import lstmviz.session as session_module

    qtbot.waitUntil(lambda: not session.passing, timeout=10000)
    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 500)  # ends inside the second block
    run, traced = stream._lstm_states, []

    def counted(prep, xp, *args):
        if threading.current_thread() is not threading.main_thread():
            traced.append(xp.shape[0])
        return run(prep, xp, *args)

    monkeypatch.setattr(stream, "_lstm_states", counted)
    monkeypatch.setattr(SequenceModel, "trace", lambda *a, **k: pytest.fail("the pass traced records"))
    s, text, every = session, TEXT * 300, CHECKPOINT_EVERY
    s.set_text(text)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    blocks = len(text) // every
    assert sum(traced) == 2 * blocks * every  # each whole block once per layer, nothing more
    monkeypatch.undo()
    whole = model.trace(vocab.encode(text[:500]))  # the levels from an independent sequence forward
    assert s.cell_levels == [gate_levels("c", whole.gate("c", k)) for k in range(2)]

    monkeypatch.setattr(session_module, "LEVEL_STEPS_MAX", 500)
    monkeypatch.setattr(stream, "_lstm_states", counted)
    traced.clear()
    edited = text[:300] + "x" + text[301:]  # inside the sample: the pass restarts from checkpoint 1
    s.set_text(edited)
    qtbot.waitUntil(lambda: not s.passing, timeout=20000)
    assert sum(traced) == 2 * (every + (blocks - 1) * every)  # block 0 for the levels, then the pass
    monkeypatch.undo()
    whole = model.trace(vocab.encode(edited[:500]))
    assert s.cell_levels == [gate_levels("c", whole.gate("c", k)) for k in range(2)]


def test_a_job_started_by_a_new_text_sees_the_pass_filling_in_the_checkpoints(session, qtbot):
    """``text_changed`` is emitted once the pass runs: an analysis job it starts waits for the
    pass's checkpoints instead of running the whole text through the model a second time."""
    s, seen = session, []
    qtbot.waitUntil(lambda: not s.passing, timeout=10000)
    s.text_changed.connect(lambda: seen.append((s.passing, s.stepper.filling)))
    s.model_changed.connect(lambda: seen.append((s.passing, s.stepper.filling)))
    s.set_text(TEXT * 300)
    s.set_model(s.model, s.vocab)
    assert seen == [(True, True)] * 3
