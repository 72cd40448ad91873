"""Learning-rate schedules: the rate changes exactly at the steps the docstring says."""

import numpy as np
import pytest

from engine.data import TextCorpus
from engine.model import ModelConfig, SequenceModel
from engine.schedule import Schedule
from engine.train import TrainConfig, Trainer


def test_constant_schedule_keeps_the_rate():
    s = Schedule(0.01, "none", steps_per_epoch=3)
    assert [s.rate(k) for k in (1, 2, 100)] == [0.01, 0.01, 0.01]


def test_char_rnn_step_decay_starts_at_the_end_of_epoch_10():
    # 4 batches per epoch: steps 1-4 are epoch 1, ..., steps 37-40 epoch 10, step 41 opens epoch 11
    s = Schedule(2e-3, "step", decay=0.97, every=1, start=10, steps_per_epoch=4)
    assert s.rate(1) == s.rate(40) == 2e-3
    assert s.rate(41) == s.rate(44) == pytest.approx(2e-3 * 0.97)
    assert s.rate(45) == pytest.approx(2e-3 * 0.97**2)
    assert s.rate(81) == pytest.approx(2e-3 * 0.97**11)  # 20 epochs done: decays after epochs 10..20


def test_step_decay_every_n_epochs_is_pytorchs_step_lr():
    # StepLR(step_size=3, gamma=0.5) with 2 batches per epoch: x0.5 after epochs 3, 6, 9
    s = Schedule(1.0, "step", decay=0.5, every=3, start=3, steps_per_epoch=2)
    rates = [s.rate(k) for k in range(1, 21)]
    assert rates == [1.0] * 6 + [0.5] * 6 + [0.25] * 6 + [0.125] * 2


def test_exponential_decay_is_continuous_and_meets_the_step_schedule_at_its_decay_points():
    s = Schedule(1.0, "exponential", decay=0.5, every=2, start=2, steps_per_epoch=10)
    assert s.rate(1) == 1.0  # e = 0: d ** (0 / 2)
    assert s.rate(11) == pytest.approx(0.5**0.5)  # one epoch passed
    assert s.rate(21) == pytest.approx(0.5)  # the end of epoch 2, the step schedule's first decay
    assert s.rate(16) == pytest.approx(0.5**0.75)
    late = Schedule(1.0, "exponential", decay=0.5, every=1, start=3, steps_per_epoch=10)
    assert late.rate(11) == 1.0 and late.rate(21) == 1.0  # flat until e = M - N = 2 (step 21)
    assert late.rate(26) == pytest.approx(0.5**0.5)


def test_linear_warmup_then_the_schedule():
    s = Schedule(0.1, "none", warmup=4, steps_per_epoch=100)
    assert [s.rate(k) for k in range(1, 7)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="cosine"), "unknown learning-rate schedule"),
    (dict(decay=0.0), r"decay factor must be in \(0, 1\]"),
    (dict(every=0), "every must be a positive integer"),
    (dict(warmup=-1), "warmup must be"),
])
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Schedule(0.1, **kwargs)


def test_trainer_applies_the_schedule_to_its_optimizer():
    corpus = TextCorpus("abcab cabbac " * 40, val_fraction=0.0)
    config = TrainConfig(seq_len=8, batch_size=4, steps=40, optimizer="sgd", lr=0.1, lr_schedule="step",
                         lr_decay=0.5, lr_decay_every=1, lr_decay_start=2)
    per_epoch = corpus.batches_per_epoch(4, 8)
    assert per_epoch == (len(corpus.train_ids) - 1) // 4 // 8 == 16
    V = len(corpus.vocab)
    trainer = Trainer(SequenceModel(ModelConfig(V, V, hidden_size=4), rng=np.random.default_rng(0)), corpus, config)
    rates = [p.lr for p in trainer.run() if not p.done]
    assert rates == [0.1] * 32 + [0.05] * 8  # x0.5 at the end of epoch 2 (step 32)
