"""Data parallelism: a training batch split into parts (``loss_and_grads(shards=...)``) gives the
whole batch's loss, gradients and final state to round-off; the parts run at once on a worker
thread give the same bits as one after another; the trainer's choice depends on the problem only.

The expected values come from the unsplit path (itself checked by finite differences and against
PyTorch in test_gradcheck.py and test_torch_parity.py), from finite differences of the whole
batch's loss, and from PyTorch directly.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import runtime, train
from engine.data import TextCorpus
from engine.model import ModelConfig, SequenceModel
from engine.train import TrainConfig, Trainer

from .helpers import assert_gradients, make_problem

REL = 1e-12


def relative(a, b) -> float:
    """Largest difference of ``a`` and ``b`` relative to the largest magnitude of ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-300))


CASES = [
    ("lstm", 1, "softmax", "onehot", 0.0),
    ("lstm", 2, "softmax", "dense", 0.3),
    ("lstm", 1, "linear", "embedding", 0.0),
    ("gru", 2, "tanh", "onehot", 0.4),
    ("rnn", 1, "softmax", "scaled_index", 0.0),
]


@pytest.mark.parametrize("shards", [2, 3])
@pytest.mark.parametrize("cell,layers,head,input_kind,dropout", CASES)
def test_split_batch_equals_the_whole_batch(cell, layers, head, input_kind, dropout, shards):
    """B = 7 rows: parts of 3 + 4 or 2 + 2 + 3, weighted 3/7, 4/7... (not exact in binary)."""
    token_kind = "onehot" if input_kind != "dense" else "dense"  # make_problem draws ids for one-hot inputs
    model, inputs, targets, state, _ = make_problem(cell, layers, head, token_kind, D=4, H=6, T=5, B=7, O=4,
                                                    dropout=dropout, seed=layers)
    if input_kind != token_kind:
        changes = {"input_kind": input_kind, "embed_size": 3 if input_kind == "embedding" else 0}
        model = SequenceModel(ModelConfig(**{**model.config.to_dict(), **changes}), rng=np.random.default_rng(2))
    loss, grads, final = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(5))
    split_loss, split_grads, split_final = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(5),
                                                                shards=shards)
    assert abs(split_loss - loss) <= REL * abs(loss)
    assert set(split_grads) == set(grads)
    for name, g in grads.items():
        assert split_grads[name].dtype == g.dtype and split_grads[name].shape == g.shape
        assert relative(split_grads[name], g) <= REL, name
    for layer, split_layer in zip(final, split_final):
        for s, split_s in zip(layer, split_layer):
            assert split_s.shape == s.shape
            assert relative(split_s, s) <= REL


def test_split_batch_draws_the_dropout_masks_of_the_whole_batch():
    """The rng advances exactly as for the unsplit batch: the next draw is the same."""
    model, inputs, targets, state, _ = make_problem("lstm", 3, "softmax", "onehot", B=6, dropout=0.5)
    whole, split = np.random.default_rng(3), np.random.default_rng(3)
    model.loss_and_grads(inputs, targets, state, rng=whole)
    model.loss_and_grads(inputs, targets, state, rng=split, shards=2)
    assert whole.random() == split.random()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_split_batch_gradients_match_finite_differences(cell):
    """Gradients of the split batch against finite differences of the whole batch's loss
    (dropout on: the fixed rng seed gives every evaluation the same masks)."""
    model, inputs, targets, state, _ = make_problem(cell, 2, "softmax", "dense", D=3, H=4, T=4, B=5, O=3,
                                                    dropout=0.3, seed=4)
    _, grads, _ = model.loss_and_grads(inputs, targets, state, rng=np.random.default_rng(8), shards=2)

    def f() -> float:
        return model.forward(inputs, state, targets, train=True, rng=np.random.default_rng(8)).loss

    assert_gradients(f, dict(model.params), grads)


