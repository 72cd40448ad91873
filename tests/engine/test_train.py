"""Training loop: learning, determinism, exact resume, NaN safety, pause/stop, evaluation."""

import math
import threading

import numpy as np
import pytest

from engine.checkpoint import load_checkpoint
from engine.data import TextCorpus
from engine.errors import DataError
from engine.model import ModelConfig, SequenceModel
from engine.evaluation import evaluate
from engine.train import RUNAWAY_FACTOR, Progress, TrainConfig, Trainer, TrainingDiverged, estimate_time


def pattern_text(n_words=300, seed=0):
    """A repeating pattern with a little randomness: words drawn from a small set."""
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(["abcd ", "abce ", "xyz "], size=n_words))


@pytest.fixture(scope="module")
def corpus():
    return TextCorpus(pattern_text(), val_fraction=0.1)


def make_model(corpus, hidden=16, layers=1, dropout=0.0, seed=1, dtype="float32"):
    V = len(corpus.vocab)
    config = ModelConfig(V, V, hidden_size=hidden, num_layers=layers, dropout=dropout, dtype=dtype)
    return SequenceModel(config, rng=np.random.default_rng(seed))


def unigram_entropy(ids):
    p = np.bincount(ids) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def losses(progress):
    return [p.train_loss for p in progress if not p.done]


def test_loss_falls_well_below_unigram_entropy(corpus):
    config = TrainConfig(seq_len=16, batch_size=8, steps=300, lr=1e-2, eval_every=100)
    trainer = Trainer(make_model(corpus), corpus, config)
    progress = list(trainer.run())
    assert [p.step for p in progress] == list(range(1, 301)) + [300]
    assert progress[-1].done and not any(p.done for p in progress[:-1])
    evaluated = [p.step for p in progress[:-1] if p.val_loss is not None]
    assert evaluated == [100, 200, 300]
    final = progress[-1]
    h0 = unigram_entropy(corpus.train_ids)
    assert final.val_loss < 0.35 * h0, (final.val_loss, h0)
    assert final.val_bpc == pytest.approx(final.val_loss / math.log(2))
    assert {p.loss_unit for p in progress} == {"nats/char"}
    assert final.smooth_loss < 0.5 * h0
    assert final.val_loss == pytest.approx(evaluate(trainer.model, corpus.val_ids, 8), rel=1e-12)


def test_same_seed_same_losses_other_seed_differs(corpus):
    def run(seed):
        config = TrainConfig(seq_len=8, batch_size=4, steps=20, batching="random", seed=seed)
        return losses(Trainer(make_model(corpus, layers=2, dropout=0.2), corpus, config).run())

    first = run(3)
    assert first == run(3)
    assert first != run(4)


@pytest.mark.parametrize("batching, layers, dropout", [
    ("sequential", 1, 0.0),
    ("random", 1, 0.0),
    ("sequential", 2, 0.3),
])
def test_resume_from_checkpoint_is_bitwise_exact(corpus, tmp_path, batching, layers, dropout):
    N = 12
    config = TrainConfig(seq_len=8, batch_size=4, steps=2 * N, batching=batching, eval_every=5, seed=7)
    straight = Trainer(make_model(corpus, layers=layers, dropout=dropout), corpus, config)
    expected = losses(straight.run())

    half = Trainer(make_model(corpus, layers=layers, dropout=dropout), corpus,
                   TrainConfig.from_dict({**config.to_dict(), "steps": N}))
    first = losses(half.run())
    path = tmp_path / "ckpt.npz"
    half.save(path)
    resumed = Trainer.from_checkpoint(load_checkpoint(path), corpus, steps=2 * N)
    assert resumed.step == N and resumed.config == config
    second = losses(resumed.run())
    assert first + second == expected  # bitwise: float equality
    for name, p in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], p)


def test_injected_inf_restores_last_good_weights(corpus):
    config = TrainConfig(seq_len=8, batch_size=4, steps=50)
    trainer = Trainer(make_model(corpus), corpus, config)
    run = trainer.run()
    for _ in range(5):
        next(run)
    good = {n: p.copy() for n, p in trainer.model.params.items()}
    good_opt = trainer.optimizer.state_dict()
    trainer.model.params["l0.Wh"][0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match="step 6") as info:
        next(run)
    assert "non-finite" in str(info.value) or "nan" in str(info.value)
    assert trainer.step == 5 and trainer.optimizer.t == 5
    for n, p in trainer.model.params.items():
        np.testing.assert_array_equal(p, good[n])
    for slot, held in good_opt["slots"].items():
        for n, a in held.items():
            np.testing.assert_array_equal(trainer.optimizer.slots[slot][n], a)


