"""The learning docks installed in the real main window: training updates the viewer, closing
while training, divergence, checkpoint save/resume, sampling and "Step through".

Uses tests/app/conftest.py's ``window`` (closed by its fixture) and ``errors`` (recorded error
dialogs). Waits only on GUI-thread signals (controller relays, panel signals) or waitUntil.
"""

import threading
import time

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtCore import QTimer

from engine.checkpoint import load_checkpoint
from engine.data import TextCorpus
from engine.model import SequenceModel
from engine.stepper import CHECKPOINT_EVERY
from engine.train import LONG_RUN_S, TimeEstimate, TrainConfig, Trainer, estimate_time
from lstmviz import dialogs, threads
from lstmviz.learn import training_panel as training_panel_module

from . import helpers

WORDS = ["the ", "cat ", "sat ", "on ", "a ", "mat. "]
SMALL = dict(cell="lstm", hidden_size=16, num_layers=1, dropout=0.0, seq_len=16, batch_size=4, optimizer="adam",
             lr=0.01, momentum=0.0, clip_norm=5.0, clip_value=None, seed=3, steps=300, eval_every=50,
             batching="sequential")


@pytest.fixture
def training_text():
    rng = np.random.Generator(np.random.PCG64(7))
    return "".join(rng.choice(WORDS) for _ in range(400))


@pytest.fixture
def learn(window, training_text):
    panels = helpers.learning(window)
    panels.model_panel.set_values(SMALL)
    assert panels.data_panel.use_text(training_text, "test corpus")
    assert panels.model_panel.valid, panels.model_panel.message.text()
    yield panels
    running = [panels.controller.thread, panels.sampling_panel._thread]
    threads.stop_all()
    assert panels.controller.thread is None and not panels.sampling_panel.busy
    assert all(t is None or threads.is_finished(t) for t in running)


def test_docks_are_named_and_added(window, learn):
    from PySide6.QtWidgets import QDockWidget

    names = {d.objectName() for d in window.findChildren(QDockWidget)}
    assert {"dock_training", "dock_data", "dock_model", "dock_sampling", "dock_loss"} <= names


def test_training_updates_the_viewer(qtbot, window, learn, errors, monkeypatch):
    session = window.session
    models, traces, gui_traces = [], [], []
    learn.controller.weights_updated.connect(lambda model, trace: (models.append(model), traces.append(trace)))
    trace = SequenceModel.trace

    def counted(model, inputs, *args, **kwargs):  # GUI-thread forwards longer than one stepper block
        if threading.current_thread() is threading.main_thread() and np.asarray(inputs).shape[0] > CHECKPOINT_EVERY:
            gui_traces.append(np.asarray(inputs).shape[0])
        return trace(model, inputs, *args, **kwargs)

    monkeypatch.setattr(SequenceModel, "trace", counted)
    at_start = []  # GUI-thread traces once the run's fresh model and preview text are shown
    learn.training_panel.trainer_started.connect(lambda _trainer: at_start.append(len(gui_traces)))
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        learn.training_panel.train_button.click()
    assert len(gui_traces) == at_start[0]  # every refresh during the run used the worker's trace
    assert traces and all(trace is not None for trace in traces)
    assert np.array_equal(traces[-1].inputs, session.trace_inputs())
    worker_trace, fresh = traces[-1], models[-1].trace(session.trace_inputs())
    for name in ("f", "i", "o", "g", "c", "h"):  # the worker traced under exactly those weights
        assert np.array_equal(worker_trace.gate(name), fresh.gate(name))
    trainer = learn.controller.trainer
    assert trainer.step == 300 and errors == []
    assert session.vocab == trainer.corpus.vocab and session.text  # the viewer shows training text
    for name, value in trainer.model.params.items():  # the final weights are in the viewer
        assert np.array_equal(session.model.params[name], value)
        assert not np.shares_memory(session.model.params[name], value)
    assert models and models[-1] is session.model
    session.seek(session.steps)
    qtbot.waitUntil(lambda: session.t == len(session.text), timeout=30_000)
    expected = session.model.trace(session.vocab.encode(session.text))
    np.testing.assert_allclose(session.trace().gate("f"), expected.gate("f"), atol=1e-6)
    qtbot.waitUntil(lambda: learn.loss_plot.plotted_point_count() == 300 + 300 + 6, timeout=5000)
    assert learn.training_panel.progress.value() == 300
    assert session.model_step == 300


