"""TrainingController + TrainingWorker: a real QThread training a tiny model.

Waits only on the controller's GUI-thread relay signals (or qtbot.waitUntil), never on worker
signals and never by sleeping.
"""

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QThread

from engine.data import TextCorpus
from engine.model import ModelConfig, SequenceModel
from engine.train import TrainConfig, Trainer
from lstmviz import threads
from lstmviz.training import PROGRESS_INTERVAL_S, STATES, WEIGHTS_INTERVAL_S, TrainingController

WORDS = ["the ", "cat ", "sat ", "on ", "a ", "mat. "]


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.Generator(np.random.PCG64(7))
    return TextCorpus("".join(rng.choice(WORDS) for _ in range(400)), val_fraction=0.1)


def make_trainer(corpus, steps=300, **overrides):
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, hidden_size=16), rng=np.random.Generator(np.random.PCG64(0)))
    config = TrainConfig(**{**dict(seq_len=16, batch_size=4, steps=steps, lr=1e-2, eval_every=50), **overrides})
    return Trainer(model, corpus, config)


def unigram_entropy(ids):
    p = np.bincount(ids) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@pytest.fixture
def controller(qtbot):
    ctrl = TrainingController()
    record = {"updates": [], "states": [], "models": [], "failed": [], "finished": [], "threads": []}
    main = threading.main_thread()

    def on_update(update):
        record["threads"].append(threading.current_thread() is main)
        record["updates"].append(update)

    ctrl.progressed.connect(on_update)
    ctrl.state_changed.connect(record["states"].append)
    ctrl.weights_updated.connect(lambda model, _trace: record["models"].append(model))
    ctrl.failed.connect(record["failed"].append)
    ctrl.finished_training.connect(record["finished"].append)
    ctrl.record = record
    yield ctrl
    thread = ctrl.thread
    ctrl.shutdown()
    assert ctrl.thread is None and ctrl.state == "idle"
    if thread is not None:
        assert threads.is_finished(thread)


def all_steps(updates):
    return np.concatenate([u.steps for u in updates])


def test_train_pause_resume_stop_with_falling_loss(qtbot, controller, corpus):
    trainer = make_trainer(corpus, steps=1_000_000)
    rec = controller.record
    controller.start(trainer)
    qtbot.waitUntil(lambda: bool(rec["updates"]) and rec["updates"][-1].progress.step >= 200, timeout=60_000)

    with qtbot.waitSignal(controller.state_changed, timeout=1000):
        controller.pause()
    assert controller.state == "paused"
    paused_at = trainer.step  # the worker completes at most the step it is in, then holds
    qtbot.waitUntil(lambda: rec["updates"][-1].paused, timeout=10_000)
    frozen = rec["updates"][-1].progress.step
    assert paused_at <= frozen <= paused_at + 1 and trainer.step == frozen
    assert rec["models"][-1].params["head.W"].tobytes() == trainer.model.params["head.W"].tobytes()
    qtbot.wait(300)  # while the event loop runs, a paused run must not advance
    assert trainer.step == frozen

    controller.resume()
    assert controller.state == "running"
    qtbot.waitUntil(lambda: rec["updates"][-1].progress.step >= frozen + 100, timeout=60_000)

    thread = controller.thread
    with qtbot.waitSignal(controller.finished_training, timeout=10_000) as blocker:
        controller.stop()
    assert threads.is_finished(thread) and controller.thread is None
    assert rec["states"] == ["running", "paused", "running", "stopping", "idle"]
    last = blocker.args[0]
    assert last is rec["updates"][-1] and last.final and last.progress.done
    assert last.progress.step == trainer.step

    steps = all_steps(rec["updates"])
    assert np.array_equal(steps, np.arange(1, trainer.step + 1))  # every step reaches the GUI once
    losses = np.concatenate([u.train_loss for u in rec["updates"]])
    assert losses[-50:].mean() < 0.6 * losses[:20].mean()
    assert losses[-50:].mean() < 0.5 * unigram_entropy(corpus.train_ids)
    assert all(rec["threads"])  # relays ran on the GUI thread
    final_model = rec["models"][-1]
    for name, value in trainer.model.params.items():  # final weights relayed, as copies
        assert np.array_equal(final_model.params[name], value)
        assert not np.shares_memory(final_model.params[name], value)


