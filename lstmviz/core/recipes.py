"""Training recipes of the app and its lessons: how each panel's trainer is built.

* ``new_trainer`` / ``resume_trainer``: the training panel's fresh run (weights drawn from the
  training config's seed) and its exact resume of a checkpoint on the current text.
* ``compare_trainers``: the "RNN vs LSTM" lesson's pair, an Elman RNN and an LSTM of the same
  hidden size on the same corpus, with the same seed and ``compare_config``.
* ``series_trainer``: the series lesson's forecaster, ``SequenceModel(dense input of W values,
  K outputs, linear head)`` on a ``SeriesDataset`` scaled to (-1, 1), with ``series_config``;
  ``GENERATORS`` / ``generate`` make its example series; ``step_labels`` names each position
  by the value it forecasts.
* ``copy_model``: a model with its own copy of another's parameters.

Panels call these instead of building engine objects themselves; nothing here imports Qt.
"""

from __future__ import annotations

import numpy as np

from engine.checkpoint import load_checkpoint
from engine.data import TextCorpus
from engine.model import ModelConfig, SequenceModel
from engine.series import SeriesDataset, noisy_sine, ramp, random_walk, sine
from engine.train import TrainConfig, Trainer

COMPARE_CELLS = ("rnn", "lstm")  # the comparison's two models, in drawing order
COMPARE_BATCH = 16  # streams per batch of the comparison
COMPARE_LR = 3e-3  # Adam learning rate of the comparison
SERIES_GENERATORS = ("ramp -3 … 8", "sine", "noisy sine", "random-walk price")
SERIES_SEED = 0  # the series lesson's generators' and model's random seed (reproducible lessons)
SERIES_VAL_FRACTION = 0.2  # last share of a series held out for validation
SERIES_LR = 1e-2  # Adam learning rate of the forecaster


def copy_model(model: SequenceModel) -> SequenceModel:
    """A model of the same config whose parameters are copies (later updates of ``model``,
    e.g. by a training thread, do not reach it)."""
    return SequenceModel(model.config, params={name: value.copy() for name, value in model.params.items()})


# --- the training panel -----------------------------------------------------------------------
def new_trainer(model_config: ModelConfig, corpus, train_config: TrainConfig) -> Trainer:
    """A trainer of a fresh model of ``model_config`` (weights drawn from
    ``PCG64(train_config.seed)``) on ``corpus``. Raises ValueError (or ``DataError``) when the
    model and the data do not fit together."""
    rng = np.random.Generator(np.random.PCG64(train_config.seed))
    return Trainer(SequenceModel(model_config, rng=rng), corpus, train_config)


def resume_trainer(path, text: str, steps: int) -> Trainer:
    """A trainer that continues the checkpoint at ``path`` exactly, on ``text`` (encoded with the
    checkpoint's vocabulary and split with its ``val_fraction``), up to ``steps`` steps.
    Raises ValueError (``CheckpointError``, ``DataError``) when the checkpoint holds no training
    state, its vocabulary does not cover the text, or it is already at ``steps`` or beyond."""
    ckpt = load_checkpoint(path)
    if ckpt.train_config is None or ckpt.vocab is None:
        raise ValueError(f"{path} holds a model only, no training state to resume")
    corpus = TextCorpus(text, vocab=ckpt.vocab, val_fraction=ckpt.train_config.get("val_fraction", 0.1))
    if steps <= ckpt.step:
        raise ValueError(f"the checkpoint is already at step {ckpt.step}; set Steps higher to continue")
    return Trainer.from_checkpoint(ckpt, corpus, steps=steps)


# --- RNN vs LSTM ------------------------------------------------------------------------------
def compare_config(seq_len: int, steps: int) -> TrainConfig:
    """The comparison's training: batches of COMPARE_BATCH, Adam COMPARE_LR, ten evaluations, seed 0."""
    return TrainConfig(seq_len=seq_len, batch_size=COMPARE_BATCH, steps=steps, lr=COMPARE_LR,
                       eval_every=max(1, steps // 10), seed=0)


def compare_trainers(text: str, hidden_size: int, config: TrainConfig) -> tuple[TextCorpus, dict]:
    """``(corpus, {cell: Trainer})`` for every cell of COMPARE_CELLS: one-layer models of
    ``hidden_size`` units on the same corpus of ``text``, initialised from the same seed
    (``config.seed``). Raises ValueError (``DataError``) when the text is too short."""
    corpus = TextCorpus(text, val_fraction=config.val_fraction)
    V = len(corpus.vocab)
    trainers = {}
    for cell in COMPARE_CELLS:
        model = SequenceModel(ModelConfig(input_size=V, output_size=V, cell=cell, hidden_size=hidden_size),
                              rng=np.random.default_rng(config.seed))
        trainers[cell] = Trainer(model, corpus, config)
    return corpus, trainers


# --- numeric series ---------------------------------------------------------------------------
def generate(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of one of ``SERIES_GENERATORS`` (the ramp: ``n`` evenly spaced values from
    -3 to 8; n = 12 gives the tutorial's -3, -2, ..., 8); ValueError for another kind."""
    if kind == "ramp -3 … 8":
        return ramp(n=n)
    if kind == "sine":
        return sine(n, period=25.0)
    if kind == "noisy sine":
        return noisy_sine(n, period=25.0, noise=0.1, rng=rng)
    if kind == "random-walk price":
        return random_walk(n, rng)
    raise ValueError(f"unknown generator {kind!r}; expected one of {SERIES_GENERATORS}")


def series_dataset(values: np.ndarray, window: int, horizon: int) -> SeriesDataset:
    """The lesson's dataset: windows of W past values, K targets, the last SERIES_VAL_FRACTION
    held out, scaled to (-1, 1) on the training part. Raises ``DataError`` when too short."""
    return SeriesDataset(values, window, horizon, val_fraction=SERIES_VAL_FRACTION)


def series_config(dataset: SeriesDataset, steps: int) -> TrainConfig:
    """Batches of 4 runs of at most 32 positions (fewer for a short series), Adam SERIES_LR,
    twenty evaluations."""
    positions = dataset.train_positions
    batch = 4 if positions >= 8 else 1
    seq_len = max(1, min(32, positions // batch))
    return TrainConfig(seq_len=seq_len, batch_size=batch, steps=steps, lr=SERIES_LR,
                       eval_every=max(1, steps // 20), val_fraction=SERIES_VAL_FRACTION, seed=SERIES_SEED)


def series_trainer(values: np.ndarray, window: int, horizon: int, hidden_size: int,
                   steps: int) -> tuple[SeriesDataset, Trainer]:
    """``(dataset, trainer)`` of a fresh forecaster (``hidden_size`` units, weights from
    SERIES_SEED) on ``series_dataset(values, window, horizon)``. Raises ``DataError`` when the
    series is too short."""
    dataset = series_dataset(values, window, horizon)
    config = ModelConfig(input_size=dataset.window, output_size=dataset.horizon, hidden_size=hidden_size,
                         input_kind="dense", head="linear")
    model = SequenceModel(config, rng=np.random.default_rng(SERIES_SEED))
    return dataset, Trainer(model, dataset, series_config(dataset, steps))


def step_labels(dataset: SeriesDataset) -> list[str]:
    """Per position p, the value it forecasts first (``values[p + W]``, original units), as "12.35"."""
    first = dataset.values[dataset.window : dataset.window + dataset.positions]  # (M,)
    return [f"{v:.4g}" for v in first]