def test_without_live_heatmaps_the_viewer_catches_up_at_the_end(qtbot, window, learn, errors):
    session = window.session
    learn.training_panel.live_view.setChecked(False)
    assert window.settings.value("training/live_heatmaps", type=bool) is False  # remembered
    changes = []
    session.model_changed.connect(lambda: changes.append(session.model))
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        learn.training_panel.train_button.click()
    trainer = learn.controller.trainer
    assert trainer.step == 300 and errors == []
    assert len(changes) == 2  # the fresh model when the run started, the final weights at its end
    for name, value in trainer.model.params.items():
        assert np.array_equal(session.model.params[name], value)
    learn.training_panel.live_view.setChecked(True)
    assert learn.viewer_sync.live


def test_opening_another_model_while_training_keeps_training(qtbot, window, learn, errors, model_path):
    """The viewer's ids then belong to another vocabulary: the worker cannot trace them, and the
    run goes on (the next weights bring the viewer back to the model being trained)."""
    session = window.session
    learn.model_panel.set_values({**SMALL, "steps": 400})
    with qtbot.waitSignal(learn.training_panel.estimate_ended, timeout=60_000) as started:
        learn.training_panel.train_button.click()
    assert started.args == [True]
    qtbot.waitUntil(lambda: learn.controller.trainer.step >= 20, timeout=30_000)
    session.load_model(model_path)  # a different model (and vocabulary) in the viewer, mid-run
    learn.controller.set_viewer_inputs(np.array([0, 10_000]))  # ids no model of the run can read
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        pass
    assert learn.controller.trainer.step == 400 and errors == []
    for name, value in learn.controller.trainer.model.params.items():
        assert np.array_equal(session.model.params[name], value)


def test_close_while_training_cancel_then_discard(qtbot, window, learn, monkeypatch):
    answers = iter(["cancel", "discard"])
    monkeypatch.setattr(dialogs, "ask_save_discard_cancel", lambda parent: next(answers))
    learn.model_panel.set_values({"steps": 1_000_000})
    assert helpers.train(qtbot, learn.training_panel)
    qtbot.waitUntil(lambda: learn.controller.trainer.step >= 5, timeout=30_000)
    thread = learn.controller.thread
    assert not window.close()  # cancelled: the window stays and training goes on
    assert window.isVisible() and learn.controller.state == "running" and thread.isRunning()
    assert window.close()  # discarded: training stops and the thread is joined
    assert threads.is_finished(thread) and learn.controller.thread is None and learn.controller.state == "idle"
    assert not window.isVisible()


def test_a_cancelled_close_leaves_the_lessons_running(qtbot, window, learn, monkeypatch):
    """The learning panels' guard is asked first; the lessons only stop and save their settings
    once the window really closes."""
    lessons = helpers.lessons(window)  # its close hook runs after the learning panels' guard
    stopped = []
    monkeypatch.setattr(lessons, "shutdown", lambda: stopped.append("lessons"))
    answers = iter(["cancel", "discard"])
    monkeypatch.setattr(dialogs, "ask_save_discard_cancel", lambda parent: next(answers))
    learn.model_panel.set_values({"steps": 1_000_000})
    assert helpers.train(qtbot, learn.training_panel)
    qtbot.waitUntil(lambda: learn.controller.trainer.step >= 2, timeout=30_000)
    assert not window.close()
    assert stopped == [] and learn.controller.state == "running"
    assert window.close()
    assert stopped == ["lessons"] and learn.controller.state == "idle"