def test_huge_learning_rate_stops_with_finite_weights(corpus):
    config = TrainConfig(seq_len=8, batch_size=4, steps=50, optimizer="sgd", lr=1e38, clip_norm=None)
    model = make_model(corpus)
    initial = {n: p.copy() for n, p in model.params.items()}
    trainer = Trainer(model, corpus, config)
    steps = []
    with pytest.raises(TrainingDiverged, match="training diverged at step") as info:
        for p in trainer.run():
            steps.append(p.step)
    last_good = trainer.step
    failed = len(steps) + 1
    assert steps == list(range(1, failed)) and str(failed) in str(info.value)
    assert last_good in (failed - 1, failed - 2)  # a runaway loss goes back before the update that made it
    assert all(np.all(np.isfinite(p)) for p in model.params.values())
    if last_good == 0:
        for n, p in model.params.items():
            np.testing.assert_array_equal(p, initial[n])
    # the restored trainer can be asked for the same steps again and fails the same way
    with pytest.raises(TrainingDiverged, match=f"step {failed}"):
        for _ in range(failed - last_good):
            trainer.train_step()


def test_runaway_loss_stops_with_the_weights_before_the_update_that_caused_it(corpus):
    # SGD at lr 1e30: step 1's loss is the untrained model's, its update is ~1e30 x the gradient
    # (finite in float64), so step 2's loss is finite but enormous: a runaway, not a NaN.
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, hidden_size=16, dtype="float64"), rng=np.random.default_rng(1))
    initial = {n: p.copy() for n, p in model.params.items()}
    config = TrainConfig(seq_len=8, batch_size=4, steps=50, optimizer="sgd", lr=1e30, clip_norm=None)
    trainer = Trainer(model, corpus, config)
    seen = []
    with pytest.raises(TrainingDiverged, match=r"step 2: the loss ran away to .*back to step 0") as info:
        for p in trainer.run():
            seen.append(p.train_loss)
    assert len(seen) == 1 and seen[0] < 10  # step 1's loss, about ln V
    assert f"{RUNAWAY_FACTOR:g} x its minimum" in str(info.value)
    assert trainer.step == 0 and trainer.optimizer.t == 0 and trainer.batches_taken == 0
    for n, p in model.params.items():
        np.testing.assert_array_equal(p, initial[n])  # the update of step 1 made the runaway weights
    # restored exactly: the same two steps run away again
    trainer.train_step()
    with pytest.raises(TrainingDiverged, match="step 2: the loss ran away"):
        trainer.train_step()
    assert trainer.step == 0


def test_runaway_rule_needs_both_a_tenfold_rise_and_a_loss_above_the_first(corpus):
    trainer = Trainer(make_model(corpus), corpus, TrainConfig(seq_len=8, batch_size=4, steps=50))
    trainer.first_loss, trainer.min_loss, trainer.norm_mean = 4.0, 0.3, 1.0
    assert trainer._check_step(3.9, 1.0) is None  # 13 x the minimum but below the first loss
    assert trainer._check_step(4.1, 1.0).startswith("the loss ran away")
    trainer.min_loss = 0.5
    assert trainer._check_step(4.9, 1.0) is None  # above the first loss but under 10 x the minimum
    assert trainer._check_step(5.1, 1.0).startswith("the loss ran away")


def test_exploding_gradient_norm_stops_without_updating(corpus, monkeypatch):
    trainer = Trainer(make_model(corpus), corpus, TrainConfig(seq_len=8, batch_size=4, steps=50, clip_norm=5.0))
    for _ in range(3):
        trainer.train_step()
    good = {n: p.copy() for n, p in trainer.model.params.items()}
    real = SequenceModel.loss_and_grads

    def exploding(self, *args, **kwargs):
        loss, grads, state = real(self, *args, **kwargs)
        return loss, {n: g * 1e7 for n, g in grads.items()}, state  # finite, clipped to norm 5 if not caught

    monkeypatch.setattr(SequenceModel, "loss_and_grads", exploding)
    with pytest.raises(TrainingDiverged, match="step 4: the gradient norm exploded .*back to step 3"):
        trainer.train_step()
    assert trainer.step == 3 and trainer.optimizer.t == 3
    for n, p in trainer.model.params.items():
        np.testing.assert_array_equal(p, good[n])


