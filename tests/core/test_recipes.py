"""Training recipes: the comparison pair, the series forecaster, fresh and resumed trainers."""

import numpy as np
import pytest

from engine.checkpoint import save_checkpoint
from engine.data import TextCorpus
from engine.errors import DataError
from engine.model import ModelConfig, SequenceModel
from engine.series import SeriesDataset, ramp, sine
from engine.train import TrainConfig
from lstmviz.core.recipes import (SERIES_GENERATORS, compare_config, compare_trainers, copy_model, generate,
                                  new_trainer, resume_trainer, series_config, series_trainer, step_labels)

TEXT = "the cat sat on the mat. " * 40


def test_copy_model_owns_its_parameters():
    model = SequenceModel(ModelConfig(5, 5, hidden_size=3), rng=np.random.default_rng(0))
    copy = copy_model(model)
    assert copy.config == model.config
    for name, value in model.params.items():
        np.testing.assert_array_equal(copy.params[name], value)
        assert not np.shares_memory(copy.params[name], value)
    model.params["l0.b"][:] += 1.0
    assert not np.array_equal(copy.params["l0.b"], model.params["l0.b"])


def test_compare_pair_same_size_same_data_same_start():
    config = compare_config(seq_len=8, steps=50)
    assert (config.batch_size, config.lr, config.eval_every, config.seed) == (16, 3e-3, 5, 0)
    corpus, trainers = compare_trainers(TEXT, 6, config)
    assert set(trainers) == {"rnn", "lstm"}
    V = len(set(TEXT))
    for cell, trainer in trainers.items():
        c = trainer.model.config
        assert (c.cell, c.hidden_size, c.input_size, c.output_size) == (cell, 6, V, V)
        assert trainer.corpus is corpus and trainer.config == config
        expected = SequenceModel(ModelConfig(V, V, cell=cell, hidden_size=6), rng=np.random.default_rng(0))
        for name, value in expected.params.items():  # both start from seed 0
            np.testing.assert_array_equal(trainer.model.params[name], value)
    with pytest.raises(DataError):
        compare_trainers("ab" * 5, 6, config)


def test_series_recipe_builds_a_forecaster_of_the_window():
    values = 3.0 + sine(200, period=20.0)
    dataset, trainer = series_trainer(values, window=5, horizon=2, hidden_size=7, steps=100)
    c = trainer.model.config
    assert (c.input_kind, c.input_size, c.output_size, c.head, c.hidden_size) == ("dense", 5, 2, "linear", 7)
    assert dataset.val_fraction == 0.2 and dataset.window == 5 and dataset.horizon == 2
    # 200 values, 40 held out: 200 - 5 - 2 + 1 = 194 positions, 154 for training -> 4 runs of 32
    assert (trainer.config.batch_size, trainer.config.seq_len, trainer.config.eval_every) == (4, 32, 5)
    short = SeriesDataset(ramp(), 3, 1, val_fraction=0.2)  # 12 values: 9 positions, 7 for training
    assert (series_config(short, 10).batch_size, series_config(short, 10).seq_len) == (1, 7)
    with pytest.raises(DataError):
        series_trainer(ramp()[:4], window=5, horizon=1, hidden_size=3, steps=10)


def test_step_labels_name_the_value_each_position_forecasts():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.5, 123456.0, 0.000123])
    dataset = SeriesDataset(values, window=2, horizon=1, val_fraction=0.0)
    assert step_labels(dataset) == ["3", "4", "5.5", "1.235e+05", "0.000123"]


def test_generators():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(generate("ramp -3 … 8", 12, rng), np.arange(-3.0, 9.0))  # the tutorial's
    assert all(len(generate(kind, 60, np.random.default_rng(0))) == 60 for kind in SERIES_GENERATORS)
    with pytest.raises(ValueError, match="unknown generator"):
        generate("square", 10, rng)


def test_new_and_resumed_trainers(tmp_path):
    corpus = TextCorpus(TEXT, val_fraction=0.1)
    V = len(corpus.vocab)
    config = TrainConfig(seq_len=8, batch_size=4, steps=6, seed=3)
    trainer = new_trainer(ModelConfig(V, V, hidden_size=5), corpus, config)
    expected = SequenceModel(ModelConfig(V, V, hidden_size=5), rng=np.random.Generator(np.random.PCG64(3)))
    for name, value in expected.params.items():
        np.testing.assert_array_equal(trainer.model.params[name], value)
    list(trainer.run())
    path = tmp_path / "run.npz"
    trainer.save(path)
    resumed = resume_trainer(path, TEXT, steps=9)
    assert resumed.step == 6 and resumed.config.steps == 9 and resumed.corpus.vocab == corpus.vocab
    with pytest.raises(ValueError, match="already at step 6"):
        resume_trainer(path, TEXT, steps=6)
    bare = tmp_path / "bare.npz"
    save_checkpoint(bare, trainer.model, vocab=corpus.vocab)
    with pytest.raises(ValueError, match="model only"):
        resume_trainer(bare, TEXT, steps=9)