def test_close_with_a_failed_save_keeps_the_window_and_the_model(qtbot, window, learn, monkeypatch, tmp_path,
                                                                  errors):
    """Saving into a folder that does not exist: an error dialog, the window stays open, and the
    stopped run's model can still be saved elsewhere."""
    paths = iter([tmp_path / "missing" / "trained.npz", tmp_path / "trained.npz"])
    monkeypatch.setattr(dialogs, "ask_save_discard_cancel", lambda parent: "save")
    monkeypatch.setattr(dialogs, "ask_save_path", lambda parent, title, file_filter: str(next(paths)))
    learn.model_panel.set_values({"steps": 1_000_000})
    assert helpers.train(qtbot, learn.training_panel)
    qtbot.waitUntil(lambda: learn.controller.trainer.step >= 5, timeout=30_000)
    assert not window.close()
    assert window.isVisible() and len(errors) == 1 and "missing" in errors[0][1]
    stopped = learn.controller.trainer.step
    assert learn.training_panel.save()
    assert load_checkpoint(tmp_path / "trained.npz").step == stopped


def test_close_with_save_then_resume_exactly(qtbot, window, learn, monkeypatch, tmp_path, training_text, errors):
    path = tmp_path / "trained.npz"
    monkeypatch.setattr(dialogs, "ask_save_discard_cancel", lambda parent: "save")
    monkeypatch.setattr(dialogs, "ask_save_path", lambda parent, title, file_filter: str(path))
    learn.model_panel.set_values({"steps": 1_000_000})
    assert helpers.train(qtbot, learn.training_panel)
    qtbot.waitUntil(lambda: learn.controller.trainer.step >= 20, timeout=30_000)
    assert window.close()
    stopped = learn.controller.trainer.step
    ckpt = load_checkpoint(path)
    assert ckpt.step == stopped and ckpt.optimizer_state["name"] == "adam" and ckpt.train_state is not None

    learn.model_panel.set_values({"steps": stopped + 40})
    monkeypatch.setattr(dialogs, "ask_open_path", lambda parent, title, file_filter: str(path))
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        assert learn.training_panel.resume_from_checkpoint()
    resumed = learn.controller.trainer
    assert resumed.step == stopped + 40 and errors == []

    # reference: the same settings trained without interruption, headless
    corpus = TextCorpus(training_text, val_fraction=0.1)
    model_config, form_config = learn.model_panel.build(corpus)  # the form's settings (a preset's schedule too)
    config = TrainConfig.from_dict({**form_config.to_dict(), "steps": stopped + 40})
    reference = Trainer(SequenceModel(model_config, rng=np.random.Generator(np.random.PCG64(SMALL["seed"]))),
                        corpus, config)
    for _ in reference.run():
        pass
    for name, value in reference.model.params.items():
        assert np.array_equal(resumed.model.params[name], value), name


def test_divergence_stops_with_finite_weights_in_the_viewer(qtbot, window, learn, monkeypatch, errors):
    real = SequenceModel.loss_and_grads
    calls = {"n": 0}

    def nan_at_30(self, *args, **kwargs):
        calls["n"] += 1
        loss, grads, state = real(self, *args, **kwargs)
        return (float("nan") if calls["n"] == 30 else loss), grads, state

    monkeypatch.setattr(SequenceModel, "loss_and_grads", nan_at_30)
    # the time estimate's scratch steps would be counted too: a fixed estimate instead
    monkeypatch.setattr(training_panel_module, "estimate_time", lambda trainer, stop: TimeEstimate(300, 0.01, 6, 0.01))
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        assert helpers.train(qtbot, learn.training_panel)
    trainer = learn.controller.trainer
    assert trainer.step == 29
    assert len(errors) == 1 and errors[0][0] == "Training stopped" and "diverged at step 30" in errors[0][1]
    for name, value in trainer.model.params.items():
        assert np.all(np.isfinite(value))
        assert np.array_equal(window.session.model.params[name], value)