def test_update_that_overflows_is_rolled_back(corpus, monkeypatch):
    trainer = Trainer(make_model(corpus), corpus, TrainConfig(seq_len=8, batch_size=4, steps=50))
    for _ in range(3):
        trainer.train_step()
    good = {n: p.copy() for n, p in trainer.model.params.items()}
    real_step = trainer.optimizer.step

    def overflowing_step(params, grads):
        real_step(params, grads)  # advances t and the slots like a real update...
        params["head.b"][0] = np.inf  # ...that overflowed

    monkeypatch.setattr(trainer.optimizer, "step", overflowing_step)
    with pytest.raises(TrainingDiverged, match=r"step 4: the update made parameter\(s\) head.b non-finite"):
        trainer.train_step()
    assert trainer.step == 3 and trainer.optimizer.t == 3 and trainer.batches_taken == 3
    for n, p in trainer.model.params.items():
        np.testing.assert_array_equal(p, good[n])


class ScriptedTrainer(Trainer):
    """A backend in the way ``lstmviz.torch_backend`` is one: it replaces only the steps that
    touch the weights and gets the engine's divergence rules and bookkeeping."""

    def __init__(self, *args, losses, **kwargs):
        super().__init__(*args, **kwargs)
        self.script, self.rates, self.carried = list(losses), [], []

    def _gradients(self, batch):
        return self.script.pop(0), 1.0, None, ("final", self.batches_taken)

    def _update(self, grads):
        self.rates.append(self.optimizer.hyper["lr"])
        return []

    def _keep_carry(self, final):
        self.carried.append(final)


def test_a_backend_replacing_the_weight_steps_gets_the_engines_rules_and_bookkeeping(corpus):
    config = TrainConfig(seq_len=8, batch_size=4, steps=10, lr=0.1, lr_warmup=4)
    trainer = ScriptedTrainer(make_model(corpus), corpus, config, losses=[4.0, 2.0, 1.0, 30.0])
    assert [trainer.train_step() for _ in range(3)] == [(4.0, 1.0), (2.0, 1.0), (1.0, 1.0)]
    # the mean of the first steps (smoothing 0.95 starts after 20 steps): 4, 3, 7/3
    assert trainer.smooth_loss == pytest.approx(7 / 3) and (trainer.first_loss, trainer.min_loss) == (4.0, 1.0)
    assert trainer.rates == pytest.approx([0.025, 0.05, 0.075])  # warm-up: lr k / 4 at step k
    assert trainer.carried == [("final", 1), ("final", 2), ("final", 3)]
    with pytest.raises(TrainingDiverged, match=r"^training diverged at step 4: the loss ran away to 30, .* "
                                               r"back to step 2 \(try a lower learning rate"):
        trainer.train_step()  # 30 > 10 x the minimum 1 and above the first loss 4: the update of step 3 made it
    assert (trainer.step, trainer.batches_taken, trainer.smooth_loss, trainer.min_loss) == (2, 2, 3.0, 2.0)
    assert len(trainer.rates) == 3  # no update for the step that ran away


def run_in_thread(trainer, stop, pause, pause_at):
    """Consume ``trainer.run`` in a worker thread; at step ``pause_at`` hand control to the test."""
    seen, reached, go, after = [], threading.Event(), threading.Event(), threading.Event()

    def work():
        for p in trainer.run(stop=stop, pause=pause):
            seen.append(p)
            if p.step == pause_at and not p.done:
                reached.set()
                go.wait(10)
            elif p.step > pause_at:
                after.set()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, seen, reached, go, after


def test_pause_blocks_until_cleared(corpus):
    trainer = Trainer(make_model(corpus), corpus, TrainConfig(seq_len=8, batch_size=4, steps=6))
    stop, pause = threading.Event(), threading.Event()
    thread, seen, reached, go, after = run_in_thread(trainer, stop, pause, pause_at=3)
    try:
        assert reached.wait(10)
        pause.set()
        go.set()
        assert not after.wait(0.3)  # paused: no step happens
        assert trainer.step == 3
        pause.clear()
        thread.join(10)  # runs on to the end
    finally:
        if thread.is_alive():  # only when an assertion above failed
            stop.set()
            go.set()
            thread.join(10)
    assert not thread.is_alive()
    assert after.is_set()
    assert [p.step for p in seen if not p.paused] == [1, 2, 3, 4, 5, 6, 6] and seen[-1].done
    assert [(p.step, p.done) for p in seen if p.paused] == [(3, False)]  # announced once, where it held


def test_stop_while_paused_ends_with_done(corpus):
    trainer = Trainer(make_model(corpus), corpus, TrainConfig(seq_len=8, batch_size=4, steps=100))
    stop, pause = threading.Event(), threading.Event()
    thread, seen, reached, go, after = run_in_thread(trainer, stop, pause, pause_at=2)
    try:
        assert reached.wait(10)
        pause.set()
        go.set()
        stop.set()
    finally:
        go.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [p.step for p in seen if not p.paused] == [1, 2, 2] and seen[-1].done
    assert [p.step for p in seen if p.paused] in ([], [2])  # stop may be seen before the pause
    assert seen[-1].val_loss is None and trainer.step == 2


