"""What a live refresh (new weights, same model shape) costs the window: the loss strip starts
one job per new model (not one per signal), and its job bar appearing and going lays nothing
out again (the strip's plot keeps its size); a live refresh starts no first pass beyond the
steps the training thread traced."""

import numpy as np
from PySide6 import QtWidgets

from engine import ModelConfig, SequenceModel

from .helpers import ResizeCounter, shown


def _weights(vocab, seed):
    cfg = ModelConfig(input_size=len(vocab), output_size=len(vocab), hidden_size=12, num_layers=2, dtype="float64")
    return SequenceModel(cfg, rng=np.random.default_rng(seed))


def test_new_weights_start_one_strip_job_and_keep_its_size(qtbot, window, vocab, monkeypatch):
    panel = shown(window, "strip")
    qtbot.waitUntil(lambda: not panel.runner.busy, timeout=10_000)
    runs = []
    run = type(panel.runner).run
    monkeypatch.setattr(panel.runner, "run", lambda fn, restart=True: runs.append(restart) or run(panel.runner, fn, restart))
    counter = ResizeCounter()
    panel.view.installEventFilter(counter)
    for seed in (21, 22):
        window.session.set_model(_weights(vocab, seed), vocab)
        QtWidgets.QApplication.processEvents()
        qtbot.waitUntil(lambda: not panel.runner.busy, timeout=10_000)
        QtWidgets.QApplication.processEvents()
    assert runs == [False, False]  # one per model; new weights never cancel a running job
    assert counter.count == 0
    assert panel.losses is not None and panel.losses.shape == (window.session.steps,)


def test_a_live_refresh_starts_no_first_pass_beyond_the_trace(qtbot, window, vocab):
    from lstmviz.session import LEVEL_STEPS_MAX

    from .conftest import TEXT

    session = window.session
    session.set_text(TEXT * (LEVEL_STEPS_MAX // len(TEXT) + 20))  # longer than the trace training hands over
    qtbot.waitUntil(lambda: not session.passing, timeout=20_000)
    model = _weights(vocab, 31)
    session.set_model(model, vocab, model.trace(session.trace_inputs()), first_pass=False)
    assert not session.passing
    assert session.stepper.computed == LEVEL_STEPS_MAX  # the traced steps only
    session.seek(session.steps)  # beyond them: computed when moved to
    qtbot.waitUntil(lambda: session.t == session.steps, timeout=20_000)
    expected = model.trace(session.stepper.inputs)  # (T, ...) the whole text, independently
    np.testing.assert_allclose(session.records(session.steps - 5, session.steps).gate("h", 1),
                               expected.gate("h", 1)[-5:], rtol=0, atol=1e-12)
    session.set_model(model, vocab, model.trace(session.trace_inputs()))  # training paused or over
    assert session.passing
