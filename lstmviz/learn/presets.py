"""Training presets: named starting points for the model panel's form.

Each preset fills every architecture and optimisation field of the form (the seed is left as
the user set it); the user can edit any value afterwards. Field names are those of
``engine.model.ModelConfig`` and ``engine.train.TrainConfig``; ``clip_norm``/``clip_value`` of
``None`` mean "no clipping". A preset is checked by those configs when it is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.model import ModelConfig
from engine.settings import split_values
from engine.train import TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named set of form values and a one-line note on where it comes from.

    Raises ValueError (the configs' message) if ``values`` names an unknown field or is not a
    valid ``ModelConfig`` + ``TrainConfig`` (for any vocabulary size)."""

    name: str
    source: str
    values: dict

    def __post_init__(self):
        model_values, train_values = split_values(self.values, ModelConfig, TrainConfig)
        ModelConfig(input_size=1, output_size=1, **model_values)
        TrainConfig(**train_values)


PRESETS = (
    Preset(
        "Keras text generator",
        "Two stacked LSTM(300) layers with dropout 0.2 on 50-character windows, trained with "
        "Adam at Keras' default learning rate, as in the classic Keras character-level text "
        "generator tutorials.",
        dict(cell="lstm", hidden_size=300, num_layers=2, dropout=0.2, seq_len=50, batch_size=64,
             optimizer="adam", lr=1e-3, momentum=0.0, clip_norm=None, clip_value=None,
             steps=5000, eval_every=200),
    ),
    Preset(
        "NumPy from scratch",
        "A single LSTM(64) trained with plain SGD (lr 0.01) and gradients clipped to norm 5, "
        "one sequence at a time, like the from-scratch NumPy LSTM tutorials.",
        dict(cell="lstm", hidden_size=64, num_layers=1, dropout=0.0, seq_len=25, batch_size=1,
             optimizer="sgd", lr=0.01, momentum=0.0, clip_norm=5.0, clip_value=None,
             steps=5000, eval_every=250),
    ),
    Preset(
        "char-rnn",
        "Karpathy's char-rnn defaults: two LSTM(128) layers, RMSprop lr 2e-3, sequences of 50, "
        "batches of 50, gradient clipping at 5.",
        dict(cell="lstm", hidden_size=128, num_layers=2, dropout=0.0, seq_len=50, batch_size=50,
             optimizer="rmsprop", lr=2e-3, momentum=0.0, clip_norm=5.0, clip_value=None,
             steps=5000, eval_every=200),
    ),
    Preset(
        "min-char-rnn",
        "Karpathy's min-char-rnn.py: a vanilla RNN with 100 hidden units, sequences of 25, one "
        "sequence per step, Adagrad lr 0.1, every gradient clipped to [-5, 5].",
        dict(cell="rnn", hidden_size=100, num_layers=1, dropout=0.0, seq_len=25, batch_size=1,
             optimizer="adagrad", lr=0.1, momentum=0.0, clip_norm=None, clip_value=5.0,
             steps=10000, eval_every=500),
    ),
)


def preset_named(name: str) -> Preset:
    """The preset called ``name``; ValueError naming the known presets otherwise."""
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise ValueError(f"unknown preset {name!r}; expected one of {[p.name for p in PRESETS]}")