def brute_force_loss(model, ids, batch_size):
    """Single-stream, one step at a time: the documented streams, each from a zero state."""
    N = len(ids) - 1
    S = min(batch_size, N)
    L = N // S
    bounds = [(b * L, (b + 1) * L) for b in range(S - 1)] + [((S - 1) * L, N)]
    total = 0.0
    for lo, hi in bounds:
        state = model.zero_state(1)
        for t in range(lo, hi):
            probs, state, _ = model.step(ids[t : t + 1], state)  # (1, V)
            total -= math.log(probs[0, ids[t + 1]])
    return total / N


@pytest.mark.parametrize("M, batch_size, chunk", [(103, 4, 7), (50, 1, 16), (9, 32, 256), (40, 5, 3)])
def test_evaluate_matches_brute_force(corpus, M, batch_size, chunk):
    model = make_model(corpus, hidden=8, layers=2, dtype="float64")
    ids = corpus.train_ids[:M]
    expected = brute_force_loss(model, ids, batch_size)
    assert evaluate(model, ids, batch_size, chunk=chunk) == pytest.approx(expected, rel=1e-12)


def test_evaluate_refuses_too_short():
    corpus = TextCorpus(pattern_text(), val_fraction=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        evaluate(make_model(corpus), corpus.val_ids[:1])


@pytest.mark.parametrize("changes, message", [
    ({"seq_len": 0}, "seq_len"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"steps": True}, "steps"),
    ({"lr": -1.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"momentum": 0.9}, "momentum applies only"),
    ({"optimizer": "sgd", "momentum": 1.0}, "momentum"),
    ({"clip_norm": 0.0}, "clip_norm"),
    ({"clip_value": float("inf")}, "clip_value"),
    ({"val_fraction": 0.9}, "val_fraction"),
    ({"batching": "shuffled"}, "batching"),
    ({"smoothing": 1.0}, "smoothing"),
    ({"seed": -1}, "seed"),
])
def test_config_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_config_round_trip_and_unknown_keys():
    config = TrainConfig(optimizer="sgd", momentum=0.5, clip_norm=None, batching="random")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown train config keys"):
        TrainConfig.from_dict({"learning_rate": 1.0})


def test_train_config_saved_by_earlier_versions_loads_unchanged():
    saved = {"seq_len": 64, "batch_size": 32, "steps": 2000, "lr": 0.005, "optimizer": "adam", "momentum": 0.0,
             "clip_norm": 5.0, "clip_value": None, "seed": 0, "val_fraction": 0.1, "eval_every": 100,
             "batching": "sequential", "smoothing": 0.99}  # assets/demo.npz's train config
    added = {"rmsprop_decay": 0.99, "lr_schedule": "none", "lr_decay": 0.97, "lr_decay_every": 1,
             "lr_decay_start": 1, "lr_warmup": 0}  # fields added since: defaults that train as before
    assert TrainConfig.from_dict(saved).to_dict() == {**saved, **added}


def test_trainer_refuses_mismatched_model_and_short_text(corpus):
    other = TextCorpus("abc " * 200)
    with pytest.raises(ValueError, match="vocabulary"):
        Trainer(make_model(corpus), other, TrainConfig())
    with pytest.raises(DataError, match="needs at least"):
        Trainer(make_model(corpus), corpus, TrainConfig(seq_len=64, batch_size=32))


def test_progress_fields_at_end_when_nothing_to_do(corpus):
    trainer = Trainer(make_model(corpus), corpus, TrainConfig(seq_len=8, batch_size=4, steps=2))
    list(trainer.run())
    (final,) = list(trainer.run())  # already at total steps: just the final snapshot
    assert isinstance(final, Progress) and final.done and final.step == 2
    assert final.val_loss == pytest.approx(trainer.evaluate())