def test_split_batch_matches_torch():
    """A batch split in two gives PyTorch's float64 loss, gradients and final state."""
    torch = pytest.importorskip("torch")
    from .test_torch_parity import torch_twin

    model, inputs, targets, state, _ = make_problem("lstm", 2, "softmax", "onehot", D=5, H=6, T=7, B=6, O=5, seed=2)
    loss, grads, final = model.loss_and_grads(inputs, targets, state, shards=2)
    rnn, head = torch_twin(model, np.random.default_rng(9))
    x = torch.nn.functional.one_hot(torch.from_numpy(inputs), 5).double()  # (B, T, V)
    h0, c0 = (torch.from_numpy(np.stack([s[j] for s in state])) for j in (0, 1))  # (L, B, H)
    hs, (hn, cn) = rnn(x, (h0, c0))
    scores = head(hs)  # (B, T, V)
    torch_loss = torch.nn.CrossEntropyLoss()(scores.reshape(-1, 5), torch.from_numpy(targets).reshape(-1))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    for k in range(2):
        np.testing.assert_allclose(grads[f"l{k}.Wh"], getattr(rnn, f"weight_hh_l{k}").grad.T.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(grads[f"l{k}.Wx"], getattr(rnn, f"weight_ih_l{k}").grad.T.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(grads[f"l{k}.b"], getattr(rnn, f"bias_hh_l{k}").grad.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(final[k][0], hn[k].detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(final[k][1], cn[k].detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads["head.W"], head.weight.grad.T.numpy(), rtol=0, atol=1e-12)


def test_parts_run_at_once_give_the_bits_of_parts_run_in_turn():
    """Two threads in single-threaded OpenBLAS and NumPy's ufuncs at once, many times over:
    every run gives exactly the serial figures (float32, products large enough to overlap)."""
    model = SequenceModel(ModelConfig(input_size=20, output_size=20, hidden_size=96), rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 20, (32, 24)), rng.integers(0, 20, (32, 24))  # (B, T) ids
    executor = runtime.shard_executor(cores=2, load=0.0)
    assert executor is runtime.shard_executor(cores=2, load=0.0)  # one persistent worker
    with runtime.blas_threads(1):
        loss, grads, final = model.loss_and_grads(x, y, shards=2)
        for _ in range(40):
            at_once = model.loss_and_grads(x, y, shards=2, executor=executor)
            assert at_once[0] == loss
            for name, g in grads.items():
                np.testing.assert_array_equal(at_once[1][name], g, err_msg=name)
            for layer, layer_at_once in zip(final, at_once[2]):
                for s, s_at_once in zip(layer, layer_at_once):
                    np.testing.assert_array_equal(s_at_once, s)


def test_an_error_in_a_part_reaches_the_caller():
    """A bad target in the second part, run on the worker thread, raises in the caller."""
    model, inputs, targets, state, _ = make_problem("lstm", 1, "softmax", "onehot", B=4)
    bad = targets.copy()
    bad[3, 0] = -1  # in the second part
    with pytest.raises(ValueError, match="target ids must be in"):
        model.loss_and_grads(inputs, bad, state, shards=2, executor=runtime.shard_executor(cores=2, load=0.0))


def test_shards_by_problem_size_only():
    """A batch is split in two only at H >= 256 with at least 32 rows a part."""
    assert (runtime.SHARD_MIN_HIDDEN, runtime.SHARD_MIN_ROWS) == (256, 32)
    assert runtime.batch_shards(256, 64) == 2
    assert runtime.batch_shards(512, 128) == 2
    assert runtime.batch_shards(256, 63) == 1  # a half of 31 rows
    assert runtime.batch_shards(128, 256) == 1
    assert runtime.batch_shards(512, 32) == 1


def test_parts_run_one_by_one_on_one_core_or_a_busy_machine():
    """No worker thread without a second core free (one core, or a load above one core)."""
    assert runtime.shard_executor(cores=1, load=0.0) is None
    assert runtime.shard_executor(cores=2, load=1.1) is None  # less than one core free
    assert runtime.shard_executor(cores=2, load=1.0) is not None


def test_the_plan_gives_split_batches_one_blas_thread_and_unsplit_ones_blas_threads_for():
    """Split: 1 BLAS thread a part, at once or in turn by the load; unsplit: blas_threads_for."""
    split = runtime.training_plan(256, 64, cores=2, load=0.0)
    assert (split.shards, split.blas_threads, split.label) == (2, 1, "2 parts at once")
    busy = runtime.training_plan(256, 64, cores=2, load=1.5)
    assert (busy.shards, busy.blas_threads, busy.executor, busy.label) == (2, 1, None, "2 parts in turn")
    unsplit = runtime.training_plan(512, 32, cores=2, load=0.0)
    assert (unsplit.shards, unsplit.blas_threads, unsplit.executor) == (1, runtime.blas_threads_for(512, 32, 2, 0.0), None)


def text_trainer(monkeypatch, shards: int, seed: int = 0):
    """A float64 trainer whose batches of 6 rows run in ``shards`` parts, at once when split."""
    monkeypatch.setattr("engine.train.batch_shards", lambda hidden, batch: shards)
    executor = runtime.shard_executor(cores=2, load=0.0) if shards > 1 else None
    monkeypatch.setattr("engine.train.training_plan",
                        lambda hidden, batch, shards=shards: runtime.TrainingPlan(shards, 1, executor, 1))
    rng = np.random.default_rng(0)
    corpus = TextCorpus("".join(rng.choice(["abcd ", "abce ", "xyz "], size=400)), val_fraction=0.1)
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, hidden_size=12, num_layers=2, dropout=0.2, dtype="float64"),
                          rng=np.random.default_rng(seed))
    return Trainer(model, corpus, TrainConfig(seq_len=8, batch_size=6, steps=15, eval_every=5, seed=seed))


def test_training_split_in_two_equals_training_unsplit_and_repeats_exactly(monkeypatch):
    """Float64, 15 Adam steps with dropout and carried state: the same seed gives the same
    weights bit for bit run to run, and the unsplit run's weights to round-off."""
    runs = []
    for shards in (2, 2, 1):
        trainer = text_trainer(monkeypatch, shards)
        progress = list(trainer.run())
        assert trainer.shards == shards and trainer.plan is None  # only inside run
        runs.append((progress, trainer.model.params))
    (first, params), (again, params_again), (unsplit, params_unsplit) = runs
    assert [p.train_loss for p in first] == [p.train_loss for p in again]
    for name, p in params.items():
        np.testing.assert_array_equal(params_again[name], p)
        assert relative(p, params_unsplit[name]) <= 1e-10, name  # Adam divides by sqrt(v): round-off grows a little
    assert [p.val_loss is None for p in first] == [p.val_loss is None for p in unsplit]
    assert first[-1].val_loss == pytest.approx(unsplit[-1].val_loss, rel=1e-10)


def counted_loads(monkeypatch, loads: list) -> list:
    """Two usable cores and ``runtime.load_elsewhere`` replaced by one returning ``loads`` in
    turn (the last one repeated); returns the list its calls are appended to."""
    calls = []

    def load_elsewhere():
        calls.append(loads[min(len(calls), len(loads) - 1)])
        return calls[-1]

    monkeypatch.setattr(runtime, "load_elsewhere", load_elsewhere)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr("engine.train.usable_cores", lambda: 2, raising=False)
    return calls


def ticking_clock(monkeypatch, tick_s: float) -> None:
    """Replace the trainer's clock by one that moves on ``tick_s`` seconds at every reading
    (at a run's start and at each evaluation where the load could be measured again)."""
    now = [-tick_s]

    def monotonic():
        now[0] += tick_s
        return now[0]

    monkeypatch.setattr("engine.train.monotonic", monotonic)


def split_trainer(steps=6):
    """A float32 trainer at the data-parallel thresholds (H=256, B=64: two halves), short windows."""
    rng = np.random.default_rng(0)
    corpus = TextCorpus("".join(rng.choice(["abcd ", "abce ", "xyz "], size=2000)), val_fraction=0.1)
    V = len(corpus.vocab)
    model = SequenceModel(ModelConfig(V, V, hidden_size=256), rng=np.random.default_rng(1))
    return Trainer(model, corpus, TrainConfig(seq_len=3, batch_size=64, steps=steps, eval_every=2))


def recorded_run(monkeypatch, trainer) -> tuple[list, list]:
    """Run ``trainer``; returns the plan label after every step and the BLAS thread counts set."""
    counts, real = [], runtime.blas_threads

    def blas_threads(n):
        counts.append(n)
        return real(n)

    monkeypatch.setattr("engine.train.blas_threads", blas_threads)
    labels = [trainer.plan.label for p in trainer.run() if not p.done]
    return labels, counts


def test_a_run_measures_the_load_once_and_its_evaluations_reuse_it(monkeypatch):
    """A plan at its best (parts at once) is never measured again during the run."""
    calls = counted_loads(monkeypatch, [0.0])
    trainer = split_trainer()
    assert trainer.shards == 2
    labels, counts = recorded_run(monkeypatch, trainer)
    assert calls == [0.0]  # one measurement for 6 steps and 3 evaluations
    assert labels == ["2 parts at once"] * 6
    # the steps at 1 BLAS thread per part; each unsplit validation pass at blas_threads_for's 2
    assert counts == [1, 2, 2, 2] and runtime.blas_threads_for(256, 64, cores=2, load=0.0) == 2
    assert trainer.plan is None


def test_a_run_started_on_a_busy_machine_runs_its_parts_at_once_when_a_core_comes_free(monkeypatch):
    """Evaluations PLAN_RECHECK_S apart: each one measures the load until a core is free."""
    calls = counted_loads(monkeypatch, [1.5, 1.5, 0.0])
    ticking_clock(monkeypatch, train.PLAN_RECHECK_S)
    labels, counts = recorded_run(monkeypatch, split_trainer())
    # measured at the start, then at the evaluations after steps 2 and 4; then at its best, no more
    assert calls == [1.5, 1.5, 0.0]
    assert labels == ["2 parts in turn"] * 3 + ["2 parts at once"] * 3
    assert counts == [1, 1, 1, 2]  # the validation passes at the load measured before each


@pytest.mark.parametrize("tick_s, measured", [(train.PLAN_RECHECK_S, 3), (train.PLAN_RECHECK_S * 0.6, 2),
                                               (train.PLAN_RECHECK_S * 0.4, 1)])
def test_a_run_on_a_machine_that_stays_busy_measures_at_most_once_per_recheck_interval(monkeypatch, tick_s,
                                                                                       measured):
    """Evaluations after steps 2 and 4 at tick_s, 2 tick_s: measured at the start, then at
    those at least PLAN_RECHECK_S after the last measurement."""
    calls = counted_loads(monkeypatch, [1.5])
    ticking_clock(monkeypatch, tick_s)
    labels, _ = recorded_run(monkeypatch, split_trainer(steps=6))
    assert len(calls) == measured and labels == ["2 parts in turn"] * 6


def test_the_benchmark_prints_the_plan_its_trainer_ran_with(monkeypatch, capsys):
    """bench/engine_vs_torch.py's "engine runs as" and load columns are the trainer's own plan,
    even when the machine's load changes between two measurements."""
    bench = pytest.importorskip("bench.engine_vs_torch")
    calls = counted_loads(monkeypatch, [1.5, 0.0])
    monkeypatch.setattr(bench, "CONFIGS", {"split": (256, 64, 3)})
    ran = []
    real_step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self: ran.append(self.plan.label) or real_step(self))
    bench.training_table(["split"], reps=1, with_torch=False, torch_threads=(1,))
    row = capsys.readouterr().out.splitlines()[-1]
    assert calls == [1.5] and set(ran) == {"2 parts in turn"}
    assert row.split("|")[1].split()[:4] == ["1.5", "2", "parts", "in"]


def test_the_benchmarks_single_core_figure_runs_the_split_batch_in_turn_at_one_blas_thread(monkeypatch):
    """bench/engine_vs_torch.py's "1 core" column (the two-core bound is half of it) times the
    trainer's own work on one core: its parts in turn, no worker, one BLAS thread; afterwards
    the trainer is as it was (no plan)."""
    bench = pytest.importorskip("bench.engine_vs_torch")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    trainer = bench.engine_trainer(256, 64, 3)
    seen = []
    real_step = Trainer.train_step

    def step(self):
        blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
        seen.append((self.plan.shards, self.plan.executor, set(blas)))
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step)
    one_core, floor = bench.single_core_ms(trainer, reps=2)
    assert seen and set(map(str, seen)) == {str((2, None, {1}))}
    assert trainer.plan is None and one_core > 0 and floor > 0