def generate(qtbot, panel):
    with qtbot.waitSignal(panel.generated, timeout=60_000) as blocker:
        assert panel.generate()
    return blocker.args[0]


def test_sampling_is_reproducible_and_steps_through(qtbot, window, learn, errors):
    panel = learn.sampling_panel
    session = window.session
    panel.prime.setText("He said")
    panel.length.setValue(60)
    panel.seed.setValue(11)
    first = generate(qtbot, panel)
    second = generate(qtbot, panel)
    assert first.text == second.text and first.text.startswith("He said") and len(first.generated) == 60
    assert panel.output.toPlainText() == first.text
    panel.seed.setValue(12)
    assert generate(qtbot, panel).text != first.text
    panel.greedy.setChecked(True)
    assert generate(qtbot, panel).text == generate(qtbot, panel).text

    panel.step_button.click()
    result = panel.result
    assert session.text == result.text and session.t == 0
    session.seek(session.steps)
    qtbot.waitUntil(lambda: session.t == len(result.text), timeout=30_000)
    expected = session.model.trace(session.vocab.encode(result.text))
    shown = session.trace()
    for name in ("i", "f", "g", "o", "c", "h"):
        np.testing.assert_allclose(shown.gate(name, 1), expected.gate(name, 1), atol=1e-10)
        np.testing.assert_allclose(result.trace.gate(name, 1), expected.gate(name, 1), atol=1e-10)
    assert errors == []


def test_sampling_refuses_unknown_prime(qtbot, window, learn, errors):
    panel = learn.sampling_panel
    panel.prime.setText("\u00e9\u00e9")
    with qtbot.waitSignal(panel.generation_failed, timeout=30_000):
        assert panel.generate()
    assert errors and "not in the vocabulary" in errors[-1][1]
    assert panel.result is None and not panel.step_button.isEnabled()


CLOSE_WHILE_TRAINING = r"""
import sys
import numpy as np
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from lstmviz.app import create_window
from lstmviz.learn import LearningService
from lstmviz import dialogs
from lstmviz.session import Session

app = QApplication(sys.argv[:1])
window = create_window(Session(), QSettings(sys.argv[1], QSettings.IniFormat))
panels = window.panel("training").findChild(LearningService)
dialogs.ask_save_discard_cancel = lambda parent: "discard"
dialogs.ask_confirm = lambda *args, **kwargs: True  # "Long training run": a million steps
panels.model_panel.set_values(dict(hidden_size=16, num_layers=1, seq_len=16, batch_size=4, steps=1_000_000))
text = "".join(np.random.Generator(np.random.PCG64(0)).choice(["the ", "cat ", "sat "], 300))
assert panels.data_panel.use_text(text, "test")
window.show()

def after_some_steps(update):
    if update.progress.step >= 10 and window.isVisible():
        window.close()
        QTimer.singleShot(0, app.quit)

panels.controller.progressed.connect(after_some_steps)
panels.training_panel.train()
code = app.exec()
assert panels.controller.thread is None and panels.controller.state == "idle"
print("closed at step", panels.controller.trainer.step)
sys.exit(code)
"""