def test_run_to_completion_is_rate_limited_and_sends_copies(qtbot, controller, corpus):
    trainer = make_trainer(corpus, steps=300)
    rec = controller.record
    started = time.monotonic()
    with qtbot.waitSignal(controller.finished_training, timeout=60_000):
        controller.start(trainer)
    elapsed = time.monotonic() - started
    updates = rec["updates"]
    assert updates[-1].final and updates[-1].progress.step == 300
    assert len(updates) <= elapsed / PROGRESS_INTERVAL_S + 2  # <= 5 payloads per second, plus the final one
    assert np.array_equal(all_steps(updates), np.arange(1, 301))
    val_steps = np.concatenate([u.val_steps for u in updates])
    assert np.array_equal(val_steps, np.arange(50, 301, 50))
    with_params = [u for u in updates if u.params is not None]
    assert with_params[-1] is updates[-1] and len(with_params) <= elapsed / WEIGHTS_INTERVAL_S + 2
    for name, value in trainer.model.params.items():
        assert np.array_equal(updates[-1].params[name], value)
        assert not np.shares_memory(updates[-1].params[name], value)
    assert rec["failed"] == [] and controller.state == "idle"


def test_divergence_stops_with_last_finite_weights(qtbot, controller, corpus):
    trainer = make_trainer(corpus, steps=300, optimizer="sgd", lr=1e36, clip_norm=None)
    rec = controller.record
    with qtbot.waitSignal(controller.failed, timeout=60_000) as blocker:
        controller.start(trainer)
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=10_000)
    assert "diverged" in blocker.args[0]
    good_step = trainer.step
    assert 0 <= good_step < 300  # a runaway loss at step 2 goes back to step 0
    relayed = rec["models"][-1].params
    for name, value in trainer.model.params.items():
        assert np.all(np.isfinite(value))
        assert np.array_equal(relayed[name], value)
    assert rec["updates"][-1].progress.step == good_step


def test_exception_in_loop_is_reported(qtbot, controller, corpus, monkeypatch):
    trainer = make_trainer(corpus, steps=300)
    calls = {"n": 0}
    real = trainer.model.loss_and_grads

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer.model, "loss_and_grads", failing)
    with qtbot.waitSignal(controller.finished_training, timeout=30_000):
        controller.start(trainer)
    assert controller.record["failed"] == ["RuntimeError: boom"]
    assert controller.state == "idle"


def test_shutdown_while_running_joins_the_thread(qtbot, controller, corpus):
    trainer = make_trainer(corpus, steps=1_000_000)
    controller.start(trainer)
    with pytest.raises(RuntimeError):
        controller.start(trainer)
    qtbot.waitUntil(lambda: len(controller.record["updates"]) >= 2, timeout=30_000)
    thread = controller.thread
    assert isinstance(thread, QThread) and thread.isRunning()
    controller.shutdown()
    assert threads.is_finished(thread) and controller.thread is None
    assert controller.state == "idle" and controller.record["states"][-1] == "idle"
    assert controller.record["updates"][-1].final  # the final state was delivered by shutdown
    assert set(controller.record["states"]) <= set(STATES)


def test_viewer_trace_is_sent_with_weights_and_bad_viewer_inputs_never_stop_training(qtbot, controller, corpus):
    V = len(corpus.vocab)
    trainer = make_trainer(corpus, steps=60)
    controller.set_viewer_inputs(corpus.train_ids[:30])
    with qtbot.waitSignal(controller.finished_training, timeout=60_000) as blocker:
        controller.start(trainer)
    final = blocker.args[0]
    assert final.viewer_trace is not None and np.array_equal(final.viewer_trace.inputs, corpus.train_ids[:30])
    expected = SequenceModel(trainer.model.config, params=final.params).trace(corpus.train_ids[:30])
    assert np.array_equal(final.viewer_trace.gate("h"), expected.gate("h"))
    # e.g. the viewer switched to another model's text while this one trains: ids past V
    controller.set_viewer_inputs(np.array([0, V + 3, 1]))
    trainer = make_trainer(corpus, steps=60)
    with qtbot.waitSignal(controller.finished_training, timeout=60_000) as blocker:
        controller.start(trainer)
    assert trainer.step == 60 and controller.record["failed"] == []
    assert blocker.args[0].viewer_trace is None and blocker.args[0].params is not None