def test_trainer_learns_a_sine_series_and_checkpoints_its_scaler(tmp_path):
    """The same Trainer drives a numeric forecaster: MSE falls, val_bpc stays None, and the
    checkpoint records what maps predictions back to original units."""
    from engine.series import SeriesDataset, sine

    dataset = SeriesDataset(sine(400, period=25.0) * 3.0 + 10.0, window=4, val_fraction=0.2)
    model = SequenceModel(ModelConfig(input_size=4, output_size=1, hidden_size=16, input_kind="dense", head="linear"),
                          rng=np.random.default_rng(0))
    config = TrainConfig(seq_len=20, batch_size=8, steps=300, lr=1e-2, eval_every=100, val_fraction=0.2)
    trainer = Trainer(model, dataset, config)
    before = trainer.evaluate()
    progress = list(trainer.run())
    assert progress[-1].done and progress[-1].val_bpc is None
    assert {p.loss_unit for p in progress} == {"MSE (scaled units)"}
    assert progress[-1].val_loss < 0.01 < before
    path = tmp_path / "series.npz"
    trainer.save(path)
    saved = load_checkpoint(path).extra["series"]
    assert saved["window"] == 4 and saved["scaler"] == dataset.scaler.to_dict()


def test_smoothed_loss_is_a_running_mean_before_the_ema_horizon(corpus):
    """Early on the smoothed loss is the plain mean of the losses so far (no long memory of the
    first, high losses); after 1/(1 - smoothing) steps it is an exponential moving average."""
    config = TrainConfig(seq_len=16, batch_size=4, steps=30, eval_every=100, smoothing=0.9)
    progress = list(Trainer(make_model(corpus), corpus, config).run())[:-1]
    raw = [p.train_loss for p in progress]
    for k in range(10):
        assert progress[k].smooth_loss == pytest.approx(np.mean(raw[: k + 1]), rel=1e-12)
    expected = progress[9].smooth_loss
    for k in range(10, 30):
        expected = 0.9 * expected + 0.1 * raw[k]
        assert progress[k].smooth_loss == pytest.approx(expected, rel=1e-12)


def test_text_corpus_has_the_dataset_interface_of_a_series(corpus):
    """What the Trainer asks every dataset: the model check, the validation loss (the mean
    cross-entropy of the validation ids, computed here by hand with one stream), the loss unit
    and its bits form, and the checkpoint metadata."""
    model = make_model(corpus, dtype="float64")
    corpus.check_model(model)
    rng = np.random.default_rng(0)
    V = len(corpus.vocab)
    with pytest.raises(ValueError, match="one-hot"):
        corpus.check_model(SequenceModel(ModelConfig(V, V, input_kind="dense", head="linear"), rng=rng))
    with pytest.raises(ValueError, match="vocabulary has"):
        corpus.check_model(SequenceModel(ModelConfig(3, 3), rng=rng))
    ids = corpus.val_ids
    probs = model.trace(ids[:-1]).outputs  # (M - 1, V) one stream from a zero state
    by_hand = -np.mean(np.log(probs[np.arange(len(ids) - 1), ids[1:]]))
    assert corpus.validation_loss(model, batch_size=1) == pytest.approx(by_hand, rel=1e-10)
    assert corpus.loss_unit == "nats/char" and corpus.checkpoint_extra() == {}
    assert corpus.loss_bits(math.log(4.0)) == pytest.approx(2.0) and corpus.loss_bits(None) is None
    assert TextCorpus(pattern_text(), val_fraction=0.0).validation_loss(model, 4) is None


def test_rmsprop_decay_reaches_the_optimizer(corpus):
    config = TrainConfig(seq_len=8, batch_size=4, steps=5, optimizer="rmsprop", rmsprop_decay=0.95)
    trainer = Trainer(make_model(corpus), corpus, config)
    assert trainer.optimizer.hyper["alpha"] == 0.95
    assert Trainer(make_model(corpus), corpus, TrainConfig(optimizer="rmsprop", seq_len=8, batch_size=4)
                   ).optimizer.hyper["alpha"] == 0.99  # PyTorch's default


def test_time_estimate_leaves_the_trainer_untouched_and_counts_the_evaluations(corpus):
    config = TrainConfig(seq_len=8, batch_size=4, steps=45, eval_every=10)
    trainer = Trainer(make_model(corpus), corpus, config)
    for _ in range(3):
        trainer.train_step()
    params = {n: p.copy() for n, p in trainer.model.params.items()}
    rng_state, opt = trainer.rng.bit_generator.state, trainer.optimizer.state_dict()
    estimate = estimate_time(trainer, burst=3)
    assert (estimate.steps, estimate.evaluations) == (42, 5)  # steps 4..45: evaluations at 10, 20, 30, 40 and 45
    assert estimate.step_s > 0 and estimate.eval_s > 0
    assert estimate.total_s == pytest.approx(42 * estimate.step_s + 5 * estimate.eval_s)
    assert trainer.step == 3 and trainer.batches_taken == 3 and trainer.rng.bit_generator.state == rng_state
    assert trainer.optimizer.state_dict()["t"] == opt["t"]
    for n, p in trainer.model.params.items():
        np.testing.assert_array_equal(p, params[n])