@pytest.mark.slow  # a subprocess
def test_closing_the_app_while_training_exits_cleanly(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", CLOSE_WHILE_TRAINING, str(tmp_path / "s.ini")], env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "closed at step" in done.stdout
    assert "QThread" not in done.stderr and "Destroyed while thread" not in done.stderr


def test_train_shows_the_estimated_time_and_asks_before_a_long_run(qtbot, window, learn, errors, confirmations):
    panel = learn.training_panel
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        assert panel.train()
    # SMALL: 300 steps, a validation pass every 50 of them -> 6 evaluations; a few seconds in all
    assert "300 steps x" in panel.estimate_label.text() and "6 evaluations x" in panel.estimate_label.text()
    assert not any(title == "Long training run" for title, _, _ in confirmations)
    first = learn.controller.trainer

    learn.model_panel.set_values({"steps": 2_000_000})  # at >= 0.15 ms a step: over 5 minutes
    assert learn.model_panel.valid, learn.model_panel.message.text()
    confirmations.answer = False
    assert not helpers.train(qtbot, panel)
    title, message, _ = confirmations[-1]
    assert title == "Long training run" and "2000000 steps x" in message
    assert "2000000 steps x" in panel.estimate_label.text()
    assert learn.controller.state == "idle" and learn.controller.trainer is first  # nothing started

    confirmations.answer = True
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        assert panel.train()
        qtbot.waitUntil(lambda: learn.controller.trainer is not first and learn.controller.trainer.step >= 1,
                        timeout=30_000)
        learn.controller.stop()
    assert learn.controller.trainer.config.steps == 2_000_000 and errors == []


def held_estimate(monkeypatch, until=None):
    """Replace the panel's ``estimate_time`` by the real one that first holds (at most 30 s) in
    the worker until ``until`` (a ``threading.Event``) or the estimate's own stop event is set.
    Returns a record: ``entered`` (set once it holds), ``threads`` (the thread it ran in),
    ``released`` (what ended the hold: "stop", "until" or "timeout")."""
    record = type("Held", (), {})()
    record.entered, record.threads, record.released = threading.Event(), [], []

    def held(trainer, stop):
        record.threads.append(threading.current_thread())
        record.entered.set()
        deadline = time.monotonic() + 30
        while not stop.is_set() and not (until is not None and until.is_set()) and time.monotonic() < deadline:
            stop.wait(0.01)  # the worker's hold (the GUI thread never waits on it)
        record.released.append("stop" if stop.is_set() else "until" if until is not None and until.is_set()
                               else "timeout")
        return estimate_time(trainer, stop=stop)

    monkeypatch.setattr(training_panel_module, "estimate_time", held)
    return record



def test_the_estimate_runs_in_a_worker_while_the_gui_thread_keeps_running(qtbot, learn, errors, monkeypatch):
    """The estimate holds in the worker until a QTimer fires on the GUI thread: were it run on
    the GUI thread, the timer could never fire. Meanwhile the panel says so, Train is disabled
    and Stop reads Cancel; then the run starts with the estimate shown."""
    panel = learn.training_panel
    fired = threading.Event()
    held = held_estimate(monkeypatch, fired)
    with qtbot.waitSignal(panel.estimate_ended, timeout=60_000) as ended:
        panel.train_button.click()
        qtbot.waitUntil(held.entered.is_set, timeout=30_000)
        assert panel.estimate_label.text() == "Estimating the run's time…"
        assert not panel.train_button.isEnabled() and not panel.load_button.isEnabled()
        assert panel.stop_button.isEnabled() and panel.stop_button.text() == "Cancel"
        assert not panel.train()  # one estimate at a time
        QTimer.singleShot(10, fired.set)
    assert ended.args == [True] and held.released == ["until"]
    assert held.threads[0] is not threading.main_thread()
    assert learn.controller.state in ("running", "idle") and learn.controller.trainer.config.steps == 300
    assert panel.estimate_label.text().startswith("Estimated time ") and "300 steps x" in panel.estimate_label.text()
    assert panel.stop_button.text() == "Stop"
    assert errors == []


def test_cancel_during_the_estimate_starts_nothing(qtbot, learn, errors, monkeypatch, confirmations):
    panel = learn.training_panel
    held = held_estimate(monkeypatch)
    started = []
    panel.trainer_started.connect(started.append)
    with qtbot.waitSignal(panel.estimate_ended, timeout=60_000) as ended:
        assert panel.train()
        qtbot.waitUntil(held.entered.is_set, timeout=30_000)
        qtbot.mouseClick(panel.stop_button, QtCore.Qt.LeftButton)
        assert not panel.stop_button.isEnabled()  # cancelled once
    assert ended.args == [False] and held.released == ["stop"]
    assert started == [] and learn.controller.trainer is None and learn.controller.state == "idle"
    assert list(confirmations) == [] and errors == []
    qtbot.waitUntil(lambda: not threads.live_threads(), timeout=30_000)  # the worker's thread ends too
    assert panel.estimate_label.text() == "Estimate cancelled; nothing was started."
    assert panel.train_button.isEnabled() and panel.stop_button.text() == "Stop"
    assert not panel.stop_button.isEnabled()


def test_a_long_estimate_asks_first_and_declining_starts_nothing(qtbot, learn, errors, monkeypatch, confirmations):
    long_run = TimeEstimate(steps=300, step_s=(LONG_RUN_S + 60) / 300, evaluations=6, eval_s=0.5)  # 6:03 in all
    monkeypatch.setattr(training_panel_module, "estimate_time", lambda trainer, stop: long_run)
    panel = learn.training_panel
    confirmations.answer = False
    assert not helpers.train(qtbot, panel)
    [(title, message, details)] = confirmations
    assert title == "Long training run"
    assert message == "This run will take a while. Estimated time 6:03 (300 steps x 1200 ms + 6 evaluations x 0.50 s)."
    assert details.startswith("Over 5 minutes")
    assert learn.controller.trainer is None and learn.controller.state == "idle" and errors == []

    confirmations.answer = True
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        assert helpers.train(qtbot, panel)
    # then, as the window shows an opened model, whether to replace it
    assert [title for title, _, _ in confirmations] == ["Long training run", "Long training run", "Train a new model"]
    assert learn.controller.trainer.step == 300 and errors == []


def test_closing_the_window_during_the_estimate_leaks_no_thread(qtbot, window, learn, errors, monkeypatch):
    panel = learn.training_panel
    held = held_estimate(monkeypatch)
    started = []
    panel.trainer_started.connect(started.append)
    ends = []
    panel.estimate_ended.connect(ends.append)
    assert panel.train()
    qtbot.waitUntil(held.entered.is_set, timeout=30_000)
    thread = threads.live_threads()[-1]
    assert thread.objectName() == "lstmviz-estimate"
    assert window.close()
    assert held.released == ["stop"] and threads.is_finished(thread) and not threads.live_threads()
    assert ends == [False] and started == [] and learn.controller.state == "idle" and errors == []


def test_an_estimate_that_fails_shows_why_and_starts_nothing(qtbot, learn, errors, monkeypatch):
    def fails(trainer, stop):
        raise ValueError("not enough memory for the scratch copy")

    monkeypatch.setattr(training_panel_module, "estimate_time", fails)
    panel = learn.training_panel
    assert not helpers.train(qtbot, panel)
    assert errors == [("Cannot train", "not enough memory for the scratch copy")]
    assert learn.controller.trainer is None and panel.estimate_label.text() == ""
    assert panel.train_button.isEnabled()


def test_the_run_starts_when_the_worker_ends_while_a_question_is_open(qtbot, learn, errors, monkeypatch):
    """A real question runs a nested event loop, in which the estimate's worker ends: the answer
    still decides, and ``estimate_ended`` comes once, after it."""
    long_run = TimeEstimate(steps=300, step_s=LONG_RUN_S, evaluations=6, eval_s=0.5)
    monkeypatch.setattr(training_panel_module, "estimate_time", lambda trainer, stop: long_run)

    def ask_while_the_worker_ends(parent, title, message, details="", confirm="Replace"):
        qtbot.waitUntil(lambda: not threads.live_threads(), timeout=30_000)
        return True

    monkeypatch.setattr(dialogs, "ask_confirm", ask_while_the_worker_ends)
    panel = learn.training_panel
    ends = []
    panel.estimate_ended.connect(ends.append)
    with qtbot.waitSignal(learn.controller.finished_training, timeout=60_000):
        assert helpers.train(qtbot, panel)
        learn.controller.stop()
    assert ends == [True] and errors == []
